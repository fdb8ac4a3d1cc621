//! Destinations and routing end to end, on both stores: local receivers stand in for Discord and
//! Slack (templates, defaults, embeds, blocks, render failures, 429 `retry_after`, outages), the
//! event catalog and schema validation, payload filters, URL rules, warnings and previews.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

both_backends!(
    discord_messages_from_templates_and_defaults,
    discord_embeds_from_a_json_template,
    slack_text_blocks_and_defaults,
    failing_template_fails_the_delivery_with_a_render_error,
    discord_429_retry_after_is_honoured,
    discord_exhausted_bucket_delays_the_next_send,
    discord_outage_then_recovery,
    catalog_api,
    schema_validation_on_emit,
    payload_filters_route_events,
    invalid_payload_filters_are_refused_with_their_path,
    destination_urls_and_templates_are_checked,
    unknown_event_types_warn_or_are_refused_when_strict,
    preview_renders_without_sending,
    worked_example_one_event_two_discord_channels_and_slack,
);

const WAIT: Duration = Duration::from_secs(20);

/// A local receiver path shaped like a Discord webhook (the host is exempt as 127.0.0.1).
fn discord_url(rx: &Receiver) -> String {
    rx.url("/api/webhooks/123456/token-abc")
}

fn slack_url(rx: &Receiver) -> String {
    rx.url("/services/T000/B000/XXXX")
}

/// Waits for `n` requests and returns their JSON bodies.
async fn bodies(rx: &Receiver, n: usize) -> Vec<Value> {
    eventually(WAIT, &format!("{n} requests"), || async {
        (rx.count() >= n).then_some(())
    })
    .await;
    rx.requests().iter().map(|r| r.json()).collect()
}

