//! Rate limits held across nodes: two `hookrelay serve` processes on one PostgreSQL lease
//! their delivery slots from the database, so a webhook's `rate_limit_per_sec` and a tenant's
//! `delivery_rate_per_sec` hold for both together, not for each.

use std::time::{Duration, Instant};

use hookrelay::auth::keys::generate_api_key;
use reqwest::Method;
use serde_json::json;

use crate::support::process::{prometheus_samples, ServerProcess};
use crate::support::receiver::Receiver;
use crate::support::server::fresh_database_url;
use crate::support::*;

/// Deliveries the limit lets through in any one second, beyond the limit itself: a slot used a
/// little late may land next to the following one.
const TOLERANCE: usize = 2;

async fn two_nodes(dir: &std::path::Path) -> (ServerProcess, ServerProcess) {
    let db = fresh_database_url(Backend::Postgres, dir).await;
    let key = generate_api_key();
    let settings = [("HOOKRELAY_RETRY_SCHEDULE", "0,1,1")];
    let a = ServerProcess::start("a", "all", &db, &key, dir, &settings).await;
    let b = ServerProcess::start("b", "all", &db, &key, dir, &settings).await;
    (a, b)
}

/// Emits `n` events, alternating between the nodes.
async fn emit_on_both(nodes: [&ServerProcess; 2], n: usize) {
    for i in 0..n {
        let (s, v) = nodes[i % 2]
            .post(
                "/api/v1/events",
                json!({"type": "order.paid", "data": {"i": i}}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
    }
}

/// The most arrivals within any one second.
fn busiest_second(mut at: Vec<Instant>) -> usize {
    at.sort();
    (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| **t < at[i] + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Attempts a node made (its own `/metrics`).
async fn attempts_on(node: &ServerProcess) -> f64 {
    prometheus_samples(&node.get_text("/metrics").await, "hookrelay_attempts_total").0
}

/// Waits for `n` deliveries and checks that together they kept to `limit` a second, and that
/// both nodes took part (so the limit was shared, not held by one node alone).
async fn assert_paced(rx: &Receiver, n: usize, limit: usize, nodes: [&ServerProcess; 2]) {
    eventually(Duration::from_secs(60), "every delivery", || async {
        (rx.count() >= n).then_some(())
    })
    .await;
    let at: Vec<Instant> = rx.requests().iter().map(|r| r.at).collect();
    let span = at
        .iter()
        .max()
        .unwrap()
        .duration_since(*at.iter().min().unwrap());
    let busiest = busiest_second(at);
    let (a, b) = (attempts_on(nodes[0]).await, attempts_on(nodes[1]).await);
    eprintln!(
        "{n} deliveries at {limit}/s over two nodes: busiest second {busiest}, \
         spread over {span:?}; attempts by node a {a}, by node b {b}"
    );
    assert!(
        busiest <= limit + TOLERANCE,
        "{busiest} deliveries in one second against a limit of {limit}/s"
    );
    // n deliveries at `limit` a second take (n - limit) / limit seconds at the very least.
    let least = Duration::from_secs_f64((n - limit) as f64 / limit as f64);
    assert!(span >= least, "{n} deliveries in {span:?}");
    assert!(a > 0.0 && b > 0.0, "both nodes delivered: a {a}, b {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_hold_a_webhooks_rate_limit_together() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = two_nodes(dir.path()).await;
    let rx = Receiver::start().await;
    a.webhook(json!({"url": rx.url("/paced"), "rate_limit_per_sec": 10}))
        .await;
    emit_on_both([&a, &b], 60).await;
    assert_paced(&rx, 60, 10, [&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_hold_a_tenants_delivery_rate_together() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = two_nodes(dir.path()).await;
    let (_, tenants) = a.get("/api/v1/tenants").await;
    let tenant = tenants["data"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "default"))
        .and_then(|t| t["id"].as_str())
        .expect("the default tenant")
        .to_owned();
    let (s, t) = a
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{tenant}"),
            Some(json!({"quotas": {"delivery_rate_per_sec": 10}})),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let rx = Receiver::start().await;
    // Two webhooks with no rate of their own: the tenant's rate covers both, on both nodes.
    for path in ["/one", "/two"] {
        a.webhook(json!({"url": rx.url(path)})).await;
    }
    // Workers read the tenant's quotas with each claim, so both nodes apply it at once.
    emit_on_both([&a, &b], 30).await;
    assert_paced(&rx, 60, 10, [&a, &b]).await;
}

/// A source's `rate_limit_per_min` counts the requests that reach either node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_hold_a_sources_rate_limit_together() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = two_nodes(dir.path()).await;
    let (s, src) = a
        .post(
            "/api/v1/sources",
            json!({"name": "ci", "provider": "none", "rate_limit_per_min": 10}),
        )
        .await;
    assert_eq!(s, 201, "{src}");
    let mut answers = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        let r = node
            .client
            .post(format!("{}/ingest/ci", node.base))
            .header("content-type", "application/json")
            .body(format!("{{\"n\": {i}}}"))
            .send()
            .await
            .expect("ingest request");
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        answers.push((node.name.clone(), r.status().as_u16(), retry_after));
    }
    let accepted: Vec<_> = answers.iter().filter(|(_, s, _)| *s == 202).collect();
    eprintln!("20 requests to a 10/min source over two nodes: {answers:?}");
    // The burst is the limit, shared: ten in all, not ten a node.
    assert_eq!(accepted.len(), 10, "{answers:?}");
    assert!(
        accepted.iter().any(|(n, _, _)| n == "a") && accepted.iter().any(|(n, _, _)| n == "b"),
        "{answers:?}"
    );
    for (node, status, retry_after) in &answers {
        if *status != 202 {
            assert_eq!(*status, 429, "{node}: {answers:?}");
            // 10/min is one request every 6 s.
            assert!(
                retry_after.is_some_and(|s| (1..=6).contains(&s)),
                "{node}: {answers:?}"
            );
        }
    }
}
