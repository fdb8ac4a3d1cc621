//! The outbound pipeline end to end, on both stores: envelope, headers and signatures, filters,
//! idempotency, retries, the dead-letter queue, Retry-After, timeouts, pause and resume.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

both_backends!(
    envelope_headers_and_signatures,
    envelope_headers_and_signatures_when_claimed,
    filters_route_events_to_matching_webhooks,
    idempotent_emits_create_nothing_new,
    retries_until_success_with_same_id_and_counting_attempts,
    exhaustion_lands_in_dlq_and_retry_recovers,
    bulk_dlq_retry_after_outage,
    retry_after_is_honoured,
    timeout_is_a_failure,
    paused_webhook_holds_deliveries_until_resumed,
    resume_with_discard_held_cancels,
    test_action_goes_through_the_real_path,
    rotation_signs_with_both_secrets,
    batch_emit_accepts_valid_and_reports_invalid,
    deleting_a_webhook_cancels_its_pending_deliveries,
    redirects_are_not_followed,
    detail_shows_the_request_its_attempts_sent,
);

const WAIT: Duration = Duration::from_secs(20);

async fn envelope_headers_and_signatures(backend: Backend) {
    check_envelope(TestServer::start(backend).await).await;
}

/// The same first attempt when it goes through a claim rather than the ingest hand-off.
async fn envelope_headers_and_signatures_when_claimed(backend: Backend) {
    check_envelope(TestServer::start_with(backend, |c| c.handoff = false).await).await;
}

async fn check_envelope(server: TestServer) {
    let rx = Receiver::start().await;
    let hook = server
        .webhook(json!({"url": rx.url("/hook"), "events": ["member.created"], "headers": {"X-Team": "crm"}}))
        .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let ev = server
        .emit(json!({"type": "member.created", "data": {"id": 42, "name": "Ada 🎉"}, "timestamp": "2026-11-23T10:00:00.123Z"}))
        .await;
    assert_eq!(ev["deliveries"], 1);
    let event_id = ev["id"].as_str().unwrap();

    let got = eventually(WAIT, "the delivery", || async {
        rx.requests().into_iter().next()
    })
    .await;
    assert_eq!(got.path, "/hook");
    assert_eq!(
        got.json(),
        json!({"event": "member.created", "timestamp": "2026-11-23T10:00:00.123Z", "eventId": event_id, "data": {"id": 42, "name": "Ada 🎉"}})
    );
    let delivery_id = server.delivery_ids(event_id).await.remove(0);
    assert_eq!(got.header("webhook-id"), delivery_id);
    assert_eq!(got.header("x-webhook-id"), delivery_id);
    assert_eq!(got.header("x-webhook-event"), "member.created");
    assert_eq!(got.header("x-webhook-attempt"), "1");
    assert_eq!(got.header("content-type"), "application/json");
    assert_eq!(got.header("x-team"), "crm");
    assert!(got.header("user-agent").starts_with("hookrelay/"));
    let ts = got.header("webhook-timestamp");
    let ts_num: i64 = ts.parse().unwrap();
    assert!((ts_num - chrono::Utc::now().timestamp()).abs() < 60);
    assert!(verify_standard_signature(
        &secret,
        &delivery_id,
        &ts,
        &got.body,
        &got.header("webhook-signature")
    ));
    // A tampered body must not verify.
    assert!(!verify_standard_signature(
        &secret,
        &delivery_id,
        &ts,
        b"{}",
        &got.header("webhook-signature")
    ));
    // X-Webhook-Signature: sha256=<hex HMAC(secret string, body)>
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&got.body);
    assert_eq!(
        got.header("x-webhook-signature"),
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );

    let d = server
        .delivery_with_status(&delivery_id, "succeeded", WAIT)
        .await;
    assert_eq!(d["attempt_count"], 1);
    assert_eq!(d["event"]["data"]["name"], "Ada 🎉");
    let attempt = &d["attempts"][0];
    assert_eq!(attempt["n"], 1);
    assert_eq!(attempt["response_status"], 200);
    assert_eq!(attempt["response_body"], "ok");
    assert_eq!(
        attempt["request_headers"]["webhook-signature"],
        "[redacted]"
    );
    assert_eq!(
        attempt["request_headers"]["x-webhook-signature"],
        "[redacted]"
    );
    assert!(d["delivered_at"].is_string());
    server.stop().await;
}

