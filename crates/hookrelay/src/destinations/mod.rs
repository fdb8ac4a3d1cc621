//! Destinations: the body a delivery becomes for each webhook kind (the http envelope or its
//! transform, a Discord or a Slack message rendered from templates), per-kind URL rules, rate
//! hints and the catalog. Broker kinds (`nats`, `rabbitmq`, `redis`) are `broker::Destination`s,
//! one file each.

pub mod broker;
pub mod catalog;
pub mod defaults;
pub mod discord;
pub mod nats;
pub mod pacing;
pub mod rabbitmq;
pub mod redis;
pub mod slack;
pub mod template;
pub mod transform;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hookrelay_domain::netpolicy::{is_blocked, TargetPolicy};
use hookrelay_domain::time::to_rfc3339;
use hookrelay_domain::validate::FieldError;
use hookrelay_domain::WebhookKind;
use serde_json::{json, Value};

pub use template::RenderError;

use crate::store::DeliveryClaim;

/// A rendered template before the per-kind rules (limits, defaults) are applied.
pub enum Raw {
    Text(String),
    Json(Value),
}

/// A message ready to post, and the template key that produced it (`None`: the built-in one).
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub body: Value,
    pub template: Option<String>,
}

/// The envelope templates and payload filters see: the `kind: http` body, parsed.
pub fn envelope(event_type: &str, timestamp_rfc3339: &str, event_id: &str, data: Value) -> Value {
    json!({"event": event_type, "timestamp": timestamp_rfc3339, "eventId": event_id, "data": data})
}

/// Renders what a `discord` or `slack` webhook posts for `envelope`, with the most specific of
/// `templates` or else the built-in message of the event type.
pub fn render_message(
    kind: WebhookKind,
    templates: &BTreeMap<String, String>,
    envelope: &Value,
) -> Result<Rendered, RenderError> {
    let event_type = envelope.get("event").and_then(Value::as_str).unwrap_or("");
    let (key, source, chainable) = match template::select(templates, event_type) {
        Some((key, source)) => (Some(key), source.to_owned(), false),
        None => (None, defaults::for_type(kind, event_type), true),
    };
    let name = key.unwrap_or("default");
    let form =
        template::parse_form(&source).map_err(|m| RenderError(format!("template {name}: {m}")))?;
    let env = template::environment(kind, chainable);
    let ctx = template::context(envelope);
    let raw = match &form {
        template::Form::Text(text) => Raw::Text(template::render_str(&env, name, text, &ctx)?),
        template::Form::Json(doc) => Raw::Json(template::render_json(&env, name, doc, &ctx)?),
    };
    let body = match kind {
        WebhookKind::Discord => discord::message(raw)?,
        WebhookKind::Slack => slack::message(raw)?,
        _ => {
            return Err(RenderError(
                "only chat webhooks are rendered from templates".into(),
            ))
        }
    };
    Ok(Rendered {
        body,
        template: key.map(str::to_owned),
    })
}

/// The JSON body a chat webhook's delivery posts. The event's data was validated as JSON when
/// it was accepted; should a stored row not parse, that is a render error, not a panic.
pub fn body_for_claim(claim: &DeliveryClaim) -> Result<Vec<u8>, RenderError> {
    let data: Value = serde_json::from_str(&claim.data)
        .map_err(|e| RenderError(format!("the event's data is not valid JSON: {e}")))?;
    let envelope = envelope(
        &claim.event_type,
        &to_rfc3339(claim.event_timestamp),
        claim.event_id.as_str(),
        data,
    );
    let rendered = render_message(claim.webhook.kind, &claim.webhook.templates, &envelope)?;
    serde_json::to_vec(&rendered.body)
        .map_err(|e| RenderError(format!("encoding the message: {e}")))
}

/// Checks a JSON template's structure for `kind`.
pub fn check_json_shape(kind: WebhookKind, doc: &Value) -> Result<(), String> {
    match kind {
        WebhookKind::Discord => discord::check_shape(doc),
        WebhookKind::Slack => slack::check_shape(doc),
        _ => Err("only chat webhooks use templates".into()),
    }
}

/// Checks every template of a webhook (`templates.<key>` names each problem). `example_data`
/// gives the catalog example of a type, used for the trial render.
pub fn check_templates(
    kind: WebhookKind,
    templates: &BTreeMap<String, String>,
    example_data: impl Fn(&str) -> Option<Value>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if templates.len() > template::MAX_TEMPLATES {
        errors.push(FieldError::new(
            "templates",
            format!("must have at most {} entries", template::MAX_TEMPLATES),
        ));
        return errors;
    }
    for (key, source) in templates {
        let field = format!("templates.{key}");
        if let Err(m) = template::check_key(key) {
            errors.push(FieldError::new(field, m));
            continue;
        }
        let data = example_data(key).unwrap_or_else(|| json!({}));
        if let Err(m) = template::check(kind, source, &catalog::example_envelope(key, data)) {
            errors.push(FieldError::new(field, m));
        }
    }
    errors
}

