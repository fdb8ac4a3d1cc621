//! Endpoint health end to end, on both stores with real local receivers: `410` disables with
//! `gone` and re-enabling releases what waited; the circuit opens, holds, probes and closes;
//! a webhook failing for the whole auto-disable period is disabled as `failing`; the operational
//! events about all this reach `hookrelay.*` subscribers once each, and nobody else.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

both_backends!(
    gone_disables_holds_and_reenabling_releases,
    circuit_opens_holds_and_a_probe_closes_it,
    failing_for_the_whole_period_disables,
    operational_events_reach_explicit_subscribers_once,
    backlog_crossing_twice_fires_twice,
    failure_rate_over_the_window_tells_failing_once,
);

const WAIT: Duration = Duration::from_secs(20);

async fn webhook_state(server: &TestServer, id: &str) -> serde_json::Value {
    let (status, w) = server.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(status, 200, "{w}");
    w
}

async fn gone_disables_holds_and_reenabling_releases(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(410));
    let hook = server
        .webhook(json!({"url": rx.url("/gone"), "retry_schedule_seconds": [0, 0, 0]}))
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    assert_eq!(hook["circuit"]["state"], "closed");
    assert_eq!(hook["disabled_reason"], serde_json::Value::Null);

    server.emit(json!({"type": "a.first", "data": {}})).await;
    let w = eventually(WAIT, "disabled as gone", || async {
        let w = webhook_state(&server, &id).await;
        (w["active"] == false).then_some(w)
    })
    .await;
    assert_eq!(w["disabled_reason"], "gone");
    assert!(w["disabled_at"].is_string(), "{w}");
    assert_eq!(
        rx.count(),
        1,
        "disabled at the first 410: no retry was sent"
    );

    // Held while disabled: created, pending, unattempted.
    let later = server.emit(json!({"type": "a.second", "data": {}})).await;
    assert_eq!(later["deliveries"], 1);
    let held = server
        .delivery_ids(later["id"].as_str().unwrap())
        .await
        .remove(0);
    let (_, d) = server.get(&format!("/api/v1/deliveries/{held}")).await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"].as_array().map(Vec::len), Some(0), "{d}");

    // Re-enabling clears the reason and releases them.
    rx.set_default(Reply::status(200));
    let (status, w) = server
        .patch(&format!("/api/v1/webhooks/{id}"), json!({"active": true}))
        .await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["active"], true);
    assert_eq!(w["disabled_reason"], serde_json::Value::Null);
    assert_eq!(w["disabled_at"], serde_json::Value::Null);
    server.delivery_with_status(&held, "succeeded", WAIT).await;
    assert_eq!(
        webhook_state(&server, &id).await["disabled_reason"],
        serde_json::Value::Null
    );
}

async fn circuit_opens_holds_and_a_probe_closes_it(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.health.circuit_failures = 3;
        c.health.first_cooldown = Duration::from_millis(1500);
    })
    .await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let hook = server
        .webhook(json!({"url": rx.url("/flaky"), "retry_schedule_seconds": [0, 0, 0, 0, 0, 0]}))
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let first = server.emit(json!({"type": "c.one", "data": {}})).await;
    let first = server
        .delivery_ids(first["id"].as_str().unwrap())
        .await
        .remove(0);

    let w = eventually(WAIT, "the circuit to open", || async {
        let w = webhook_state(&server, &id).await;
        (w["circuit"]["state"] == "open").then_some(w)
    })
    .await;
    assert_eq!(w["circuit"]["consecutive_failures"], 3, "{w}");
    assert!(w["circuit"]["open_until"].is_string(), "{w}");
    assert_eq!(w["active"], true, "open is not disabled");
    assert_eq!(rx.count(), 3);

    // While open: new deliveries wait pending, and the receiver sees nothing.
    let more = server.emit(json!({"type": "c.two", "data": {}})).await;
    let second = server
        .delivery_ids(more["id"].as_str().unwrap())
        .await
        .remove(0);
    rx.set_default(Reply::status(200));
    let open_until =
        chrono::DateTime::parse_from_rfc3339(w["circuit"]["open_until"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
    while chrono::Utc::now() + chrono::Duration::milliseconds(100) < open_until {
        assert_eq!(rx.count(), 3, "no request during the cooldown");
        let (_, d) = server.get(&format!("/api/v1/deliveries/{second}")).await;
        assert_eq!(d["status"], "pending");
        assert_eq!(
            d["attempts"].as_array().map(Vec::len),
            Some(0),
            "no retry spent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Then one probe; its success closes the circuit and the rest go.
    let d = server.delivery_with_status(&first, "succeeded", WAIT).await;
    assert_eq!(d["attempts"].as_array().map(Vec::len), Some(4), "{d}");
    server
        .delivery_with_status(&second, "succeeded", WAIT)
        .await;
    let w = webhook_state(&server, &id).await;
    assert_eq!(w["circuit"]["state"], "closed", "{w}");
    assert_eq!(w["circuit"]["consecutive_failures"], 0);
    assert_eq!(rx.count(), 5);
}

async fn failing_for_the_whole_period_disables(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.health.circuit_failures = 1000;
        c.health.auto_disable_after = Duration::from_secs(2);
    })
    .await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(503));
    // Twenty quick attempts, then one a second: past the period with more than 20 attempts.
    let mut schedule = vec![0u32; 20];
    schedule.extend([1u32; 20]);
    let hook = server
        .webhook(json!({"url": rx.url("/down"), "retry_schedule_seconds": schedule}))
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let ev = server.emit(json!({"type": "f.one", "data": {}})).await;
    let delivery = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    let w = eventually(WAIT, "disabled as failing", || async {
        let w = webhook_state(&server, &id).await;
        (w["active"] == false).then_some(w)
    })
    .await;
    assert_eq!(w["disabled_reason"], "failing", "{w}");
    assert!(rx.count() >= 20, "at least 20 attempts: {}", rx.count());
    // Held, never dropped.
    let (_, d) = server.get(&format!("/api/v1/deliveries/{delivery}")).await;
    assert_eq!(d["status"], "pending", "{d}");
}