async fn filters_route_events_to_matching_webhooks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    server
        .webhook(json!({"url": rx.url("/exact"), "events": ["member.created"]}))
        .await;
    server
        .webhook(json!({"url": rx.url("/github"), "events": ["github.*"]}))
        .await;
    server
        .webhook(json!({"url": rx.url("/all"), "events": []}))
        .await;
    server
        .webhook(json!({"url": rx.url("/star"), "events": ["*"]}))
        .await;

    let counts = [
        ("member.created", 3),
        ("github.pr.opened", 3),
        ("github", 2),
        ("hackathon.created", 2),
    ];
    for (event_type, expected) in counts {
        let ev = server.emit(json!({"type": event_type, "data": {}})).await;
        assert_eq!(ev["deliveries"], expected, "{event_type}");
    }
    eventually(WAIT, "10 deliveries", || async {
        (rx.count() >= 10).then_some(())
    })
    .await;
    let paths = |p: &str| rx.requests().iter().filter(|r| r.path == p).count();
    assert_eq!(paths("/exact"), 1);
    assert_eq!(paths("/github"), 1);
    assert_eq!(paths("/all"), 4);
    assert_eq!(paths("/star"), 4);
    server.stop().await;
}

async fn idempotent_emits_create_nothing_new(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    server.webhook(json!({"url": rx.url("/h")})).await;
    let first = server
        .emit(json!({"type": "member.created", "data": {"n": 1}, "event_id": "client-1"}))
        .await;
    let (status, again) = server
        .post(
            "/api/v1/events",
            json!({"type": "member.created", "data": {"n": 2}, "event_id": "client-1"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(again, json!({"id": first["id"], "duplicate": true}));

    // The Idempotency-Key header works the same way.
    let send = |key: &'static str| {
        server
            .client
            .post(format!("{}/api/v1/events", server.base))
            .bearer_auth(&server.admin_key)
            .header("Idempotency-Key", key)
            .json(&json!({"type": "member.created", "data": {}}))
            .send()
    };
    let a = send("hdr-1").await.unwrap();
    assert_eq!(a.status(), 202);
    let a: serde_json::Value = a.json().await.unwrap();
    let b = send("hdr-1").await.unwrap();
    assert_eq!(b.status(), 200);
    let b: serde_json::Value = b.json().await.unwrap();
    assert_eq!(a["id"], b["id"]);

    eventually(WAIT, "two deliveries", || async {
        (rx.count() >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 2, "duplicates must not be delivered");
    let (_, events) = server.get("/api/v1/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2);
    server.stop().await;
}

async fn retries_until_success_with_same_id_and_counting_attempts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(500), Reply::status(502).body("bad gateway")]);
    server
        .webhook(json!({"url": rx.url("/h"), "retry_schedule_seconds": [0, 0, 0]}))
        .await;
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let id = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    let d = server.delivery_with_status(&id, "succeeded", WAIT).await;

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.header("webhook-id"), id, "same webhook-id on every retry");
        assert_eq!(r.header("x-webhook-attempt"), (i + 1).to_string());
    }
    assert_eq!(
        reqs[0].body, reqs[2].body,
        "the body is identical on every attempt"
    );
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0]["response_status"], 500);
    assert_eq!(attempts[0]["error_kind"], "http_status");
    assert_eq!(attempts[1]["response_body"], "bad gateway");
    assert_eq!(attempts[2]["response_status"], 200);
    server.stop().await;
}

