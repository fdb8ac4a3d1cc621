//! Ordered delivery end to end: an `ordered` webhook gets its events one at a time, in the order
//! they were accepted, a retry holding back the rest — on both stores, and with two nodes
//! sharing one PostgreSQL — while an unordered one goes back to parallel delivery.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;

use crate::support::process::ServerProcess;
use crate::support::server::fresh_database_url;
use crate::support::*;

both_backends!(
    ordered_webhook_gets_events_in_order_behind_a_retry,
    ordered_events_go_one_at_a_time_behind_an_event_failing_twice
);

mod postgres_nodes {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_keep_an_ordered_webhooks_order() {
        super::two_nodes_keep_an_ordered_webhooks_order().await
    }
}

/// A receiver noting each request's `data.seq` in arrival order and the most requests it ever
/// had open at once; it fails `fail_seq` the first `fail_times` times, and answers slowly
/// enough (20 ms) that two requests sent together would overlap.
#[derive(Clone)]
struct SequenceReceiver {
    url: String,
    seen: Arc<Mutex<Vec<u64>>>,
    most_in_flight: Arc<AtomicUsize>,
}

async fn sequence_receiver(fail_seq: u64, fail_times: usize) -> SequenceReceiver {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let most_in_flight = Arc::new(AtomicUsize::new(0));
    let (in_flight, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (s, m) = (seen.clone(), most_in_flight.clone());
    let addr = serve_http(move |req: hyper::Request<hyper::body::Incoming>| {
        let (seen, most, in_flight, failures) =
            (s.clone(), m.clone(), in_flight.clone(), failures.clone());
        async move {
            let now_open = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now_open, Ordering::SeqCst);
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let seq = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["data"]["seq"].as_u64())
                .unwrap_or(u64::MAX);
            seen.lock().unwrap().push(seq);
            tokio::time::sleep(Duration::from_millis(20)).await;
            let fail = seq == fail_seq && failures.fetch_add(1, Ordering::SeqCst) < fail_times;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            hyper::Response::builder()
                .status(if fail { 500 } else { 200 })
                .body(Full::new(Bytes::from_static(b"ok")))
                .unwrap()
        }
    })
    .await;
    SequenceReceiver {
        url: format!("http://{addr}/ordered"),
        seen,
        most_in_flight,
    }
}

impl SequenceReceiver {
    /// Waits for `n` events, the failing one attempted `fail_times` extra times, and checks that
    /// they came strictly in order and never two at once.
    async fn assert_in_order(&self, n: u64, fail_seq: u64, fail_times: usize) {
        let mut expected: Vec<u64> = (0..n).collect();
        let at = fail_seq as usize;
        expected.splice(at..at, std::iter::repeat_n(fail_seq, fail_times));
        let seen = eventually(Duration::from_secs(60), "every event delivered", || async {
            let seen = self.seen.lock().unwrap().clone();
            (seen.len() >= expected.len()).then_some(seen)
        })
        .await;
        assert_eq!(
            seen, expected,
            "in order, the failed event retried before any later one"
        );
        assert_eq!(
            self.most_in_flight.load(Ordering::SeqCst),
            1,
            "never two in flight"
        );
    }
}

/// The contract's case: the 3rd event fails twice, and the receiver still sees every event
/// strictly in order, one at a time.
async fn ordered_events_go_one_at_a_time_behind_an_event_failing_twice(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = sequence_receiver(2, 2).await;
    server
        .webhook(json!({"url": rx.url, "ordered": true, "retry_schedule_seconds": [0, 1, 1]}))
        .await;
    let events: Vec<_> = (0..12)
        .map(|seq| json!({"type": "order.step", "data": {"seq": seq}}))
        .collect();
    let (s, v) = server
        .post("/api/v1/events/batch", json!({"events": events}))
        .await;
    assert_eq!(s, 202, "{v}");
    rx.assert_in_order(12, 2, 2).await;
}

/// Two nodes claiming from one PostgreSQL, events accepted by either: still one at a time, in
/// the order they were accepted.
async fn two_nodes_keep_an_ordered_webhooks_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = fresh_database_url(Backend::Postgres, dir.path()).await;
    let key = hookrelay::auth::keys::generate_api_key();
    let a = ServerProcess::start("a", "all", &db, &key, dir.path(), &[]).await;
    let b = ServerProcess::start("b", "all", &db, &key, dir.path(), &[]).await;
    let rx = sequence_receiver(2, 2).await;
    a.webhook(json!({"url": rx.url, "ordered": true, "retry_schedule_seconds": [0, 1, 1]}))
        .await;
    for seq in 0..20 {
        let node = if seq % 2 == 0 { &a } else { &b };
        let (s, v) = node
            .post(
                "/api/v1/events",
                json!({"type": "order.step", "data": {"seq": seq}}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
    }
    rx.assert_in_order(20, 2, 2).await;
}

async fn ordered_webhook_gets_events_in_order_behind_a_retry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    // The first event's first attempt fails; it is retried about a second later (the schedule
    // has jitter), and everything after it must wait for it.
    rx.script([Reply::status(500)]);
    let hook = server
        .webhook(json!({"url": rx.url("/ordered"), "ordered": true, "retry_schedule_seconds": [1, 1, 1]}))
        .await;
    assert_eq!(hook["ordered"], true, "{hook}");
    for seq in 0..6 {
        server
            .emit(json!({"type": "order.step", "data": {"seq": seq}}))
            .await;
    }
    let seqs = eventually(
        Duration::from_secs(30),
        "all six delivered in order",
        || async {
            let seqs: Vec<u64> = rx
                .requests()
                .iter()
                .filter(|r| r.path == "/ordered")
                .filter_map(|r| r.json()["data"]["seq"].as_u64())
                .collect();
            (seqs.len() >= 7).then_some(seqs)
        },
    )
    .await;
    assert_eq!(
        seqs,
        vec![0, 0, 1, 2, 3, 4, 5],
        "the failed first event is retried before any later one is sent"
    );
    let requests = rx.requests();
    let (failed_at, retried_at) = (requests[0].at, requests[1].at);
    assert!(
        retried_at - failed_at >= Duration::from_millis(500),
        "the retry waited its schedule ({:?}) and nothing went meanwhile",
        retried_at - failed_at
    );

    // Turned off, the webhook goes back to parallel delivery.
    let id = hook["id"].as_str().expect("id");
    let (status, v) = server
        .patch(&format!("/api/v1/webhooks/{id}"), json!({"ordered": false}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ordered"], false, "{v}");
    let (_, v) = server.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(v["ordered"], false, "{v}");
}
