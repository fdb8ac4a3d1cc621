//! A database outage with the real binary on a throwaway PostgreSQL cluster: while it is down
//! the API answers `503` with `Retry-After` in the contract's error body, promptly, never a 500;
//! `/ready` fails; when it is back everything resumes by itself and every accepted event is
//! delivered. And SQLite on a full disk: `503` too, reads go on, nothing corrupted or lost.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hookrelay::auth::keys::generate_api_key;
use serde_json::{json, Value};

use crate::support::pgcluster::PgCluster;
use crate::support::process::ServerProcess;
use crate::support::server::fresh_database_url;
use crate::support::*;

const SETTINGS: &[(&str, &str)] = &[
    ("HOOKRELAY_RETRY_SCHEDULE", "0,1,1,1,1,1,1,1,1,1"),
    ("HOOKRELAY_DELIVERY_TIMEOUT_MS", "2000"),
    ("HOOKRELAY_LEASE_GRACE_MS", "1000"),
];

/// Longest an answer may take while the database is down (the pool waits 5 s for a
/// connection, then gives up).
const BOUNDED: Duration = Duration::from_secs(9);

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

async fn call(
    node: &ServerProcess,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let started = Instant::now();
    let mut req = node
        .client
        .request(method, format!("{}{}", node.base, path))
        .bearer_auth(&node.admin_key)
        .timeout(Duration::from_secs(30));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .expect("the node answers during the outage");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let text = resp.text().await.unwrap_or_default();
    Answer {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        took: started.elapsed(),
    }
}

/// Emits one event per `seq`, each of which must be accepted; returns their ids.
async fn emit_accepted(
    node: &ServerProcess,
    seqs: std::ops::Range<usize>,
    when: &str,
) -> Vec<String> {
    let mut ids = Vec::new();
    for seq in seqs {
        let a = call(
            node,
            reqwest::Method::POST,
            "/api/v1/events",
            Some(emit_body(seq)),
        )
        .await;
        assert_eq!(a.status, 202, "{when}: {}", a.body);
        ids.push(a.body["id"].as_str().expect("id").to_owned());
    }
    ids
}