async fn exhaustion_lands_in_dlq_and_retry_recovers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "retry_schedule_seconds": [0, 0]}))
        .await;
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let id = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    let d = server.delivery_with_status(&id, "failed", WAIT).await;
    assert_eq!(d["attempt_count"], 3, "1 attempt + 2 retries");
    assert_eq!(d["last_response_status"], 500);

    let (_, dlq) = server
        .get(&format!(
            "/api/v1/dlq?webhook_id={}",
            hook["id"].as_str().unwrap()
        ))
        .await;
    let entries = dlq["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["delivery_id"], id.as_str());
    assert_eq!(entries[0]["attempts"], 3);
    assert!(entries[0]["failed_at"].is_string());
    assert!(entries[0]["last_error"].as_str().unwrap().contains("500"));

    // The receiver recovers; a retry from the DLQ delivers it as attempt 4.
    rx.set_default(Reply::status(200));
    let (status, _) = server
        .post(&format!("/api/v1/dlq/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 202);
    let d = server.delivery_with_status(&id, "succeeded", WAIT).await;
    assert_eq!(d["attempt_count"], 4);
    assert_eq!(
        rx.requests().last().unwrap().header("x-webhook-attempt"),
        "4"
    );
    let (_, dlq) = server.get("/api/v1/dlq").await;
    assert!(dlq["data"].as_array().unwrap().is_empty());

    // A retry of a delivery that is not in the DLQ is refused there, but allowed directly.
    let (status, body) = server
        .post(&format!("/api/v1/dlq/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = server
        .post(&format!("/api/v1/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 202);
    eventually(WAIT, "manual retry attempt", || async {
        (rx.count() >= 5).then_some(())
    })
    .await;
    assert_eq!(
        rx.requests().last().unwrap().header("x-webhook-attempt"),
        "5"
    );
    server.stop().await;
}

async fn bulk_dlq_retry_after_outage(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(503));
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "retry_schedule_seconds": [], "events": ["member.*"]}))
        .await;
    server
        .webhook(
            json!({"url": rx.url("/other"), "retry_schedule_seconds": [], "events": ["other.*"]}),
        )
        .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let ev = server
            .emit(json!({"type": "member.created", "data": {"i": i}}))
            .await;
        ids.extend(server.delivery_ids(ev["id"].as_str().unwrap()).await);
    }
    let ev = server
        .emit(json!({"type": "other.thing", "data": {}}))
        .await;
    let other_ids = server.delivery_ids(ev["id"].as_str().unwrap()).await;
    for id in ids.iter().chain(&other_ids) {
        server.delivery_with_status(id, "failed", WAIT).await;
    }
    rx.set_default(Reply::status(200));
    let (status, body) = server
        .post(
            "/api/v1/dlq/retry",
            json!({"webhook_id": hook["id"], "since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["queued"], 5, "only the named webhook's failures");
    for id in &ids {
        server.delivery_with_status(id, "succeeded", WAIT).await;
    }
    let (_, d) = server
        .get(&format!("/api/v1/deliveries/{}", other_ids[0]))
        .await;
    assert_eq!(
        d["status"], "failed",
        "the other webhook's failure was not part of the bulk retry"
    );
    let (status, body) = server
        .post("/api/v1/dlq/retry", json!({"since": "yesterday"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["details"][0]["field"], "since");
    server.stop().await;
}

async fn retry_after_is_honoured(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(429).header("Retry-After", "2")]);
    server
        .webhook(json!({"url": rx.url("/h"), "retry_schedule_seconds": [0]}))
        .await;
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let id = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    server.delivery_with_status(&id, "succeeded", WAIT).await;
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "retried after {gap:?}, before the 2 s it asked for"
    );
    server.stop().await;
}

async fn timeout_is_a_failure(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.delivery_timeout = Duration::from_millis(300)).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(200).delay(Duration::from_secs(2))]);
    server
        .webhook(json!({"url": rx.url("/h"), "retry_schedule_seconds": [0]}))
        .await;
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let id = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    let d = server.delivery_with_status(&id, "succeeded", WAIT).await;
    let first = &d["attempts"][0];
    assert_eq!(first["error_kind"], "timeout");
    assert!(first["response_status"].is_null());
    assert!(first["duration_ms"].as_u64().unwrap() < 1500);
    assert_eq!(d["attempts"][1]["response_status"], 200);
    server.stop().await;
}

async fn paused_webhook_holds_deliveries_until_resumed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "active": false}))
        .await;
    let hook_id = hook["id"].as_str().unwrap();
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    assert_eq!(ev["deliveries"], 1, "paused webhooks still get deliveries");
    let id = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.count(), 0, "nothing is sent while paused");
    let (_, d) = server.get(&format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(d["status"], "pending");

    let (status, w) = server
        .patch(
            &format!("/api/v1/webhooks/{hook_id}"),
            json!({"active": true}),
        )
        .await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["active"], true);
    server.delivery_with_status(&id, "succeeded", WAIT).await;
    assert_eq!(rx.count(), 1);
    server.stop().await;
}