/// The event types a receiver got, in order.
fn types_seen(rx: &Receiver) -> Vec<String> {
    rx.requests()
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn operational_events_reach_explicit_subscribers_once(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.health.circuit_failures = 2;
        c.health.first_cooldown = Duration::from_millis(1000);
    })
    .await;
    let (bad, ops, all) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    bad.set_default(Reply::status(500));
    let hook = server
        .webhook(
            json!({"url": bad.url("/bad"), "events": ["x.*"], "retry_schedule_seconds": [0, 0]}),
        )
        .await;
    let bad_id = hook["id"].as_str().unwrap().to_owned();
    server
        .webhook(json!({"url": ops.url("/ops"), "events": ["hookrelay.*"]}))
        .await;
    server
        .webhook(json!({"url": all.url("/all"), "events": ["*"]}))
        .await;
    let count = |rx: &Receiver, t: &str| types_seen(rx).iter().filter(|s| *s == t).count();

    // Two failures open the circuit (failing); the probe is the third and last attempt: the
    // delivery is exhausted (and the re-open tells nothing new).
    server.emit(json!({"type": "x.one", "data": {}})).await;
    eventually(WAIT, "failing and exhausted at the subscriber", || async {
        (count(&ops, "hookrelay.webhook.failing") == 1
            && count(&ops, "hookrelay.delivery.exhausted") == 1)
            .then_some(())
    })
    .await;
    let exhausted = ops
        .requests()
        .into_iter()
        .find(|r| r.json()["event"] == "hookrelay.delivery.exhausted")
        .unwrap()
        .json();
    assert_eq!(exhausted["data"]["webhook_id"], bad_id.as_str());
    assert_eq!(exhausted["data"]["event_type"], "x.one");
    assert_eq!(exhausted["data"]["attempts"], 3);
    let failing = ops
        .requests()
        .into_iter()
        .find(|r| r.json()["event"] == "hookrelay.webhook.failing")
        .unwrap()
        .json();
    assert_eq!(failing["data"]["url"], bad.url("/bad"));
    assert_eq!(failing["data"]["attempts"], 2);

    // The receiver comes back: the next probe succeeds (recovered).
    bad.set_default(Reply::status(200));
    server.emit(json!({"type": "x.two", "data": {}})).await;
    eventually(WAIT, "recovered at the subscriber", || async {
        (count(&ops, "hookrelay.webhook.recovered") == 1).then_some(())
    })
    .await;

    // Then it says 410: disabled.
    bad.set_default(Reply::status(410));
    server.emit(json!({"type": "x.three", "data": {}})).await;
    eventually(WAIT, "disabled at the subscriber", || async {
        (count(&ops, "hookrelay.webhook.disabled") == 1).then_some(())
    })
    .await;
    let disabled = ops
        .requests()
        .into_iter()
        .find(|r| r.json()["event"] == "hookrelay.webhook.disabled")
        .unwrap()
        .json();
    assert_eq!(disabled["data"]["reason"], "gone");

    // Exactly once each in the event log; never to `*` nor to the webhook concerned.
    for t in [
        "hookrelay.webhook.failing",
        "hookrelay.delivery.exhausted",
        "hookrelay.webhook.recovered",
        "hookrelay.webhook.disabled",
    ] {
        let (status, page) = server.get(&format!("/api/v1/events?type={t}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["data"].as_array().unwrap().len(), 1, "{t}: {page}");
        assert_eq!(count(&ops, t), 1, "{t} delivered once");
    }
    eventually(
        WAIT,
        "the catch-all subscriber got the three x events",
        || async { (types_seen(&all).len() >= 3).then_some(()) },
    )
    .await;
    assert!(
        types_seen(&all).iter().all(|t| t.starts_with("x.")),
        "`*` gets no operational event: {:?}",
        types_seen(&all)
    );
    assert!(
        types_seen(&bad).iter().all(|t| t.starts_with("x.")),
        "nor does the webhook concerned: {:?}",
        types_seen(&bad)
    );

    // A client cannot forge one.
    let (status, body) = server
        .post(
            "/api/v1/events",
            json!({"type": "hookrelay.webhook.disabled", "data": {}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

/// Waits `ticks` evaluations of the alert loop (a time-based wait, polled).
async fn alert_ticks(every: Duration, ticks: u32) {
    let start = std::time::Instant::now();
    eventually(WAIT, "alert evaluations", || async {
        (start.elapsed() > every * ticks).then_some(())
    })
    .await;
}

async fn events_of_type(server: &TestServer, t: &str) -> Vec<serde_json::Value> {
    let (status, page) = server.get(&format!("/api/v1/events?type={t}")).await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().unwrap().clone()
}

async fn backlog_crossing_twice_fires_twice(backend: Backend) {
    const EVERY: Duration = Duration::from_millis(100);
    let server = TestServer::start_with(backend, |c| {
        c.alerts.backlog_pending = 3;
        c.alert_every = EVERY;
    })
    .await;
    let (rx, ops) = (Receiver::start().await, Receiver::start().await);
    let hook = server
        .webhook(json!({"url": rx.url("/held"), "events": ["held.*"], "active": false}))
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    server
        .webhook(json!({"url": ops.url("/ops"), "events": ["hookrelay.queue.backlog"]}))
        .await;
    for round in 1..=2 {
        for i in 0..3 {
            server
                .emit(json!({"type": "held.item", "data": {"round": round, "i": i}}))
                .await;
        }
        eventually(WAIT, "the backlog event", || async {
            (types_seen(&ops).len() == round).then_some(())
        })
        .await;
        let told = ops.requests().last().unwrap().json();
        assert_eq!(told["event"], "hookrelay.queue.backlog");
        assert!(told["data"]["pending"].as_u64().unwrap() >= 3, "{told}");
        // Still over for several evaluations: told once, not continuously.
        alert_ticks(EVERY, 5).await;
        assert_eq!(types_seen(&ops).len(), round);
        // Drain it (resume, everything is sent), let the loop see it below, pause again.
        let (s, _) = server
            .patch(&format!("/api/v1/webhooks/{id}"), json!({"active": true}))
            .await;
        assert_eq!(s, 200);
        eventually(WAIT, "the backlog drained", || async {
            (rx.count() == 3 * round).then_some(())
        })
        .await;
        eventually(WAIT, "nothing pending", || async {
            let (_, h) = server.get("/health").await;
            (h["queue_depth"] == 0).then_some(())
        })
        .await;
        alert_ticks(EVERY, 3).await;
        let (s, _) = server
            .patch(&format!("/api/v1/webhooks/{id}"), json!({"active": false}))
            .await;
        assert_eq!(s, 200);
    }
    assert_eq!(
        events_of_type(&server, "hookrelay.queue.backlog")
            .await
            .len(),
        2
    );
}

async fn failure_rate_over_the_window_tells_failing_once(backend: Backend) {
    const EVERY: Duration = Duration::from_millis(100);
    let server = TestServer::start_with(backend, |c| {
        c.health.circuit_failures = 1000;
        c.alert_every = EVERY;
    })
    .await;
    let (bad, ops) = (Receiver::start().await, Receiver::start().await);
    bad.set_default(Reply::status(500));
    let hook = server
        .webhook(
            json!({"url": bad.url("/bad"), "events": ["r.*"], "retry_schedule_seconds": vec![0; 12]}),
        )
        .await;
    server
        .webhook(json!({"url": ops.url("/ops"), "events": ["hookrelay.webhook.*"]}))
        .await;
    server.emit(json!({"type": "r.one", "data": {}})).await;
    let told = eventually(WAIT, "the failing event", || async {
        ops.requests().into_iter().next().map(|r| r.json())
    })
    .await;
    assert_eq!(told["event"], "hookrelay.webhook.failing");
    assert_eq!(told["data"]["reason"], "failure_rate");
    assert_eq!(told["data"]["webhook_id"], hook["id"]);
    assert_eq!(told["data"]["failure_rate"], 1.0);
    assert!(told["data"]["attempts"].as_u64().unwrap() >= 10, "{told}");
    assert_eq!(told["data"]["window_seconds"], 900);
    eventually(WAIT, "all 13 attempts", || async {
        (bad.count() == 13).then_some(())
    })
    .await;
    alert_ticks(EVERY, 5).await;
    assert_eq!(
        events_of_type(&server, "hookrelay.webhook.failing")
            .await
            .len(),
        1
    );
}
