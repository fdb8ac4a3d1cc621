//! Trace export, end to end: the real binary sends its spans over OTLP/HTTP to a collector the
//! test runs (continuing a caller's `traceparent`, flushing at shutdown); a collector that
//! refuses or hangs changes nothing for the service.

use std::time::{Duration, Instant};

use hookrelay::auth::keys::generate_api_key;
use serde_json::json;

use crate::support::collector::{hanging_collector, Collector, ExportedSpan};
use crate::support::process::{free_port, prometheus_samples, ServerProcess};
use crate::support::server::fresh_database_url;
use crate::support::*;

both_backends!(spans_reach_the_collector);

const DEADLINE: Duration = Duration::from_secs(20);
/// OTLP's numbering of span kinds and status codes.
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const STATUS_UNSET: i32 = 0;

/// Exports every 100 ms instead of every 5 s, so spans arrive while the test waits.
fn traced(collector: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOOKRELAY_OTLP_ENDPOINT", collector.to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]
}

fn env<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn span_where(
    collector: &Collector,
    what: &str,
    pick: impl Fn(&ExportedSpan) -> bool,
) -> ExportedSpan {
    eventually(DEADLINE, what, || async { collector.find(&pick) }).await
}

async fn spans_reach_the_collector(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(backend, dir.path()).await;
    let admin_key = generate_api_key();
    let collector = Collector::start().await;
    let rx = Receiver::start().await;
    let settings = traced(&collector.endpoint());
    let server = ServerProcess::start(
        "traced",
        "all",
        &db_url,
        &admin_key,
        dir.path(),
        &env(&settings),
    )
    .await;
    let webhook = server.webhook(json!({"url": rx.url("/traced")})).await;

    // The emit continues the caller's trace (sampled).
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let caller_span = format!("{:016x}", rand::random::<u64>() | 1);
    let resp = server
        .client
        .post(format!("{}/api/v1/events", server.base))
        .bearer_auth(&admin_key)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({"type": "member.created", "data": {"id": 42}}))
        .send()
        .await
        .expect("emit");
    assert_eq!(resp.status().as_u16(), 202);
    let event: serde_json::Value = resp.json().await.expect("emit answer");
    let event_id = event["id"].as_str().expect("event id").to_owned();
    let delivered = eventually(DEADLINE, "the delivery", || async {
        rx.requests().into_iter().next()
    })
    .await;
    let delivery_id = delivered.header("webhook-id");

    let emit = span_where(&collector, "the emit request's span", |s| {
        s.attr("http.route") == Some("/api/v1/events")
            && s.attr("http.request.method") == Some("POST")
    })
    .await;
    assert_eq!(emit.name, "POST /api/v1/events");
    assert_eq!(emit.kind, SERVER);
    assert_eq!(emit.attr("http.response.status_code"), Some("202"));
    assert_eq!(emit.attr("url.path"), Some("/api/v1/events"));
    assert_eq!(emit.attr("hookrelay.event_id"), Some(event_id.as_str()));
    assert!(
        emit.attr("hookrelay.request_id")
            .is_some_and(|id| id.starts_with("req_")),
        "{emit:?}"
    );
    assert_eq!(emit.trace_id, trace_id, "the caller's trace goes on");
    assert_eq!(emit.parent_span_id, caller_span, "under the caller's span");
    assert_eq!(
        emit.resource.get("service.name").map(String::as_str),
        Some("hookrelay")
    );
    assert_eq!(
        emit.resource.get("service.version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(
        emit.resource
            .get("service.instance.id")
            .is_some_and(|id| id.starts_with("node-")),
        "{:?}",
        emit.resource
    );

    let attempt = span_where(&collector, "the delivery attempt's span", |s| {
        s.name == "delivery.attempt"
            && s.attr("hookrelay.delivery_id") == Some(delivery_id.as_str())
    })
    .await;
    assert_eq!(attempt.kind, CLIENT);
    assert_eq!(attempt.attr("hookrelay.outcome"), Some("succeeded"));
    assert_eq!(attempt.attr("http.response.status_code"), Some("200"));
    assert_eq!(attempt.attr("hookrelay.attempt"), Some("1"));
    assert_eq!(attempt.attr("hookrelay.event_id"), Some(event_id.as_str()));
    assert_eq!(attempt.attr("hookrelay.event_type"), Some("member.created"));
    assert_eq!(attempt.attr("hookrelay.webhook_id"), webhook["id"].as_str());
    assert_eq!(attempt.attr("server.address"), Some("127.0.0.1"));
    assert_eq!(attempt.status_code, STATUS_UNSET);
    assert!(
        attempt.parent_span_id.is_empty(),
        "an attempt is a root span"
    );
    // It links to what started it: the ingest commit (hand-off) or a claim.
    let (link_trace, link_span) = attempt.links.first().cloned().expect("a link");
    let starter = span_where(&collector, "the span the attempt links to", |s| {
        s.trace_id == link_trace && s.span_id == link_span
    })
    .await;
    assert!(
        ["ingest.commit", "delivery.claim"].contains(&starter.name.as_str()),
        "{starter:?}"
    );

    let commit = span_where(&collector, "the commit holding the emit", |s| {
        s.name == "ingest.commit" && s.links.contains(&(trace_id.clone(), emit.span_id.clone()))
    })
    .await;
    assert_eq!(commit.attr("hookrelay.events"), Some("1"));
    assert_eq!(commit.attr("hookrelay.deliveries.created"), Some("1"));
    assert!(commit.attr("hookrelay.deliveries.handed_off").is_some());
    let db = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    assert_eq!(commit.attr("db.system.name"), Some(db));
    span_where(&collector, "a record batch", |s| {
        s.name == "delivery.record" && s.attr("hookrelay.records").is_some()
    })
    .await;

    // Inbound verification: a GitHub source, a request without a signature.
    let (status, _) = server
        .post(
            "/api/v1/sources",
            json!({"name": "gh-traced", "provider": "github", "secret": "a-long-enough-secret"}),
        )
        .await;
    assert_eq!(status, 201);
    let resp = server
        .client
        .post(format!("{}/ingest/gh-traced", server.base))
        .header("x-github-event", "push")
        .body(r#"{"ref": "refs/heads/main"}"#)
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status().as_u16(), 401);
    let verify = span_where(&collector, "the inbound verification span", |s| {
        s.name == "inbound.verify" && s.attr("hookrelay.source") == Some("gh-traced")
    })
    .await;
    assert_eq!(verify.attr("hookrelay.provider"), Some("github"));
    assert_eq!(verify.attr("hookrelay.outcome"), Some("invalid_signature"));
    let inbound = span_where(&collector, "the inbound request's span", |s| {
        s.span_id == verify.parent_span_id
    })
    .await;
    assert_eq!(inbound.name, "POST /ingest/{source_name}");
    assert_eq!(inbound.attr("http.response.status_code"), Some("401"));
    assert_eq!(
        inbound.status_code, STATUS_UNSET,
        "a 4xx is the caller's error, not ours"
    );

    // Every export was OTLP/HTTP protobuf at /v1/traces; probes are not traced.
    let posts = collector.posts();
    assert!(
        posts.iter().all(|p| p.path == "/v1/traces"
            && p.content_type == "application/x-protobuf"
            && p.decoded),
        "{posts:?}"
    );
    assert!(
        !collector
            .spans()
            .iter()
            .any(|s| s.attr("http.route") == Some("/health")),
        "health checks make no spans"
    );
}

