//! The built-in message of every catalog type, used when a webhook has no template for an event.
//! Written once with Discord's `**bold**`; Slack's `*bold*` is derived so the two never drift.
//!
//! They render in the chainable sandbox, so an event missing a field still gets a message.

use hookrelay_domain::WebhookKind;

/// The text template for `event_type` on a chat destination of `kind`.
pub fn for_type(kind: WebhookKind, event_type: &str) -> String {
    let discord = discord_source(event_type);
    match kind {
        WebhookKind::Slack => discord.replace("**", "*"),
        _ => discord.to_owned(),
    }
}

/// Whether `event_type` has a message of its own (rather than the generic one).
pub fn has_own_message(event_type: &str) -> bool {
    discord_source(event_type) != GENERIC
}

const GENERIC: &str =
    "📣 **{{ event }}**{% if data %}\n```\n{{ data | tojson | truncate(1500) }}\n```{% endif %}";

fn discord_source(event_type: &str) -> &'static str {
    match event_type {
        "member.created" => {
            "👋 **{{ data.name or data.username or 'A new member' }}** joined\
             {% if data.community %} **{{ data.community }}**{% endif %}!"
        }
        "member.activated" => {
            "✅ **{{ data.name or data.username or 'A member' }}** is now an active member\
             {% if data.community %} of **{{ data.community }}**{% endif %}."
        }
        "event.created" => {
            "📅 New event: **{{ data.title or data.name or 'Untitled event' }}**\
             {% if data.starts_at %}\n🗓️ {{ data.starts_at }}{% endif %}\
             {% if data.location %}\n📍 {{ data.location }}{% endif %}\
             {% if data.url %}\n{{ data.url }}{% endif %}"
        }
        "hackathon.created" => {
            "🚀 Hackathon launched: **{{ data.name or data.title or 'New hackathon' }}**\
             {% if data.starts_at %}\n🗓️ {{ data.starts_at }}{% if data.ends_at %} → {{ data.ends_at }}{% endif %}{% endif %}\
             {% if data.url %}\n{{ data.url }}{% endif %}"
        }
        "community.approved" => {
            "🏘️ Community **{{ data.name or 'A community' }}** was approved\
             {% if data.url %}\n{{ data.url }}{% endif %}"
        }
        "github.push" => {
            "📦 **{{ data.pusher.name or data.sender.login or 'Someone' }}** pushed \
             {% set commits = data.commits or [] %}{{ commits | length }} commit{{ '' if commits | length == 1 else 's' }} \
             to **{{ data.repository.full_name or 'a repository' }}**\
             {% if data.ref %} ({{ data.ref | replace('refs/heads/', '') }}){% endif %}\
             {% for c in commits[:5] %}\n• {{ (c.message or '') | lines | first | truncate(100) }}{% endfor %}\
             {% if data.compare %}\n{{ data.compare }}{% endif %}"
        }
        "github.pr.opened" => {
            "🔀 **{{ data.sender.login or data.pull_request.user.login or 'Someone' }}** opened \
             PR #{{ data.pull_request.number or data.number }} in **{{ data.repository.full_name or 'a repository' }}**: \
             {{ data.pull_request.title }}\
             {% if data.pull_request.html_url %}\n{{ data.pull_request.html_url }}{% endif %}"
        }
        "github.issues.opened" => {
            "🐛 **{{ data.sender.login or data.issue.user.login or 'Someone' }}** opened \
             issue #{{ data.issue.number }} in **{{ data.repository.full_name or 'a repository' }}**: \
             {{ data.issue.title }}\
             {% if data.issue.html_url %}\n{{ data.issue.html_url }}{% endif %}"
        }
        "github.release.published" => {
            "🏷️ **{{ data.repository.full_name or 'A repository' }}** released \
             **{{ data.release.name or data.release.tag_name or 'a new version' }}**\
             {% if data.release.html_url %}\n{{ data.release.html_url }}{% endif %}"
        }
        "webhook.test" => "🔔 {{ data.message or 'Test event from hookrelay' }}",
        "hookrelay.webhook.disabled" => {
            "⛔ hookrelay disabled the webhook **{{ data.url or data.webhook_id }}**\
             {% if data.reason == 'gone' %}: the receiver answered 410 Gone\
             {% elif data.reason == 'failing' %}: every attempt failed for too long{% endif %}. \
             Its deliveries wait; re-enable it to send them."
        }
        "hookrelay.webhook.failing" => {
            "⚠️ Webhook **{{ data.url or data.webhook_id }}** is failing: \
             {{ data.attempts }} failed attempt{{ '' if data.attempts == 1 else 's' }}\
             {% if data.failure_rate is number %} ({{ (data.failure_rate * 100) | round | int }} %){% endif %}\
             {% if data.reason == 'circuit_open' %}; its circuit is open and it is retried with backoff{% endif %}."
        }
        "hookrelay.webhook.recovered" => {
            "✅ Webhook **{{ data.url or data.webhook_id }}** recovered: deliveries succeed again."
        }
        "hookrelay.delivery.exhausted" => {
            "🪦 A **{{ data.event_type }}** delivery to **{{ data.webhook_id }}** failed \
             {{ data.attempts }} time{{ '' if data.attempts == 1 else 's' }} and is in the dead-letter queue\
             {% if data.last_error %}: {{ data.last_error | truncate(200) }}{% endif %}"
        }
        "hookrelay.queue.backlog" => {
            "🐢 Delivery backlog: **{{ data.pending }}** pending, \
             the oldest waiting {{ data.oldest_pending_age_seconds }} s."
        }
        _ => GENERIC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::catalog::BUILT_INS;
    use crate::destinations::template::{context, environment, render_str};
    use serde_json::{json, Value};

    fn render(kind: WebhookKind, event_type: &str, data: Value) -> String {
        let source = for_type(kind, event_type);
        let env = environment(kind, true);
        let envelope = json!({"event": event_type, "timestamp": "2026-11-23T10:00:00.000Z",
                              "eventId": "evt_1", "data": data});
        render_str(&env, "default", &source, &context(&envelope))
            .unwrap_or_else(|e| panic!("default for {event_type}: {e}"))
    }

    #[test]
    fn every_built_in_type_has_its_own_message() {
        for t in BUILT_INS {
            assert!(has_own_message(t.name), "{} has no default message", t.name);
        }
        assert!(!has_own_message("stripe.charge.succeeded"));
    }

    #[test]
    fn defaults_render_the_catalog_examples() {
        let expect = [
            ("member.created", "👋 **Ada Lovelace** joined **Rustaceans**!"),
            ("member.activated", "✅ **Ada Lovelace** is now an active member of **Rustaceans**."),
            ("event.created", "📅 New event: **Rust meetup #12**\n🗓️ 2026-12-01T18:00:00Z\n📍 Paris\nhttps://example.org/events/7"),
            ("hackathon.created", "🚀 Hackathon launched: **Winter Hack 2026**\n🗓️ 2026-12-05T09:00:00Z → 2026-12-07T18:00:00Z\nhttps://example.org/hackathons/3"),
            ("community.approved", "🏘️ Community **Rustaceans** was approved\nhttps://example.org/c/rustaceans"),
            ("github.push", "📦 **ada** pushed 2 commits to **acme/app** (main)\n• Fix the flux capacitor\n• Add tests\nhttps://github.com/acme/app/compare/a1b2c3d...e4f5a6b"),
            ("github.pr.opened", "🔀 **ada** opened PR #12 in **acme/app**: Add dark mode\nhttps://github.com/acme/app/pull/12"),
            ("github.issues.opened", "🐛 **grace** opened issue #34 in **acme/app**: Crash on start\nhttps://github.com/acme/app/issues/34"),
            ("github.release.published", "🏷️ **acme/app** released **v1.2.0**\nhttps://github.com/acme/app/releases/tag/v1.2.0"),
            ("webhook.test", "🔔 Test event from hookrelay"),
        ];
        for (event_type, text) in expect {
            let example = BUILT_INS
                .iter()
                .find(|t| t.name == event_type)
                .map(|t| t.example())
                .unwrap();
            assert_eq!(render(WebhookKind::Discord, event_type, example), text);
        }
    }

    #[test]
    fn defaults_survive_missing_fields_and_adapt_bold_for_slack() {
        for t in BUILT_INS {
            let text = render(WebhookKind::Discord, t.name, json!({}));
            assert!(
                !text.is_empty() && !text.contains("{{"),
                "{}: {text}",
                t.name
            );
        }
        assert_eq!(
            render(
                WebhookKind::Slack,
                "member.created",
                json!({"name": "Ada & co"})
            ),
            "👋 *Ada &amp; co* joined!"
        );
    }

    #[test]
    fn unknown_types_get_the_generic_message() {
        assert_eq!(
            render(WebhookKind::Discord, "order.paid", json!({"amount": 5})),
            "📣 **order.paid**\n```\n{\"amount\": 5}\n```"
        );
        assert_eq!(
            render(WebhookKind::Discord, "order.paid", json!({})),
            "📣 **order.paid**"
        );
    }
}
