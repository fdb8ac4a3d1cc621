//! One tenant must never hurt another: a tenant whose endpoint hangs, or who floods events, only
//! fills its own in-flight caps. Per-webhook and per-tenant delivery rates are honoured.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

async fn tenant_key(server: &TestServer, name: &str) -> String {
    let (s, t) = server.post("/api/v1/tenants", json!({"name": name})).await;
    assert_eq!(s, 201, "{t}");
    let r = server
        .client
        .post(format!("{}/api/v1/keys", server.base))
        .bearer_auth(&server.admin_key)
        .header("X-Tenant-Id", t["id"].as_str().unwrap())
        .json(&json!({"name": "k", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_tenant_does_not_delay_another() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.delivery_timeout = Duration::from_secs(1);
        c.max_inflight_per_webhook = 32;
        // The endpoint must keep hanging the slots it may: no circuit breaker in the way (the
        // circuit-open case is the next test).
        c.health.circuit_failures = 1_000_000;
    })
    .await;
    let key_a = tenant_key(&server, "slow-a").await;
    let key_b = tenant_key(&server, "fast-b").await;
    let slow = Receiver::start().await;
    slow.set_default(Reply::status(200).delay(Duration::from_secs(3)));
    let fast = Receiver::start().await;

    let (s, _) = server
        .call_as(
            &key_a,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": slow.url("/a")})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = server
        .call_as(
            &key_b,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": fast.url("/b")})),
        )
        .await;
    assert_eq!(s, 201);

    // Tenant A: 10,000 deliveries to an endpoint that always outlives the timeout.
    for _ in 0..10 {
        let events: Vec<Value> = (0..1000)
            .map(|i| json!({"type": "flood.tick", "data": {"i": i}}))
            .collect();
        let (s, body) = server
            .call_as(
                &key_a,
                Method::POST,
                "/api/v1/events/batch",
                Some(json!({"events": events})),
            )
            .await;
        assert_eq!(s, 202, "{body}");
    }
    eventually(
        Duration::from_secs(20),
        "tenant A's endpoint to be saturated",
        || async { (slow.count() >= 20).then_some(()) },
    )
    .await;

    // Tenant B: 100 events, each timed from emit to arrival.
    let mut sent = Vec::new();
    for i in 0..100 {
        let at = Instant::now();
        let (s, body) = server
            .call_as(
                &key_b,
                Method::POST,
                "/api/v1/events",
                Some(json!({"type": "member.created", "data": {"i": i}})),
            )
            .await;
        assert_eq!(s, 202, "{body}");
        sent.push((body["id"].as_str().unwrap().to_owned(), at));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually(
        Duration::from_secs(30),
        "tenant B's 100 deliveries",
        || async { (fast.count() >= 100).then_some(()) },
    )
    .await;
    let arrivals = fast.requests();
    let latencies: Vec<Duration> = sent
        .iter()
        .map(|(id, at)| {
            let got = arrivals
                .iter()
                .find(|r| r.json()["eventId"] == id.as_str())
                .expect("delivered");
            got.at.saturating_duration_since(*at)
        })
        .collect();
    let p95 = percentile(latencies.clone(), 0.95);
    eprintln!(
        "tenant B p50={:?} p95={p95:?} while tenant A's endpoint held {} requests",
        percentile(latencies, 0.5),
        slow.count()
    );
    assert!(p95 < Duration::from_secs(1), "tenant B's p95 was {p95:?}");
    // A's endpoint never had more than the per-webhook cap of requests at once: each request
    // holds its slot for the whole 1 s timeout, so arrivals less than 0.8 s apart overlapped.
    let a = slow.requests();
    let max_concurrent = a
        .iter()
        .map(|r| {
            a.iter()
                .filter(|o| o.at <= r.at && o.at + Duration::from_millis(800) > r.at)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        max_concurrent <= 32,
        "tenant A held {max_concurrent} requests at once"
    );
    server.stop().await;
}

/// A tenant whose endpoint failed until its circuit opened holds 10,000 due deliveries; the
/// claim query skips them, and another tenant's deliveries are as fast as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_open_tenant_does_not_delay_another() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.health.circuit_failures = 5;
        // Open for the whole test.
        c.health.first_cooldown = Duration::from_secs(600);
    })
    .await;
    let key_a = tenant_key(&server, "open-a").await;
    let key_b = tenant_key(&server, "fast-b").await;
    let down = Receiver::start().await;
    down.set_default(Reply::status(503));
    let fast = Receiver::start().await;
    for (key, url) in [(&key_a, down.url("/a")), (&key_b, fast.url("/b"))] {
        let (s, body) = server
            .call_as(
                key,
                Method::POST,
                "/api/v1/webhooks",
                Some(json!({"url": url})),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    for _ in 0..10 {
        let events: Vec<Value> = (0..1000)
            .map(|i| json!({"type": "flood.tick", "data": {"i": i}}))
            .collect();
        let (s, body) = server
            .call_as(
                &key_a,
                Method::POST,
                "/api/v1/events/batch",
                Some(json!({"events": events})),
            )
            .await;
        assert_eq!(s, 202, "{body}");
    }
    let (_, hooks) = server
        .call_as(&key_a, Method::GET, "/api/v1/webhooks", None)
        .await;
    let a_hook = hooks["data"][0]["id"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(20),
        "tenant A's circuit to open",
        || async {
            let (_, w) = server
                .call_as(
                    &key_a,
                    Method::GET,
                    &format!("/api/v1/webhooks/{a_hook}"),
                    None,
                )
                .await;
            (w["circuit"]["state"] == "open").then_some(())
        },
    )
    .await;
    let attempted = down.count();

    let mut sent = Vec::new();
    for i in 0..100 {
        let at = Instant::now();
        let (s, body) = server
            .call_as(
                &key_b,
                Method::POST,
                "/api/v1/events",
                Some(json!({"type": "member.created", "data": {"i": i}})),
            )
            .await;
        assert_eq!(s, 202, "{body}");
        sent.push((body["id"].as_str().unwrap().to_owned(), at));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually(
        Duration::from_secs(30),
        "tenant B's 100 deliveries",
        || async { (fast.count() >= 100).then_some(()) },
    )
    .await;
    let arrivals = fast.requests();
    let latencies: Vec<Duration> = sent
        .iter()
        .map(|(id, at)| {
            let got = arrivals
                .iter()
                .find(|r| r.json()["eventId"] == id.as_str())
                .expect("delivered");
            got.at.saturating_duration_since(*at)
        })
        .collect();
    let p95 = percentile(latencies.clone(), 0.95);
    eprintln!(
        "tenant B p50={:?} p95={p95:?} while tenant A's circuit held its deliveries",
        percentile(latencies, 0.5)
    );
    assert!(p95 < Duration::from_secs(1), "tenant B's p95 was {p95:?}");
    // Nothing more reached A's endpoint while open: at most what was in flight when it opened.
    assert!(
        down.count() <= attempted + 256,
        "{} attempts after the circuit opened",
        down.count() - attempted
    );
    server.stop().await;
}

#[tokio::test]
async fn webhook_rate_limit_spreads_deliveries_without_spending_attempts() {
    let server = TestServer::start(Backend::Sqlite).await;
    let rx = Receiver::start().await;
    server
        .webhook(json!({"url": rx.url("/r"), "rate_limit_per_sec": 5}))
        .await;
    let events: Vec<Value> = (0..15)
        .map(|i| json!({"type": "a.b", "data": {"i": i}}))
        .collect();
    let (s, _) = server
        .post("/api/v1/events/batch", json!({"events": events}))
        .await;
    assert_eq!(s, 202);
    eventually(Duration::from_secs(20), "15 deliveries", || async {
        (rx.count() >= 15).then_some(())
    })
    .await;
    let reqs = rx.requests();
    let span = reqs.last().unwrap().at - reqs[0].at;
    assert!(
        span >= Duration::from_millis(1600),
        "15 deliveries at 5/s took only {span:?}"
    );
    // No one-second window saw more than a burst plus a second's worth.
    for r in &reqs {
        let window = reqs
            .iter()
            .filter(|o| o.at >= r.at && o.at < r.at + Duration::from_secs(1))
            .count();
        assert!(window <= 10, "{window} deliveries within one second");
    }
    assert!(
        reqs.iter().all(|r| r.header("x-webhook-attempt") == "1"),
        "waiting for the rate limit is not an attempt"
    );
    server.stop().await;
}

#[tokio::test]
async fn tenant_delivery_ceiling_covers_all_its_webhooks() {
    let server = TestServer::start(Backend::Sqlite).await;
    let rx = Receiver::start().await;
    let (s, tenant) = server.get("/api/v1/tenants").await;
    assert_eq!(s, 200);
    let default_id = tenant["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "default")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, t) = server
        .patch(
            &format!("/api/v1/tenants/{default_id}"),
            json!({"quotas": {"delivery_rate_per_sec": 10}}),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    server.webhook(json!({"url": rx.url("/one")})).await;
    server.webhook(json!({"url": rx.url("/two")})).await;
    let events: Vec<Value> = (0..15)
        .map(|i| json!({"type": "a.b", "data": {"i": i}}))
        .collect();
    let (s, _) = server
        .post("/api/v1/events/batch", json!({"events": events}))
        .await;
    assert_eq!(s, 202);
    eventually(Duration::from_secs(20), "30 deliveries", || async {
        (rx.count() >= 30).then_some(())
    })
    .await;
    let reqs = rx.requests();
    let span = reqs.last().unwrap().at - reqs[0].at;
    assert!(
        span >= Duration::from_millis(1600),
        "30 deliveries at 10/s across two webhooks took only {span:?}"
    );
    server.stop().await;
}

/// Fresh events are handed from the ingest commit straight to the worker; that must not starve
/// claimed work. While one webhook's endpoint holds every fresh delivery for over a second and
/// events for it keep coming, a backlog released by resuming another webhook still goes out
/// at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_backlog_is_not_starved_by_fresh_traffic() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.worker_concurrency = 4;
        c.max_inflight_per_webhook = 4;
        c.max_inflight_per_tenant = 4;
    })
    .await;
    let slow = Receiver::start().await;
    slow.set_default(Reply::status(200).delay(Duration::from_millis(1500)));
    let quick = Receiver::start().await;
    server
        .webhook(json!({"url": slow.url("/busy"), "events": ["busy.*"]}))
        .await;
    let held = server
        .webhook(json!({"url": quick.url("/held"), "events": ["held.*"], "active": false}))
        .await;
    for i in 0..6 {
        server
            .emit(json!({"type": "held.item", "data": {"i": i}}))
            .await;
    }

    // Keep the slow endpoint's deliveries coming for longer than the check below may take.
    let stream_for = Duration::from_secs(6);
    let feeder = {
        let (client, base, key) = (
            server.client.clone(),
            server.base.clone(),
            server.admin_key.clone(),
        );
        tokio::spawn(async move {
            let start = Instant::now();
            while start.elapsed() < stream_for {
                let r = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .json(&json!({"type": "busy.tick", "data": {}}))
                    .send()
                    .await
                    .expect("emit");
                assert_eq!(r.status(), 202);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    eventually(
        Duration::from_secs(10),
        "the slow endpoint to be busy",
        || async { (slow.count() >= 2).then_some(()) },
    )
    .await;

    let resumed_at = Instant::now();
    let (s, body) = server
        .patch(
            &format!("/api/v1/webhooks/{}", held["id"].as_str().unwrap()),
            json!({"active": true}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    eventually(
        Duration::from_secs(4),
        "the resumed backlog while fresh traffic continues",
        || async { (quick.count() >= 6).then_some(()) },
    )
    .await;
    assert!(
        !feeder.is_finished(),
        "the backlog went out only after the fresh traffic stopped ({:?} after resuming)",
        resumed_at.elapsed()
    );
    feeder.await.expect("feeder");
    server.stop().await;
}
