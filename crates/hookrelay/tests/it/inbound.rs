//! Inbound sources end to end: for each provider a valid request is accepted and routed to a
//! wildcard webhook, a bad signature and a replay are refused, a duplicate is answered 200 and
//! stored once (both stores); plus concurrency, the sources API, the requests log, rate limits.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hookrelay::inbound::certs::parse_allowlist;
use hookrelay::inbound::hmac::{compute, Algorithm};
use hookrelay::inbound::{github, paypal, stripe};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

both_backends!(
    github_accepts_routes_refuses_and_deduplicates,
    github_published_example_is_accepted,
    stripe_accepts_routes_refuses_and_deduplicates,
    standard_accepts_routes_refuses_and_deduplicates,
    paypal_accepts_routes_refuses_and_deduplicates,
    hmac_accepts_routes_refuses_and_deduplicates,
    none_accepts_and_deduplicates_on_its_id,
    twenty_concurrent_copies_make_one_event,
);

const WAIT: Duration = Duration::from_secs(20);
const GH_SECRET: &str = "gh-test-secret-value";

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Creates a source and returns its JSON (with `secret` when it has one).
async fn create_source(server: &TestServer, body: Value) -> Value {
    let (status, v) = server.post("/api/v1/sources", body).await;
    assert_eq!(status, 201, "create source: {v}");
    v
}

