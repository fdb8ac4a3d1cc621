//! Ordered delivery end to end: an `ordered` webhook gets its events one at a time, in the order
//! they were accepted, a retry holding back the rest, while an unordered one beside it does not.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

both_backends!(ordered_webhook_gets_events_in_order_behind_a_retry);

async fn ordered_webhook_gets_events_in_order_behind_a_retry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    // The first event's first attempt fails; it is retried a second later, and everything
    // after it must wait for it.
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
        retried_at - failed_at >= Duration::from_millis(900),
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