async fn resume_with_discard_held_cancels(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "active": false}))
        .await;
    let hook_id = hook["id"].as_str().unwrap();
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let id = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    let (status, _) = server
        .patch(
            &format!("/api/v1/webhooks/{hook_id}"),
            json!({"active": true, "discard_held": true}),
        )
        .await;
    assert_eq!(status, 200);
    server.delivery_with_status(&id, "cancelled", WAIT).await;
    // New events after resuming flow normally.
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let id2 = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    server.delivery_with_status(&id2, "succeeded", WAIT).await;
    assert_eq!(rx.count(), 1);
    server.stop().await;
}

async fn test_action_goes_through_the_real_path(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(503).body("down")]);
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "events": ["member.created"]}))
        .await;
    let hook_id = hook["id"].as_str().unwrap();
    let (status, first) = server
        .post(&format!("/api/v1/webhooks/{hook_id}/test"), json!({}))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["response_status"], 503);
    assert_eq!(first["status"], "pending");
    assert!(first["error"].as_str().unwrap().contains("503"));
    let (_, second) = server
        .post(&format!("/api/v1/webhooks/{hook_id}/test"), json!({}))
        .await;
    assert_eq!(second["response_status"], 200);
    assert_eq!(second["status"], "succeeded");
    assert!(second["duration_ms"].is_u64());
    let reqs = rx.requests();
    assert_eq!(reqs[1].header("x-webhook-event"), "webhook.test");
    assert_eq!(
        reqs[1].header("webhook-id"),
        second["delivery_id"].as_str().unwrap()
    );
    assert!(verify_standard_signature(
        hook["secret"].as_str().unwrap(),
        &reqs[1].header("webhook-id"),
        &reqs[1].header("webhook-timestamp"),
        &reqs[1].body,
        &reqs[1].header("webhook-signature")
    ));
    let (status, _) = server
        .post("/api/v1/webhooks/wh_nope/test", json!({}))
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

async fn rotation_signs_with_both_secrets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server.webhook(json!({"url": rx.url("/h")})).await;
    let hook_id = hook["id"].as_str().unwrap();
    let old = hook["secret"].as_str().unwrap();
    let (status, rotated) = server
        .post(
            &format!("/api/v1/webhooks/{hook_id}/rotate-secret"),
            json!({"grace_seconds": 3600}),
        )
        .await;
    assert_eq!(status, 200);
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(old, new);
    server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let got = eventually(WAIT, "delivery", || async {
        rx.requests().into_iter().next()
    })
    .await;
    let sig = got.header("webhook-signature");
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    let (id, ts) = (got.header("webhook-id"), got.header("webhook-timestamp"));
    assert!(verify_standard_signature(old, &id, &ts, &got.body, &sig));
    assert!(verify_standard_signature(new, &id, &ts, &got.body, &sig));
    // The secret is shown at creation and rotation only.
    let (_, read) = server.get(&format!("/api/v1/webhooks/{hook_id}")).await;
    assert!(read.get("secret").is_none());
    assert!(!read.to_string().contains(new));
    server.stop().await;
}

async fn batch_emit_accepts_valid_and_reports_invalid(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    server.webhook(json!({"url": rx.url("/h")})).await;
    let (status, body) = server
        .post(
            "/api/v1/events/batch",
            json!({"events": [
                {"type": "member.created", "data": {"i": 0}},
                {"type": "bad type!", "data": {}},
                {"type": "member.created", "data": {"i": 2}, "event_id": "b-1"},
                {"type": "member.created", "data": {"i": 3}, "event_id": "b-1"},
                "not an object",
                {"type": "member.created", "surprise": true}
            ]}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let r = body["results"].as_array().unwrap();
    assert_eq!(r.len(), 6);
    assert_eq!(r[0]["deliveries"], 1);
    assert_eq!(r[0]["duplicate"], false);
    assert_eq!(r[1]["error"]["code"], "validation_failed");
    assert_eq!(r[1]["error"]["details"][0]["field"], "type");
    assert_eq!(r[3]["duplicate"], true);
    assert_eq!(r[3]["id"], r[2]["id"]);
    assert_eq!(r[4]["error"]["code"], "invalid_json");
    assert_eq!(r[5]["error"]["details"][0]["field"], "surprise");
    eventually(WAIT, "2 deliveries", || async {
        (rx.count() >= 2).then_some(())
    })
    .await;

    let too_many: Vec<_> = (0..1001).map(|_| json!({"type": "a.b"})).collect();
    let (status, _) = server
        .post("/api/v1/events/batch", json!({"events": too_many}))
        .await;
    assert_eq!(status, 422);
    server.stop().await;
}

async fn deleting_a_webhook_cancels_its_pending_deliveries(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "active": false}))
        .await;
    let hook_id = hook["id"].as_str().unwrap();
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let id = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    let (status, _) = server
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhooks/{hook_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, d) = server.get(&format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(d["status"], "cancelled");
    let (status, _) = server.get(&format!("/api/v1/webhooks/{hook_id}")).await;
    assert_eq!(status, 404);
    let (status, body) = server
        .post(&format!("/api/v1/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    server.stop().await;
}

async fn redirects_are_not_followed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(302).header("Location", &rx.url("/elsewhere"))]);
    server
        .webhook(json!({"url": rx.url("/h"), "retry_schedule_seconds": [0]}))
        .await;
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let id = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    let d = server.delivery_with_status(&id, "succeeded", WAIT).await;
    assert_eq!(
        d["attempts"][0]["response_status"], 302,
        "a redirect is a failed attempt"
    );
    assert!(
        rx.requests().iter().all(|r| r.path == "/h"),
        "the Location was never followed"
    );
    server.stop().await;
}

