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

/// The names a rules file or dashboard refers to: every `hookrelay_…` token in it.
fn referenced_metrics(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("hookrelay_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The shipped Prometheus rules and Grafana dashboard use only metrics `/metrics` exposes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_rules_and_dashboard_use_only_exposed_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Sqlite, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    let server = ServerProcess::start("shipped", "all", &db_url, &admin_key, dir.path(), &[]).await;
    // A scripted run: a webhook, emits, an inbound source accepting and refusing requests.
    server.webhook(json!({"url": rx.url("/ok")})).await;
    let (s, body) = server
        .post(
            "/api/v1/sources",
            json!({"name": "shipped-src", "provider": "none"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = server
        .post("/api/v1/events", json!({"type": "s.tick", "data": {}}))
        .await;
    assert_eq!(s, 202, "{body}");
    let ingest = |path: &str| {
        server
            .client
            .post(format!("{}{path}", server.base))
            .json(&json!({"hello": "world"}))
            .send()
    };
    assert_eq!(ingest("/ingest/shipped-src").await.unwrap().status(), 202);
    assert_eq!(ingest("/ingest/no-such-src").await.unwrap().status(), 404);
    let text = eventually(Duration::from_secs(20), "two deliveries", || async {
        let text = server.get_text("/metrics").await;
        (prometheus_samples(&text, "hookrelay_delivery_latency_seconds_count").0 >= 2.0)
            .then_some(text)
    })
    .await;
    let exposed: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/hookrelay.json",
    ] {
        let content = std::fs::read_to_string(format!("{root}/{file}")).expect(file);
        let used = referenced_metrics(&content);
        assert!(used.len() >= 5, "{file} uses hookrelay metrics: {used:?}");
        for name in &used {
            assert!(
                exposed.contains(name.as_str()),
                "{file} uses {name}, which /metrics does not expose:\n{text}"
            );
        }
    }
    // The dashboard is valid JSON with the panels the issue asks for.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/deploy/grafana/hookrelay.json")).unwrap(),
    )
    .expect("hookrelay.json is JSON");
    let titles: Vec<&str> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for wanted in [
        "Deliveries/s by outcome",
        "Success rate",
        "Emit → delivery latency",
        "Queue depth",
        "Oldest pending age",
        "Inbound accepted / rejected",
        "HTTP requests by route",
    ] {
        assert!(titles.contains(&wanted), "panel {wanted} in {titles:?}");
    }
}