fn contents(bodies: &[Value], key: &str) -> BTreeSet<String> {
    bodies
        .iter()
        .map(|b| b[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn single_delivery(server: &TestServer, ev: &Value) -> String {
    let mut ids = server.delivery_ids(ev["id"].as_str().unwrap()).await;
    assert_eq!(ids.len(), 1, "{ev}");
    ids.remove(0)
}

async fn discord_messages_from_templates_and_defaults(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(204).body(""));
    let hook = server
        .webhook(json!({
            "url": discord_url(&rx), "kind": "discord",
            "events": ["member.created", "github.*", "hackathon.created"],
            "templates": {
                "member.created": "🎉 {{ data.name }} joined {{ data.community }}!",
                "github.*": "🐙 **{{ data.repository.full_name }}**: {{ event }}",
                "github.push": "📦 {{ data.commits | length }} commits to {{ data.repository.full_name }}"
            }
        }))
        .await;
    server
        .emit(json!({"type": "member.created", "data": {"name": "Zoë 🦄 李", "community": "Rust Paris 🇫🇷"}}))
        .await;
    server
        .emit(
            json!({"type": "github.pr.opened", "data": {"repository": {"full_name": "acme/app"}}}),
        )
        .await;
    server
        .emit(json!({"type": "github.push", "data": {"repository": {"full_name": "acme/app"}, "commits": [1, 2, 3]}}))
        .await;
    // No template for this type: the built-in message.
    server
        .emit(json!({"type": "hackathon.created", "data": {"name": "Winter Hack", "url": "https://example.org/h/3"}}))
        .await;

    let got = bodies(&rx, 4).await;
    assert_eq!(
        contents(&got, "content"),
        BTreeSet::from([
            "🎉 Zoë 🦄 李 joined Rust Paris 🇫🇷!".to_owned(),
            "🐙 **acme/app**: github.pr.opened".to_owned(),
            "📦 3 commits to acme/app".to_owned(),
            "🚀 Hackathon launched: **Winter Hack**\nhttps://example.org/h/3".to_owned(),
        ])
    );
    for (body, req) in got.iter().zip(rx.requests()) {
        // Exactly the Discord shape: content, and no accidental pings.
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
        assert_eq!(req.path, "/api/webhooks/123456/token-abc");
        assert_eq!(req.header("content-type"), "application/json");
        assert!(req.header("user-agent").starts_with("hookrelay/"));
    }

    // The `/test` action goes through the same path with the built-in webhook.test message.
    let (status, test) = server
        .post(
            &format!("/api/v1/webhooks/{}/test", hook["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["status"], "succeeded");
    assert_eq!(test["response_status"], 204);
    let last = rx.requests().last().unwrap().json();
    assert_eq!(last["content"], "🔔 Test event from hookrelay");
    server.stop().await;
}

async fn discord_embeds_from_a_json_template(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let template = json!({
        "content": "New member in {{ data.community }}",
        "embeds": [{
            "title": "👋 {{ data.name }}",
            "description": "{{ data.bio }}",
            "url": "{{ data.profile_url }}",
            "color": "{{ data.colour }}",
            "fields": [
                {"name": "Community", "value": "{{ data.community }}", "inline": true},
                {"name": "Email", "value": "{{ data.email }}", "inline": true}
            ],
            "footer": {"text": "hookrelay • {{ event }}"}
        }]
    })
    .to_string();
    server
        .webhook(json!({"url": discord_url(&rx), "kind": "discord", "templates": {"member.*": template}}))
        .await;
    let ev = server
        .emit(json!({"type": "member.created", "data": {
            "name": "Ada \"the first\" Lovelace", "bio": "Loves 🧮 and\nengines }{",
            "community": "Rustaceans", "colour": "#58b9ff", "profile_url": ""}}))
        .await;
    let id = single_delivery(&server, &ev).await;
    server.delivery_with_status(&id, "succeeded", WAIT).await;
    let body = rx.requests()[0].json();
    assert_eq!(
        body,
        json!({
            "content": "New member in Rustaceans",
            "embeds": [{
                "title": "👋 Ada \"the first\" Lovelace",
                "description": "Loves 🧮 and\nengines }{",
                "color": 0x58b9ff,
                "fields": [
                    {"name": "Community", "value": "Rustaceans", "inline": true},
                    // Discord refuses an empty field value: a zero-width space stands in.
                    {"name": "Email", "value": "\u{200b}", "inline": true}
                ],
                "footer": {"text": "hookrelay • member.created"}
            }],
            "allowed_mentions": {"parse": []}
        })
    );
    server.stop().await;
}

async fn slack_text_blocks_and_defaults(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let blocks = json!({
        "text": "New event: {{ data.title }}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "📅 {{ data.title }}"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*When:* {{ data.starts_at }}\n<{{ data.url }}|Details>"}}
        ]
    })
    .to_string();
    server
        .webhook(
            json!({"url": slack_url(&rx), "kind": "slack", "templates": {
                "member.created": "*{{ data.name }}* joined <{{ data.url }}|the community> 🎉",
                "event.created": blocks
            }}),
        )
        .await;
    server
        .emit(json!({"type": "member.created", "data": {"name": "Ada <admin> & co", "url": "https://x.test/?a=1&b=2"}}))
        .await;
    server
        .emit(json!({"type": "event.created", "data": {"title": "Rust & Tea ☕", "starts_at": "Friday", "url": "https://x.test/e/1"}}))
        .await;
    server
        .emit(json!({"type": "community.approved", "data": {"name": "Rustaceans"}}))
        .await;
    let got = bodies(&rx, 3).await;
    let by_text = |prefix: &str| {
        got.iter()
            .find(|b| b["text"].as_str().unwrap_or_default().starts_with(prefix))
            .unwrap_or_else(|| panic!("no message starting {prefix:?} in {got:?}"))
            .clone()
    };
    // Values are escaped for Slack's markup; the template's own `<url|text>` is not.
    assert_eq!(
        by_text("*Ada"),
        json!({"text": "*Ada &lt;admin&gt; &amp; co* joined <https://x.test/?a=1&amp;b=2|the community> 🎉"})
    );
    assert_eq!(
        by_text("New event"),
        json!({
            "text": "New event: Rust &amp; Tea ☕",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "📅 Rust &amp; Tea ☕"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*When:* Friday\n<https://x.test/e/1|Details>"}}
            ]
        })
    );
    // The built-in message, with Slack's single-asterisk bold.
    assert_eq!(
        by_text("🏘️"),
        json!({"text": "🏘️ Community *Rustaceans* was approved"})
    );
    for req in rx.requests() {
        assert_eq!(req.path, "/services/T000/B000/XXXX");
    }
    server.stop().await;
}

async fn failing_template_fails_the_delivery_with_a_render_error(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server
        .webhook(json!({"url": discord_url(&rx), "kind": "discord", "retry_schedule_seconds": [0, 0],
                        "templates": {"github.pr.opened": "🔀 {{ data.pull_request.title }} by {{ data.pull_request.user.login }}"}}))
        .await;
    let hook_id = hook["id"].as_str().unwrap();
    // The payload lacks `pull_request`: reaching into it cannot render.
    let ev = server
        .emit(json!({"type": "github.pr.opened", "data": {"number": 1}}))
        .await;
    let id = single_delivery(&server, &ev).await;
    let d = server.delivery_with_status(&id, "failed", WAIT).await;
    assert_eq!(
        d["attempt_count"], 1,
        "a render failure is not retried: {d}"
    );
    let attempt = &d["attempts"][0];
    assert_eq!(attempt["error_kind"], "render");
    assert!(attempt["response_status"].is_null());
    let error = attempt["error"].as_str().unwrap();
    assert!(
        error.contains("template github.pr.opened") && error.contains("undefined"),
        "{error}"
    );
    assert_eq!(d["last_error"], error);
    let (_, dlq) = server
        .get(&format!("/api/v1/dlq?webhook_id={hook_id}"))
        .await;
    assert_eq!(dlq["data"][0]["delivery_id"], id.as_str());

    // The worker carries on: a renderable event on the same webhook is delivered.
    let ok = server
        .emit(json!({"type": "github.pr.opened", "data": {"pull_request": {"title": "Dark mode", "user": {"login": "ada"}}}}))
        .await;
    let ok_id = single_delivery(&server, &ok).await;
    server.delivery_with_status(&ok_id, "succeeded", WAIT).await;
    assert_eq!(rx.count(), 1, "nothing was sent for the failed render");
    assert_eq!(rx.requests()[0].json()["content"], "🔀 Dark mode by ada");
    server.stop().await;
}

async fn discord_429_retry_after_is_honoured(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    // As Discord answers: the wait is in the JSON body, in fractional seconds (no Retry-After).
    rx.script([Reply::status(429)
        .header("content-type", "application/json")
        .header("x-ratelimit-remaining", "0")
        .body(
            r#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#,
        )]);
    rx.set_default(Reply::status(204).body(""));
    server
        .webhook(json!({"url": discord_url(&rx), "kind": "discord", "retry_schedule_seconds": [0]}))
        .await;
    let ev = server
        .emit(json!({"type": "member.created", "data": {"name": "Ada"}}))
        .await;
    let id = single_delivery(&server, &ev).await;
    let d = server.delivery_with_status(&id, "succeeded", WAIT).await;
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_millis(1450),
        "retried after {gap:?}, before the 1.5 s Discord asked for"
    );
    assert_eq!(d["attempts"][0]["response_status"], 429);
    assert!(d["attempts"][0]["response_body"]
        .as_str()
        .unwrap()
        .contains("retry_after"));
    assert_eq!(d["attempts"][1]["response_status"], 204);
    assert_eq!(
        reqs[1].json(),
        reqs[0].json(),
        "the same message, sent again"
    );
    server.stop().await;
}

