//! ed25519 (`v1a`) signatures end to end, on both stores: the key pair is generated, only its
//! `whpk_` public key is ever shown, the private key is sealed at rest, rotation signs with old
//! and new keys side by side, and every signature is verified by Node's crypto, not our code.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::receiver::Received;
use crate::support::*;

both_backends!(
    ed25519_webhooks_sign_v1a_verified_by_node,
    ed25519_rotation_and_scheme_changes,
);

const WAIT: Duration = Duration::from_secs(20);

/// The stored `secrets` column of a webhook, read straight from the database.
async fn stored_secrets(server: &TestServer, backend: Backend, id: &str) -> String {
    let sql = "SELECT secrets FROM webhooks WHERE id = $1";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&server.db_url).await.unwrap();
            let v: String = sqlx::query_scalar(sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            v
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server.db_url).await.unwrap();
            let v: String = sqlx::query_scalar(sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            v
        }
    }
}

/// Waits for the `n`th request (1-based) and checks its `v1a` signature with Node against each
/// of `keys`.
async fn node_verdicts(rx: &Receiver, n: usize, keys: &[&str]) -> (Vec<bool>, Received) {
    let got = eventually(WAIT, &format!("request {n}"), || async {
        rx.requests().into_iter().nth(n - 1)
    })
    .await;
    let verdicts = node_verify_ed25519(
        keys,
        &got.header("webhook-id"),
        &got.header("webhook-timestamp"),
        &got.body,
        &got.header("webhook-signature"),
    );
    (verdicts, got)
}

async fn ed25519_webhooks_sign_v1a_verified_by_node(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "signature_scheme": "ed25519"}))
        .await;
    let id = hook["id"].as_str().unwrap();
    assert_eq!(hook["signature_scheme"], "ed25519");
    assert!(hook.get("secret").is_none(), "{hook}");
    let public = hook["public_key"].as_str().unwrap().to_owned();
    assert!(public.starts_with("whpk_"), "{public}");
    // Every read shows the public key; nothing shows a private one.
    let (_, read) = server.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(read["public_key"], public.as_str());
    let (_, list) = server.get("/api/v1/webhooks").await;
    assert_eq!(list["data"][0]["public_key"], public.as_str());
    assert!(!format!("{hook}{read}{list}").contains("whsk_"));
    // Sealed at rest like an HMAC secret.
    let at_rest = stored_secrets(&server, backend, id).await;
    assert!(
        at_rest.starts_with("enc:v1:") && !at_rest.contains("whsk_"),
        "{at_rest}"
    );

    let ev = server
        .emit(json!({"type": "member.created", "data": {"name": "Ada"}}))
        .await;
    let (verdicts, got) = node_verdicts(&rx, 1, &[&public]).await;
    assert_eq!(verdicts, [true], "Node verifies the v1a signature");
    let sig = got.header("webhook-signature");
    assert!(sig.starts_with("v1a,") && !sig.contains(' '), "{sig}");
    // No shared secret exists, so no hex HMAC is sent.
    assert!(got.headers.get("x-webhook-signature").is_none());
    assert_eq!(got.json()["data"], json!({"name": "Ada"}));
    // The verifier is not a yes-machine: a changed body or another key fails.
    let other = server
        .webhook(json!({"url": rx.url("/other"), "events": ["nothing.*"], "signature_scheme": "ed25519"}))
        .await;
    let tampered = node_verify_ed25519(
        &[&public, other["public_key"].as_str().unwrap()],
        &got.header("webhook-id"),
        &got.header("webhook-timestamp"),
        b"{\"event\":\"member.created\"}",
        &sig,
    );
    assert_eq!(tampered, [false, false]);
    let wrong_key = node_verify_ed25519(
        &[other["public_key"].as_str().unwrap()],
        &got.header("webhook-id"),
        &got.header("webhook-timestamp"),
        &got.body,
        &sig,
    );
    assert_eq!(wrong_key, [false]);
    // The attempt's recorded headers redact the signature.
    let dlv = server.delivery_ids(ev["id"].as_str().unwrap()).await;
    let d = server
        .delivery_with_status(&dlv[0], "succeeded", WAIT)
        .await;
    assert_eq!(
        d["attempts"][0]["request_headers"]["webhook-signature"],
        "[redacted]"
    );

    // Bad input is refused with the field named.
    for (body, field) in [
        (
            json!({"url": rx.url("/h"), "signature_scheme": "ed25519", "secret": hook_secret()}),
            "secret",
        ),
        (
            json!({"url": rx.url("/h"), "signature_scheme": "rsa"}),
            "signature_scheme",
        ),
    ] {
        let (status, err) = server.post("/api/v1/webhooks", body).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["details"][0]["field"], field, "{err}");
    }
    // An hmac webhook says so, and has no public key.
    let plain = server
        .webhook(json!({"url": rx.url("/p"), "events": ["nothing.*"]}))
        .await;
    assert_eq!(plain["signature_scheme"], "hmac");
    assert_eq!(plain["public_key"], Value::Null);
    server.stop().await;
}

fn hook_secret() -> &'static str {
    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
}

async fn ed25519_rotation_and_scheme_changes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "signature_scheme": "ed25519"}))
        .await;
    let id = hook["id"].as_str().unwrap();
    let old = hook["public_key"].as_str().unwrap().to_owned();
    let (status, rotated) = server
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            json!({"grace_seconds": 3600}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["signature_scheme"], "ed25519");
    assert!(rotated.get("secret").is_none(), "{rotated}");
    let new = rotated["public_key"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whpk_") && new != old);
    let (_, read) = server.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(read["public_key"], new.as_str());

    server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let (verdicts, got) = node_verdicts(&rx, 1, &[&old, &new]).await;
    assert_eq!(
        verdicts,
        [true, true],
        "old and new keys both sign during the grace"
    );
    let sig = got.header("webhook-signature");
    assert_eq!(sig.split(' ').count(), 2, "{sig}");

    // Rotating into hmac keeps the ed25519 key signing beside the new secret for the grace.
    let (status, to_hmac) = server
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            json!({"grace_seconds": 3600, "signature_scheme": "hmac"}),
        )
        .await;
    assert_eq!(status, 200, "{to_hmac}");
    let secret = to_hmac["secret"].as_str().unwrap().to_owned();
    assert!(to_hmac.get("public_key").is_none());
    server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let (verdicts, got) = node_verdicts(&rx, 2, &[&new]).await;
    assert_eq!(verdicts, [true]);
    let (msg, ts, sig) = (
        got.header("webhook-id"),
        got.header("webhook-timestamp"),
        got.header("webhook-signature"),
    );
    let verified = verify_standard_signature(&secret, &msg, &ts, &got.body, &sig);
    assert!(verified, "the new hmac secret signs too: {sig}");
    assert!(!got.header("x-webhook-signature").is_empty());

    // PATCH to ed25519 switches at once: one v1a signature, with the key the answer shows.
    let (status, patched) = server
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            json!({"signature_scheme": "ed25519"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let third = patched["public_key"].as_str().unwrap().to_owned();
    assert!(patched.get("secret").is_none());
    server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let (verdicts, got) = node_verdicts(&rx, 3, &[&third, &new]).await;
    assert_eq!(verdicts, [true, false]);
    assert_eq!(got.header("webhook-signature").split(' ').count(), 1);
    // And back to hmac: the answer carries the new secret this once.
    let (status, back) = server
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            json!({"signature_scheme": "hmac"}),
        )
        .await;
    assert_eq!(status, 200, "{back}");
    assert!(back["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(back["public_key"], Value::Null);
    server.stop().await;
}