/// Posts to the public ingest route (no bearer token).
async fn ingest(
    server: &TestServer,
    name: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = server
        .client
        .post(format!("{}/ingest/{name}", server.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("ingest reaches the server");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

/// A receiver behind a webhook subscribed to `pattern`.
async fn subscribed(server: &TestServer, pattern: &str) -> Receiver {
    let rx = Receiver::start().await;
    server
        .webhook(json!({"url": rx.url("/hook"), "events": [pattern]}))
        .await;
    rx
}

async fn events_of(server: &TestServer, source: &str) -> Vec<Value> {
    let (status, v) = server
        .get(&format!("/api/v1/events?source={source}&limit=1000"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["data"].as_array().unwrap().clone()
}

async fn requests_log(server: &TestServer, source_id: &str, query: &str) -> Vec<Value> {
    let (status, v) = server
        .get(&format!("/api/v1/sources/{source_id}/requests{query}"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["data"].as_array().unwrap().clone()
}

#[track_caller]
fn assert_refused(status: u16, body: &Value, reason: &str) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_signature", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(reason), "expected `{reason}` in {body}");
}

/// The one delivery the receiver got, after making sure no second one follows.
async fn only_delivery(rx: &Receiver) -> Value {
    let got = eventually(WAIT, "the delivery", || async {
        rx.requests().into_iter().next()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 1, "exactly one delivery");
    got.json()
}

/// The common checks once a provider's valid request was answered `202 {id}`: stored once,
/// delivered once to the wildcard webhook with the provider's body as `data`; a repeat is
/// `200 {duplicate, id}` and adds nothing.
async fn accepted_once(
    server: &TestServer,
    rx: &Receiver,
    source: &str,
    first: (u16, Value),
    again: (u16, Value),
    event_type: &str,
    data: Value,
) {
    let (status, body) = first;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("an event id").to_owned();
    assert!(id.starts_with("evt_"));
    assert_eq!(body, json!({"id": id}));
    let (status, body) = again;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"duplicate": true, "id": id}));

    let delivered = only_delivery(rx).await;
    assert_eq!(delivered["event"], event_type);
    assert_eq!(delivered["eventId"], id.as_str());
    assert_eq!(delivered["data"], data);
    let events = events_of(server, source).await;
    assert_eq!(events.len(), 1, "stored once: {events:?}");
    assert_eq!(events[0]["id"], id.as_str());
    assert_eq!(events[0]["type"], event_type);
    assert_eq!(events[0]["source"], source);
}

fn github_headers(
    event: &str,
    delivery: &str,
    body: &[u8],
    secret: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("x-github-event", event.to_owned()),
        ("x-github-delivery", delivery.to_owned()),
        ("x-hub-signature-256", github::sign(secret, body)),
        ("user-agent", "GitHub-Hookshot/test".to_owned()),
    ]
}

async fn github_accepts_routes_refuses_and_deduplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = subscribed(&server, "github.*").await;
    let src = create_source(
        &server,
        json!({"name": "gh-main", "provider": "github", "secret": GH_SECRET}),
    )
    .await;
    assert_eq!(src["secret"], GH_SECRET);
    assert_eq!(src["ingest_url"], format!("{}/ingest/gh-main", server.base));

    let body = br#"{"action": "opened", "number": 7, "pull_request": {"title": "Add inbound"}}"#;
    let headers = github_headers("pull_request", "d-1", body, GH_SECRET);
    let first = ingest(&server, "gh-main", &headers, body).await;
    // A bad signature, a tampered body and a missing signature are refused, nothing stored.
    let (s, b, _) = ingest(
        &server,
        "gh-main",
        &github_headers("pull_request", "d-2", body, "wrong secret"),
        body,
    )
    .await;
    assert_refused(s, &b, "does not match");
    let (s, b, _) = ingest(&server, "gh-main", &headers, br#"{"action": "closed"}"#).await;
    assert_refused(s, &b, "does not match");
    let (s, b, _) = ingest(&server, "gh-main", &headers[..2], body).await;
    assert_refused(s, &b, "missing");
    // GitHub has no timestamp to replay; a repeat of the delivery is a duplicate.
    let again = ingest(&server, "gh-main", &headers, body).await;
    accepted_once(
        &server,
        &rx,
        "gh-main",
        (first.0, first.1),
        (again.0, again.1),
        "github.pr.opened",
        serde_json::from_slice(body).unwrap(),
    )
    .await;
    let event = &events_of(&server, "gh-main").await[0];
    assert_eq!(
        event["event_id"],
        format!("src:{}:d-1", src["id"].as_str().unwrap())
    );

    // Unknown sources are 404 and name nothing.
    let (s, b, _) = ingest(&server, "gh-other", &headers, body).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["error"]["code"], "not_found");
    server.stop().await;
}

async fn github_published_example_is_accepted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = subscribed(&server, "github.*").await;
    create_source(
        &server,
        json!({"name": "gh-doc", "provider": "github", "secret": "It's a Secret to Everybody"}),
    )
    .await;
    // GitHub's documented example: this body, this secret, this signature.
    let headers = [
        ("x-github-event", "ping".to_owned()),
        (
            "x-github-delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned(),
        ),
        (
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_owned(),
        ),
    ];
    let first = ingest(&server, "gh-doc", &headers, b"Hello, World!").await;
    let again = ingest(&server, "gh-doc", &headers, b"Hello, World!").await;
    accepted_once(
        &server,
        &rx,
        "gh-doc",
        (first.0, first.1),
        (again.0, again.1),
        "github.ping",
        json!("Hello, World!"),
    )
    .await;
    server.stop().await;
}

async fn stripe_accepts_routes_refuses_and_deduplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = subscribed(&server, "stripe.*").await;
    let secret = "whsec_stripe_endpoint_secret";
    create_source(
        &server,
        json!({"name": "stripe", "provider": "stripe", "secret": secret}),
    )
    .await;
    let body = br#"{"id": "evt_1PqR", "object": "event", "type": "invoice.paid", "data": {"object": {"id": "in_1", "amount_paid": 4200}}}"#;
    let sig = |secret: &str, t: i64| vec![("stripe-signature", stripe::sign(secret, t, body))];
    let now = now_secs();
    let first = ingest(&server, "stripe", &sig(secret, now), body).await;
    let (s, b, _) = ingest(&server, "stripe", &sig("whsec_other", now), body).await;
    assert_refused(s, &b, "matches");
    // Correctly signed ten minutes ago: a replay.
    let (s, b, _) = ingest(&server, "stripe", &sig(secret, now - 600), body).await;
    assert_refused(s, &b, "tolerance");
    // Stripe retries the same event with a fresh signature: a duplicate.
    let again = ingest(&server, "stripe", &sig(secret, now + 1), body).await;
    accepted_once(
        &server,
        &rx,
        "stripe",
        (first.0, first.1),
        (again.0, again.1),
        "stripe.invoice.paid",
        serde_json::from_slice(body).unwrap(),
    )
    .await;
    server.stop().await;
}

