//! `GET /api/v1/stats` end to end on both stores: real deliveries to a receiver that answers and
//! one that fails add up to the counters the overview charts (outcomes, latency, queue, DLQ,
//! the failing webhook first), per tenant and per webhook, and bad input gets the contract's
//! error.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

both_backends!(
    stats_add_up_real_deliveries_per_tenant_and_webhook,
    stats_refuse_bad_input,
);

const WAIT: Duration = Duration::from_secs(30);

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The sum of one counter over every point.
fn summed(stats: &Value, field: &str) -> u64 {
    stats["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| n(&p[field]))
        .sum()
}

async fn stats_as_tenant(server: &TestServer, tenant: &str, query: &str) -> (u16, Value) {
    let r = server
        .client
        .get(format!("{}/api/v1/stats{query}", server.base))
        .bearer_auth(&server.admin_key)
        .header("X-Tenant-Id", tenant)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn stats_add_up_real_deliveries_per_tenant_and_webhook(backend: Backend) {
    // The alert loop samples the queue: often here, so the queue chart has a point soon.
    let server = TestServer::start_with(backend, |c| {
        c.alert_every = Duration::from_millis(200);
    })
    .await;
    let ok = Receiver::start().await;
    let down = Receiver::start().await;
    down.set_default(Reply::status(500));
    let good = server
        .webhook(json!({"url": ok.url("/ok"), "events": ["s.*"], "description": "answers"}))
        .await;
    // One retry, then the dead-letter queue: two failed attempts per event.
    let bad = server
        .webhook(
            json!({"url": down.url("/down"), "events": ["s.*"], "retry_schedule_seconds": [1]}),
        )
        .await;
    let (good_id, bad_id) = (good["id"].as_str().unwrap(), bad["id"].as_str().unwrap());
    for i in 0..3 {
        server
            .emit(json!({"type": "s.tick", "data": {"i": i}}))
            .await;
    }
    eventually(WAIT, "three dead letters and three deliveries", || async {
        let (_, dlq) = server
            .get(&format!("/api/v1/dlq?webhook_id={bad_id}"))
            .await;
        (dlq["data"].as_array().map_or(0, Vec::len) == 3 && ok.count() == 3).then_some(())
    })
    .await;

    let (status, st) = server.get("/api/v1/stats").await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["range"], "1h");
    assert_eq!(st["step_seconds"], 60);
    assert_eq!(st["points"].as_array().unwrap().len(), 60);
    let t = &st["totals"];
    assert_eq!(
        (
            n(&t["attempts"]),
            n(&t["succeeded"]),
            n(&t["retried"]),
            n(&t["failed"])
        ),
        (9, 3, 3, 3),
        "{st}"
    );
    assert!((t["success_rate"].as_f64().unwrap() - 3.0 / 9.0).abs() < 1e-9);
    assert!(t["latency_p50_ms"].as_u64().is_some(), "{t}");
    assert!(n(&t["latency_p95_ms"]) >= n(&t["latency_p50_ms"]));
    // The points add up to the totals, and the last point is the current minute.
    for field in ["attempts", "succeeded", "retried", "failed"] {
        assert_eq!(summed(&st, field), n(&t[field]), "{field}");
    }
    assert_eq!(n(&st["queue"]["dead_letter"]), 3);
    assert_eq!(n(&st["queue"]["pending"]), 0);
    assert_eq!(n(&st["queue"]["oldest_pending_age_seconds"]), 0);
    // The failing webhook first, with its own counts; the healthy one after it.
    let hooks = st["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2, "{st}");
    assert_eq!(hooks[0]["webhook_id"], bad_id);
    assert_eq!(hooks[0]["health"], "failing");
    assert_eq!(
        (
            n(&hooks[0]["attempts"]),
            n(&hooks[0]["failed"]),
            n(&hooks[0]["retried"])
        ),
        (6, 3, 3)
    );
    assert_eq!(hooks[0]["success_rate"].as_f64(), Some(0.0));
    assert_eq!(hooks[1]["webhook_id"], good_id);
    assert_eq!(hooks[1]["health"], "healthy");
    assert_eq!(hooks[1]["description"], "answers");
    assert_eq!(n(&hooks[1]["succeeded"]), 3);

    // One webhook over a day: 144 ten-minute points, its deliveries only, no webhook list.
    let (status, one) = server
        .get(&format!("/api/v1/stats?webhook_id={good_id}&range=24h"))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["step_seconds"], 600);
    assert_eq!(one["points"].as_array().unwrap().len(), 144);
    assert_eq!(one["webhook_id"], good_id);
    assert_eq!(
        (
            n(&one["totals"]["attempts"]),
            n(&one["totals"]["succeeded"])
        ),
        (3, 3)
    );
    assert_eq!(one["totals"]["success_rate"].as_f64(), Some(1.0));
    assert_eq!(n(&one["queue"]["dead_letter"]), 0);
    assert!(one["webhooks"].as_array().unwrap().is_empty());
    // A week reads the hour rows: the same totals.
    let (_, week) = server.get("/api/v1/stats?range=7d").await;
    assert_eq!(week["points"].as_array().unwrap().len(), 168);
    assert_eq!(n(&week["totals"]["attempts"]), 9);
    assert_eq!(n(&week["totals"]["failed"]), 3);

    // A pending delivery shows in the queue with its age.
    server
        .patch(
            &format!("/api/v1/webhooks/{good_id}"),
            json!({"active": false}),
        )
        .await;
    server.emit(json!({"type": "s.held", "data": {}})).await;
    let (_, held) = server
        .get(&format!("/api/v1/stats?webhook_id={good_id}"))
        .await;
    assert_eq!(n(&held["queue"]["pending"]), 1, "{held}");
    assert!(
        held["points"][0]["pending"].is_null(),
        "no queue samples per webhook"
    );
    let sampled = eventually(WAIT, "a queue sample in the charts", || async {
        let (_, st) = server.get("/api/v1/stats").await;
        st["points"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["pending"].as_u64())
            .max()
            .filter(|n| *n >= 1)
    })
    .await;
    assert!(sampled >= 1);
    let (_, all) = server.get("/api/v1/stats").await;
    // The paused one, and the failing one's new delivery while it still waits for its retry.
    assert!(n(&all["queue"]["pending"]) >= 1, "{all}");
    let paused = all["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["webhook_id"] == good_id)
        .cloned()
        .unwrap();
    assert_eq!(paused["health"], "paused");

    // Another tenant sees only its own (nothing), and a viewer reads the stats.
    let (_, other) = server
        .post("/api/v1/tenants", json!({"name": "other"}))
        .await;
    let (status, theirs) = stats_as_tenant(&server, other["id"].as_str().unwrap(), "").await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(n(&theirs["totals"]["attempts"]), 0);
    assert_eq!(theirs["totals"]["success_rate"], Value::Null);
    assert_eq!(theirs["totals"]["latency_p50_ms"], Value::Null);
    assert!(theirs["webhooks"].as_array().unwrap().is_empty());
    let (status, _) = stats_as_tenant(
        &server,
        other["id"].as_str().unwrap(),
        &format!("?webhook_id={good_id}"),
    )
    .await;
    assert_eq!(status, 404, "another tenant's webhook is not found");
    let (_, viewer) = server
        .post("/api/v1/keys", json!({"name": "v", "role": "viewer"}))
        .await;
    let (status, seen) = server
        .call_as(
            viewer["key"].as_str().unwrap(),
            Method::GET,
            "/api/v1/stats?range=24h",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(n(&seen["totals"]["attempts"]) >= 9, "{seen}");
    server.stop().await;
}

async fn stats_refuse_bad_input(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (query, field) in [
        ("?range=2h", "range"),
        ("?range=", "range"),
        ("?window=1h", "window"),
    ] {
        let (status, body) = server.get(&format!("/api/v1/stats{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{body}");
        let named = body["error"]["details"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
            + body["error"]["message"].as_str().unwrap_or_default();
        assert!(named.contains(field), "{query}: {body}");
    }
    for id in ["wh_nope", "wh_01HZZZZZZZZZZZZZZZZZZZZZZZ"] {
        let (status, body) = server.get(&format!("/api/v1/stats?webhook_id={id}")).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let r = server
        .client
        .get(format!("{}/api/v1/stats", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    server.stop().await;
}