async fn discord_exhausted_bucket_delays_the_next_send(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    // A success that empties the bucket: the next message must wait for the reset.
    rx.script([Reply::status(204)
        .header("x-ratelimit-limit", "5")
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset-after", "1.2")
        .body("")]);
    rx.set_default(Reply::status(204).body(""));
    server
        .webhook(json!({"url": discord_url(&rx), "kind": "discord"}))
        .await;
    let first = server
        .emit(json!({"type": "member.created", "data": {"name": "one"}}))
        .await;
    let first_id = single_delivery(&server, &first).await;
    server
        .delivery_with_status(&first_id, "succeeded", WAIT)
        .await;
    let second = server
        .emit(json!({"type": "member.created", "data": {"name": "two"}}))
        .await;
    let second_id = single_delivery(&server, &second).await;
    let d = server
        .delivery_with_status(&second_id, "succeeded", WAIT)
        .await;
    assert_eq!(d["attempt_count"], 1, "paced, not refused and retried");
    let reqs = rx.requests();
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_millis(1150),
        "sent {gap:?} after the bucket emptied, before its 1.2 s reset"
    );
    server.stop().await;
}

async fn discord_outage_then_recovery(backend: Backend) {
    // The long outage below fails ten times in a row: a threshold above that keeps this about
    // retries and the dead-letter queue rather than the circuit breaker (tests/it/health.rs).
    let server = TestServer::start_with(backend, |c| c.health.circuit_failures = 100).await;
    let rx = Receiver::start().await;
    // A short outage, within the retry schedule.
    rx.script([
        Reply::status(503).body("upstream connect error"),
        Reply::status(502).body("Bad Gateway"),
        Reply::status(500).body(r#"{"message": "500: Internal Server Error", "code": 0}"#),
    ]);
    rx.set_default(Reply::status(204).body(""));
    let hook = server
        .webhook(json!({"url": discord_url(&rx), "kind": "discord", "retry_schedule_seconds": [0, 0, 0, 0]}))
        .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let ev = server
        .emit(json!({"type": "hackathon.created", "data": {"name": "Winter Hack"}}))
        .await;
    let id = single_delivery(&server, &ev).await;
    let d = server.delivery_with_status(&id, "succeeded", WAIT).await;
    let statuses: Vec<Value> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["response_status"].clone())
        .collect();
    assert_eq!(statuses, [json!(503), json!(502), json!(500), json!(204)]);
    let sent: BTreeSet<String> = rx.requests().iter().map(|r| r.json().to_string()).collect();
    assert_eq!(sent.len(), 1, "every retry posts the same message");

    // A long outage exhausts the schedule; after recovery one bulk retry delivers the backlog.
    rx.set_default(Reply::status(503).body("down"));
    let backlog: Vec<String> = emit_members(&server, 2).await;
    for id in &backlog {
        let d = server.delivery_with_status(id, "failed", WAIT).await;
        assert_eq!(d["attempt_count"], 5);
        assert_eq!(d["last_response_status"], 503);
    }
    rx.set_default(Reply::status(204).body(""));
    let (status, queued) = server
        .post("/api/v1/dlq/retry", json!({"webhook_id": hook_id}))
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["queued"], 2);
    for id in &backlog {
        server.delivery_with_status(id, "succeeded", WAIT).await;
    }
    let last = rx.requests().last().unwrap().json();
    assert!(
        last["content"].as_str().unwrap().starts_with("👋 **member"),
        "{last}"
    );
    server.stop().await;
}