/// With a batch delay far longer than the test, the spans still queued at SIGTERM are
/// exported before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_spans_are_exported_at_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Sqlite, dir.path()).await;
    let admin_key = generate_api_key();
    let collector = Collector::start().await;
    let settings = [
        ("HOOKRELAY_OTLP_ENDPOINT", collector.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000".to_owned()),
    ];
    let mut server = ServerProcess::start(
        "flushed",
        "all",
        &db_url,
        &admin_key,
        dir.path(),
        &env(&settings),
    )
    .await;
    let (status, _) = server
        .post(
            "/api/v1/events",
            json!({"type": "member.created", "data": {}}),
        )
        .await;
    assert_eq!(status, 202);
    assert!(
        collector.spans().is_empty(),
        "nothing is exported before the batch delay or shutdown"
    );
    let status = server.terminate(DEADLINE).await;
    assert!(status.success(), "clean exit: {status}");
    let emit = collector.find(|s| s.attr("http.route") == Some("/api/v1/events"));
    assert!(
        emit.is_some_and(|s| s.attr("http.response.status_code") == Some("202")),
        "the emit's span was exported at shutdown: {:?}",
        collector.spans()
    );
}

/// Nothing listens at the endpoint: emits and deliveries go on as ever, and the failure is
/// logged once, not once per export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_collector_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Sqlite, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    let settings = [
        (
            "HOOKRELAY_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", free_port()),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "20".to_owned()),
    ];
    let server = ServerProcess::start(
        "refused",
        "all",
        &db_url,
        &admin_key,
        dir.path(),
        &env(&settings),
    )
    .await;
    server.webhook(json!({"url": rx.url("/refused")})).await;
    let metrics_of = &server;
    let spans = move |result: &'static str| async move {
        let text = metrics_of.get_text("/metrics").await;
        let label = format!("result=\"{result}\"");
        prometheus_samples(&text, "hookrelay_otlp_spans_total")
            .1
            .iter()
            .filter(|(key, _)| key.contains(&label))
            .map(|(_, n)| n)
            .sum::<f64>()
    };
    // Several rounds, each waiting until an export has failed after its emit.
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let before = spans("failed").await;
        let (status, _) = server
            .post(
                "/api/v1/events",
                json!({"type": "member.created", "data": {"round": round}}),
            )
            .await;
        assert_eq!(status, 202);
        eventually(DEADLINE, "an export to fail", || async {
            (spans("failed").await > before).then_some(())
        })
        .await;
    }
    eventually(DEADLINE, "every delivery", || async {
        (rx.count() == ROUNDS).then_some(())
    })
    .await;
    assert_eq!(spans("exported").await, 0.0);
    let (status, health) = server.get("/health").await;
    assert_eq!(status, 200, "{health}");
    let log = server.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains("cannot export traces to HOOKRELAY_OTLP_ENDPOINT"))
        .count();
    assert_eq!(warnings, 1, "one warning, not one per export:\n{log}");
}

