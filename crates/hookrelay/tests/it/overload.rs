//! Load shedding on both stores: once `ingest_queue_max_events` accepted events wait to be
//! committed, further emits answer `503 unavailable` with `Retry-After` at once instead of
//! queueing, and every emit that was accepted is still stored and delivered exactly once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

both_backends!(overload_sheds_emits_and_loses_nothing_accepted);

async fn overload_sheds_emits_and_loses_nothing_accepted(backend: Backend) {
    // A bound of one event: any emit that arrives while another waits for its commit is shed.
    let server = TestServer::start_with(backend, |c| c.ingest_queue_max_events = 1).await;
    let rx = Receiver::start().await;
    server
        .webhook(json!({"url": rx.url("/load"), "events": ["load.*"]}))
        .await;
    let mut accepted = BTreeSet::new();
    let mut shed = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    while shed == 0 {
        assert!(
            Instant::now() < deadline,
            "64 concurrent emits never overlapped a commit"
        );
        round += 1;
        let emits = (0..64).map(|i| {
            let server = &server;
            async move {
                let r = server
                    .client
                    .post(format!("{}/api/v1/events", server.base))
                    .bearer_auth(&server.admin_key)
                    .json(&json!({"type": "load.tick", "data": {"round": round, "i": i}}))
                    .send()
                    .await
                    .expect("the server answers");
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body: Value = r.json().await.unwrap_or(Value::Null);
                (status, retry_after, body)
            }
        });
        for (status, retry_after, body) in futures::future::join_all(emits).await {
            match status {
                202 => {
                    accepted.insert(body["id"].as_str().unwrap().to_owned());
                }
                503 => {
                    shed += 1;
                    assert_eq!(body["error"]["code"], "unavailable", "{body}");
                    assert!(
                        body["error"]["message"]
                            .as_str()
                            .unwrap()
                            .contains("capacity"),
                        "{body}"
                    );
                    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
                    assert!(secs >= 1);
                }
                other => panic!("an emit answered {other}: {body}"),
            }
        }
    }
    assert!(!accepted.is_empty(), "some emits were accepted");

    // Every accepted event is stored and delivered once; nothing shed was stored.
    eventually(
        Duration::from_secs(30),
        "every accepted event delivered",
        || async { (rx.count() == accepted.len()).then_some(()) },
    )
    .await;
    let delivered: BTreeSet<String> = rx
        .requests()
        .iter()
        .map(|r| r.json()["eventId"].as_str().unwrap_or_default().to_owned())
        .collect();
    let (_, events) = server.get("/api/v1/events?type=load.tick&limit=1000").await;
    let stored: BTreeSet<String> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, accepted, "exactly the accepted events are stored");
    assert_eq!(delivered.len(), accepted.len(), "each delivered once");

    // With the burst over, an emit is accepted again.
    let (status, _) = server
        .post("/api/v1/events", json!({"type": "load.after", "data": {}}))
        .await;
    assert_eq!(status, 202);
    server.stop().await;
}