/// The documented hosts of Discord webhooks.
const DISCORD_HOSTS: &[&str] = &[
    "discord.com",
    "discordapp.com",
    "ptb.discord.com",
    "canary.discord.com",
];
const SLACK_HOSTS: &[&str] = &["hooks.slack.com", "hooks.slack-gov.com"];

/// A `discord` webhook must post to `https://discord.com/api/webhooks/<id>/<token>` (optionally
/// `/api/v10/webhooks/…`, and the `discordapp.com`, `ptb.` and `canary.` hosts); a `slack` one
/// to `https://hooks.slack.com/services/<T>/<B>/<token>`. Exempt: a URL whose host is an IP
/// literal inside `allowed_target_networks` (local test receivers standing in for the service).
pub fn check_destination_url(
    kind: WebhookKind,
    url: &url::Url,
    policy: &TargetPolicy,
) -> Result<(), String> {
    let ip: Option<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    };
    if ip.is_some_and(|ip| is_blocked(ip) && policy.allows(ip)) {
        return Ok(());
    }
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    match kind {
        // Brokers have their own rules (`broker::check_webhook`).
        WebhookKind::Http
        | WebhookKind::Relay
        | WebhookKind::Nats
        | WebhookKind::Rabbitmq
        | WebhookKind::Redis => Ok(()),
        WebhookKind::Discord => {
            let path = match segments.as_slice() {
                ["api", "webhooks", rest @ ..] => rest,
                ["api", v, "webhooks", rest @ ..]
                    if v.strip_prefix('v').is_some_and(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                    }) =>
                {
                    rest
                }
                _ => &[][..],
            };
            let ok = url.scheme() == "https"
                && url.port().is_none()
                && DISCORD_HOSTS.contains(&host.as_str())
                && matches!(path, [id, tok] if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && token(tok));
            ok.then_some(()).ok_or_else(|| {
                "a discord webhook URL must look like https://discord.com/api/webhooks/<id>/<token>".to_owned()
            })
        }
        WebhookKind::Slack => {
            let ok = url.scheme() == "https"
                && url.port().is_none()
                && SLACK_HOSTS.contains(&host.as_str())
                && matches!(segments.as_slice(), ["services", a, b, c] if token(a) && token(b) && token(c));
            ok.then_some(()).ok_or_else(|| {
                "a slack webhook URL must look like https://hooks.slack.com/services/<T…>/<B…>/<token>".to_owned()
            })
        }
    }
}

/// A rate the worker's per-webhook limiter should keep to when the webhook sets none, per
/// second: Discord documents about 5 requests per 2 s per webhook (2.5/s), so 2/s stays clear
/// of it; Slack's incoming webhooks allow about 1 message per second per channel. `None` for
/// http (no limit unless the webhook sets `rate_limit_per_sec`).
pub fn default_rate_limit(kind: WebhookKind) -> Option<f64> {
    match kind {
        WebhookKind::Discord => Some(2.0),
        WebhookKind::Slack => Some(1.0),
        _ => None,
    }
}

/// Rate-limit headers of a chat service's answer, read before its body.
#[derive(Clone, Debug, Default)]
pub struct RateHeaders {
    pub remaining: Option<String>,
    pub reset_after: Option<String>,
    pub retry_after: Option<String>,
}

