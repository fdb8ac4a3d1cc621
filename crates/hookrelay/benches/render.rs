//! Criterion micro-benchmarks of the bodies rendered per delivery attempt: a Discord message from
//! a webhook's template (text, JSON embed, built-in default) and an http webhook's `transform`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use hookrelay::destinations::{envelope, render_message, transform};
use hookrelay_domain::WebhookKind;
use serde_json::{json, Value};

const TIMESTAMP: &str = "2026-11-23T10:00:00.000Z";
const EVENT_ID: &str = "evt_01JDQ6Z8Y4W3V2T1S0R9Q8P7N6";

fn pr_data() -> Value {
    json!({
        "action": "opened",
        "repository": {"full_name": "hookrelay/hookrelay"},
        "sender": {"login": "ada"},
        "pull_request": {"number": 128, "title": "Dark mode", "html_url": "https://github.com/hookrelay/hookrelay/pull/128"},
        "color": "#ff0000",
    })
}

fn templates() -> BTreeMap<String, String> {
    [
        (
            "member.created".to_owned(),
            "🎉 {{ data.name }} joined (member #{{ data.id }})".to_owned(),
        ),
        (
            "github.*".to_owned(),
            r##"{"content": "🐙 {{ event }} on {{ data.repository.full_name }}", "embeds": [{"title": "#{{ data.pull_request.number }} {{ data.pull_request.title }}", "url": "{{ data.pull_request.html_url }}", "description": "by {{ data.sender.login }}", "color": "{{ data.color }}"}]}"##
                .to_owned(),
        ),
    ]
    .into()
}

fn discord(c: &mut Criterion) {
    let templates = templates();
    let member = envelope(
        "member.created",
        TIMESTAMP,
        EVENT_ID,
        json!({"name": "Ada Lovelace", "id": 42}),
    );
    let pr = envelope("github.pr.opened", TIMESTAMP, EVENT_ID, pr_data());
    let launch = envelope(
        "hackathon.created",
        TIMESTAMP,
        EVENT_ID,
        json!({"name": "Winter Hack"}),
    );
    let d = WebhookKind::Discord;
    for env in [&member, &pr] {
        assert!(render_message(d, &templates, env)
            .unwrap()
            .template
            .is_some());
    }
    assert!(render_message(d, &templates, &launch)
        .unwrap()
        .template
        .is_none());
    let mut g = c.benchmark_group("discord");
    g.bench_function("render_message_text_template", |b| {
        b.iter(|| render_message(d, black_box(&templates), black_box(&member)))
    });
    g.bench_function("render_message_json_embed_template", |b| {
        b.iter(|| render_message(d, black_box(&templates), black_box(&pr)))
    });
    g.bench_function("render_message_builtin_default", |b| {
        b.iter(|| render_message(d, black_box(&templates), black_box(&launch)))
    });
    // What a chat attempt does around the render: parse the stored data, build the envelope,
    // render, encode the message (destinations::body_for_claim).
    let stored = serde_json::to_string(&pr_data()).unwrap();
    g.bench_function("body_from_stored_data_json_embed", |b| {
        b.iter(|| {
            let data: Value = serde_json::from_str(black_box(&stored)).unwrap();
            let env = envelope("github.pr.opened", TIMESTAMP, EVENT_ID, data);
            let rendered = render_message(d, &templates, &env).unwrap();
            serde_json::to_vec(&rendered.body).unwrap()
        })
    });
    g.finish();
}

fn http_transform(c: &mut Criterion) {
    let source = r#"{"kind": "{{ event }}", "id": "{{ eventId }}", "at": "{{ timestamp }}", "pr": {"number": {{ data.pull_request.number }}, "title": {{ data.pull_request.title | tojson }}, "by": {{ data.sender.login | tojson }}}, "repo": {{ data.repository.full_name | tojson }}}"#;
    let env = envelope("github.pr.opened", TIMESTAMP, EVENT_ID, pr_data());
    let out = transform::render(source, &env).unwrap();
    assert!(serde_json::from_str::<Value>(&out).is_ok());
    let mut g = c.benchmark_group("transform");
    g.bench_function("render_http_transform", |b| {
        b.iter(|| transform::render(black_box(source), black_box(&env)))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = render;
    config = config();
    targets = discord, http_transform
}
criterion_main!(render);
