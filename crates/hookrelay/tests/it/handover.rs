//! Graceful handover with the real binary: SIGTERM lets in-flight attempts finish and records
//! them (exit 0, nothing attempted again), and when the grace runs out the attempts still
//! running are cut off and their deliveries released, so another node takes them at once
//! instead of after the lease.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookrelay::auth::keys::generate_api_key;
use serde_json::json;

use crate::support::process::ServerProcess;
use crate::support::server::fresh_database_url;
use crate::support::*;

both_backends!(sigterm_finishes_and_records_in_flight_attempts);

mod postgres_nodes {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grace_over_releases_cut_off_deliveries_to_another_node() {
        super::grace_over_releases_cut_off_deliveries_to_another_node().await
    }
}

/// A long lease (30 s timeout + 30 s grace): a delivery another node gets within a few seconds
/// was released, not expired.
const SETTINGS: &[(&str, &str)] = &[
    ("HOOKRELAY_DELIVERY_TIMEOUT_MS", "30000"),
    ("HOOKRELAY_LEASE_GRACE_MS", "30000"),
    ("HOOKRELAY_RETRY_SCHEDULE", "0,1,1,1"),
    ("HOOKRELAY_WORKER_CONCURRENCY", "4"),
    ("HOOKRELAY_CLAIM_BATCH", "4"),
];

async fn emit(node: &ServerProcess, seq: usize) -> String {
    let (status, v) = node
        .post(
            "/api/v1/events",
            json!({"type": "handover.test", "data": {"seq": seq}}),
        )
        .await;
    assert_eq!(status, 202, "emit: {v}");
    v["id"].as_str().expect("event id").to_owned()
}

/// The one delivery of `event` as the API shows it.
async fn delivery_of(node: &ServerProcess, event: &str) -> serde_json::Value {
    let (status, v) = node.get(&format!("/api/v1/events/{event}")).await;
    assert_eq!(status, 200, "event {event}: {v}");
    let deliveries = v["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 1, "event {event}: {v}");
    deliveries[0].clone()
}

/// Requests the receiver got, per event id.
fn requests_per_event(rx: &Receiver) -> HashMap<String, Vec<Instant>> {
    let mut per_event: HashMap<String, Vec<Instant>> = HashMap::new();
    for r in rx.requests() {
        if let Some(id) = r.json()["eventId"].as_str() {
            per_event.entry(id.to_owned()).or_default().push(r.at);
        }
    }
    per_event
}

async fn sigterm_finishes_and_records_in_flight_attempts(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(backend, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    // Slow enough that the signal lands while every attempt is in flight, well inside the grace.
    rx.set_default(Reply::status(200).delay(Duration::from_millis(800)));
    let settings = [SETTINGS, &[("HOOKRELAY_SHUTDOWN_GRACE", "20s")]].concat();

    let mut node =
        ServerProcess::start("node", "all", &db_url, &admin_key, dir.path(), &settings).await;
    node.webhook(json!({"url": rx.url("/handover")})).await;
    let mut events = Vec::new();
    for seq in 0..4 {
        events.push(emit(&node, seq).await);
    }
    eventually(
        Duration::from_secs(20),
        "all four attempts in flight",
        || async { (rx.count() >= 4).then_some(()) },
    )
    .await;

    let signalled = Instant::now();
    let status = node.terminate(Duration::from_secs(15)).await;
    let took = signalled.elapsed();
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
    let log = node.log_text();
    assert!(
        !log.contains("cutting off"),
        "attempts well inside the grace were cut off; log:\n{log}"
    );
    eprintln!("handover/{backend:?}: exited 0 {took:?} after SIGTERM with 4 attempts in flight");

    // Restarted on the same store: the four attempts were recorded before the exit, so every
    // delivery is already `succeeded` after exactly one attempt, and none is sent again.
    let restarted = ServerProcess::start(
        "restarted",
        "all",
        &db_url,
        &admin_key,
        dir.path(),
        &settings,
    )
    .await;
    for event in &events {
        let d = delivery_of(&restarted, event).await;
        assert_eq!(d["status"], "succeeded", "event {event}: {d}");
        assert_eq!(d["attempts"], 1, "event {event}: {d}");
    }
    for (event, seen) in requests_per_event(&rx) {
        assert_eq!(
            seen.len(),
            1,
            "event {event} was delivered {} times",
            seen.len()
        );
    }
}

async fn grace_over_releases_cut_off_deliveries_to_another_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Postgres, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    // The first four requests hang far past the grace; every later one is answered at once.
    rx.script((0..4).map(|_| Reply::status(200).delay(Duration::from_secs(120))));
    let settings = [SETTINGS, &[("HOOKRELAY_SHUTDOWN_GRACE", "2s")]].concat();

    let mut first =
        ServerProcess::start("first", "all", &db_url, &admin_key, dir.path(), &settings).await;
    first.webhook(json!({"url": rx.url("/handover")})).await;
    let mut hung = Vec::new();
    for seq in 0..4 {
        hung.push(emit(&first, seq).await);
    }
    eventually(
        Duration::from_secs(20),
        "four attempts hanging at the first node",
        || async { (rx.count() >= 4).then_some(()) },
    )
    .await;
    let second =
        ServerProcess::start("second", "all", &db_url, &admin_key, dir.path(), &settings).await;

    let signalled = Instant::now();
    let status = first.terminate(Duration::from_secs(15)).await;
    let exited = Instant::now();
    let took = exited - signalled;
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
    assert!(
        took >= Duration::from_millis(1500),
        "the node exited after {took:?}, before its 2 s grace, with attempts still running"
    );
    assert!(
        took < Duration::from_secs(8),
        "the node took {took:?} to exit with a 2 s grace"
    );
    assert!(
        first.log_text().contains("cutting off"),
        "the log does not say attempts were cut off"
    );

    // The cut-off deliveries come back from the second node within seconds (their leases would
    // have lasted a minute), each only after the first node's grace was over: never two at once.
    let back = eventually(
        Duration::from_secs(20),
        "the cut-off deliveries at the second node",
        || async {
            let per_event = requests_per_event(&rx);
            hung.iter()
                .all(|e| per_event.get(e).is_some_and(|seen| seen.len() >= 2))
                .then_some(per_event)
        },
    )
    .await;
    for event in &hung {
        let seen = &back[event];
        assert!(
            seen[1..]
                .iter()
                .all(|at| *at >= signalled + Duration::from_millis(1900)),
            "event {event} was attempted again before the first node's grace was over"
        );
        let d = eventually(
            Duration::from_secs(10),
            "the delivery succeeded",
            || async {
                let d = delivery_of(&second, event).await;
                (d["status"] == "succeeded").then_some(d)
            },
        )
        .await;
        assert_eq!(d["attempts"], 1, "the cut-off attempt is not recorded: {d}");
    }
    eprintln!(
        "handover: first node exited {took:?} after SIGTERM (grace 2 s); the 4 cut-off deliveries \
         were delivered by the second node {:?} after the exit",
        hung.iter()
            .map(|e| back[e][1] - exited)
            .max()
            .unwrap_or_default()
    );
}
