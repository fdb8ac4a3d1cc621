//! Transformations end to end, on both stores: an http webhook's `transform` reshapes the body,
//! the signatures (HMAC, and ed25519 checked by Node) cover the body sent, save-time checks
//! refuse bad templates with `422`, preview shows the result, and a template that renders
//! something other than JSON fails the attempt with `template_error` (straight to the DLQ).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::support::*;

both_backends!(
    transform_reshapes_the_body_and_signatures_cover_it,
    transform_checks_preview_and_template_errors,
);

const WAIT: Duration = Duration::from_secs(20);

const RESHAPE: &str = r#"{"kind": "member", "who": {{ data.name | tojson }}, "id": {{ data.id }}, "type": "{{ event }}", "ref": "{{ eventId }}"}"#;

async fn transform_reshapes_the_body_and_signatures_cover_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server
        .webhook(
            json!({"url": rx.url("/hmac"), "events": ["member.created"], "transform": RESHAPE}),
        )
        .await;
    assert_eq!(hook["transform"], RESHAPE);
    let ed = server
        .webhook(
            json!({"url": rx.url("/ed"), "events": ["member.created"], "transform": RESHAPE,
                        "signature_scheme": "ed25519"}),
        )
        .await;
    let ev = server
        .emit(json!({"type": "member.created", "data": {"id": 42, "name": "Ada \"Countess\" 🦀"}}))
        .await;
    let event_id = ev["id"].as_str().unwrap();
    eventually(WAIT, "both deliveries", || async {
        (rx.count() >= 2).then_some(())
    })
    .await;
    let reqs = rx.requests();
    let expected = json!({"kind": "member", "who": "Ada \"Countess\" 🦀", "id": 42,
                          "type": "member.created", "ref": event_id});
    for got in &reqs {
        assert_eq!(got.json(), expected, "the receiver gets the reshaped JSON");
        assert_eq!(got.header("content-type"), "application/json");
    }
    let hmac_req = reqs.iter().find(|r| r.path == "/hmac").unwrap();
    let secret = hook["secret"].as_str().unwrap();
    assert!(verify_standard_signature(
        secret,
        &hmac_req.header("webhook-id"),
        &hmac_req.header("webhook-timestamp"),
        &hmac_req.body,
        &hmac_req.header("webhook-signature"),
    ));
    let mut legacy = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    legacy.update(&hmac_req.body);
    assert_eq!(
        hmac_req.header("x-webhook-signature"),
        format!("sha256={}", hex::encode(legacy.finalize().into_bytes()))
    );
    let ed_req = reqs.iter().find(|r| r.path == "/ed").unwrap();
    let verdict = node_verify_ed25519(
        &[ed["public_key"].as_str().unwrap()],
        &ed_req.header("webhook-id"),
        &ed_req.header("webhook-timestamp"),
        &ed_req.body,
        &ed_req.header("webhook-signature"),
    );
    assert_eq!(
        verdict,
        [true],
        "the v1a signature covers the transformed body"
    );

    // `null` removes the transform: the envelope again.
    let id = hook["id"].as_str().unwrap();
    let (status, patched) = server
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            json!({"transform": null}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["transform"], Value::Null);
    server
        .emit(json!({"type": "member.created", "data": {"id": 7, "name": "Grace"}}))
        .await;
    let plain = eventually(WAIT, "an untransformed delivery", || async {
        rx.requests()
            .into_iter()
            .find(|r| r.path == "/hmac" && r.json().get("event").is_some())
    })
    .await;
    assert_eq!(plain.json()["data"], json!({"id": 7, "name": "Grace"}));
    server.stop().await;
}