async fn standard_accepts_routes_refuses_and_deduplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = subscribed(&server, "invoice.*").await;
    let secret = hookrelay_domain::WebhookSecret::generate();
    create_source(
        &server,
        json!({"name": "std", "provider": "standard", "secret": secret.expose()}),
    )
    .await;
    let body = br#"{"type": "invoice.paid", "timestamp": "2026-11-23T10:00:00Z", "data": {"id": "inv_1"}}"#;
    let signed = |key: &hookrelay_domain::WebhookSecret, t: i64| {
        vec![
            ("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".to_owned()),
            ("webhook-timestamp", t.to_string()),
            (
                "webhook-signature",
                key.sign_standard("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", t, body),
            ),
        ]
    };
    let now = now_secs();
    let first = ingest(&server, "std", &signed(&secret, now), body).await;
    let other = hookrelay_domain::WebhookSecret::generate();
    let (s, b, _) = ingest(&server, "std", &signed(&other, now), body).await;
    assert_refused(s, &b, "matches");
    let (s, b, _) = ingest(&server, "std", &signed(&secret, now - 3600), body).await;
    assert_refused(s, &b, "tolerance");
    let again = ingest(&server, "std", &signed(&secret, now + 2), body).await;
    accepted_once(
        &server,
        &rx,
        "std",
        (first.0, first.1),
        (again.0, again.1),
        "invoice.paid",
        serde_json::from_slice(body).unwrap(),
    )
    .await;
    server.stop().await;
}

/// A locally generated RSA key and a self-signed certificate for it, standing in for PayPal's.
fn paypal_key_and_cert() -> (rsa::RsaPrivateKey, String) {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
    let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let pair =
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["messageverificationcerts.paypal.com".into()]).unwrap();
    let cert = params.self_signed(&pair).unwrap().pem();
    (key, cert)
}

async fn paypal_accepts_routes_refuses_and_deduplicates(backend: Backend) {
    use rsa::signature::{SignatureEncoding, Signer};
    let (key, cert_pem) = paypal_key_and_cert();
    // The certificate is served by a local HTTP server, allowed explicitly (http only for it).
    let certs = Receiver::start().await;
    certs.set_default(Reply::status(200).body(&cert_pem));
    let allow = format!("http://{}", certs.addr);
    let server = TestServer::start_with(backend, |c| {
        c.paypal_cert_hosts = parse_allowlist(&allow).unwrap();
    })
    .await;
    let rx = subscribed(&server, "paypal.*").await;
    let webhook_id = "8PT597110X687430LKGECATA";
    create_source(
        &server,
        json!({"name": "paypal", "provider": "paypal", "config": {"webhook_id": webhook_id}}),
    )
    .await;
    let body = br#"{"id": "WH-2WR32451HC0233532-67976317FL4543714", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource_type": "capture", "resource": {"id": "42311647XV020574X"}}"#;
    let cert_url = certs.url("/v1/notifications/certs/CERT-360caa42-fca2a594-test");
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    let transmission = |id: &str, at: chrono::DateTime<chrono::Utc>, webhook: &str, url: &str| {
        let time = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let text = paypal::signed_text(id, &time, webhook, body);
        vec![
            ("paypal-transmission-id", id.to_owned()),
            ("paypal-transmission-time", time),
            (
                "paypal-transmission-sig",
                B64.encode(signer.sign(text.as_bytes()).to_bytes()),
            ),
            ("paypal-cert-url", url.to_owned()),
            ("paypal-auth-algo", "SHA256withRSA".to_owned()),
        ]
    };
    let now = chrono::Utc::now();
    let first = ingest(
        &server,
        "paypal",
        &transmission("t-1", now, webhook_id, &cert_url),
        body,
    )
    .await;
    // Signed for another webhook id: not ours.
    let (s, b, _) = ingest(
        &server,
        "paypal",
        &transmission("t-2", now, "OTHERWEBHOOKID", &cert_url),
        body,
    )
    .await;
    assert_refused(s, &b, "does not match");
    // A genuine transmission from an hour ago: a replay.
    let (s, b, _) = ingest(
        &server,
        "paypal",
        &transmission(
            "t-3",
            now - chrono::Duration::hours(1),
            webhook_id,
            &cert_url,
        ),
        body,
    )
    .await;
    assert_refused(s, &b, "tolerance");
    // A certificate from a host that is not allowed is never fetched.
    let elsewhere = format!(
        "http://127.0.0.2:{}/v1/notifications/certs/x",
        certs.addr.port()
    );
    let (s, b, _) = ingest(
        &server,
        "paypal",
        &transmission("t-4", now, webhook_id, &elsewhere),
        body,
    )
    .await;
    assert_refused(s, &b, "not an allowed PayPal host");
    // PayPal retries the event in a new transmission: a duplicate.
    let again = ingest(
        &server,
        "paypal",
        &transmission("t-5", now, webhook_id, &cert_url),
        body,
    )
    .await;
    accepted_once(
        &server,
        &rx,
        "paypal",
        (first.0, first.1),
        (again.0, again.1),
        "paypal.payment.capture.completed",
        serde_json::from_slice(body).unwrap(),
    )
    .await;
    assert_eq!(
        certs.count(),
        1,
        "the certificate is fetched once, then cached"
    );
    server.stop().await;
}