fn emit_body(seq: usize) -> Value {
    json!({"type": "outage.test", "data": {"seq": seq}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_and_recovers_losing_nothing() {
    let cluster = PgCluster::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    let node = ServerProcess::start(
        "node",
        "all",
        &cluster.url(),
        &admin_key,
        dir.path(),
        SETTINGS,
    )
    .await;
    node.webhook(json!({"url": rx.url("/outage")})).await;

    let mut accepted: Vec<String> = Vec::new();
    accepted.extend(emit_accepted(&node, 0..20, "before the outage").await);
    eventually(
        Duration::from_secs(20),
        "the first events delivered",
        || async { (rx.count() >= 20).then_some(()) },
    )
    .await;

    cluster.stop();
    let down_at = Instant::now();

    // Every kind of call answers 503 in the contract's shape, with Retry-After, in bounded time.
    let probes: [(reqwest::Method, &str, Option<Value>); 4] = [
        (
            reqwest::Method::POST,
            "/api/v1/events",
            Some(emit_body(100)),
        ),
        (reqwest::Method::GET, "/api/v1/webhooks", None),
        (reqwest::Method::GET, "/api/v1/deliveries", None),
        (
            reqwest::Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": rx.url("/x")})),
        ),
    ];
    for (method, path, body) in probes {
        let a = call(&node, method.clone(), path, body).await;
        assert_eq!(
            a.status, 503,
            "{method} {path} while the database is down: {}",
            a.body
        );
        assert_eq!(
            a.body["error"]["code"], "unavailable",
            "{method} {path}: {}",
            a.body
        );
        assert!(
            a.body["error"]["request_id"]
                .as_str()
                .is_some_and(|r| r.starts_with("req_")),
            "{method} {path}: {}",
            a.body
        );
        assert!(
            a.retry_after
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|s| s >= 1),
            "{method} {path}: no Retry-After on the 503"
        );
        assert!(
            a.took < BOUNDED,
            "{method} {path} took {:?} to answer",
            a.took
        );
    }
    let ready = call(&node, reqwest::Method::GET, "/ready", None).await;
    assert_eq!(
        ready.status, 503,
        "/ready while the database is down: {}",
        ready.body
    );
    let health = call(&node, reqwest::Method::GET, "/health", None).await;
    assert_eq!(
        health.status, 503,
        "/health while the database is down: {}",
        health.body
    );
    eprintln!(
        "outage: database down; every probe answered 503 within {:?}",
        down_at.elapsed()
    );

    cluster.start_again();
    let up_at = Instant::now();

    // The node resumes by itself: emits are accepted again without a restart.
    let mut seq = 200;
    let resumed = eventually(
        Duration::from_secs(30),
        "emits accepted again after the outage",
        || {
            seq += 1;
            let body = emit_body(seq);
            let node = &node;
            async move {
                let a = call(node, reqwest::Method::POST, "/api/v1/events", Some(body)).await;
                assert!(
                    a.status == 202 || a.status == 503,
                    "while the database comes back: {} {}",
                    a.status,
                    a.body
                );
                (a.status == 202).then(|| a.body["id"].as_str().expect("id").to_owned())
            }
        },
    )
    .await;
    accepted.push(resumed);
    let resumed_in = up_at.elapsed();
    accepted.extend(emit_accepted(&node, 300..320, "after the outage").await);
    let ready = call(&node, reqwest::Method::GET, "/ready", None).await;
    assert_eq!(ready.status, 200, "/ready after the outage: {}", ready.body);

    // Every accepted event is delivered; the workers came back without help.
    let wanted: HashSet<String> = accepted.iter().cloned().collect();
    eventually(
        Duration::from_secs(30),
        "every accepted event delivered",
        || async {
            let seen: HashSet<String> = rx
                .requests()
                .iter()
                .filter_map(|r| r.json()["eventId"].as_str().map(String::from))
                .collect();
            wanted.is_subset(&seen).then_some(())
        },
    )
    .await;
    let metrics = node.get_text("/metrics").await;
    let server_errors: Vec<String> = metrics
        .lines()
        .filter(|l| l.starts_with("hookrelay_http_requests_total{") && l.contains("status=\"5"))
        .filter(|l| !l.contains("status=\"503\""))
        .map(String::from)
        .collect();
    assert!(
        server_errors.is_empty(),
        "answers other than 503 among the 5xx: {server_errors:?}"
    );
    eprintln!(
        "outage: accepted again {resumed_in:?} after the database was back; {} events delivered",
        wanted.len()
    );
}

/// SQLite on a full disk: every file the node writes is capped (`RLIMIT_FSIZE`), so once the
/// database outgrows it writes fail as on a full disk. Emits then answer `503` with
/// `Retry-After` in the contract's body, reads still answer, and after a `kill -9` and a restart
/// with room again the database is intact and every event accepted before is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_answers_503_and_corrupts_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = fresh_database_url(Backend::Sqlite, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    let limited = ServerProcess::start_limited(
        "full",
        "all",
        &db,
        &admin_key,
        dir.path(),
        SETTINGS,
        Some(2 * 1024 * 1024),
    )
    .await;
    limited.webhook(json!({"url": rx.url("/full")})).await;
    // 16 KiB events until the disk is full: about a hundred fit.
    let padding = "x".repeat(16 * 1024);
    let mut accepted: Vec<String> = Vec::new();
    let refused = loop {
        assert!(accepted.len() < 2000, "the file size limit never bit");
        let body =
            json!({"type": "outage.test", "data": {"seq": accepted.len(), "padding": padding}});
        let a = call(
            &limited,
            reqwest::Method::POST,
            "/api/v1/events",
            Some(body),
        )
        .await;
        match a.status {
            202 => accepted.push(a.body["id"].as_str().expect("id").to_owned()),
            _ => break a,
        }
    };
    eprintln!(
        "disk full after {} accepted events: {} {}",
        accepted.len(),
        refused.status,
        refused.body
    );
    assert!(!accepted.is_empty(), "nothing fitted before the limit");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["code"], "unavailable",
        "{}",
        refused.body
    );
    assert!(
        refused
            .retry_after
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1),
        "no Retry-After on the 503"
    );
    assert!(refused.took < BOUNDED, "the 503 took {:?}", refused.took);
    // Reads need no room.
    let read = call(
        &limited,
        reqwest::Method::GET,
        &format!("/api/v1/events/{}", accepted[0]),
        None,
    )
    .await;
    assert_eq!(read.status, 200, "a read on a full disk: {}", read.body);
    let mut limited = limited;
    limited.kill();

    let node = ServerProcess::start("roomy", "all", &db, &admin_key, dir.path(), SETTINGS).await;
    let want: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    eventually(
        Duration::from_secs(60),
        "every accepted event delivered after the restart",
        || async {
            let got: HashSet<String> = rx
                .requests()
                .iter()
                .filter_map(|r| r.json()["eventId"].as_str().map(String::from))
                .collect();
            want.iter().all(|id| got.contains(*id)).then_some(())
        },
    )
    .await;
    let a = call(
        &node,
        reqwest::Method::POST,
        "/api/v1/events",
        Some(emit_body(1)),
    )
    .await;
    assert_eq!(a.status, 202, "emits accepted again: {}", a.body);
    let mut node = node;
    node.terminate(Duration::from_secs(30)).await;

    let pool = sqlx::SqlitePool::connect(&db)
        .await
        .expect("open the database");
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .expect("integrity check");
    assert_eq!(check, "ok", "the database after the full disk");
}
