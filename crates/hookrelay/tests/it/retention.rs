//! `hookrelay prune --older-than` on the real binary, beside a running server: it removes old
//! events with their deliveries, attempts and inbound requests, keeps any event with a pending
//! delivery, and prints what it removed.

use std::process::Command;
use std::time::{Duration, Instant};

use hookrelay::auth::keys::generate_api_key;
use serde_json::json;

use crate::support::process::ServerProcess;
use crate::support::server::fresh_database_url;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_old_data_and_keeps_pending_deliveries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Sqlite, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    let server = ServerProcess::start("prune", "all", &db_url, &admin_key, dir.path(), &[]).await;
    server
        .webhook(json!({"url": rx.url("/p"), "events": ["p.*"]}))
        .await;
    server
        .webhook(json!({"url": rx.url("/held"), "events": ["held.*"], "active": false}))
        .await;
    let (s, body) = server
        .post(
            "/api/v1/sources",
            json!({"name": "old-src", "provider": "none"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, done) = server
        .post("/api/v1/events", json!({"type": "p.one", "data": {}}))
        .await;
    assert_eq!(s, 202, "{done}");
    let (s, held) = server
        .post("/api/v1/events", json!({"type": "held.one", "data": {}}))
        .await;
    assert_eq!(s, 202, "{held}");
    let ingested = server
        .client
        .post(format!("{}/ingest/old-src", server.base))
        .json(&json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ingested.status(), 202);
    let emitted = Instant::now();
    eventually(Duration::from_secs(20), "the p.one delivery", || async {
        (rx.count() == 1).then_some(())
    })
    .await;
    // Everything above is now older than a second.
    eventually(Duration::from_secs(5), "a second to pass", || async {
        (emitted.elapsed() > Duration::from_millis(1100)).then_some(())
    })
    .await;

    let prune = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .arg("prune")
            .args(args)
            .env("HOOKRELAY_DATABASE_URL", &db_url)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = prune(&["--older-than", "1s"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(
            "pruned 2 events, 1 deliveries, 1 attempts, 1 inbound requests (older than 1s)"
        ),
        "{said}"
    );
    let (s, _) = server
        .get(&format!("/api/v1/events/{}", done["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, 404, "the delivered event is gone");
    let (s, kept) = server
        .get(&format!("/api/v1/events/{}", held["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, 200, "the event with a pending delivery stays: {kept}");
    assert_eq!(kept["deliveries"][0]["status"], "pending");

    // Again: nothing left to remove. A bad argument is refused, saying why.
    let out = prune(&["--older-than", "1s"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("pruned 0 events"));
    let out = prune(&["--older-than", "a week"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--older-than"));
}

/// A tenant's `retention_days`: the server default unless set; out of range is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_have_retention_days() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.retention_days = 45).await;
    let (s, t) = server
        .post("/api/v1/tenants", json!({"name": "keeps-default"}))
        .await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["retention_days"], 45);
    let (s, t) = server
        .post(
            "/api/v1/tenants",
            json!({"name": "keeps-a-week", "retention_days": 7}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["retention_days"], 7);
    let id = t["id"].as_str().unwrap();
    let (s, t) = server
        .patch(
            &format!("/api/v1/tenants/{id}"),
            json!({"retention_days": 90}),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["retention_days"], 90);
    let (s, e) = server
        .patch(
            &format!("/api/v1/tenants/{id}"),
            json!({"retention_days": 0}),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["error"]["details"][0]["field"], "retention_days");
}