/// A collector that accepts and never answers: nothing waits on it, not the emits, not the
/// deliveries, and shutdown gives up on it after a few seconds. (Had the queue filled up, the
/// spans beyond it would have been dropped, and shutdown would not even have waited.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_collector_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Sqlite, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    let hanging = hanging_collector().await;
    let settings = [
        ("HOOKRELAY_OTLP_ENDPOINT", format!("http://{hanging}")),
        // The first export starts at once and hangs; the spans after it wait in the queue
        // (which has room for them all, so shutdown's own request gets in and is waited for).
        ("OTEL_BSP_SCHEDULE_DELAY", "20".to_owned()),
    ];
    let mut server = ServerProcess::start(
        "hanging",
        "all",
        &db_url,
        &admin_key,
        dir.path(),
        &env(&settings),
    )
    .await;
    server.webhook(json!({"url": rx.url("/hanging")})).await;
    const EVENTS: usize = 100;
    let started = Instant::now();
    let emits = (0..EVENTS).map(|i| {
        let server = &server;
        async move {
            server
                .post(
                    "/api/v1/events",
                    json!({"type": "member.created", "data": {"i": i}}),
                )
                .await
                .0
        }
    });
    let statuses = futures::future::join_all(emits).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    eventually(DEADLINE, "every delivery", || async {
        (rx.count() == EVENTS).then_some(())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "emits and deliveries did not wait for the collector ({:?})",
        started.elapsed()
    );
    let stopping = Instant::now();
    let status = server.terminate(DEADLINE).await;
    assert!(status.success(), "clean exit: {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(12),
        "shutdown gives up on a hanging collector ({:?})",
        stopping.elapsed()
    );
    assert!(
        server
            .log_text()
            .contains("exporting the last spans timed out"),
        "{}",
        server.log_tail(10)
    );
}
