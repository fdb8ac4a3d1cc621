//! Portal links end to end: a tenant admin creates a link with a role and a lifetime; its token
//! reaches only that tenant's webhooks, deliveries and dead letters, with that role; revoking
//! it ends it at once.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

both_backends!(portal_links_reach_one_tenant_with_their_role);

async fn create_link(server: &TestServer, body: Value) -> Value {
    let (s, link) = server.post("/api/v1/portal-links", body).await;
    assert_eq!(s, 201, "{link}");
    link
}

async fn portal_links_reach_one_tenant_with_their_role(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let ours = server.webhook(json!({"url": rx.url("/ours")})).await;
    // Another tenant's webhook, which no link of ours may see.
    let (s, other) = server
        .post("/api/v1/tenants", json!({"name": "other"}))
        .await;
    assert_eq!(s, 201, "{other}");
    let other_id = other["id"].as_str().unwrap();

    let viewer = create_link(
        &server,
        json!({"role": "viewer", "expires_in_seconds": 600}),
    )
    .await;
    let token = viewer["token"]
        .as_str()
        .expect("token shown once")
        .to_owned();
    assert!(token.starts_with("hrp_"), "{viewer}");
    assert_eq!(viewer["url"], format!("/portal#token={token}"));
    assert_eq!(viewer["role"], "viewer");
    let (s, me) = server
        .call_as(&token, Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["server_admin"], false);
    assert_eq!(me["principal"]["kind"], "portal", "{me}");
    assert_eq!(me["principal"]["id"], viewer["id"]);

    // Its tenant's webhooks and deliveries, read only.
    let (s, list) = server
        .call_as(&token, Method::GET, "/api/v1/webhooks", None)
        .await;
    assert_eq!(s, 200, "{list}");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    assert_eq!(ids, vec![ours["id"].as_str().unwrap()]);
    for path in [
        "/api/v1/deliveries",
        "/api/v1/dlq",
        "/api/v1/events",
        "/api/v1/event-types",
    ] {
        let (s, b) = server.call_as(&token, Method::GET, path, None).await;
        assert_eq!(s, 200, "GET {path}: {b}");
    }
    let (s, b) = server
        .call_as(
            &token,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": rx.url("/x")})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "a viewer writes: {b}"
    );

    // Nothing else: not access, sources, tenants, quotas, other links, nor emitting events.
    let refused: [(Method, String, Option<Value>); 9] = [
        (Method::GET, "/api/v1/keys".into(), None),
        (Method::GET, "/api/v1/users".into(), None),
        (Method::GET, "/api/v1/sources".into(), None),
        (Method::GET, "/api/v1/tenants".into(), None),
        (Method::GET, format!("/api/v1/quotas/{other_id}"), None),
        (Method::GET, "/api/v1/portal-links".into(), None),
        (Method::POST, "/api/v1/portal-links".into(), Some(json!({}))),
        (
            Method::POST,
            "/api/v1/events".into(),
            Some(json!({"type": "a.b", "data": {}})),
        ),
        (Method::POST, "/api/v1/auth/logout".into(), None),
    ];
    for (method, path, body) in refused {
        let (s, b) = server.call_as(&token, method.clone(), &path, body).await;
        assert!(
            s == 403 || s == 409,
            "{method} {path} with a portal link: {s} {b}"
        );
    }
    // Another tenant is out of reach, named or not.
    let r = server
        .client
        .get(format!("{}/api/v1/webhooks", server.base))
        .bearer_auth(&token)
        .header("X-Tenant-Id", other_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "X-Tenant-Id of another tenant");

    // An editor link manages webhooks.
    let editor = create_link(&server, json!({"role": "editor"})).await;
    let editor_token = editor["token"].as_str().unwrap();
    let (s, b) = server
        .call_as(
            editor_token,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": rx.url("/e")})),
        )
        .await;
    assert_eq!(s, 201, "an editor link creates a webhook: {b}");

    // Listed without their tokens; revoking one ends it at once, the other still works.
    let (s, links) = server.get("/api/v1/portal-links").await;
    assert_eq!(s, 200, "{links}");
    let listed = links["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{links}");
    assert!(
        listed
            .iter()
            .all(|l| l.get("token").is_none() && l.get("url").is_none()),
        "{links}"
    );
    let viewer_id = viewer["id"].as_str().unwrap();
    let (s, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v1/portal-links/{viewer_id}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, b) = server
        .call_as(&token, Method::GET, "/api/v1/webhooks", None)
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{b}"
    );
    let (s, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v1/portal-links/{viewer_id}"),
            None,
        )
        .await;
    assert_eq!(s, 404, "revoked twice");
    let (s, _) = server
        .call_as(editor_token, Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(s, 200);

    // Bad requests name their field; only a tenant admin makes links.
    for (body, field) in [
        (json!({"role": "admin"}), "role"),
        (json!({"expires_in_seconds": 10}), "expires_in_seconds"),
        (
            json!({"expires_in_seconds": 40_000_000}),
            "expires_in_seconds",
        ),
    ] {
        let (s, b) = server.post("/api/v1/portal-links", body.clone()).await;
        assert_eq!(s, 422, "{body}: {b}");
        assert_eq!(b["error"]["details"][0]["field"], field, "{b}");
    }
    let (s, key) = server
        .post("/api/v1/keys", json!({"name": "ed", "role": "editor"}))
        .await;
    assert_eq!(s, 201);
    let (s, _) = server
        .call_as(
            key["key"].as_str().unwrap(),
            Method::POST,
            "/api/v1/portal-links",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 403, "an editor key makes no portal links");

    // The portal page is the dashboard, served with the same headers.
    let r = server
        .client
        .get(format!("{}/portal", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("content-security-policy"));
    server.stop().await;
}

/// The portal page in a real browser (tests/browser/portal.spec.mjs, Debian's Chromium).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_page_shows_one_tenant_in_a_real_browser() {
    let chromium = std::env::var("HR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "the portal's browser test needs Chromium at {chromium} (apt-get install chromium; \
         ./scripts/test installs it in CI). It is never skipped."
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in {} first (./scripts/test does)",
        dir.display()
    );
    let server = TestServer::start(Backend::Sqlite).await;
    let rx = Receiver::start().await;
    let ours = rx.url("/our-endpoint");
    server.webhook(json!({"url": ours})).await;
    server
        .emit(json!({"type": "member.created", "data": {"id": 1}}))
        .await;
    // Another tenant's webhook, created through the server admin key.
    let (_, other) = server
        .post("/api/v1/tenants", json!({"name": "other"}))
        .await;
    let theirs = rx.url("/their-endpoint");
    let r = server
        .client
        .post(format!("{}/api/v1/webhooks", server.base))
        .bearer_auth(&server.admin_key)
        .header("X-Tenant-Id", other["id"].as_str().unwrap())
        .json(&json!({"url": theirs}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or_else(|| std::path::Path::new("target"))
        .join("portal-screenshots");
    let output = tokio::process::Command::new("node")
        .arg(dir.join("portal.spec.mjs"))
        .current_dir(&dir)
        .env("HR_BASE_URL", &server.base)
        .env("HR_API_KEY", &server.admin_key)
        .env("HR_OUR_WEBHOOK_URL", &ours)
        .env("HR_OTHER_WEBHOOK_URL", &theirs)
        .env("HR_SCREENSHOTS", &shots)
        .env("HR_CHROMIUM", &chromium)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(180), output)
        .await
        .expect("the portal browser test finishes within 3 minutes")
        .expect("run node (Node.js 20 or later must be installed)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("all steps passed"),
        "the portal browser test failed ({}); screenshots in {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        shots.display()
    );
    server.stop().await;
}