/// How long a chat destination asked us to hold off after this answer: Discord's `429` body
/// `retry_after` or exhausted bucket, and a `429`'s `Retry-After` for either service.
pub fn retry_hint(
    kind: WebhookKind,
    status: Option<u16>,
    headers: &RateHeaders,
    body: Option<&str>,
) -> Option<Duration> {
    let header = (status == Some(429))
        .then_some(headers.retry_after.as_deref())
        .flatten()
        .and_then(|raw| {
            hookrelay_domain::outcome::parse_retry_after(raw, chrono::Utc::now().timestamp())
        });
    let own = match kind {
        WebhookKind::Discord => discord::rate_limit_hint(
            status,
            headers.remaining.as_deref(),
            headers.reset_after.as_deref(),
            body,
        ),
        _ => None,
    };
    match (header, own) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> TargetPolicy {
        TargetPolicy::new(&["127.0.0.0/8", "::1/128"]).unwrap()
    }

    fn url_ok(kind: WebhookKind, raw: &str) -> bool {
        check_destination_url(kind, &url::Url::parse(raw).unwrap(), &policy()).is_ok()
    }

    #[test]
    fn discord_urls() {
        let d = WebhookKind::Discord;
        assert!(url_ok(
            d,
            "https://discord.com/api/webhooks/123456789/AbC-_d"
        ));
        assert!(url_ok(d, "https://discordapp.com/api/webhooks/1/t"));
        assert!(url_ok(
            d,
            "https://canary.discord.com/api/v10/webhooks/1/t?thread_id=5"
        ));
        assert!(url_ok(d, "https://ptb.discord.com/api/webhooks/1/t"));
        assert!(!url_ok(d, "http://discord.com/api/webhooks/1/t"));
        assert!(!url_ok(d, "https://discord.com/api/webhooks/1"));
        assert!(!url_ok(d, "https://discord.com/api/webhooks/abc/t"));
        assert!(!url_ok(d, "https://discord.com/api/webhooks/1/t/slack"));
        assert!(!url_ok(
            d,
            "https://discord.com.evil.example/api/webhooks/1/t"
        ));
        assert!(!url_ok(d, "https://example.com/api/webhooks/1/t"));
        // Local receivers inside the allowlist stand in for Discord in tests; others do not.
        assert!(url_ok(d, "http://127.0.0.1:9000/anything"));
        assert!(url_ok(d, "http://[::1]:9000/x"));
        assert!(!url_ok(d, "http://10.0.0.1/api/webhooks/1/t"));
        assert!(!url_ok(d, "https://8.8.8.8/api/webhooks/1/t"));
    }

    #[test]
    fn slack_urls() {
        let s = WebhookKind::Slack;
        assert!(url_ok(s, "https://hooks.slack.com/services/T000/B000/XXXX"));
        assert!(!url_ok(s, "https://hooks.slack.com/services/T000/B000"));
        assert!(!url_ok(s, "https://slack.com/services/T/B/X"));
        assert!(!url_ok(s, "https://discord.com/api/webhooks/1/t"));
        assert!(url_ok(s, "http://127.0.0.1:1/x"));
        assert!(url_ok(WebhookKind::Http, "https://example.com/anything"));
    }

    #[test]
    fn default_rates_stay_under_the_services_limits() {
        assert!(default_rate_limit(WebhookKind::Discord).unwrap() < 2.5);
        assert!(default_rate_limit(WebhookKind::Slack).unwrap() <= 1.0);
        assert_eq!(default_rate_limit(WebhookKind::Http), None);
    }

    #[test]
    fn messages_use_the_most_specific_template_or_the_default() {
        let templates: BTreeMap<String, String> = [
            ("member.created".to_owned(), "🎉 {{ data.name }} joined".to_owned()),
            ("github.*".to_owned(), r#"{"content": "🐙 {{ event }}", "embeds": [{"title": "{{ data.pull_request.title }}", "color": "{{ data.color }}"}]}"#.to_owned()),
        ]
        .into();
        let env = |t: &str, data: Value| envelope(t, "2026-11-23T10:00:00.000Z", "evt_1", data);
        let d = WebhookKind::Discord;
        let r = render_message(
            d,
            &templates,
            &env("member.created", json!({"name": "Ada 🦀"})),
        )
        .unwrap();
        assert_eq!(r.template.as_deref(), Some("member.created"));
        assert_eq!(r.body["content"], "🎉 Ada 🦀 joined");
        let r = render_message(
            d,
            &templates,
            &env(
                "github.pr.opened",
                json!({"pull_request": {"title": "Dark mode"}, "color": "#ff0000"}),
            ),
        )
        .unwrap();
        assert_eq!(r.template.as_deref(), Some("github.*"));
        assert_eq!(
            r.body["embeds"][0],
            json!({"title": "Dark mode", "color": 0xff0000})
        );
        let r = render_message(
            d,
            &templates,
            &env("hackathon.created", json!({"name": "Hack"})),
        )
        .unwrap();
        assert_eq!(r.template, None);
        assert_eq!(r.body["content"], "🚀 Hackathon launched: **Hack**");
        let r = render_message(
            WebhookKind::Slack,
            &BTreeMap::new(),
            &env("hackathon.created", json!({"name": "Hack"})),
        )
        .unwrap();
        assert_eq!(r.body, json!({"text": "🚀 Hackathon launched: *Hack*"}));
        let err = render_message(d, &templates, &env("github.push", json!({}))).unwrap_err();
        assert!(err.0.contains("template github.*"), "{err}");
    }

    #[test]
    fn template_checks_name_the_key() {
        let t: BTreeMap<String, String> = [
            (
                "member.created".to_owned(),
                "{{ data.name | nope }}".to_owned(),
            ),
            ("bad key".to_owned(), "x".to_owned()),
            ("ok.*".to_owned(), "{{ data }}".to_owned()),
            ("json".to_owned(), r#"{"text": "x"}"#.to_owned()),
        ]
        .into();
        let errs = check_templates(WebhookKind::Discord, &t, |_| None);
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "templates.bad key",
                "templates.json",
                "templates.member.created"
            ]
        );
    }

    #[test]
    fn retry_hints() {
        let h = RateHeaders {
            retry_after: Some("3".into()),
            ..Default::default()
        };
        assert_eq!(
            retry_hint(WebhookKind::Slack, Some(429), &h, None),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_hint(WebhookKind::Slack, Some(500), &h, None), None);
        assert_eq!(
            retry_hint(
                WebhookKind::Discord,
                Some(429),
                &RateHeaders::default(),
                Some(r#"{"retry_after": 1.5}"#)
            ),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_hint(
                WebhookKind::Http,
                Some(429),
                &RateHeaders::default(),
                Some(r#"{"retry_after": 1.5}"#)
            ),
            None
        );
    }
}
