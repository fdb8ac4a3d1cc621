//! The dashboard: its routes answer with the right types and strict security headers, and the
//! page works end to end in a real headless Chromium driven by `tests/browser/dashboard.spec.mjs`.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

async fn fetch(server: &TestServer, path: &str) -> reqwest::Response {
    server
        .client
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .expect("request reaches the server")
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn assert_security_headers(r: &reqwest::Response, what: &str) {
    let csp = header(r, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP lacks {directive}: {csp:?}"
        );
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert_eq!(header(r, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(r, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header(r, "x-frame-options"), "DENY", "{what}");
    assert_eq!(header(r, "cache-control"), "no-cache", "{what}");
}

/// The modules a script imports (`from "./x.js"`), resolved against its own path.
fn imports(base: &str, source: &str) -> Vec<String> {
    let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
    source
        .split("from \"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(p, _)| p))
        .filter(|p| p.starts_with('.'))
        .map(|p| {
            let mut parts: Vec<&str> = dir.split('/').collect();
            for seg in p.split('/') {
                match seg {
                    "." => {}
                    ".." => {
                        parts.pop();
                    }
                    s => parts.push(s),
                }
            }
            parts.join("/")
        })
        .collect()
}

#[tokio::test]
async fn dashboard_is_served_with_strict_headers() {
    let server = TestServer::start(Backend::Sqlite).await;

    let page = fetch(&server, "/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_security_headers(&page, "GET /");
    let etag = header(&page, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag:?}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/dashboard/app.js"></script>"#));
    assert!(html.contains(r#"href="/dashboard/app.css""#));
    // The CSP forbids inline script and style; the page must not need them.
    assert!(!html.contains("<style"), "inline <style> in index.html");
    assert!(!html.contains("style="), "a style attribute in index.html");
    assert_eq!(
        html.matches("<script").count(),
        1,
        "one external module only"
    );

    // A revalidation with the ETag costs nothing.
    let again = server
        .client
        .get(format!("{}/", server.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert_security_headers(&again, "304");

    // Every module the page imports, transitively, is served as JavaScript; none builds markup
    // from strings (API data is shown only as text).
    let mut queue = vec!["dashboard/app.js".to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = fetch(&server, &format!("/{path}")).await;
        assert_eq!(r.status(), 200, "/{path}");
        assert_eq!(
            header(&r, "content-type"),
            "text/javascript; charset=utf-8",
            "/{path}"
        );
        assert_security_headers(&r, &path);
        let source = r.text().await.unwrap();
        // The vendored chart library sizes its canvas through the CSSOM (which the CSP allows);
        // our own modules style only through classes.
        let vendored = path.starts_with("dashboard/vendor/");
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            ".style.",
        ] {
            if vendored && banned == ".style." {
                continue;
            }
            assert!(!source.contains(banned), "/{path} uses {banned}");
        }
        queue.extend(imports(&path, &source));
    }
    assert!(
        seen.len() >= 5 && seen.contains("dashboard/views/deliveries.js"),
        "{seen:?}"
    );

    // The vendored uPlot is served exactly as pinned in dashboard/vendor/uplot/VENDORED.md.
    assert!(
        seen.contains("dashboard/vendor/uplot/uPlot.esm.js"),
        "{seen:?}"
    );
    for (path, sha256) in [
        (
            "uPlot.esm.js",
            "5dd9b3281aa64b461b42d9945f6adb2649d346502b12281a9ae0d46599a80eba",
        ),
        (
            "uPlot.min.css",
            "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
        ),
    ] {
        let r = fetch(&server, &format!("/dashboard/vendor/uplot/{path}")).await;
        assert_eq!(r.status(), 200, "{path}");
        let body = r.bytes().await.unwrap();
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)),
            sha256,
            "{path} differs from the pinned copy"
        );
    }
    assert!(html.contains(r#"href="/dashboard/vendor/uplot/uPlot.min.css""#));

    for (path, content_type) in [
        ("/dashboard/app.css", "text/css; charset=utf-8"),
        ("/dashboard/favicon.svg", "image/svg+xml"),
        ("/dashboard/index.html", "text/html; charset=utf-8"),
    ] {
        let r = fetch(&server, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "content-type"), content_type, "{path}");
        assert_security_headers(&r, path);
    }

    // Unknown assets are a 404 in the contract's error shape, never the page.
    for path in [
        "/dashboard/nope.js",
        "/dashboard/../Cargo.toml",
        "/dashboard/views/",
        "/dashboard/%2e%2e/src/main.rs",
    ] {
        let r = fetch(&server, path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert!(
            header(&r, "content-type").starts_with("application/json"),
            "{path}"
        );
        assert!(!header(&r, "x-request-id").is_empty(), "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
        assert!(body["error"]["request_id"].as_str().is_some(), "{body}");
    }
    let (status, body) = server.call(Method::POST, "/", Some(json!({}))).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed");

    // The API is untouched: JSON answers, its own 404s, no dashboard headers.
    let r = fetch(&server, "/api/v1/nope").await;
    assert_eq!(r.status(), 404);
    assert!(header(&r, "content-type").starts_with("application/json"));
    assert!(header(&r, "content-security-policy").is_empty());
    let r = fetch(&server, "/health").await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("application/json"));
    let (status, _) = server.get("/api/v1/webhooks").await;
    assert_eq!(status, 200);
    let unauthenticated = fetch(&server, "/api/v1/webhooks").await;
    assert_eq!(unauthenticated.status(), 401);
    let (status, doc) = server.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let description = doc["info"]["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("GET /"),
        "the OpenAPI document mentions the dashboard"
    );
    assert!(
        doc["paths"]["/"]["get"].is_object(),
        "GET / is in the OpenAPI paths"
    );
    server.stop().await;
}

// ---- The browser test -------------------------------------------------------------------

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[tokio::test]
async fn dashboard_scripts_pass_their_unit_tests() {
    let output = tokio::process::Command::new("node")
        .args(["--test", "units.test.mjs"])
        .current_dir(browser_dir())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run node (Node.js 20 or later must be installed)");
    assert!(
        output.status.success(),
        "node --test units.test.mjs failed\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `target/dashboard-screenshots` (next to the build's own temporary folder).
fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or_else(|| Path::new("target"))
        .join("dashboard-screenshots")
}

/// A control endpoint for the browser script: `POST /fail` and `POST /succeed` set what the
/// failing webhook's receiver answers from now on.
async fn control_server(receiver: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let receiver = receiver.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let receiver = receiver.clone();
                    async move {
                        let status = match req.uri().path() {
                            "/succeed" => {
                                receiver.set_default(Reply::status(200).body("thanks"));
                                200
                            }
                            "/fail" => {
                                receiver.set_default(failing_reply());
                                200
                            }
                            _ => 404,
                        };
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .expect("a valid response"),
                        )
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// A receiver in trouble, answering HTML a browser must not render.
fn failing_reply() -> Reply {
    Reply::status(500).body("<b>upstream exploded</b>")
}

async fn create_user(server: &TestServer, email: &str, password: &str, role: &str) {
    let (status, body) = server
        .post(
            "/api/v1/users",
            json!({"email": email, "password": password, "role": role}),
        )
        .await;
    assert_eq!(status, 201, "create {email}: {body}");
}

/// Waits until `n` deliveries have `status`.
async fn wait_for_count(server: &TestServer, status: &str, n: usize) {
    eventually(
        Duration::from_secs(30),
        &format!("{n} {status} deliveries"),
        || async {
            let (_, page) = server
                .get(&format!("/api/v1/deliveries?status={status}&limit=100"))
                .await;
            (page["data"].as_array().map_or(0, Vec::len) >= n).then_some(())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_works_in_a_real_browser() {
    let chromium = std::env::var("HR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the dashboard's browser test needs Chromium at {chromium} (apt-get install chromium; \
         ./scripts/test installs it in CI). It is never skipped."
    );
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in {} first (./scripts/test does): the browser test is never skipped",
        dir.display()
    );

    let max_failures = 3;
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.login_max_failures = max_failures;
        // The overview's queue chart is fed by the alert loop's samples: take them often.
        c.alert_every = Duration::from_millis(500);
    })
    .await;
    let (email, password) = ("ops@example.com", "correct-horse-battery-1");
    let (viewer_email, viewer_password) = ("viewer@example.com", "viewer-password-1234");
    create_user(&server, email, password, "admin").await;
    create_user(&server, viewer_email, viewer_password, "viewer").await;
    create_user(
        &server,
        "locked@example.com",
        "locked-password-1234",
        "viewer",
    )
    .await;

    let failing = Receiver::start().await;
    failing.set_default(failing_reply());
    let healthy = Receiver::start().await;
    let failing_hook = server
        .webhook(json!({"url": failing.url("/hooks"), "events": ["member.*"],
                        "description": "CRM sync (flaky)", "retry_schedule_seconds": []}))
        .await;
    server
        .webhook(
            json!({"url": healthy.url("/hooks"), "events": ["member.*", "invoice.*"],
                        "description": "Analytics"}),
        )
        .await;
    let failing_id = failing_hook["id"].as_str().unwrap().to_owned();
    // A receiver that answered 410 Gone: its webhook shows as disabled, with the reason.
    let gone = Receiver::start().await;
    gone.set_default(Reply::status(410));
    let gone_hook = server
        .webhook(json!({"url": gone.url("/gone"), "events": ["gone.*"], "description": "Removed integration"}))
        .await;
    let gone_id = gone_hook["id"].as_str().unwrap().to_owned();

    // Older traffic first, so the list has a second page (50 a page) and the failures are on
    // the first one.
    let batch: Vec<Value> = (1..=50)
        .map(|i| json!({"type": "invoice.paid", "data": {"invoice": format!("inv_{i:03}"), "amount": i * 100}}))
        .collect();
    let (status, body) = server
        .post("/api/v1/events/batch", json!({ "events": batch }))
        .await;
    assert_eq!(status, 202, "{body}");

    // The first event's payload is hostile: it must show as text, and its 64-bit number exactly
    // (a JavaScript number would print 12345678901234567000).
    let emitted = server
        .emit(json!({"type": "member.created", "data": {
            "name": "<img src=x onerror=\"window.__xss=1\">",
            "bio": "<script>window.__xss=2</script>",
            "id": 12345678901234567890u64,
        }}))
        .await;
    let first_event = emitted["id"].as_str().unwrap().to_owned();
    let mut failed_ids = Vec::new();
    for name in ["Grace", "Linus"] {
        let e = server
            .emit(json!({"type": "member.created", "data": {"name": name}}))
            .await;
        failed_ids.push(e["id"].as_str().unwrap().to_owned());
    }
    server
        .emit(json!({"type": "invoice.paid", "data": {"invoice": "inv_1", "amount": 1200}}))
        .await;
    server.emit(json!({"type": "gone.ping", "data": {}})).await;
    wait_for_count(&server, "failed", 3).await;
    wait_for_count(&server, "succeeded", 54).await;
    eventually(
        Duration::from_secs(20),
        "the gone webhook disabled",
        || async {
            let (_, w) = server.get(&format!("/api/v1/webhooks/{gone_id}")).await;
            (w["disabled_reason"] == "gone").then_some(())
        },
    )
    .await;

    let failed_of = |event: String| {
        let server = &server;
        let failing_id = failing_id.clone();
        async move {
            let (_, e) = server.get(&format!("/api/v1/events/{event}")).await;
            e["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["webhook_id"] == failing_id.as_str())
                .and_then(|d| d["id"].as_str())
                .unwrap()
                .to_owned()
        }
    };
    let failed_delivery = failed_of(first_event).await;
    let dlq_row_delivery = failed_of(failed_ids[0].clone()).await;

    // An inbound source with one accepted and one rejected request in its log.
    let (status, source) = server
        .post(
            "/api/v1/sources",
            json!({"name": "gh-main", "provider": "github", "secret": "gh-secret-123"}),
        )
        .await;
    assert_eq!(status, 201, "{source}");
    let source_id = source["id"].as_str().unwrap().to_owned();
    let body = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
    for (secret, expected) in [("gh-secret-123", 202), ("wrong-secret", 401)] {
        let r = server
            .client
            .post(format!("{}/ingest/gh-main", server.base))
            .header("content-type", "application/json")
            .header("x-github-event", "ping")
            .header("x-github-delivery", format!("d-{expected}"))
            .header(
                "x-hub-signature-256",
                hookrelay::inbound::github::sign(secret, body),
            )
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), expected);
    }

    let control = control_server(failing.clone()).await;
    let shots = screenshots_dir();
    // Only this run's pictures: a stale failure screenshot would mislead.
    let _ = std::fs::remove_dir_all(&shots);
    let spec = dir.join("dashboard.spec.mjs");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&spec)
        .current_dir(&dir)
        .env("HR_BASE_URL", &server.base)
        .env("HR_EMAIL", email)
        .env("HR_PASSWORD", password)
        .env("HR_VIEWER_EMAIL", viewer_email)
        .env("HR_VIEWER_PASSWORD", viewer_password)
        .env("HR_LOCKED_EMAIL", "locked@example.com")
        .env("HR_LOGIN_MAX_FAILURES", max_failures.to_string())
        .env("HR_API_KEY", &server.admin_key)
        .env("HR_CONTROL_URL", &control)
        .env("HR_FAILED_DELIVERY", &failed_delivery)
        .env("HR_DLQ_ROW_DELIVERY", &dlq_row_delivery)
        .env("HR_FAILING_WEBHOOK", &failing_id)
        .env("HR_GONE_WEBHOOK", &gone_id)
        .env("HR_RECEIVER_URL", healthy.url(""))
        .env("HR_SOURCE_ID", &source_id)
        .env("HR_SCREENSHOTS", &shots)
        .env("HR_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .expect("run node (Node.js 20 or later must be installed)");
    let output = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("the browser test finishes within 5 minutes")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed ({}); screenshots in {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        shots.display()
    );
    assert!(stdout.contains("all steps passed"), "{stdout}\n{stderr}");
    // What the browser did reached the server: the retries landed on the recovered receiver.
    let (_, d) = server
        .get(&format!("/api/v1/deliveries/{failed_delivery}"))
        .await;
    assert_eq!(d["status"], "succeeded", "{d}");
    server.stop().await;
}

/// Runs `tests/browser/<spec>` with `envs` (plus the server, the key, the screenshots folder and
/// Chromium) and fails with its output unless it says "all steps passed".
async fn run_browser_spec(server: &TestServer, spec: &str, shots: &Path, envs: &[(&str, String)]) {
    let chromium = std::env::var("HR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the dashboard's browser tests need Chromium at {chromium} (apt-get install chromium); \
         they are never skipped"
    );
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in {} first (./scripts/test does): the browser test is never skipped",
        dir.display()
    );
    // Only this run's pictures: a stale failure screenshot would mislead.
    let _ = std::fs::remove_dir_all(shots);
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join(spec))
        .current_dir(&dir)
        .env("HR_BASE_URL", &server.base)
        .env("HR_API_KEY", &server.admin_key)
        .env("HR_SCREENSHOTS", shots)
        .env("HR_CHROMIUM", &chromium)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .expect("run node (Node.js 20 or later must be installed)");
    let output = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("the browser test finishes within 5 minutes")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("all steps passed"),
        "{spec} failed ({}); screenshots in {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        shots.display()
    );
}

/// Deliveries, events and replay in Chromium (`tests/browser/deliveries.spec.mjs`): the time
/// range and id search, the CSV export checked against the API, copy as curl, an event replayed
/// to one chosen webhook arriving live, and a bulk replay of a webhook's failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_export_and_replay_work_in_a_real_browser() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (email, password) = ("ops@example.com", "correct-horse-battery-1");
    let (viewer_email, viewer_password) = ("viewer@example.com", "viewer-password-1234");
    create_user(&server, email, password, "admin").await;
    create_user(&server, viewer_email, viewer_password, "viewer").await;

    let healthy = Receiver::start().await;
    let flaky = Receiver::start().await;
    flaky.set_default(Reply::status(500).body("upstream exploded"));
    server
        .webhook(
            json!({"url": healthy.url("/billing?src=hookrelay"), "events": ["order.*"],
                        "description": "Billing", "headers": {"X-Team": "billing"}}),
        )
        .await;
    let crm = server
        .webhook(json!({"url": flaky.url("/crm"), "events": ["order.*"],
                        "description": "CRM (flaky)", "retry_schedule_seconds": []}))
        .await;
    // A transform that renders broken JSON for paid orders: its error text (commas, quotes)
    // must survive the CSV's quoting.
    server
        .webhook(json!({"url": healthy.url("/reshaped"), "events": ["order.paid"],
                        "description": "Reshaper (broken)", "transform": "{\"a\": 1 {{ data.amount }}}"}))
        .await;
    // Subscribed to other events: an order reaches it only when chosen in a replay.
    let audit = server
        .webhook(json!({"url": healthy.url("/audit"), "events": ["audit.*"], "description": "Audit log"}))
        .await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();

    let mut early = Vec::new();
    for i in 1..=3 {
        let e = server
            .emit(json!({"type": "order.created", "data": {"order": format!("ord_{i}"), "note": "it's \"new\", ok"}}))
            .await;
        early.push(id(&e));
    }
    wait_for_count(&server, "failed", 3).await;
    wait_for_count(&server, "succeeded", 3).await;
    // The split between the early and the late events, on a whole second (datetime-local
    // inputs go to the second), strictly after every early delivery.
    let now = chrono::Utc::now();
    let split = chrono::DateTime::<chrono::Utc>::from_timestamp(now.timestamp() + 1, 0).unwrap();
    eventually(
        Duration::from_secs(3),
        "the split second to pass",
        || async {
            (chrono::Utc::now() > split + chrono::Duration::milliseconds(20)).then_some(())
        },
    )
    .await;
    let mut late = Vec::new();
    for i in 4..=5 {
        let e = server
            .emit(json!({"type": "order.paid", "data": {"order": format!("ord_{i}"), "amount": i * 1000}}))
            .await;
        late.push(id(&e));
    }
    wait_for_count(&server, "failed", 7).await;
    wait_for_count(&server, "succeeded", 5).await;

    let control = control_server(flaky.clone()).await;
    let shots = screenshots_dir().with_file_name("deliveries-screenshots");
    run_browser_spec(
        &server,
        "deliveries.spec.mjs",
        &shots,
        &[
            ("HR_EMAIL", email.into()),
            ("HR_PASSWORD", password.into()),
            ("HR_VIEWER_EMAIL", viewer_email.into()),
            ("HR_VIEWER_PASSWORD", viewer_password.into()),
            ("HR_CONTROL_URL", control),
            (
                "HR_SPLIT",
                split.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
            ("HR_EARLY_EVENT", early[0].clone()),
            ("HR_LATE_EVENT", late[0].clone()),
            ("HR_CRM_WEBHOOK", id(&crm)),
            ("HR_AUDIT_WEBHOOK", id(&audit)),
        ],
    )
    .await;
    // What the browser did reached the server: the chosen replay went to the audit webhook only.
    let (_, e) = server.get(&format!("/api/v1/events/{}", early[0])).await;
    let to_audit: Vec<&Value> = e["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["webhook_id"] == audit["id"])
        .collect();
    assert_eq!(to_audit.len(), 1, "{e}");
    server.stop().await;
}