async fn hmac_accepts_routes_refuses_and_deduplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = subscribed(&server, "order.*").await;
    let src = create_source(
        &server,
        json!({"name": "shop", "provider": "hmac", "secret": "shop-secret",
               "config": {"header": "X-Shop-Signature", "algorithm": "sha512", "encoding": "base64",
                          "prefix": "v1=", "timestamp_header": "X-Shop-Timestamp",
                          "type_path": "event.type", "id_header": "X-Shop-Delivery"}}),
    )
    .await;
    assert_eq!(src["config"]["signed_payload"], Value::Null);
    let body = br#"{"event": {"type": "order.paid"}, "order": {"id": 1001, "total": "19.90"}}"#;
    let signed = |secret: &[u8], t: i64, delivery: &str| {
        let mac = compute(
            Algorithm::Sha512,
            secret,
            &[format!("{t}.").as_bytes(), body],
        );
        vec![
            ("x-shop-signature", format!("v1={}", B64.encode(mac))),
            ("x-shop-timestamp", t.to_string()),
            ("x-shop-delivery", delivery.to_owned()),
        ]
    };
    let now = now_secs();
    let first = ingest(&server, "shop", &signed(b"shop-secret", now, "del-1"), body).await;
    let (s, b, _) = ingest(&server, "shop", &signed(b"not-it", now, "del-2"), body).await;
    assert_refused(s, &b, "does not match");
    let (s, b, _) = ingest(
        &server,
        "shop",
        &signed(b"shop-secret", now - 900, "del-3"),
        body,
    )
    .await;
    assert_refused(s, &b, "tolerance");
    let again = ingest(&server, "shop", &signed(b"shop-secret", now, "del-1"), body).await;
    accepted_once(
        &server,
        &rx,
        "shop",
        (first.0, first.1),
        (again.0, again.1),
        "order.paid",
        serde_json::from_slice(body).unwrap(),
    )
    .await;
    server.stop().await;
}

async fn none_accepts_and_deduplicates_on_its_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = subscribed(&server, "ci.*").await;
    create_source(
        &server,
        json!({"name": "ci", "provider": "none", "config": {"id_path": "build.id"}}),
    )
    .await;
    let body = br#"{"build": {"id": "b-77", "status": "green"}}"#;
    let first = ingest(&server, "ci", &[], body).await;
    let again = ingest(&server, "ci", &[], body).await;
    accepted_once(
        &server,
        &rx,
        "ci",
        (first.0, first.1),
        (again.0, again.1),
        "ci.received",
        serde_json::from_slice(body).unwrap(),
    )
    .await;
    server.stop().await;
}

async fn twenty_concurrent_copies_make_one_event(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = subscribed(&server, "github.*").await;
    let src = create_source(
        &server,
        json!({"name": "gh-race", "provider": "github", "secret": GH_SECRET}),
    )
    .await;
    let body = br#"{"ref": "refs/heads/main", "commits": [{"id": "abc"}]}"#;
    let headers = github_headers("push", "race-1", body, GH_SECRET);
    let answers =
        futures::future::join_all((0..20).map(|_| ingest(&server, "gh-race", &headers, body)))
            .await;
    let accepted: Vec<&Value> = answers
        .iter()
        .filter(|(s, _, _)| *s == 202)
        .map(|(_, b, _)| b)
        .collect();
    let duplicates = answers.iter().filter(|(s, _, _)| *s == 200).count();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    assert_eq!(duplicates, 19, "{answers:?}");
    let id = &accepted[0]["id"];
    assert!(answers.iter().all(|(_, b, _)| &b["id"] == id));

    let events = events_of(&server, "gh-race").await;
    assert_eq!(events.len(), 1, "exactly one event row: {events:?}");
    assert_eq!(&events[0]["id"], id);
    assert_eq!(only_delivery(&rx).await["event"], "github.push");
    let log = requests_log(&server, src["id"].as_str().unwrap(), "").await;
    assert_eq!(log.len(), 20, "every copy is in the requests log");
    assert_eq!(log.iter().filter(|r| r["status"] == "accepted").count(), 1);
    assert_eq!(
        log.iter().filter(|r| r["status"] == "duplicate").count(),
        19
    );
    assert!(log.iter().all(|r| &r["event_id"] == id));
    server.stop().await;
}