async fn transform_checks_preview_and_template_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    // Refused at save time, naming `transform`.
    for (body, needle) in [
        // The catalog's example of member.created renders text, not JSON.
        (
            json!({"url": rx.url("/h"), "events": ["member.created"], "transform": "hello {{ data.name }}"}),
            "not JSON",
        ),
        (
            json!({"url": rx.url("/h"), "transform": "{{ data.name | shout }}"}),
            "shout",
        ),
        (
            json!({"url": rx.url("/h"), "transform": "{% if %}"}),
            "syntax",
        ),
        (
            json!({"url": rx.url("/api/webhooks/1/t"), "kind": "discord", "transform": "{}"}),
            "only `http`",
        ),
    ] {
        let (status, err) = server.post("/api/v1/webhooks", body.clone()).await;
        assert_eq!(status, 422, "{body} → {err}");
        assert_eq!(err["error"]["details"][0]["field"], "transform", "{err}");
        let message = err["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(needle), "{message}");
    }
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "events": ["member.created"], "transform": RESHAPE}))
        .await;
    let (status, patch) = server
        .patch(
            &format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap()),
            json!({"transform": "nope {{ event }}"}),
        )
        .await;
    assert_eq!(status, 422, "PATCH is checked too: {patch}");

    // Preview shows the transformed body, and says a failing render is `transform`'s.
    let preview = format!("/api/v1/webhooks/{}/preview", hook["id"].as_str().unwrap());
    let (status, shown) = server
        .post(
            &preview,
            json!({"event_type": "member.created", "data": {"id": 1, "name": "Lin"}}),
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["template"], "transform");
    assert_eq!(shown["body"]["who"], "Lin");
    assert_eq!(shown["body"]["id"], 1);
    let (status, failed) = server
        .post(
            &preview,
            json!({"event_type": "member.created", "data": {"name": "no id"}}),
        )
        .await;
    assert_eq!(status, 422, "{failed}");
    assert_eq!(failed["error"]["details"][0]["field"], "transform");
    // Unsaved edits preview without being stored: another transform, none, or chat templates.
    let (status, edited) = server
        .post(
            &preview,
            json!({"event_type": "member.created", "data": {"name": "Lin"},
                               "transform": "{\"only\": {{ data.name | tojson }}}"}),
        )
        .await;
    assert_eq!(
        (status, &edited["body"]),
        (200, &json!({"only": "Lin"})),
        "{edited}"
    );
    let (_, plain) = server
        .post(
            &preview,
            json!({"event_type": "member.created", "data": {"name": "Lin"}, "transform": null}),
        )
        .await;
    assert_eq!(plain["template"], Value::Null);
    assert_eq!(plain["body"]["data"], json!({"name": "Lin"}));
    let (status, chat) = server
        .post(
            &preview,
            json!({"event_type": "member.created", "data": {"name": "Lin"}, "kind": "slack",
                               "transform": null, "templates": {"member.*": "hi {{ data.name }}"}}),
        )
        .await;
    assert_eq!(status, 200, "{chat}");
    assert_eq!(
        (chat["kind"].as_str(), chat["template"].as_str()),
        (Some("slack"), Some("member.*"))
    );
    assert_eq!(chat["body"], json!({"text": "hi Lin"}));
    let (status, bad) = server
        .post(
            &preview,
            json!({"event_type": "member.created", "transform": "{{ x | shout }}"}),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["error"]["details"][0]["field"], "transform");
    let (_, stored) = server
        .get(&format!(
            "/api/v1/webhooks/{}",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(stored["transform"], RESHAPE, "a preview stores nothing");

    // Data-dependent output: accepted (order.* has no catalog example), then non-JSON for one
    // event. That attempt fails with template_error, sends nothing and goes to the DLQ at once.
    let orders = server
        .webhook(json!({"url": rx.url("/orders"), "events": ["order.*"],
                        "transform": r#"{% if data.ok %}{"ok": true}{% else %}not json{% endif %}"#}))
        .await;
    let bad = server
        .emit(json!({"type": "order.paid", "data": {"ok": false}}))
        .await;
    let bad_id = server
        .delivery_ids(bad["id"].as_str().unwrap())
        .await
        .remove(0);
    let failed = server.delivery_with_status(&bad_id, "failed", WAIT).await;
    let attempt = &failed["attempts"][0];
    assert_eq!(attempt["error_kind"], "template_error", "{failed}");
    assert!(
        attempt["error"].as_str().unwrap().contains("not JSON"),
        "{attempt}"
    );
    assert_eq!(attempt["response_status"], Value::Null);
    assert_eq!(
        failed["attempts"].as_array().unwrap().len(),
        1,
        "not retried"
    );
    let (_, dlq) = server
        .get(&format!(
            "/api/v1/dlq?webhook_id={}",
            orders["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(dlq["data"][0]["delivery_id"], bad_id.as_str());
    let good = server
        .emit(json!({"type": "order.paid", "data": {"ok": true}}))
        .await;
    let good_id = server
        .delivery_ids(good["id"].as_str().unwrap())
        .await
        .remove(0);
    server
        .delivery_with_status(&good_id, "succeeded", WAIT)
        .await;
    let sent: Vec<Value> = rx
        .requests()
        .iter()
        .filter(|r| r.path == "/orders")
        .map(|r| r.json())
        .collect();
    assert_eq!(
        sent,
        [json!({"ok": true})],
        "the failed render sent nothing"
    );
    server.stop().await;
}
