//! The API's edges: bad input gets the contract's error body with the right status, every answer
//! has a request id, roles are enforced, and one tenant never sees another's resources.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_") || r == "client-id-1"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_input_gets_contract_errors() {
    let server = TestServer::start(Backend::Sqlite).await;

    // Missing, malformed and wrong-typed fields.
    let (s, b) = server
        .post("/api/v1/webhooks", json!({"events": ["a.b"]}))
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "url");
    let (s, b) = server
        .post("/api/v1/webhooks", json!({"url": "not a url"}))
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "url");
    let (s, b) = server
        .post("/api/v1/webhooks", json!({"url": "ftp://example.com/x"}))
        .await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = server.post("/api/v1/webhooks", json!({"url": 5})).await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "url");
    let (s, b) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com", "events": "all"}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "events");
    let (s, b) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com", "evnets": ["a"]}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "evnets");
    let (s, b) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com", "events": ["ok", "no spaces"]}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "events[1]");
    let (s, b) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com", "secret": "hunter2"}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "secret");
    let (s, b) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com", "kind": "pager"}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com", "templates": {"a.b": "x"}}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com", "headers": {"webhook-signature": "x"}}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = server
        .post(
            "/api/v1/events",
            json!({"type": "x.y", "timestamp": "noon"}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "timestamp");
    let (s, b) = server.post("/api/v1/events", json!({"data": {}})).await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "type");

    // Not JSON, or not an object.
    for raw in ["{not json", "[1,2]", "\"string\"", ""] {
        let r = server
            .client
            .post(format!("{}/api/v1/events", server.base))
            .bearer_auth(&server.admin_key)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(r.headers().contains_key("x-request-id"));
        let body: Value = r.json().await.unwrap();
        assert_error(status, &body, 400, "invalid_json");
    }

    // Unknown ids and routes.
    for path in [
        "/api/v1/webhooks/wh_01ABC",
        "/api/v1/webhooks/garbage",
        "/api/v1/events/evt_01ABC",
        "/api/v1/deliveries/dlv_x",
        "/api/v1/nope",
    ] {
        let (s, b) = server.get(path).await;
        assert_error(s, &b, 404, "not_found");
    }
    let (s, b) = server
        .patch("/api/v1/webhooks/wh_01ABC", json!({"active": true}))
        .await;
    assert_error(s, &b, 404, "not_found");

    // Query parameters are checked too.
    let (s, b) = server.get("/api/v1/deliveries?status=lost").await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = server.get("/api/v1/deliveries?limit=5000").await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = server.get("/api/v1/deliveries?stauts=failed").await;
    assert_error(s, &b, 422, "validation_failed");

    // Oversized bodies.
    let big = json!({"type": "a.b", "data": {"blob": "x".repeat(1_100_000)}});
    let (s, b) = server.post("/api/v1/events", big).await;
    assert_error(s, &b, 413, "payload_too_large");

    // Wrong method.
    let (s, b) = server
        .call(Method::PUT, "/api/v1/webhooks", Some(json!({})))
        .await;
    assert_eq!(s, 405, "{b}");
    assert!(b["error"]["code"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let server = TestServer::start(Backend::Sqlite).await;
    let r = server
        .client
        .get(format!("{}/api/v1/webhooks", server.base))
        .header("x-request-id", "client-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-id-1");
    let body: Value = r.json().await.unwrap();
    assert_error(401, &body, 401, "unauthorized");
    assert_eq!(body["error"]["request_id"], "client-id-1");
    let r = server
        .client
        .get(format!("{}/health", server.base))
        .header("x-request-id", "bad id with spaces\t")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.starts_with("req_"), "{id}");
    let (s, b) = server
        .call_as(
            "hr_wrongwrongwrongwrongwrongwrongwrongwrongwrong",
            Method::GET,
            "/api/v1/webhooks",
            None,
        )
        .await;
    assert_error(s, &b, 401, "unauthorized");
    server.stop().await;
}