async fn key_with_role(server: &TestServer, role: &str) -> String {
    let (s, b) = server
        .post("/api/v1/keys", json!({"name": role, "role": role}))
        .await;
    assert_eq!(s, 201, "{b}");
    b["key"].as_str().unwrap().to_owned()
}

#[track_caller]
fn assert_invalid(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&field), "expected `{field}` in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_api_crud_secret_once_and_validation() {
    let server = TestServer::start(Backend::Sqlite).await;
    let created = create_source(
        &server,
        json!({"name": "gh-main", "provider": "github", "secret": GH_SECRET}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("src_"));
    assert_eq!(created["secret"], GH_SECRET);
    assert_eq!(created["provider"], "github");
    assert_eq!(created["config"], json!({}));
    assert_eq!(created["active"], true);
    assert_eq!(created["allow_unsigned"], false);
    assert_eq!(created["rate_limit_per_min"], 100);
    assert_eq!(
        created["ingest_url"],
        format!("{}/ingest/gh-main", server.base)
    );

    // The secret is never shown again.
    let (s, read) = server.get(&format!("/api/v1/sources/{id}")).await;
    assert_eq!(s, 200);
    assert!(read.get("secret").is_none(), "{read}");
    assert_eq!(read["name"], "gh-main");
    let (s, list) = server.get("/api/v1/sources").await;
    assert_eq!(s, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("secret").is_none());
    assert_eq!(list["next_cursor"], Value::Null);
    assert!(!list.to_string().contains(GH_SECRET));

    // A new secret applies at once on this node; the answer does not echo it.
    let (s, patched) = server
        .patch(
            &format!("/api/v1/sources/{id}"),
            json!({"secret": "rotated-secret", "rate_limit_per_min": 600}),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    assert!(patched.get("secret").is_none());
    assert_eq!(patched["rate_limit_per_min"], 600);
    let body = br#"{"zen": "Design for failure."}"#;
    let (s, _, _) = ingest(
        &server,
        "gh-main",
        &github_headers("ping", "p-1", body, GH_SECRET),
        body,
    )
    .await;
    assert_eq!(s, 401, "the old secret no longer verifies");
    let (s, _, _) = ingest(
        &server,
        "gh-main",
        &github_headers("ping", "p-1", body, "rotated-secret"),
        body,
    )
    .await;
    assert_eq!(s, 202);

    // Renaming moves the ingest URL.
    let (s, renamed) = server
        .patch(&format!("/api/v1/sources/{id}"), json!({"name": "gh-new"}))
        .await;
    assert_eq!(s, 200, "{renamed}");
    assert_eq!(
        renamed["ingest_url"],
        format!("{}/ingest/gh-new", server.base)
    );
    let (s, _, _) = ingest(&server, "gh-main", &[], body).await;
    assert_eq!(s, 404);

    // Switching to `none` needs the secret removed.
    let (s, b) = server
        .patch(
            &format!("/api/v1/sources/{id}"),
            json!({"provider": "none"}),
        )
        .await;
    assert_invalid(s, &b, "secret");
    let (s, b) = server
        .patch(
            &format!("/api/v1/sources/{id}"),
            json!({"provider": "none", "secret": null, "config": {"type_header": "X-Kind"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["config"]["type_header"], "X-Kind");

    // Validation names the field.
    let cases = [
        (
            json!({"name": "Bad Name", "provider": "github", "secret": "x"}),
            "name",
        ),
        (
            json!({"name": "a", "provider": "gitlab", "secret": "x"}),
            "provider",
        ),
        (json!({"name": "a", "provider": "github"}), "secret"),
        (
            json!({"name": "a", "provider": "github", "secret": ""}),
            "secret",
        ),
        (
            json!({"name": "a", "provider": "standard", "secret": "plain"}),
            "secret",
        ),
        (
            json!({"name": "a", "provider": "stripe", "secret": "x", "config": {"tolerance": 9}}),
            "config.tolerance",
        ),
        (
            json!({"name": "a", "provider": "hmac", "secret": "x"}),
            "config.header",
        ),
        (
            json!({"name": "a", "provider": "hmac", "secret": "x", "config": {"header": "X-S", "algorithm": "md5"}}),
            "config.algorithm",
        ),
        (
            json!({"name": "a", "provider": "paypal", "config": {}}),
            "config.webhook_id",
        ),
        (
            json!({"name": "a", "provider": "paypal", "secret": "x", "config": {"webhook_id": "WH1"}}),
            "secret",
        ),
        (
            json!({"name": "a", "provider": "none", "secret": "x"}),
            "secret",
        ),
        (
            json!({"name": "a", "provider": "github", "secret": "x", "allow_unsigned": true}),
            "allow_unsigned",
        ),
        (
            json!({"name": "a", "provider": "github", "secret": "x", "rate_limit_per_min": 0}),
            "rate_limit_per_min",
        ),
        (
            json!({"name": "a", "provider": "github", "secret": "x", "colour": "red"}),
            "colour",
        ),
        (json!({"provider": "github", "secret": "x"}), "name"),
    ];
    for (body, field) in cases {
        let (s, b) = server.post("/api/v1/sources", body.clone()).await;
        assert_invalid(s, &b, field);
    }
    let (s, b) = server
        .get(&format!("/api/v1/sources/{id}/requests?status=lost"))
        .await;
    assert_invalid(s, &b, "status");

    // Names are unique across the server.
    let (s, b) = server
        .post(
            "/api/v1/sources",
            json!({"name": "gh-new", "provider": "github", "secret": "x"}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "conflict");

    // Roles: viewers read, editors write, publishers do neither.
    let viewer = key_with_role(&server, "viewer").await;
    let editor = key_with_role(&server, "editor").await;
    let publisher = key_with_role(&server, "publisher").await;
    let (s, _) = server
        .call_as(&viewer, Method::GET, "/api/v1/sources", None)
        .await;
    assert_eq!(s, 200);
    let new = json!({"name": "by-role", "provider": "github", "secret": "x"});
    let (s, _) = server
        .call_as(&viewer, Method::POST, "/api/v1/sources", Some(new.clone()))
        .await;
    assert_eq!(s, 403);
    let (s, _) = server
        .call_as(&publisher, Method::GET, "/api/v1/sources", None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = server
        .call_as(&editor, Method::POST, "/api/v1/sources", Some(new))
        .await;
    assert_eq!(s, 201);

    // Pages walk every source once.
    for i in 0..3 {
        create_source(
            &server,
            json!({"name": format!("page-{i}"), "provider": "github", "secret": "x"}),
        )
        .await;
    }
    let (_, p1) = server.get("/api/v1/sources?limit=3").await;
    assert_eq!(p1["data"].as_array().unwrap().len(), 3);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = server
        .get(&format!("/api/v1/sources?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(p2["data"].as_array().unwrap().len(), 2);
    assert_eq!(p2["next_cursor"], Value::Null);

    // Delete: gone from the API and from the ingest route.
    let (s, _) = server
        .call(Method::DELETE, &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = server.get(&format!("/api/v1/sources/{id}")).await;
    assert_eq!(s, 404);
    let (s, _, _) = ingest(&server, "gh-new", &[], body).await;
    assert_eq!(s, 404);
    let (s, _) = server
        .call(Method::DELETE, &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(s, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_isolated_between_tenants() {
    let server = TestServer::start(Backend::Sqlite).await;
    let src = create_source(
        &server,
        json!({"name": "gh-a", "provider": "github", "secret": GH_SECRET}),
    )
    .await;
    let id = src["id"].as_str().unwrap();
    let (_, tenant_b) = server.post("/api/v1/tenants", json!({"name": "b"})).await;
    let tb = tenant_b["id"].as_str().unwrap();
    let key_b = server
        .client
        .post(format!("{}/api/v1/keys", server.base))
        .bearer_auth(&server.admin_key)
        .header("X-Tenant-Id", tb)
        .json(&json!({"name": "b-admin", "role": "admin"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    for (method, path, body) in [
        (Method::GET, format!("/api/v1/sources/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/sources/{id}"),
            Some(json!({"active": false})),
        ),
        (Method::DELETE, format!("/api/v1/sources/{id}"), None),
        (Method::GET, format!("/api/v1/sources/{id}/requests"), None),
    ] {
        let (s, b) = server.call_as(&key_b, method.clone(), &path, body).await;
        assert_eq!(s, 404, "{method} {path}: {b}");
        assert_eq!(b["error"]["code"], "not_found");
    }
    let (s, list) = server
        .call_as(&key_b, Method::GET, "/api/v1/sources", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["data"], json!([]));

    // B's own source routes B's events to B's webhooks only.
    let rx_a = subscribed(&server, "github.*").await;
    let rx_b = Receiver::start().await;
    let (s, _) = server
        .call_as(
            &key_b,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": rx_b.url("/b"), "events": ["github.*"]})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = server
        .call_as(
            &key_b,
            Method::POST,
            "/api/v1/sources",
            Some(json!({"name": "gh-b", "provider": "github", "secret": "b-secret"})),
        )
        .await;
    assert_eq!(s, 201);
    let body = br#"{"ref": "refs/heads/main"}"#;
    let (s, _, _) = ingest(
        &server,
        "gh-b",
        &github_headers("push", "b-1", body, "b-secret"),
        body,
    )
    .await;
    assert_eq!(s, 202);
    eventually(WAIT, "B's delivery", || async {
        (rx_b.count() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx_a.count(), 0, "A's webhook never sees B's events");
    assert!(
        events_of(&server, "gh-b").await.is_empty(),
        "not in A's log"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_log_explains_every_outcome() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.max_body_bytes = 4096).await;
    let src = create_source(
        &server,
        json!({"name": "gh-log", "provider": "github", "secret": GH_SECRET}),
    )
    .await;
    let id = src["id"].as_str().unwrap().to_owned();
    let body = br#"{"action": "published", "release": {"tag_name": "v1.0.0"}}"#;
    let good = github_headers("release", "rel-1", body, GH_SECRET);
    let (s, accepted, _) = ingest(&server, "gh-log", &good, body).await;
    assert_eq!(s, 202);
    let (s, _, _) = ingest(&server, "gh-log", &good, body).await;
    assert_eq!(s, 200);
    let bad = github_headers("release", "rel-2", body, "guess");
    let (s, _, response_headers) = ingest(&server, "gh-log", &bad, b"{\"forged\": true}").await;
    assert_eq!(s, 401);
    let big = vec![b'x'; 8192];
    let (s, b, _) = ingest(&server, "gh-log", &good, &big).await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["error"]["code"], "payload_too_large");

    // Rejections are written in the background: wait for them.
    let log = eventually(WAIT, "four log entries", || async {
        let log = requests_log(&server, &id, "").await;
        (log.len() == 4).then_some(log)
    })
    .await;
    let statuses: Vec<&str> = log.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["rejected", "rejected", "duplicate", "accepted"]);
    let [too_big, forged, duplicate, first] = [&log[0], &log[1], &log[2], &log[3]];
    assert!(too_big["reason"]
        .as_str()
        .unwrap()
        .contains("over 4096 bytes"));
    assert_eq!(forged["reason"], "X-Hub-Signature-256 does not match");
    assert_eq!(forged["body"], "{\"forged\": true}");
    assert_eq!(forged["event_id"], Value::Null);
    assert_eq!(
        forged["request_id"],
        response_headers["x-request-id"].to_str().unwrap()
    );
    assert_eq!(forged["headers"]["x-github-delivery"], "rel-2");
    assert_eq!(forged["headers"]["user-agent"], "GitHub-Hookshot/test");
    for entry in [duplicate, first] {
        assert_eq!(entry["event_id"], accepted["id"]);
        assert_eq!(entry["event_type"], "github.release.published");
        assert_eq!(entry["provider_id"], "rel-1");
        assert_eq!(entry["reason"], Value::Null);
        // The body is the event's data verbatim, so the log does not keep a second copy.
        assert_eq!(entry["body"], Value::Null);
        assert_eq!(entry["body_size"], body.len());
        assert!(entry["received_at"].as_str().unwrap().ends_with('Z'));
    }
    let rejected = requests_log(&server, &id, "?status=rejected").await;
    assert_eq!(rejected.len(), 2);
    let page = requests_log(&server, &id, "?limit=1").await;
    assert_eq!(page.len(), 1);

    // A paused source refuses (503) and says so in the log.
    let (s, _) = server
        .patch(&format!("/api/v1/sources/{id}"), json!({"active": false}))
        .await;
    assert_eq!(s, 200);
    let (s, b, _) = ingest(&server, "gh-log", &good, body).await;
    assert_eq!(s, 503, "{b}");
    eventually(WAIT, "the paused entry", || async {
        let log = requests_log(&server, &id, "?limit=1").await;
        (log[0]["reason"] == "the source is paused (active: false)").then_some(())
    })
    .await;

    // Counted per source and outcome.
    let metrics = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in ["accepted", "duplicate", "rejected"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("hookrelay_inbound_requests_total")
                    && l.contains("source=\"gh-log\"")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .unwrap_or_else(|| panic!("no {outcome} counter in {metrics}"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let want = if outcome == "rejected" { 3.0 } else { 1.0 };
        assert_eq!(n, want, "{line}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let server = TestServer::start(Backend::Sqlite).await;
    let src = create_source(
        &server,
        json!({"name": "slow", "provider": "none", "rate_limit_per_min": 3}),
    )
    .await;
    let id = src["id"].as_str().unwrap();
    for i in 0..3 {
        let (s, b, _) = ingest(&server, "slow", &[], format!("{{\"n\": {i}}}").as_bytes()).await;
        assert_eq!(s, 202, "request {i} is within the burst: {b}");
    }
    let (s, b, headers) = ingest(&server, "slow", &[], b"{\"n\": 3}").await;
    assert_eq!(s, 429, "{b}");
    assert_eq!(b["error"]["code"], "rate_limited");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    // 3/min is one request every 20 s.
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let entry = eventually(WAIT, "the rate-limited entry", || async {
        requests_log(&server, id, "?status=rate_limited")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(entry["reason"], "over the source's limit of 3 requests/min");
    assert_eq!(events_of(&server, "slow").await.len(), 3);

    // Other sources have their own budget; raising the limit applies at once.
    create_source(&server, json!({"name": "other", "provider": "none"})).await;
    let (s, _, _) = ingest(&server, "other", &[], b"{}").await;
    assert_eq!(s, 202);
    let (s, _) = server
        .patch(
            &format!("/api/v1/sources/{id}"),
            json!({"rate_limit_per_min": 1000}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = ingest(&server, "slow", &[], b"{\"n\": 4}").await;
    assert_eq!(s, 202);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_sources_need_an_explicit_opt_in_in_prod() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.env = hookrelay::config::Environment::Prod;
    })
    .await;
    let (s, b) = server
        .post(
            "/api/v1/sources",
            json!({"name": "open", "provider": "none"}),
        )
        .await;
    assert_invalid(s, &b, "provider");
    let src = create_source(
        &server,
        json!({"name": "open", "provider": "none", "allow_unsigned": true, "config": {"type_header": "X-Kind"}}),
    )
    .await;
    assert_eq!(src["allow_unsigned"], true);
    let (s, b, _) = ingest(&server, "open", &[("x-kind", "deploy.done".into())], b"{}").await;
    assert_eq!(s, 202, "{b}");
    let events = events_of(&server, "open").await;
    assert_eq!(events[0]["type"], "deploy.done");
    // Turning the opt-in off is refused while the provider is none.
    let (s, b) = server
        .patch(
            &format!("/api/v1/sources/{}", src["id"].as_str().unwrap()),
            json!({"allow_unsigned": false}),
        )
        .await;
    assert_invalid(s, &b, "provider");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_encoded_github_payloads_become_json_events() {
    let server = TestServer::start(Backend::Sqlite).await;
    let rx = subscribed(&server, "github.pr.*").await;
    create_source(
        &server,
        json!({"name": "gh-form", "provider": "github", "secret": GH_SECRET}),
    )
    .await;
    let payload = json!({"action": "closed", "number": 3, "pull_request": {"merged": true}});
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let mut headers = github_headers("pull_request", "form-1", body.as_bytes(), GH_SECRET);
    let resp = server
        .client
        .post(format!("{}/ingest/gh-form", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .headers({
            let mut h = reqwest::header::HeaderMap::new();
            for (k, v) in headers.drain(..) {
                h.insert(k, v.parse().unwrap());
            }
            h
        })
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let delivered = only_delivery(&rx).await;
    assert_eq!(delivered["event"], "github.pr.closed");
    assert_eq!(delivered["data"], payload);
    server.stop().await;
}

#[tokio::test]
async fn openapi_lists_the_inbound_routes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (s, doc) = server.get("/api/v1/openapi.json").await;
    assert_eq!(s, 200);
    for path in [
        "/api/v1/sources",
        "/api/v1/sources/{id}",
        "/api/v1/sources/{id}/requests",
        "/ingest/{source_name}",
    ] {
        assert!(doc["paths"][path].is_object(), "missing {path}");
    }
    assert!(doc["components"]["schemas"]["SourceView"].is_object());
    server.stop().await;
}