/// `GET /api/v1/deliveries/{id}` carries `request` (method, URL, body) for "copy as curl": the
/// body is byte for byte what the receiver got — the envelope with the payload's own spacing and
/// exact numbers, a transform's output, a chat message — and null once the webhook is deleted.
async fn detail_shows_the_request_its_attempts_sent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let mut paths = std::collections::HashMap::new();
    for (path, extra) in [
        ("/plain", json!({"url": rx.url("/plain?x=1")})),
        (
            "/reshaped",
            json!({"url": rx.url("/reshaped"), "transform": r#"{"who": {{ data.name | tojson }}}"#}),
        ),
        (
            "/services/T000/B000/XXXX",
            json!({"url": rx.url("/services/T000/B000/XXXX"), "kind": "slack",
                   "templates": {"member.*": "hi {{ data.name }}"}}),
        ),
    ] {
        let mut body = extra.clone();
        body["events"] = json!(["member.created"]);
        let hook = server.webhook(body).await;
        paths.insert(
            hook["id"].as_str().unwrap().to_owned(),
            (path, extra["url"].as_str().unwrap().to_owned()),
        );
    }
    // Raw text: the spacing and the 64-bit number reach the receiver, and `request`, as sent.
    let raw = r#"{"type": "member.created", "data": {"name": "Ada \"A\" 🦀",  "id": 12345678901234567890}}"#;
    let r = server
        .client
        .post(format!("{}/api/v1/events", server.base))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let ev: serde_json::Value = r.json().await.unwrap();
    let event_id = ev["id"].as_str().unwrap().to_owned();
    eventually(WAIT, "three requests", || async {
        (rx.count() >= 3).then_some(())
    })
    .await;
    let ids = server.delivery_ids(&event_id).await;
    assert_eq!(ids.len(), 3);
    let mut plain = None;
    for id in ids {
        let d = server.delivery_with_status(&id, "succeeded", WAIT).await;
        let (path, url) = &paths[d["webhook_id"].as_str().unwrap()];
        let got = rx
            .requests()
            .into_iter()
            .find(|g| g.path == *path)
            .unwrap_or_else(|| panic!("no request to {path}"));
        assert_eq!(d["request"]["method"], "POST", "{d}");
        assert_eq!(d["request"]["url"], url.as_str(), "{d}");
        assert_eq!(
            d["request"]["body"].as_str().unwrap().as_bytes(),
            &got.body[..],
            "{path}: the body shown is the body sent"
        );
        if *path == "/plain" {
            let body = d["request"]["body"].as_str().unwrap();
            assert!(body.contains(r#"  "id": 12345678901234567890}"#), "{body}");
            plain = Some((id, d["webhook_id"].as_str().unwrap().to_owned()));
        }
    }
    let (delivery, webhook) = plain.expect("the plain webhook's delivery");
    let (status, _) = server
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhooks/{webhook}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, d) = server.get(&format!("/api/v1/deliveries/{delivery}")).await;
    assert!(
        d["request"].is_null(),
        "no request once the webhook is gone: {d}"
    );
    server.stop().await;
}