/// Emits `n` member.created events and returns their delivery ids.
async fn emit_members(server: &TestServer, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let ev = server
            .emit(json!({"type": "member.created", "data": {"name": format!("member {i}")}}))
            .await;
        ids.push(single_delivery(server, &ev).await);
    }
    ids
}

const BUILT_INS: [&str; 15] = [
    "community.approved",
    "event.created",
    "github.issues.opened",
    "github.pr.opened",
    "github.push",
    "github.release.published",
    "hackathon.created",
    "hookrelay.delivery.exhausted",
    "hookrelay.queue.backlog",
    "hookrelay.webhook.disabled",
    "hookrelay.webhook.failing",
    "hookrelay.webhook.recovered",
    "member.activated",
    "member.created",
    "webhook.test",
];

async fn catalog_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, list) = server.get("/api/v1/event-types").await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BUILT_INS, "seeded with the built-ins, by name");
    assert!(list["next_cursor"].is_null());
    let member = &list["data"][13];
    assert_eq!(member["name"], "member.created");
    assert_eq!(member["built_in"], true);
    assert!(member["description"].as_str().unwrap().contains("member"));
    assert_eq!(member["example"]["name"], "Ada Lovelace");
    assert!(member["schema"].is_null() && member["created_at"].is_null());
    // hookrelay's own events come with their schema.
    let disabled = &list["data"][9];
    assert_eq!(disabled["name"], "hookrelay.webhook.disabled");
    assert_eq!(
        disabled["schema"]["required"],
        json!(["webhook_id", "url", "reason"])
    );

    // Pages by name.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/event-types?limit=4&cursor={c}"),
            None => "/api/v1/event-types?limit=4".to_owned(),
        };
        let (_, page) = server.get(&path).await;
        let items = page["data"].as_array().unwrap();
        assert!(items.len() <= 4);
        seen.extend(items.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, BUILT_INS);

    let schema = json!({"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}});
    let (status, created) = server
        .post("/api/v1/event-types", json!({"name": "order.paid", "description": "An order was paid 💶", "schema": schema, "example": {"amount": 42}}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "order.paid");
    assert_eq!(created["built_in"], false);
    assert_eq!(created["schema"], schema);
    assert_eq!(created["description"], "An order was paid 💶");
    assert!(created["created_at"].is_string());

    let (status, body) = server
        .post("/api/v1/event-types", json!({"name": "order.paid"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("conflict"))
    );
    let (status, _) = server
        .post("/api/v1/event-types", json!({"name": "member.created"}))
        .await;
    assert_eq!(status, 409, "built-ins exist already");
    let refused = [
        (json!({"name": "bad name"}), "name"),
        (json!({"name": "x.y", "schema": {"type": "nope"}}), "schema"),
        (json!({"name": "x.y", "schema": 5}), "schema"),
        (
            json!({"name": "x.y", "schema": schema, "example": {"amount": "lots"}}),
            "example.amount",
        ),
        (json!({"name": "x.y", "colour": "red"}), "colour"),
    ];
    for (body, field) in refused {
        let (status, answer) = server.post("/api/v1/event-types", body.clone()).await;
        assert_eq!(status, 422, "{body} → {answer}");
        assert_eq!(answer["error"]["details"][0]["field"], field, "{answer}");
    }

    let (status, got) = server.get("/api/v1/event-types/order.paid").await;
    assert_eq!(
        (status, got["example"].clone()),
        (200, json!({"amount": 42}))
    );
    let (status, _) = server.get("/api/v1/event-types/nope.nope").await;
    assert_eq!(status, 404);

    // A built-in is customised by PATCH, and restored by deleting the customisation.
    let (status, patched) = server
        .patch(
            "/api/v1/event-types/member.created",
            json!({"schema": {"type": "object", "required": ["name"]}}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["built_in"], true);
    assert_eq!(patched["schema"]["required"], json!(["name"]));
    assert_eq!(
        patched["example"]["name"], "Ada Lovelace",
        "unchanged fields are kept"
    );
    assert!(patched["created_at"].is_string());
    let (status, cleared) = server
        .patch(
            "/api/v1/event-types/order.paid",
            json!({"example": null, "description": "paid"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(cleared["example"].is_null());
    assert_eq!(cleared["schema"], schema);
    let (status, _) = server
        .patch("/api/v1/event-types/nope.nope", json!({"description": "x"}))
        .await;
    assert_eq!(status, 404);
    let (_, list) = server.get("/api/v1/event-types").await;
    assert_eq!(list["data"].as_array().unwrap().len(), BUILT_INS.len() + 1);

    let delete = |name: &str| {
        let path = format!("/api/v1/event-types/{name}");
        let server = &server;
        async move { server.call(Method::DELETE, &path, None).await }
    };
    assert_eq!(delete("member.created").await.0, 204);
    let (_, restored) = server.get("/api/v1/event-types/member.created").await;
    assert!(restored["schema"].is_null() && restored["created_at"].is_null());
    assert_eq!(
        delete("member.created").await.0,
        409,
        "a built-in cannot be deleted"
    );
    assert_eq!(delete("order.paid").await.0, 204);
    assert_eq!(delete("order.paid").await.0, 404);

    // Viewers read the catalog but cannot change it.
    let (_, key) = server
        .post("/api/v1/keys", json!({"name": "v", "role": "viewer"}))
        .await;
    let viewer = key["key"].as_str().unwrap();
    let (status, _) = server
        .call_as(viewer, Method::GET, "/api/v1/event-types", None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .call_as(
            viewer,
            Method::POST,
            "/api/v1/event-types",
            Some(json!({"name": "a.b"})),
        )
        .await;
    assert_eq!(status, 403);
    server.stop().await;
}

async fn schema_validation_on_emit(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, _) = server
        .post("/api/v1/event-types", json!({"name": "order.paid", "schema": {
            "type": "object", "required": ["amount", "currency"],
            "properties": {
                "amount": {"type": "number", "minimum": 0},
                "currency": {"enum": ["EUR", "USD"]},
                "items": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}}
            }}}))
        .await;
    assert_eq!(status, 201);

    let ok = server
        .emit(json!({"type": "order.paid", "data": {"amount": 12.5, "currency": "EUR", "items": [{"sku": "A-1"}]}}))
        .await;
    assert!(ok["id"].as_str().unwrap().starts_with("evt_"));

    let bad = json!({"type": "order.paid", "data": {"amount": -5, "items": [{"sku": 1}]}});
    let (status, answer) = server.post("/api/v1/events", bad.clone()).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "validation_failed");
    let fields: BTreeSet<&str> = answer["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from(["data.amount", "data.currency", "data.items.0.sku"])
    );
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("data."));

    // Types without a schema are not checked.
    server
        .emit(json!({"type": "member.created", "data": "anything"}))
        .await;
    server
        .emit(json!({"type": "custom.thing", "data": {"x": 1}}))
        .await;

    // In a batch, the refused entry gets its error in place; the others are stored.
    let (status, batch) = server
        .post(
            "/api/v1/events/batch",
            json!({"events": [
            {"type": "order.paid", "data": {"amount": 1, "currency": "USD"}}, bad]}),
        )
        .await;
    assert_eq!(status, 202);
    assert!(batch["results"][0]["id"].is_string());
    assert_eq!(batch["results"][1]["error"]["code"], "validation_failed");
    let (_, stored) = server.get("/api/v1/events?type=order.paid").await;
    assert_eq!(
        stored["data"].as_array().unwrap().len(),
        2,
        "refused events are not stored"
    );

    // A schema change applies to the next emit on this node at once.
    let (status, _) = server
        .patch("/api/v1/event-types/order.paid", json!({"schema": null}))
        .await;
    assert_eq!(status, 200);
    let (status, answer) = server.post("/api/v1/events", bad).await;
    assert_eq!(status, 202, "{answer}");
    server.stop().await;
}

async fn payload_filters_route_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let a = server
        .webhook(json!({"url": rx.url("/a"), "events": ["order.*"],
                        "filter": {"data.amount": {"$gte": 100, "$lte": 5000}}}))
        .await;
    assert_eq!(
        a["filter"],
        json!({"data.amount": {"$gte": 100, "$lte": 5000}})
    );
    server
        .webhook(json!({"url": rx.url("/b"), "filter": {
            "$or": [{"data.country": {"$in": ["FR", "DE"]}}, {"data.vip": {"$eq": true}}],
            "data.email": {"$endsWith": "@example.org"}}}))
        .await;
    server
        .webhook(json!({"url": rx.url("/c"), "events": ["order.paid"], "filter": {
            "$and": [{"$not": {"data.plan": {"$startsWith": "free"}}}, {"data.coupon": {"$exists": false}}],
            "data.amount": {"$gt": 10, "$lt": 1000, "$neq": 13},
            "data.status": {"$nin": ["void"]}}}))
        .await;
    // No filter: every order.paid.
    server
        .webhook(json!({"url": rx.url("/d"), "events": ["order.paid"]}))
        .await;

    let cases = [
        (
            json!({"amount": 150, "country": "FR", "email": "a@example.org", "plan": "pro", "status": "ok"}),
            vec!["/a", "/b", "/c", "/d"],
        ),
        (
            json!({"amount": 50, "country": "US", "vip": true, "email": "b@example.org", "plan": "free-trial"}),
            vec!["/b", "/d"],
        ),
        (
            json!({"amount": 13, "country": "DE", "email": "c@example.com", "plan": "pro"}),
            vec!["/d"],
        ),
        (
            json!({"amount": 6000, "coupon": "X", "email": "d@example.org", "country": "IT"}),
            vec!["/d"],
        ),
        (
            json!({"amount": 999, "plan": "team", "status": "void"}),
            vec!["/a", "/d"],
        ),
        (
            json!({"amount": 500.0, "plan": "team"}),
            vec!["/a", "/c", "/d"],
        ),
    ];
    let mut expected: Vec<String> = Vec::new();
    for (data, paths) in &cases {
        let ev = server
            .emit(json!({"type": "order.paid", "data": data}))
            .await;
        assert_eq!(ev["deliveries"], paths.len(), "{data}");
        expected.extend(paths.iter().map(|p| p.to_string()));
    }
    eventually(WAIT, "all filtered deliveries", || async {
        (rx.count() >= expected.len()).then_some(())
    })
    .await;
    let mut got: Vec<String> = rx.requests().iter().map(|r| r.path.clone()).collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);

    // PATCH null removes the filter.
    let (status, patched) = server
        .patch(
            &format!("/api/v1/webhooks/{}", a["id"].as_str().unwrap()),
            json!({"filter": null}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert!(patched["filter"].is_null());
    let ev = server
        .emit(json!({"type": "order.refunded", "data": {"amount": 1}}))
        .await;
    assert_eq!(ev["deliveries"], 1, "only /a (all order.*, unfiltered now)");
    server.stop().await;
}

async fn invalid_payload_filters_are_refused_with_their_path(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let cases = [
        (
            json!({"data.amount": {"$gte": true}}),
            "filter.data.amount.$gte",
        ),
        (json!({"amount": 1}), "filter.amount"),
        (
            json!({"$or": [{"data.a": 1}, {"data.b": {"$regex": "x"}}]}),
            "filter.$or[1].data.b.$regex",
        ),
        (json!({"data.tags": {"$in": "a"}}), "filter.data.tags.$in"),
        (
            json!({"data.x": {"$exists": "yes"}}),
            "filter.data.x.$exists",
        ),
        (
            json!({"data.x": {"$startsWith": 3}}),
            "filter.data.x.$startsWith",
        ),
        (json!({"$and": []}), "filter.$and"),
        (json!({"$not": [1]}), "filter.$not"),
        (json!(["data.a"]), "filter"),
    ];
    for (filter, field) in cases {
        let (status, answer) = server
            .post(
                "/api/v1/webhooks",
                json!({"url": rx.url("/h"), "filter": filter}),
            )
            .await;
        assert_eq!(status, 422, "{filter} → {answer}");
        assert_eq!(answer["error"]["details"][0]["field"], field, "{answer}");
    }
    // And on PATCH.
    let hook = server.webhook(json!({"url": rx.url("/h")})).await;
    let (status, answer) = server
        .patch(
            &format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap()),
            json!({"filter": {"data.a": {"$lt": null}}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(answer["error"]["details"][0]["field"], "filter.data.a.$lt");
    server.stop().await;
}

async fn destination_urls_and_templates_are_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let refused = [
        (
            json!({"url": "https://example.com/hook", "kind": "discord"}),
            "url",
            "discord.com/api/webhooks",
        ),
        (
            json!({"url": "https://discord.com/api/webhooks/123/tok", "kind": "slack"}),
            "url",
            "hooks.slack.com",
        ),
        (
            // A private address is refused by the SSRF check before the Discord shape is looked at.
            json!({"url": "http://10.0.0.1/api/webhooks/1/t", "kind": "discord"}),
            "url",
            "private",
        ),
        (
            json!({"url": rx.url("/h"), "templates": {"member.created": "x"}}),
            "templates",
            "only",
        ),
        (
            json!({"url": discord_url(&rx), "kind": "discord", "templates": {"member.created": "{{ data.name"}}),
            "templates.member.created",
            "syntax",
        ),
        (
            json!({"url": discord_url(&rx), "kind": "discord", "templates": {"member.created": "{{ data.name | shout }}"}}),
            "templates.member.created",
            "unknown filter",
        ),
        (
            json!({"url": discord_url(&rx), "kind": "discord", "templates": {"github.*": "{\"text\": \"{{ event }}\"}"}}),
            "templates.github.*",
            "text",
        ),
        (
            json!({"url": discord_url(&rx), "kind": "discord", "templates": {"github.*": "{\"content\": "}}),
            "templates.github.*",
            "JSON",
        ),
        (
            json!({"url": slack_url(&rx), "kind": "slack", "templates": {"bad key": "x"}}),
            "templates.bad key",
            "key",
        ),
    ];
    for (body, field, words) in refused {
        let (status, answer) = server.post("/api/v1/webhooks", body.clone()).await;
        assert_eq!(status, 422, "{body} → {answer}");
        let detail = &answer["error"]["details"][0];
        assert_eq!(detail["field"], field, "{answer}");
        assert!(
            detail["message"].as_str().unwrap().contains(words),
            "{answer}"
        );
    }
    // Real service URLs are accepted. Paused, for no type that happens, and deleted at once:
    // these tests never send anything beyond this machine.
    for (kind, url) in [
        (
            "discord",
            "https://discord.com/api/webhooks/123456789/AbC-_d",
        ),
        ("discord", "https://canary.discord.com/api/v10/webhooks/1/t"),
        ("slack", "https://hooks.slack.com/services/T000/B000/XXXX"),
    ] {
        let hook = server
            .webhook(
                json!({"url": url, "kind": kind, "active": false, "events": ["never.happens"]}),
            )
            .await;
        let (status, _) = server
            .call(
                Method::DELETE,
                &format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, 204);
    }
    // Changing the kind re-checks the URL.
    let hook = server
        .webhook(json!({"url": "https://example.com/h", "active": false}))
        .await;
    let (status, answer) = server
        .patch(
            &format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap()),
            json!({"kind": "discord"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(answer["error"]["details"][0]["field"], "url");
    server.stop().await;
}

async fn unknown_event_types_warn_or_are_refused_when_strict(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server
        .webhook(json!({"url": rx.url("/h"), "events": ["member.created", "membr.created", "order.*", "github.*"]}))
        .await;
    let fields: Vec<&str> = hook["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["events[1]", "events[2]"], "{hook}");
    assert!(hook["warnings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("membr.created"));
    // Once the catalog knows `order.paid`, `order.*` matches something.
    server
        .post("/api/v1/event-types", json!({"name": "order.paid"}))
        .await;
    let (status, patched) = server
        .patch(
            &format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap()),
            json!({"description": "x"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["warnings"].as_array().unwrap().len(), 1);
    let clean = server
        .webhook(json!({"url": rx.url("/h"), "events": ["*"]}))
        .await;
    assert_eq!(clean["warnings"], json!([]));
    let (_, read) = server
        .get(&format!(
            "/api/v1/webhooks/{}",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        read.get("warnings").is_none(),
        "warnings belong to the change, not the resource"
    );
    server.stop().await;

    let strict = TestServer::start_with(backend, |c| c.strict_event_types = true).await;
    let (status, answer) = strict
        .post(
            "/api/v1/webhooks",
            json!({"url": rx.url("/h"), "events": ["member.created", "membr.created"]}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["details"][0]["field"], "events[1]");
    strict
        .webhook(json!({"url": rx.url("/h"), "events": ["member.*"]}))
        .await;
    strict.stop().await;
}

async fn preview_renders_without_sending(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rx = Receiver::start().await;
    let hook = server
        .webhook(json!({"url": discord_url(&rx), "kind": "discord", "templates": {
            "member.created": "🎉 {{ data.name }} joined",
            "github.*": "{\"embeds\": [{\"title\": \"{{ data.pull_request.title }}\", \"color\": 5814783}]}"}}))
        .await;
    let path = format!("/api/v1/webhooks/{}/preview", hook["id"].as_str().unwrap());
    let (status, p) = server
        .post(
            &path,
            json!({"event_type": "member.created", "data": {"name": "Ada 🎉"}}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["kind"], "discord");
    assert_eq!(p["template"], "member.created");
    assert_eq!(
        p["body"],
        json!({"content": "🎉 Ada 🎉 joined", "allowed_mentions": {"parse": []}})
    );

    // Without data, the catalog example; without a template, the built-in message.
    let (_, p) = server
        .post(&path, json!({"event_type": "hackathon.created"}))
        .await;
    assert!(p["template"].is_null());
    assert_eq!(
        p["body"]["content"],
        "🚀 Hackathon launched: **Winter Hack 2026**\n🗓️ 2026-12-05T09:00:00Z → 2026-12-07T18:00:00Z\nhttps://example.org/hackathons/3"
    );
    let (_, p) = server
        .post(&path, json!({"event_type": "github.pr.opened"}))
        .await;
    assert_eq!(p["template"], "github.*");
    assert_eq!(
        p["body"]["embeds"][0],
        json!({"title": "Add dark mode", "color": 5814783})
    );

    // A template that cannot render this event says why.
    let (status, p) = server
        .post(&path, json!({"event_type": "github.push", "data": {}}))
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["error"]["details"][0]["field"], "templates.github.*");
    assert!(p["error"]["message"]
        .as_str()
        .unwrap()
        .contains("undefined"));
    let (status, _) = server.post(&path, json!({"event_type": "bad type"})).await;
    assert_eq!(status, 422);

    // An http webhook previews its envelope.
    let plain = server.webhook(json!({"url": rx.url("/h")})).await;
    let (_, p) = server
        .post(
            &format!("/api/v1/webhooks/{}/preview", plain["id"].as_str().unwrap()),
            json!({"event_type": "order.paid", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(p["body"]["event"], "order.paid");
    assert_eq!(p["body"]["data"], json!({"n": 1}));
    let (status, _) = server
        .post(
            "/api/v1/webhooks/wh_nope/preview",
            json!({"event_type": "a.b"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(rx.count(), 0, "a preview sends nothing");
    server.stop().await;
}

/// The worked example of docs/destinations.md, with local receivers standing in for the two
/// Discord channels and the Slack workspace.
async fn worked_example_one_event_two_discord_channels_and_slack(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (announcements, hackers, slack) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let (status, _) = server
        .patch(
            "/api/v1/event-types/hackathon.created",
            json!({
            "schema": {"type": "object", "required": ["name", "url"],
                       "properties": {"name": {"type": "string"}, "url": {"type": "string"},
                                      "prize_pool": {"type": "number", "minimum": 0}}},
            "example": {"name": "Winter Hack 2026", "url": "https://example.org/h/3",
                        "starts_at": "2026-12-05", "prize_pool": 5000}}),
        )
        .await;
    assert_eq!(status, 200);
    server
        .webhook(json!({"kind": "discord", "url": announcements.url("/api/webhooks/111/announcements-token"),
            "events": ["hackathon.*"], "description": "#announcements",
            "templates": {"hackathon.created": "🚀 **{{ data.name }}** is open! Starts {{ data.starts_at }} → {{ data.url }}"}}))
        .await;
    server
        .webhook(json!({"kind": "discord", "url": hackers.url("/api/webhooks/222/hackers-token"),
            "events": ["hackathon.created"], "description": "#hackers",
            "filter": {"data.prize_pool": {"$gt": 0}},
            "templates": {"hackathon.*": "{\"content\": \"New hackathon 🏆\", \"embeds\": [{\"title\": \"{{ data.name }}\", \"url\": \"{{ data.url }}\", \"color\": \"#f1c40f\", \"fields\": [{\"name\": \"Prize pool\", \"value\": \"{{ data.prize_pool }} €\", \"inline\": true}, {\"name\": \"Starts\", \"value\": \"{{ data.starts_at }}\", \"inline\": true}]}]}"}}))
        .await;
    let slack_hook = server
        .webhook(json!({"kind": "slack", "url": slack.url("/services/T000/B000/XXXX"),
            "events": ["hackathon.created"], "description": "Slack #general",
            "templates": {"*": "{\"text\": \"Hackathon: {{ data.name }}\", \"blocks\": [{\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\": \":rocket: *{{ data.name }}* starts {{ data.starts_at }}\\n<{{ data.url }}|Sign up>\"}}]}"}}))
        .await;
    assert_eq!(slack_hook["warnings"], json!([]));

    let data = json!({"name": "Winter Hack 2026", "url": "https://example.org/h/3", "starts_at": "2026-12-05", "prize_pool": 5000});
    let (status, preview) = server
        .post(
            &format!(
                "/api/v1/webhooks/{}/preview",
                slack_hook["id"].as_str().unwrap()
            ),
            json!({"event_type": "hackathon.created"}),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let ev = server
        .emit(json!({"type": "hackathon.created", "data": data}))
        .await;
    assert_eq!(ev["deliveries"], 3);

    assert_eq!(
        bodies(&announcements, 1).await[0],
        json!({"content": "🚀 **Winter Hack 2026** is open! Starts 2026-12-05 → https://example.org/h/3",
               "allowed_mentions": {"parse": []}})
    );
    assert_eq!(
        bodies(&hackers, 1).await[0],
        json!({"content": "New hackathon 🏆",
               "embeds": [{"title": "Winter Hack 2026", "url": "https://example.org/h/3", "color": 15844367,
                           "fields": [{"name": "Prize pool", "value": "5000 €", "inline": true},
                                      {"name": "Starts", "value": "2026-12-05", "inline": true}]}],
               "allowed_mentions": {"parse": []}})
    );
    let slack_body = bodies(&slack, 1).await.remove(0);
    assert_eq!(
        slack_body,
        json!({"text": "Hackathon: Winter Hack 2026",
               "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                 "text": ":rocket: *Winter Hack 2026* starts 2026-12-05\n<https://example.org/h/3|Sign up>"}}]})
    );
    assert_eq!(preview["body"], slack_body, "the preview is what was sent");

    // Without a prize pool, #hackers is skipped; without a url, nothing is stored.
    let ev = server
        .emit(json!({"type": "hackathon.created", "data": {"name": "Spring Jam", "url": "https://example.org/h/4"}}))
        .await;
    assert_eq!(ev["deliveries"], 2);
    let (status, answer) = server
        .post(
            "/api/v1/events",
            json!({"type": "hackathon.created", "data": {"name": "No URL"}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(answer["error"]["details"][0]["field"], "data.url");
    let (_, doc) = server.get("/api/v1/openapi.json").await;
    for path in [
        "/api/v1/event-types",
        "/api/v1/event-types/{name}",
        "/api/v1/webhooks/{id}/preview",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lists {path}");
    }
    server.stop().await;
}
