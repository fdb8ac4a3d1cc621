//! `GET /api/v1/stream` and `GET /api/v1/me`: the dashboard's live view of events and
//! deliveries (tenant-scoped, role-checked, ended by shutdown), relayed across nodes on
//! PostgreSQL; and who a token is.

use std::time::{Duration, Instant};

use hookrelay::auth::keys::generate_api_key;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::process::ServerProcess;
use crate::support::server::fresh_database_url;
use crate::support::sse::SseReader;
use crate::support::*;

both_backends!(
    stream_shows_events_and_each_delivery_step,
    stream_is_scoped_to_the_tenant_and_role_checked,
    me_says_who_the_token_is,
);

const WAIT: Duration = Duration::from_secs(20);

/// A key with `role` in a new tenant `name`.
async fn tenant_key(server: &TestServer, name: &str, role: &str) -> (String, String) {
    let (s, t) = server.post("/api/v1/tenants", json!({"name": name})).await;
    assert_eq!(s, 201, "{t}");
    let tenant = t["id"].as_str().unwrap().to_owned();
    let r = server
        .client
        .post(format!("{}/api/v1/keys", server.base))
        .bearer_auth(&server.admin_key)
        .header("X-Tenant-Id", &tenant)
        .json(&json!({"name": "k", "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let key = r.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    (tenant, key)
}

fn is(name: &str, kind: &str, data: &Value, id: &str) -> bool {
    name == kind && data["id"] == id
}

async fn stream_shows_events_and_each_delivery_step(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(500).body("down for maintenance")]);
    // One retry, a second after the first attempt fails.
    let hook = server
        .webhook(
            json!({"url": rx.url("/live"), "events": ["member.*"], "retry_schedule_seconds": [1]}),
        )
        .await;
    let mut stream = SseReader::open(&server.base, &server.admin_key).await;
    let ready = stream.until(WAIT, "ready", |n, _| n == "ready").await;
    let (_, me) = server.get("/api/v1/me").await;
    assert_eq!(ready["tenant_id"], me["tenant_id"]);

    let ev = server
        .emit(json!({"type": "member.created", "data": {"id": 7}}))
        .await;
    let event_id = ev["id"].as_str().unwrap();
    let seen = stream
        .until(WAIT, "the event", |n, d| is(n, "event", d, event_id))
        .await;
    assert_eq!(seen["type"], "member.created");
    assert_eq!(seen["deliveries"], 1);
    assert!(seen["created_at"].as_str().unwrap().ends_with('Z'));

    let created = stream
        .until(WAIT, "the new delivery", |n, d| {
            n == "delivery" && d["event_id"] == event_id
        })
        .await;
    let delivery_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "pending");
    assert_eq!(created["attempts"], 0);
    assert_eq!(created["webhook_id"], hook["id"]);
    assert_eq!(created["event_type"], "member.created");
    assert!(created["created_at"].is_string());

    // The failed first attempt, then the retry's success.
    let failed = stream
        .until(WAIT, "the failed attempt", |n, d| {
            is(n, "delivery", d, &delivery_id) && d["attempts"] == 1
        })
        .await;
    assert_eq!(failed["status"], "pending");
    assert_eq!(failed["last_response_status"], 500);
    assert_eq!(failed["last_error"], "receiver answered HTTP 500");
    assert!(failed["next_attempt_at"].is_string());
    assert!(failed["created_at"].is_null());
    let ok = stream
        .until(WAIT, "the retry", |n, d| {
            is(n, "delivery", d, &delivery_id) && d["attempts"] == 2
        })
        .await;
    assert_eq!(ok["status"], "succeeded");
    assert_eq!(ok["last_response_status"], 200);
    assert!(ok["next_attempt_at"].is_null());

    // A manual test send shows up too.
    let (s, test) = server
        .post(
            &format!("/api/v1/webhooks/{}/test", hook["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{test}");
    let test_id = test["delivery_id"].as_str().unwrap();
    stream
        .until(WAIT, "the test delivery's result", |n, d| {
            is(n, "delivery", d, test_id) && d["status"] == "succeeded"
        })
        .await;

    // Shutdown ends open streams: a stream must not hold the server open.
    let stopped = tokio::time::timeout(Duration::from_secs(10), server.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited on the open stream");
    assert!(
        stream.next(Instant::now() + WAIT).await.is_none(),
        "the stream ends at shutdown"
    );
}

async fn stream_is_scoped_to_the_tenant_and_role_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let (_, key_a) = tenant_key(&server, "a", "admin").await;
    let (tenant_b, viewer_b) = tenant_key(&server, "b", "viewer").await;
    for key in [&key_a, &server.admin_key] {
        let (s, body) = server
            .call_as(
                key,
                Method::POST,
                "/api/v1/webhooks",
                Some(json!({"url": rx.url("/x")})),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let mut b = SseReader::open(&server.base, &viewer_b).await;
    let ready = b.until(WAIT, "ready", |n, _| n == "ready").await;
    assert_eq!(
        ready["tenant_id"], tenant_b,
        "a viewer may watch its tenant"
    );

    // Tenant A's event reaches A's stream, never B's.
    let mut a = SseReader::open(&server.base, &key_a).await;
    a.until(WAIT, "ready", |n, _| n == "ready").await;
    let (s, ev) = server
        .call_as(
            &key_a,
            Method::POST,
            "/api/v1/events",
            Some(json!({"type": "a.thing", "data": {}})),
        )
        .await;
    assert_eq!(s, 202, "{ev}");
    a.until(WAIT, "A's event", |n, d| {
        is(n, "event", d, ev["id"].as_str().unwrap())
    })
    .await;
    a.until(WAIT, "A's delivery result", |n, d| {
        n == "delivery" && d["event_id"] == ev["id"] && d["status"] == "succeeded"
    })
    .await;
    assert!(
        b.next(Instant::now() + Duration::from_millis(500))
            .await
            .is_none(),
        "tenant B saw tenant A's changes"
    );

    // A publisher may only emit; no token is no stream.
    let (_, publisher) = tenant_key(&server, "c", "publisher").await;
    let (s, body) = server
        .call_as(&publisher, Method::GET, "/api/v1/stream", None)
        .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let r = server
        .client
        .get(format!("{}/api/v1/stream", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    server.stop().await;
}

async fn me_says_who_the_token_is(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (s, me) = server.get("/api/v1/me").await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["tenant_name"], "default");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["server_admin"], true);
    assert_eq!(me["principal"]["kind"], "api_key");
    assert!(me["principal"]["id"].as_str().unwrap().starts_with("key_"));

    // A dashboard user, signed in.
    let (s, user) = server
        .post(
            "/api/v1/users",
            json!({"email": "Viewer@Example.com", "password": "correct horse battery", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    let (s, login) = server
        .post(
            "/api/v1/auth/login",
            json!({"email": "viewer@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(s, 200, "{login}");
    let token = login["token"].as_str().unwrap();
    let (s, me) = server.call_as(token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["server_admin"], false);
    assert_eq!(
        me["principal"],
        json!({"kind": "user", "id": user["id"], "email": "viewer@example.com"})
    );

    let r = server
        .client
        .get(format!("{}/api/v1/me", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    server.stop().await;
}

/// On PostgreSQL with split roles, attempts are recorded by the worker process, yet the api
/// process's stream shows them: changes are relayed between nodes while someone watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_an_api_node_shows_attempts_made_by_a_worker_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Postgres, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    let api = ServerProcess::start("api", "api", &db_url, &admin_key, dir.path(), &[]).await;
    let _worker =
        ServerProcess::start("worker", "worker", &db_url, &admin_key, dir.path(), &[]).await;
    api.webhook(json!({"url": rx.url("/relayed")})).await;

    let mut stream = SseReader::open(&api.base, &admin_key).await;
    stream.until(WAIT, "ready", |n, _| n == "ready").await;
    // The worker starts relaying once it hears of the watcher; emit until a result arrives.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut emitted = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no attempt result relayed from the worker for {} events",
            emitted.len()
        );
        let (s, ev) = api
            .post("/api/v1/events", json!({"type": "relay.test", "data": {}}))
            .await;
        assert_eq!(s, 202, "{ev}");
        emitted.push(ev["id"].as_str().unwrap().to_owned());
        let round = Instant::now() + Duration::from_secs(2);
        let mut relayed = None;
        while let Some((name, data)) = stream.next(round).await {
            let ours = data["event_id"]
                .as_str()
                .is_some_and(|id| emitted.iter().any(|e| e == id));
            if name == "delivery" && data["status"] == "succeeded" && ours {
                relayed = Some(data);
                break;
            }
        }
        if let Some(d) = relayed {
            assert_eq!(d["attempts"], 1);
            assert_eq!(d["last_response_status"], 200);
            break;
        }
    }
    assert!(rx.count() >= 1);
}