async fn key_with_role(server: &TestServer, role: &str) -> String {
    let (s, b) = server
        .post("/api/v1/keys", json!({"name": role, "role": role}))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["role"], role);
    b["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn roles_are_enforced() {
    let server = TestServer::start(Backend::Sqlite).await;
    let hook = server
        .webhook(json!({"url": "https://example.com/h"}))
        .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let keys = [
        ("admin", key_with_role(&server, "admin").await),
        ("editor", key_with_role(&server, "editor").await),
        ("viewer", key_with_role(&server, "viewer").await),
        ("publisher", key_with_role(&server, "publisher").await),
    ];
    // (method, path, body, [admin, editor, viewer, publisher] allowed)
    let cases: Vec<(Method, String, Option<Value>, [bool; 4])> = vec![
        (
            Method::GET,
            "/api/v1/webhooks".into(),
            None,
            [true, true, true, false],
        ),
        (
            Method::POST,
            "/api/v1/webhooks".into(),
            Some(json!({"url": "https://example.com/x"})),
            [true, true, false, false],
        ),
        (
            Method::PATCH,
            format!("/api/v1/webhooks/{hook_id}"),
            Some(json!({"description": "d"})),
            [true, true, false, false],
        ),
        (
            Method::POST,
            "/api/v1/events".into(),
            Some(json!({"type": "a.b"})),
            [true, true, false, true],
        ),
        (
            Method::POST,
            "/api/v1/events/batch".into(),
            Some(json!({"events": [{"type": "a.b"}]})),
            [true, true, false, true],
        ),
        (
            Method::GET,
            "/api/v1/events".into(),
            None,
            [true, true, true, false],
        ),
        (
            Method::GET,
            "/api/v1/deliveries".into(),
            None,
            [true, true, true, false],
        ),
        (
            Method::GET,
            "/api/v1/dlq".into(),
            None,
            [true, true, true, false],
        ),
        (
            Method::POST,
            "/api/v1/dlq/retry".into(),
            Some(json!({})),
            [true, true, false, false],
        ),
        (
            Method::GET,
            "/api/v1/keys".into(),
            None,
            [true, false, false, false],
        ),
        (
            Method::POST,
            "/api/v1/keys".into(),
            Some(json!({"name": "n", "role": "viewer"})),
            [true, false, false, false],
        ),
        (
            Method::GET,
            "/api/v1/users".into(),
            None,
            [true, false, false, false],
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(
                json!({"email": "new@example.com", "password": "a-long-password", "role": "viewer"}),
            ),
            [true, false, false, false],
        ),
        (
            Method::GET,
            "/api/v1/event-types".into(),
            None,
            [true, true, true, false],
        ),
        (
            Method::POST,
            "/api/v1/event-types".into(),
            Some(json!({"name": "order.placed"})),
            [true, true, false, false],
        ),
        (
            Method::GET,
            "/api/v1/sources".into(),
            None,
            [true, true, true, false],
        ),
        (
            Method::POST,
            "/api/v1/sources".into(),
            Some(json!({"name": "gh-roles", "provider": "github", "secret": "s3cret-s3cret"})),
            [true, true, false, false],
        ),
        (
            Method::POST,
            "/api/v1/tenants".into(),
            Some(json!({"name": "t-x"})),
            [false, false, false, false],
        ),
        (
            Method::GET,
            "/api/v1/tenants".into(),
            None,
            [false, false, false, false],
        ),
    ];
    for (method, path, body, allowed) in cases {
        for (i, (role, key)) in keys.iter().enumerate() {
            let (s, b) = server
                .call_as(key, method.clone(), &path, body.clone())
                .await;
            if allowed[i] {
                // A second create of the same name conflicts: the role check still passed.
                assert!(
                    s < 400 || s == 409,
                    "{role} {method} {path} should be allowed: {s} {b}"
                );
            } else {
                assert_error(s, &b, 403, "forbidden");
            }
        }
    }
    // The server admin key manages tenants.
    let (s, t) = server
        .post("/api/v1/tenants", json!({"name": "team-b"}))
        .await;
    assert_eq!(s, 201, "{t}");
    let (s, _) = server
        .post("/api/v1/tenants", json!({"name": "team-b"}))
        .await;
    assert_eq!(s, 409);
    server.stop().await;
}

