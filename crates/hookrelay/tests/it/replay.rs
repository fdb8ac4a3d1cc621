//! Replay end to end, on both stores: an event to the matching or the chosen webhooks, a
//! webhook's missed events of a window, the errors, and the delivery list's search filters.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::*;

both_backends!(
    replay_an_event,
    replay_a_webhook_window,
    delivery_search_filters
);

const WAIT: Duration = Duration::from_secs(20);

async fn replay_an_event(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let orders = server
        .webhook(json!({"url": rx.url("/orders"), "events": ["order.*"]}))
        .await;
    let members = server
        .webhook(json!({"url": rx.url("/members"), "events": ["member.*"]}))
        .await;
    let ev = server
        .emit(json!({"type": "order.paid", "data": {"n": 1}}))
        .await;
    let event_id = ev["id"].as_str().unwrap();
    eventually(WAIT, "the first delivery", || async {
        (rx.count() == 1).then_some(())
    })
    .await;

    // No body: to every webhook that matches now, as a new delivery.
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v1/events/{event_id}/replay"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["deliveries"], 1);
    let replayed = body["delivery_ids"][0].as_str().unwrap().to_owned();
    let got = eventually(WAIT, "the replayed delivery", || async {
        rx.requests().into_iter().nth(1)
    })
    .await;
    assert_eq!(got.path, "/orders");
    assert_eq!(got.header("webhook-id"), replayed);
    assert_eq!(got.json()["eventId"], event_id);
    server
        .delivery_with_status(&replayed, "succeeded", WAIT)
        .await;

    // Chosen webhooks get it whatever their filters.
    let (status, body) = server
        .post(
            &format!("/api/v1/events/{event_id}/replay"),
            json!({"webhook_ids": [members["id"]]}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["deliveries"], 1);
    eventually(WAIT, "the delivery to the chosen webhook", || async {
        rx.requests().into_iter().find(|r| r.path == "/members")
    })
    .await;
    assert_eq!(server.delivery_ids(event_id).await.len(), 3);

    // Errors: a bad or foreign webhook id names its entry; an unknown event is 404.
    let (status, body) = server
        .post(
            &format!("/api/v1/events/{event_id}/replay"),
            json!({"webhook_ids": [orders["id"], "nope", "wh_01J00000000000000000000000"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<_> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["webhook_ids[1]", "webhook_ids[2]"]);
    let (status, _) = server
        .post(
            "/api/v1/events/evt_01J00000000000000000000000/replay",
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = server
        .post(
            &format!("/api/v1/events/{event_id}/replay"),
            json!({"webhooks": []}),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // A viewer may not replay.
    let (_, key) = server
        .post("/api/v1/keys", json!({"name": "ro", "role": "viewer"}))
        .await;
    let (status, _) = server
        .call_as(
            key["key"].as_str().unwrap(),
            Method::POST,
            &format!("/api/v1/events/{event_id}/replay"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 403);
    server.stop().await;
}

async fn replay_a_webhook_window(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let mut events = Vec::new();
    for i in 0..3 {
        let ev = server
            .emit(json!({"type": "order.paid", "data": {"i": i}}))
            .await;
        assert_eq!(ev["deliveries"], 0, "no webhook yet");
        events.push(ev["id"].as_str().unwrap().to_owned());
    }
    server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let hook = server
        .webhook(json!({"url": rx.url("/late"), "events": ["order.*"]}))
        .await;
    let id = hook["id"].as_str().unwrap();
    let path = format!("/api/v1/webhooks/{id}/replay");
    let (status, body) = server
        .post(&path, json!({"since": since.to_rfc3339()}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["queued"], 3);
    eventually(WAIT, "the missed events", || async {
        (rx.count() == 3).then_some(())
    })
    .await;
    let mut got: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| r.json()["eventId"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, events);
    // Nothing is missing now; `failed` finds nothing either; `all` sends them again.
    let (_, body) = server
        .post(
            &path,
            json!({"since": since.to_rfc3339(), "mode": "missing"}),
        )
        .await;
    assert_eq!(body["queued"], 0);
    let (_, body) = server
        .post(
            &path,
            json!({"since": since.to_rfc3339(), "mode": "failed"}),
        )
        .await;
    assert_eq!(body["queued"], 0);
    let (_, body) = server
        .post(&path, json!({"since": since.to_rfc3339(), "until": chrono::Utc::now().to_rfc3339(), "mode": "all"}))
        .await;
    assert_eq!(body["queued"], 3);

    for (bad, field) in [
        (json!({}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": since.to_rfc3339(), "mode": "some"}), "mode"),
        (
            json!({"since": since.to_rfc3339(), "until": (since - chrono::Duration::seconds(1)).to_rfc3339()}),
            "until",
        ),
    ] {
        let (status, body) = server.post(&path, bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["details"][0]["field"], field, "{bad}: {body}");
    }
    let (status, _) = server
        .post(
            "/api/v1/webhooks/wh_01J00000000000000000000000/replay",
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

async fn delivery_search_filters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    server
        .webhook(json!({"url": rx.url("/a"), "events": ["*"]}))
        .await;
    server
        .webhook(json!({"url": rx.url("/b"), "events": ["a.*"]}))
        .await;
    let a = server.emit(json!({"type": "a.one", "data": {}})).await;
    let between = chrono::Utc::now();
    eventually(WAIT, "a moment after the first event", || async {
        (chrono::Utc::now() > between + chrono::Duration::milliseconds(5)).then_some(())
    })
    .await;
    let b = server.emit(json!({"type": "b.one", "data": {}})).await;
    let list = |q: String| {
        let server = &server;
        async move {
            let (status, body) = server.get(&format!("/api/v1/deliveries?{q}")).await;
            assert_eq!(status, 200, "{q}: {body}");
            body["data"].as_array().unwrap().len()
        }
    };
    assert_eq!(
        list(format!("event_id={}", a["id"].as_str().unwrap())).await,
        2
    );
    assert_eq!(
        list(format!("event_id={}", b["id"].as_str().unwrap())).await,
        1
    );
    let b_delivery = server
        .delivery_ids(b["id"].as_str().unwrap())
        .await
        .remove(0);
    assert_eq!(list(format!("delivery_id={b_delivery}")).await, 1);
    let until = urlencode(&between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    assert_eq!(list(format!("until={until}")).await, 2);
    assert_eq!(list(format!("since={until}")).await, 1);
    for (q, field) in [
        ("event_id=dlv_x", "event_id"),
        ("delivery_id=evt_x", "delivery_id"),
        ("until=soon", "until"),
    ] {
        let (status, body) = server.get(&format!("/api/v1/deliveries?{q}")).await;
        assert_eq!(status, 422, "{q}: {body}");
        assert_eq!(body["error"]["details"][0]["field"], field);
    }
    server.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
