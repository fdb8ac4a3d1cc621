//! `GET /metrics` on the real binary (one process, so the counts are exact): the contract's
//! metrics move as events are ingested and delivered, retried and handed off.

use std::time::Duration;

use hookrelay::auth::keys::generate_api_key;
use serde_json::json;

use crate::support::process::{prometheus_samples, ServerProcess};
use crate::support::server::fresh_database_url;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_delivery_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Sqlite, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    rx.script([Reply::status(503)]);
    let server = ServerProcess::start("metrics", "all", &db_url, &admin_key, dir.path(), &[]).await;
    server
        .webhook(json!({"url": rx.url("/m"), "retry_schedule_seconds": [0]}))
        .await;
    for i in 0..3 {
        let (s, body) = server
            .post(
                "/api/v1/events",
                json!({"type": "m.tick", "data": {"i": i}}),
            )
            .await;
        assert_eq!(s, 202, "{body}");
    }
    let metric = |text: &str, name: &str| prometheus_samples(text, name).0;
    let text = eventually(Duration::from_secs(20), "three deliveries", || async {
        let text = server.get_text("/metrics").await;
        (metric(&text, "hookrelay_delivery_latency_seconds_count") >= 3.0).then_some(text)
    })
    .await;
    let sample = |name: &str, labels: &str| {
        prometheus_samples(&text, name)
            .1
            .into_iter()
            .find(|(key, _)| key.contains(labels))
            .map_or(0.0, |(_, v)| v)
    };
    assert_eq!(metric(&text, "hookrelay_events_ingested_total"), 3.0);
    assert_eq!(metric(&text, "hookrelay_deliveries_handed_off_total"), 3.0);
    assert_eq!(
        sample("hookrelay_attempts_total", "outcome=\"success\""),
        3.0
    );
    assert_eq!(sample("hookrelay_attempts_total", "outcome=\"retry\""), 1.0);
    assert_eq!(metric(&text, "hookrelay_retries_total"), 1.0);
    assert_eq!(
        sample("hookrelay_deliveries_total", "status=\"succeeded\""),
        3.0
    );
    assert_eq!(
        metric(&text, "hookrelay_attempt_duration_seconds_count"),
        4.0
    );
    assert_eq!(
        metric(&text, "hookrelay_delivery_latency_seconds_count"),
        3.0
    );
    // The latency histogram reaches past the attempt buckets, to the retry schedule's days.
    assert!(
        text.contains("hookrelay_delivery_latency_seconds_bucket{le=\"172800\"}"),
        "{text}"
    );
    assert_eq!(
        sample(
            "hookrelay_http_requests_total",
            "route=\"/api/v1/events\",status=\"202\""
        ),
        3.0,
        "{text}"
    );
    for gauge in [
        "hookrelay_queue_depth",
        "hookrelay_oldest_pending_age_seconds",
    ] {
        assert!(text.contains(gauge), "missing {gauge}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_server_exposes_every_delivery_series_at_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Sqlite, dir.path()).await;
    let admin_key = generate_api_key();
    let server = ServerProcess::start("fresh", "all", &db_url, &admin_key, dir.path(), &[]).await;
    let text = server.get_text("/metrics").await;
    for (name, labels) in [
        ("hookrelay_deliveries_total", "status=\"succeeded\""),
        ("hookrelay_deliveries_total", "status=\"failed\""),
        ("hookrelay_attempts_total", "outcome=\"success\""),
        ("hookrelay_attempts_total", "outcome=\"retry\""),
        ("hookrelay_attempts_total", "outcome=\"failed\""),
        ("hookrelay_retries_total", ""),
        ("hookrelay_events_ingested_total", ""),
        ("hookrelay_deliveries_handed_off_total", ""),
        ("hookrelay_store_errors_total", "op=\"claim\""),
        ("hookrelay_store_errors_total", "op=\"record\""),
        ("hookrelay_store_errors_total", "op=\"api\""),
        ("hookrelay_attempt_duration_seconds_count", ""),
        ("hookrelay_delivery_latency_seconds_count", ""),
        ("hookrelay_queue_depth", ""),
        ("hookrelay_oldest_pending_age_seconds", ""),
        ("hookrelay_dlq_size", ""),
        ("hookrelay_circuit_open", ""),
    ] {
        let samples = prometheus_samples(&text, name).1;
        let found = samples.iter().find(|(key, _)| key.contains(labels));
        assert_eq!(
            found.map(|(_, v)| *v),
            Some(0.0),
            "{name}{{{labels}}} at 0 on the first scrape:\n{text}"
        );
    }
    // Histograms come with their (empty) buckets, so `histogram_quantile` works from the start.
    assert!(
        text.contains("hookrelay_delivery_latency_seconds_bucket{le=\"172800\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("hookrelay_attempt_duration_seconds_bucket{le=\"0.005\"} 0"),
        "{text}"
    );
}
