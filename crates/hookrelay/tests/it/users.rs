//! Dashboard people: the first start leaves a working account and says how to use it; users are
//! created by admins, log in for an expiring token, log out, and are throttled when guessing.

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::process::ServerProcess;
use crate::support::server::fresh_database_url;
use crate::support::{Backend, TestServer};

const ADMIN_PASSWORD: &str = "bootstrap-password-123";

async fn start(backend: Backend, max_failures: u32) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.admin_password = Some(ADMIN_PASSWORD.into());
        c.login_max_failures = max_failures;
    })
    .await
}

async fn login(server: &TestServer, email: &str, password: &str) -> reqwest::Response {
    server
        .client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login request")
}

async fn token(server: &TestServer, email: &str, password: &str) -> String {
    let r = login(server, email, password).await;
    assert_eq!(r.status(), 200, "login {email}");
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().expect("token").to_owned()
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
}

/// The line after `label` in the first-start banner.
fn banner_value(log: &str, label: &str) -> Option<String> {
    let line = log.lines().find(|l| l.trim_start().starts_with(label))?;
    let value = line.trim_start().strip_prefix(label)?.trim();
    Some(value.split_whitespace().next()?.to_owned())
}

#[tokio::test]
async fn first_start_prints_a_working_login() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database_url(Backend::Sqlite, dir.path()).await;
    let admin_key = hookrelay::auth::keys::generate_api_key();
    let server = ServerProcess::start("first", "all", &db_url, &admin_key, dir.path(), &[]).await;
    let log = server.log_text();
    let email = banner_value(&log, "email:").unwrap_or_else(|| panic!("no email in:\n{log}"));
    let password =
        banner_value(&log, "password:").unwrap_or_else(|| panic!("no password in:\n{log}"));
    assert_eq!(email, "admin@localhost");
    assert!(log.contains("POST /api/v1/auth/login"), "{log}");

    let r = server
        .client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("hrs_"), "{body}");
    // The bootstrap account is a server admin: it manages tenants.
    let r = server
        .client
        .post(format!("{}/api/v1/tenants", server.base))
        .bearer_auth(token)
        .json(&json!({"name": "second-team"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    drop(server);

    // A restart on the same store creates no second account and prints no password.
    let again = restart(&db_url, &admin_key, dir.path()).await;
    assert!(
        !again.log_text().contains("password:"),
        "{}",
        again.log_text()
    );
}

async fn restart(db_url: &str, admin_key: &str, dir: &Path) -> ServerProcess {
    ServerProcess::start("again", "all", db_url, admin_key, dir, &[]).await
}

async fn sessions_work(backend: Backend) {
    let server = start(backend, 5).await;
    // An admin creates an editor; the answer never holds the password or its hash.
    let (s, user) = server
        .post(
            "/api/v1/users",
            json!({"email": "Ed@Example.com", "password": "editor-password-1", "role": "editor"}),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    assert_eq!(user["email"], "ed@example.com", "stored lower-cased");
    assert_eq!(user["role"], "editor");
    let text = user.to_string();
    assert!(
        !text.contains("editor-password-1") && !text.contains("argon2"),
        "{text}"
    );
    let (s, list) = server.get("/api/v1/users").await;
    assert_eq!(s, 200);
    let emails: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ed@example.com", "admin@localhost"]);
    assert!(!list.to_string().contains("argon2"));

    // Login is case-insensitive on the email; the token expires per the setting.
    let r = login(&server, "ED@example.com", "editor-password-1").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .expect("RFC 3339 expiry");
    let ttl = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (43_100..=43_200).contains(&ttl),
        "12 h by default, got {ttl} s"
    );

    // The session acts with the user's role in the user's tenant.
    let (s, b) = server
        .call_as(
            &token,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": "https://example.com/h"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = server
        .call_as(&token, Method::GET, "/api/v1/keys", None)
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = server
        .call_as(&token, Method::GET, "/api/v1/tenants", None)
        .await;
    assert_error(s, &b, 403, "forbidden");

    // Logout revokes that token and only that one.
    let other = self::token(&server, "ed@example.com", "editor-password-1").await;
    let (s, _) = server
        .call_as(&token, Method::POST, "/api/v1/auth/logout", None)
        .await;
    assert_eq!(s, 204);
    let (s, b) = server
        .call_as(&token, Method::GET, "/api/v1/webhooks", None)
        .await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, _) = server
        .call_as(&other, Method::GET, "/api/v1/webhooks", None)
        .await;
    assert_eq!(s, 200);
    // An API key is not a session.
    let (s, b) = server.call(Method::POST, "/api/v1/auth/logout", None).await;
    assert_error(s, &b, 409, "conflict");

    // Deleting the user ends their remaining session at once.
    let id = user["id"].as_str().unwrap();
    let (s, _) = server
        .call(Method::DELETE, &format!("/api/v1/users/{id}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, b) = server
        .call_as(&other, Method::GET, "/api/v1/webhooks", None)
        .await;
    assert_error(s, &b, 401, "unauthorized");
    let r = login(&server, "ed@example.com", "editor-password-1").await;
    assert_eq!(r.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn sessions_work_on_sqlite() {
    sessions_work(Backend::Sqlite).await;
}

#[tokio::test]
async fn sessions_work_on_postgres() {
    sessions_work(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_logins_and_bad_users_get_clear_errors() {
    let server = start(Backend::Sqlite, 50).await;
    // Wrong password and unknown email answer alike: nothing tells which accounts exist.
    let wrong = login(&server, "admin@localhost", "not-the-password").await;
    let unknown = login(&server, "nobody@example.com", "not-the-password").await;
    assert_eq!(
        (wrong.status().as_u16(), unknown.status().as_u16()),
        (401, 401)
    );
    let (w, u): (Value, Value) = (wrong.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(w["error"]["message"], u["error"]["message"]);
    assert_eq!(w["error"]["code"], "unauthorized");

    for (body, code) in [
        (json!({"email": "admin@localhost"}), "validation_failed"),
        (
            json!({"email": "a@b", "password": "x", "extra": 1}),
            "validation_failed",
        ),
        (json!([1]), "invalid_json"),
    ] {
        let r = server
            .client
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], code, "{body}: {s} {b}");
    }

    // Every field problem is named at once.
    let (s, b) = server
        .post(
            "/api/v1/users",
            json!({"email": "not-an-email", "password": "short", "role": "owner"}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    let fields: Vec<&str> = b["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password", "role"], "{b}");
    // Emails are unique whatever their case.
    let (s, b) = server
        .post(
            "/api/v1/users",
            json!({"email": "ADMIN@localhost", "password": "long-enough-pass", "role": "viewer"}),
        )
        .await;
    assert_error(s, &b, 409, "conflict");
    let (s, b) = server
        .call(Method::DELETE, "/api/v1/users/usr_nope", None)
        .await;
    assert_error(s, &b, 404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_account_and_per_address() {
    let server = start(Backend::Sqlite, 2).await;
    let (s, _) = server
        .post(
            "/api/v1/users",
            json!({"email": "vic@example.com", "password": "viewer-password-1", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, 201);
    // Two failures lock the account: even the right password now answers 429.
    for _ in 0..2 {
        assert_eq!(
            login(&server, "admin@localhost", "guess-guess-guess")
                .await
                .status(),
            401
        );
    }
    let r = login(&server, "admin@localhost", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "rate_limited");
    // Another account is not locked by it…
    let _ = token(&server, "vic@example.com", "viewer-password-1").await;
    // …until this address has sprayed four times the account limit (8) in all.
    for i in 0..6 {
        let email = format!("spray{i}@example.com");
        assert_eq!(
            login(&server, &email, "guess-guess-guess").await.status(),
            401
        );
    }
    let r = login(&server, "vic@example.com", "viewer-password-1").await;
    assert_eq!(r.status(), 429, "the address is locked out");
    server.stop().await;
}

/// Two nodes on one PostgreSQL share the login throttle: failures made on either count
/// together, and the lockout then holds on both, even for the right password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttle_counts_failures_on_every_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = fresh_database_url(Backend::Postgres, dir.path()).await;
    let key = hookrelay::auth::keys::generate_api_key();
    let settings = [
        ("HOOKRELAY_ADMIN_EMAIL", "ops@example.com"),
        ("HOOKRELAY_ADMIN_PASSWORD", "correct-horse-battery"),
        ("HOOKRELAY_LOGIN_MAX_FAILURES", "4"),
        (
            "HOOKRELAY_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ];
    let a = ServerProcess::start("a", "all", &db, &key, dir.path(), &settings).await;
    let b = ServerProcess::start("b", "all", &db, &key, dir.path(), &settings).await;
    let attempt = |node: &ServerProcess, password: &'static str| {
        let req = node
            .client
            .post(format!("{}/api/v1/auth/login", node.base))
            .json(&json!({"email": "ops@example.com", "password": password}));
        async move { req.send().await.expect("login request") }
    };
    // Two failures on each node: four in all, the limit.
    for node in [&a, &b, &a, &b] {
        assert_eq!(attempt(node, "wrong-password-123").await.status(), 401);
    }
    for node in [&a, &b] {
        let r = attempt(node, "correct-horse-battery").await;
        assert_eq!(
            r.status(),
            429,
            "{}: locked out after failures on both nodes",
            node.name
        );
        assert!(r.headers().contains_key("retry-after"));
    }
}