#[tokio::test]
async fn tenants_are_isolated() {
    let server = TestServer::start(Backend::Sqlite).await;
    let rx = Receiver::start().await;
    // Tenant A is `default`; tenant B gets its own admin key through the server admin.
    let (_, tenant_b) = server.post("/api/v1/tenants", json!({"name": "b"})).await;
    let tb = tenant_b["id"].as_str().unwrap();
    let (s, kb) = server
        .client
        .post(format!("{}/api/v1/keys", server.base))
        .bearer_auth(&server.admin_key)
        .header("X-Tenant-Id", tb)
        .json(&json!({"name": "b-admin", "role": "admin"}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(s, 201);
    let key_b = kb.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let hook = server.webhook(json!({"url": rx.url("/a")})).await;
    let hook_id = hook["id"].as_str().unwrap();
    let ev = server
        .emit(json!({"type": "member.created", "data": {"secret": "A's data"}}))
        .await;
    let ev_id = ev["id"].as_str().unwrap();
    let dlv = server.delivery_ids(ev_id).await.remove(0);
    let (s, user_a) = server
        .post(
            "/api/v1/users",
            json!({"email": "a-user@example.com", "password": "a-long-password", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, 201, "{user_a}");
    let user_a = user_a["id"].as_str().unwrap().to_owned();
    let (s, key_a) = server
        .post(
            "/api/v1/keys",
            json!({"name": "a-viewer", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, 201);
    let key_a = key_a["id"].as_str().unwrap().to_owned();
    let (s, b) = server
        .post(
            "/api/v1/event-types",
            json!({"name": "a.private", "description": "A's data"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    for (method, path, body) in [
        (Method::GET, format!("/api/v1/webhooks/{hook_id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/webhooks/{hook_id}"),
            Some(json!({"active": false})),
        ),
        (Method::DELETE, format!("/api/v1/webhooks/{hook_id}"), None),
        (
            Method::POST,
            format!("/api/v1/webhooks/{hook_id}/test"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/{hook_id}/rotate-secret"),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/api/v1/webhooks/{hook_id}/stats"),
            None,
        ),
        (Method::GET, format!("/api/v1/events/{ev_id}"), None),
        (Method::GET, format!("/api/v1/deliveries/{dlv}"), None),
        (
            Method::POST,
            format!("/api/v1/deliveries/{dlv}/retry"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/dlq/{dlv}/retry"),
            Some(json!({})),
        ),
        (Method::DELETE, format!("/api/v1/users/{user_a}"), None),
        (Method::DELETE, format!("/api/v1/keys/{key_a}"), None),
        (Method::GET, "/api/v1/event-types/a.private".into(), None),
        (
            Method::PATCH,
            "/api/v1/event-types/a.private".into(),
            Some(json!({"description": "B was here"})),
        ),
        (Method::DELETE, "/api/v1/event-types/a.private".into(), None),
    ] {
        let (s, b) = server.call_as(&key_b, method.clone(), &path, body).await;
        assert_error(s, &b, 404, "not_found");
        assert!(!b.to_string().contains("A's data"));
    }
    for path in [
        "/api/v1/webhooks",
        "/api/v1/events",
        "/api/v1/deliveries",
        "/api/v1/dlq",
    ] {
        let (s, b) = server.call_as(&key_b, Method::GET, path, None).await;
        assert_eq!(s, 200);
        assert_eq!(b["data"], json!([]), "{path} leaks: {b}");
    }
    // B's own lists of people and keys hold only B's.
    let (_, users) = server
        .call_as(&key_b, Method::GET, "/api/v1/users", None)
        .await;
    assert_eq!(users["data"], json!([]), "{users}");
    let (_, keys) = server
        .call_as(&key_b, Method::GET, "/api/v1/keys", None)
        .await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        1,
        "only b-admin: {keys}"
    );
    let (_, types) = server
        .call_as(&key_b, Method::GET, "/api/v1/event-types", None)
        .await;
    assert!(!types.to_string().contains("a.private"), "{types}");
    // B's events never reach A's webhooks.
    let (s, b) = server
        .call_as(
            &key_b,
            Method::POST,
            "/api/v1/events",
            Some(json!({"type": "member.created"})),
        )
        .await;
    assert_eq!(s, 202);
    assert_eq!(b["deliveries"], 0);
    // A tenant key cannot reach into another tenant by header.
    let r = server
        .client
        .get(format!("{}/api/v1/webhooks", server.base))
        .bearer_auth(&key_b)
        .header("X-Tenant-Id", hook["id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn pagination_walks_every_item_once() {
    let server = TestServer::start(Backend::Sqlite).await;
    let mut created = Vec::new();
    for i in 0..7 {
        let h = server
            .webhook(json!({"url": format!("https://example.com/{i}")}))
            .await;
        created.push(h["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/webhooks?limit=3&cursor={c}"),
            None => "/api/v1/webhooks?limit=3".into(),
        };
        let (s, page) = server.get(&path).await;
        assert_eq!(s, 200);
        for w in page["data"].as_array().unwrap() {
            seen.push(w["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, each once");
    server.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_the_routes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let r = server
        .client
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Every operation has an explicit `resource.action` operationId, unique in the document.
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            let (resource, action) = id.split_once('.').unwrap_or_default();
            assert!(
                !resource.is_empty()
                    && !action.is_empty()
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.'),
                "{method} {path}: operationId {id} is not resource.action"
            );
            if let Some(other) = ids.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id} is used by {other} and {method} {path}");
            }
        }
    }
    assert_eq!(ids["webhooks.list"], "get /api/v1/webhooks");
    assert_eq!(ids["events.emit"], "post /api/v1/events");
    for path in [
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}/test",
        "/api/v1/events",
        "/api/v1/events/batch",
        "/api/v1/deliveries/{id}/retry",
        "/api/v1/dlq/retry",
        "/api/v1/keys",
        "/api/v1/users",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/tenants",
        "/health",
    ] {
        assert!(doc["paths"][path].is_object(), "missing {path}");
    }
    let (s, health) = server.get("/health").await;
    assert_eq!(s, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["db"], "ok");
    assert!(health["queue_depth"].is_u64());
    let metrics = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hookrelay_http_requests_total"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_urls_headers_and_deep_json_are_refused() {
    let server = TestServer::start(Backend::Sqlite).await;
    let long = format!("{}/api/v1/events?type={}", server.base, "a".repeat(9000));
    let r = server
        .client
        .get(long)
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 414);
    let body: Value = r.json().await.unwrap();
    assert_error(414, &body, 414, "uri_too_long");

    let mut req = server
        .client
        .get(format!("{}/api/v1/webhooks", server.base))
        .bearer_auth(&server.admin_key);
    for i in 0..40 {
        req = req.header(format!("x-filler-{i}"), "v".repeat(1000));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_error(status, &body, 431, "headers_too_large");

    // Nesting deeper than the parser's limit (128) is refused as invalid JSON, never a crash.
    let deep = format!(
        "{{\"type\": \"a.b\", \"data\": {}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let r = server
        .client
        .post(format!("{}/api/v1/events", server.base))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_error(status, &body, 400, "invalid_json");
    // The server is still healthy.
    let (s, _) = server.get("/health").await;
    assert_eq!(s, 200);
    server.stop().await;
}

/// A body that is not complete JSON is a `400 invalid_json`, even when a field that would be
/// refused (unknown, wrong type) comes before the break.
#[tokio::test]
async fn incomplete_json_is_invalid_json() {
    let server = TestServer::start(Backend::Sqlite).await;
    let send = |path: &'static str, body: &'static str| {
        let req = server
            .client
            .post(format!("{}{path}", server.base))
            .bearer_auth(&server.admin_key)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    for (path, body) in [
        ("/api/v1/events", r#"{"url": "#),
        ("/api/v1/events", r#"{"type": "a.b", "nope": 1, "data": {"#),
        ("/api/v1/events", r#"{"type": 5, "data": "#),
        ("/api/v1/events", r#"{"type": "a.b"} {"#),
        ("/api/v1/events/batch", r#"{"evnts": [{"type": "a.b"}"#),
        (
            "/api/v1/webhooks",
            r#"{"url": "https://example.com", "x": 1, "#,
        ),
    ] {
        let (s, b) = send(path, body).await;
        assert_error(s, &b, 400, "invalid_json");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not valid JSON"),
            "{path} {body}: {b}"
        );
    }
    // Complete JSON still names the refused field.
    let (s, b) = send("/api/v1/events", r#"{"url": 1}"#).await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "url");
    server.stop().await;
}

/// The document lists, on every operation, the error answers the shared layers can give (in the
/// contract's error body) and a body schema for every success that has a JSON body.
#[tokio::test]
async fn openapi_document_lists_errors_and_bodies() {
    let server = TestServer::start(Backend::Sqlite).await;
    let doc: Value = server
        .client
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let error_ref = "#/components/schemas/ErrorBody";
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert!(error["properties"]["error"].is_object(), "{error}");
    // Operations that reach no store, and probes whose 503 is their own body.
    let storeless = [
        "dashboard.index",
        "dashboard.portal",
        "dashboard.asset",
        "operations.metrics",
    ];
    let own_503 = ["operations.health", "operations.ready"];
    let limited = [
        "events.emit",
        "webhooks.create",
        "auth.login",
        "ingest.receive",
    ];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            let where_ = format!("{id} ({method} {path})");
            let responses = op["responses"].as_object().unwrap();
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let json_body = op["requestBody"]["content"]["application/json"].is_object();
            let query = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let mut want = vec!["414", "431"];
            if secured {
                want.extend(["401", "403", "404"]);
            }
            if path.contains('{') {
                want.push("404");
            }
            if json_body {
                want.extend(["400", "413", "422"]);
            }
            if query {
                want.push("422");
            }
            if limited.contains(&id) {
                want.push("429");
            }
            if !storeless.contains(&id) {
                want.extend(["500", "503"]);
            }
            for status in want {
                assert!(
                    responses.contains_key(status),
                    "{where_} does not list {status}"
                );
            }
            for (status, answer) in responses {
                let description = answer["description"].as_str().unwrap_or_default();
                let content = &answer["content"];
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(!description.is_empty(), "{where_} {status}: no description");
                    if status == "503" && own_503.contains(&id) {
                        assert!(content["application/json"]["schema"]["$ref"].is_string());
                        continue;
                    }
                    assert_eq!(
                        content["application/json"]["schema"]["$ref"], error_ref,
                        "{where_} {status}: not the error body"
                    );
                    if status == "429" {
                        assert!(
                            answer["headers"]["Retry-After"].is_object(),
                            "{where_} 429 without Retry-After"
                        );
                    }
                } else if status.starts_with('2') && status != "204" {
                    let types: Vec<&String> = content
                        .as_object()
                        .map(|c| c.keys().collect())
                        .unwrap_or_default();
                    assert!(!types.is_empty(), "{where_} {status}: no body described");
                    if let Some(json) = content.get("application/json") {
                        assert!(
                            json["schema"].is_object(),
                            "{where_} {status}: a JSON body without a schema"
                        );
                    } else {
                        assert!(
                            types
                                .iter()
                                .all(|t| t.starts_with("text/") || t.starts_with("image/")),
                            "{where_} {status}: {types:?}"
                        );
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} operations");
    server.stop().await;
}
