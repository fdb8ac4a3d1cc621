//! Secrets stay secret: shown only at creation and rotation, never in another answer or a log
//! line, encrypted in the database, and readable again after a master-key rotation.

use std::process::Command;
use std::time::Duration;

use hookrelay::auth::keys::generate_api_key;
use hookrelay::secrets::Keyring;
use reqwest::Method;
use serde_json::json;

use crate::support::process::ServerProcess;
use crate::support::*;

fn db_files_text(dir: &std::path::Path) -> String {
    let mut all = String::new();
    for name in ["hookrelay.db", "hookrelay.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}

#[tokio::test]
async fn secrets_appear_only_at_creation_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hookrelay.db", dir.path().display());
    let master = Keyring::generate_key();
    let rx = Receiver::start().await;
    let server = ServerProcess::start(
        "secrets",
        "all",
        &db,
        &generate_api_key(),
        dir.path(),
        &[
            ("HOOKRELAY_MASTER_KEY", &master),
            ("RUST_LOG", "debug"),
            ("HOOKRELAY_RETRY_SCHEDULE", "0"),
        ],
    )
    .await;

    let created = server
        .webhook(json!({"url": rx.url("/h"), "events": ["member.*"]}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first = created["secret"].as_str().unwrap().to_owned();
    let mut answers = Vec::new();
    let call = |method: Method, path: String, body: Option<serde_json::Value>| {
        let server = &server;
        async move { server.call(method, &path, body).await }
    };
    answers.push(call(Method::GET, format!("/api/v1/webhooks/{id}"), None).await);
    answers.push(call(Method::GET, "/api/v1/webhooks".into(), None).await);
    answers.push(
        call(
            Method::PATCH,
            format!("/api/v1/webhooks/{id}"),
            Some(json!({"description": "crm"})),
        )
        .await,
    );
    answers.push(
        call(
            Method::POST,
            format!("/api/v1/webhooks/{id}/test"),
            Some(json!({})),
        )
        .await,
    );
    let (s, ev) = call(
        Method::POST,
        "/api/v1/events".into(),
        Some(json!({"type": "member.created", "data": {}})),
    )
    .await;
    assert_eq!(s, 202);
    eventually(Duration::from_secs(10), "two deliveries", || async {
        (rx.count() >= 2).then_some(())
    })
    .await;
    let (_, event) = call(
        Method::GET,
        format!("/api/v1/events/{}", ev["id"].as_str().unwrap()),
        None,
    )
    .await;
    let delivery = event["deliveries"][0]["id"].as_str().unwrap().to_owned();
    answers.push((200, event));
    for path in [
        "/api/v1/events".to_string(),
        "/api/v1/deliveries".into(),
        format!("/api/v1/deliveries/{delivery}"),
        "/api/v1/dlq".into(),
        format!("/api/v1/webhooks/{id}/stats"),
        "/api/v1/keys".into(),
        "/api/v1/tenants".into(),
        "/api/v1/openapi.json".into(),
    ] {
        answers.push(call(Method::GET, path, None).await);
    }
    // A source's secret, given at creation, is never shown again either.
    let source_secret = "gh-source-secret-7f3a9c";
    let (s, source) = call(
        Method::POST,
        "/api/v1/sources".into(),
        Some(json!({"name": "gh", "provider": "github", "secret": source_secret})),
    )
    .await;
    assert_eq!(s, 201, "{source}");
    let source_id = source["id"].as_str().unwrap().to_owned();
    answers.push(call(Method::GET, format!("/api/v1/sources/{source_id}"), None).await);
    answers.push(call(Method::GET, "/api/v1/sources".into(), None).await);
    answers.push(
        call(
            Method::PATCH,
            format!("/api/v1/sources/{source_id}"),
            Some(json!({"rate_limit_per_min": 500})),
        )
        .await,
    );
    let refused = server
        .client
        .post(format!("{}/ingest/gh", server.base))
        .header("X-GitHub-Event", "ping")
        .header("X-GitHub-Delivery", "d-1")
        .header("X-Hub-Signature-256", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    answers.push(
        call(
            Method::GET,
            format!("/api/v1/sources/{source_id}/requests"),
            None,
        )
        .await,
    );
    // A dashboard user's password appears nowhere, not even at creation.
    let password = "user-password-5d1e8b";
    let (s, user) = call(
        Method::POST,
        "/api/v1/users".into(),
        Some(json!({"email": "u@example.com", "password": password, "role": "viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{user}");
    answers.push((s, user));
    answers.push(call(Method::GET, "/api/v1/users".into(), None).await);
    let login = server
        .client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"email": "u@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let session: serde_json::Value = login.json().await.unwrap();
    let session_token = session["token"].as_str().unwrap().to_owned();

    let (s, rotated) = call(
        Method::POST,
        format!("/api/v1/webhooks/{id}/rotate-secret"),
        Some(json!({"grace_seconds": 60})),
    )
    .await;
    assert_eq!(s, 200);
    let second = rotated["secret"].as_str().unwrap().to_owned();
    answers.push(call(Method::GET, format!("/api/v1/webhooks/{id}"), None).await);
    answers.push(call(Method::GET, "/api/v1/webhooks".into(), None).await);
    let metrics = server.get_text("/metrics").await;

    for (status, body) in &answers {
        let text = body.to_string();
        assert!(*status < 500, "{text}");
        for secret in [first.as_str(), second.as_str(), source_secret, password] {
            assert!(
                !text.contains(secret),
                "a secret leaked into an answer: {text}"
            );
        }
    }
    assert!(!metrics.contains(&first));
    // The signature headers shown on attempts are redacted.
    let (_, d) = server
        .call(Method::GET, &format!("/api/v1/deliveries/{delivery}"), None)
        .await;
    assert_eq!(
        d["attempts"][0]["request_headers"]["webhook-signature"],
        "[redacted]"
    );

    // Nothing in the log, even at debug level; nothing in the database files.
    let log = server.log_text();
    assert!(log.len() > 100, "the log was captured");
    for needle in [
        first.as_str(),
        second.as_str(),
        master.as_str(),
        source_secret,
        password,
        session_token.as_str(),
    ] {
        assert!(!log.contains(needle), "a secret reached the log: {needle}");
    }
    let db_text = db_files_text(dir.path());
    assert!(db_text.contains(&id), "the database files were read");
    for needle in [
        first.as_str(),
        second.as_str(),
        source_secret,
        password,
        session_token.as_str(),
    ] {
        let key_part = needle.trim_start_matches("whsec_");
        assert!(
            !db_text.contains(key_part),
            "a secret is stored in plaintext: {needle}"
        );
    }
}

#[tokio::test]
async fn master_key_rotation_reencrypts_and_old_key_can_go() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hookrelay.db", dir.path().display());
    let (old, new) = (Keyring::generate_key(), Keyring::generate_key());
    let admin = generate_api_key();
    let rx = Receiver::start().await;
    let secret = {
        let server = ServerProcess::start(
            "before",
            "all",
            &db,
            &admin,
            dir.path(),
            &[("HOOKRELAY_MASTER_KEY", &old)],
        )
        .await;
        let hook = server.webhook(json!({"url": rx.url("/h")})).await;
        hook["secret"].as_str().unwrap().to_owned()
    };
    let out = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .arg("rotate-master-key")
        .env("HOOKRELAY_DATABASE_URL", &db)
        .env("HOOKRELAY_MASTER_KEY", &new)
        .env("HOOKRELAY_PREVIOUS_MASTER_KEYS", &old)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("re-encrypted 1 secret"), "{said}");

    // Only the new key from now on: the webhook still signs with its secret.
    let server = ServerProcess::start(
        "after",
        "all",
        &db,
        &admin,
        dir.path(),
        &[("HOOKRELAY_MASTER_KEY", &new)],
    )
    .await;
    let (s, _) = server
        .call(
            Method::POST,
            "/api/v1/events",
            Some(json!({"type": "a.b", "data": {}})),
        )
        .await;
    assert_eq!(s, 202);
    let got = eventually(Duration::from_secs(10), "delivery", || async {
        rx.requests().into_iter().next()
    })
    .await;
    assert!(verify_standard_signature(
        &secret,
        &got.header("webhook-id"),
        &got.header("webhook-timestamp"),
        &got.body,
        &got.header("webhook-signature")
    ));
}

#[test]
fn prod_refuses_to_start_without_a_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["serve"])
        .env("HOOKRELAY_ENV", "prod")
        .env_remove("HOOKRELAY_MASTER_KEY")
        .env(
            "HOOKRELAY_DATABASE_URL",
            format!("sqlite://{}/x.db", dir.path().display()),
        )
        .env("HOOKRELAY_LISTEN", "127.0.0.1:0")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOOKRELAY_MASTER_KEY"));
}

#[tokio::test]
async fn rotation_grace_ends_with_only_the_new_signature() {
    let server = TestServer::start(Backend::Sqlite).await;
    let rx = Receiver::start().await;
    let hook = server.webhook(json!({"url": rx.url("/h")})).await;
    let id = hook["id"].as_str().unwrap();
    let (_, rotated) = server
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            json!({"grace_seconds": 1}),
        )
        .await;
    let new = rotated["secret"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.emit(json!({"type": "a.b", "data": {}})).await;
    let got = eventually(Duration::from_secs(10), "delivery", || async {
        rx.requests().into_iter().next()
    })
    .await;
    let sig = got.header("webhook-signature");
    assert_eq!(
        sig.split(' ').count(),
        1,
        "after the grace period only the new secret signs: {sig}"
    );
    assert!(verify_standard_signature(
        new,
        &got.header("webhook-id"),
        &got.header("webhook-timestamp"),
        &got.body,
        &sig
    ));
    server.stop().await;
}
