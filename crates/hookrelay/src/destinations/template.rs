//! Message templates: a sandboxed minijinja environment (no loader, so no file or network access;
//! fuel-bounded; output-capped), the two template forms, selection by event type, and checks.
//!
//! A template is stored as a string. When its first non-blank character is `{` and the next one
//! is not `{`, `%` or `#`, it is a **JSON document**: the JSON is parsed once and each string
//! inside it is rendered as its own template, so rendered values can never break the JSON
//! structure (serde builds the body, not string concatenation). Anything else is a **text**
//! template whose output is the message text.

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use hookrelay_domain::{EventFilter, WebhookKind};
use minijinja::value::Value as JValue;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;

/// Instructions (and, roughly, 64-byte allocations: a few MB in all) one string of a template
/// may use.
pub const FUEL: u64 = 100_000;
/// Bytes one rendered string may produce before the render is stopped.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Stored size of one template.
pub const MAX_TEMPLATE_LEN: usize = 16 * 1024;
pub const MAX_TEMPLATES: usize = 64;
/// Strings inside one JSON template (each is compiled and rendered on its own).
const MAX_JSON_STRINGS: usize = 256;

/// Why a message could not be rendered: shown on the attempt (`error_kind = "render"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError(pub String);

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RenderError {}

/// The two shapes a stored template takes.
#[derive(Clone, Debug, PartialEq)]
pub enum Form {
    Text(String),
    /// A JSON object whose strings are templates.
    Json(Value),
}

/// Parses a stored template into its form; a string that looks like JSON must be JSON.
pub fn parse_form(source: &str) -> Result<Form, String> {
    let trimmed = source.trim_start();
    let looks_json =
        trimmed.starts_with('{') && !matches!(trimmed.as_bytes().get(1), Some(b'{' | b'%' | b'#'));
    if !looks_json {
        return Ok(Form::Text(source.to_owned()));
    }
    match serde_json::from_str::<Value>(source) {
        Ok(v @ Value::Object(_)) => Ok(Form::Json(v)),
        Ok(_) => Err("a JSON template must be an object".into()),
        Err(e) => Err(format!(
            "starts with `{{` so it is read as a JSON template, but is not valid JSON ({e}); \
             start a text template with `{{{{`, or with another character"
        )),
    }
}

/// The template for `event_type`, most specific first: the exact type, then the longest
/// `prefix.*`, then `*`. Returns the matching key and the template.
pub fn select<'t>(
    templates: &'t BTreeMap<String, String>,
    event_type: &str,
) -> Option<(&'t str, &'t str)> {
    if let Some((k, t)) = templates.get_key_value(event_type) {
        return Some((k, t));
    }
    let mut best: Option<(&str, &str)> = None;
    for (key, template) in templates {
        if let Some(prefix) = key.strip_suffix(".*") {
            let under = event_type
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'));
            if under && best.is_none_or(|(b, _)| b.len() < key.len()) {
                best = Some((key, template));
            }
        }
    }
    best.or_else(|| {
        templates
            .get_key_value("*")
            .map(|(k, t)| (k.as_str(), t.as_str()))
    })
}

/// Builds the sandbox for `kind`. User templates are `Lenient` (a missing top-level value prints
/// as nothing, but reaching into a missing object is an error the user should see); built-in
/// defaults are `Chainable` so they never fail on an event that lacks a field.
pub fn environment<'s>(kind: WebhookKind, chainable: bool) -> Environment<'s> {
    let mut env = Environment::new();
    // No loader is ever set: `include`, `import` and `extends` cannot reach files.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(if chainable {
        UndefinedBehavior::Chainable
    } else {
        UndefinedBehavior::Lenient
    });
    env.set_fuel(Some(FUEL));
    // Jinja's `truncate` lives outside minijinja's core; chat messages need it often.
    env.add_filter("truncate", |s: String, n: Option<usize>| {
        truncate_chars(&s, n.unwrap_or(255))
    });
    let slack = kind == WebhookKind::Slack;
    env.set_formatter(move |out, _state, value| {
        // A JSON null is "no value" in a chat message, not the word `none`.
        if value.is_undefined() || value.is_none() {
            return Ok(());
        }
        let text = value.to_string();
        // Slack reads `&`, `<` and `>` as markup (`<url|text>`, `<@U123>`): escape what values
        // bring in, keep the template's own text (and `| safe` values) as written.
        let text = if slack && !value.is_safe() {
            slack_escape(&text)
        } else {
            text
        };
        out.write_str(&text).map_err(minijinja::Error::from)
    });
    env
}

pub fn slack_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The template context: the event envelope, as a `kind: http` receiver would get it.
pub fn context(envelope: &Value) -> JValue {
    JValue::from(minijinja::value::Serde(envelope))
}

/// Stops a render that writes more than `MAX_OUTPUT` bytes.
struct Capped {
    buf: Vec<u8>,
    overflow: bool,
}

impl io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT {
            self.overflow = true;
            return Err(io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Renders one string template. `name` appears in error messages.
pub fn render_str<'s>(
    env: &Environment<'s>,
    name: &'s str,
    source: &'s str,
    ctx: &JValue,
) -> Result<String, RenderError> {
    let template = env
        .template_from_named_str(name, source)
        .map_err(|e| RenderError(describe(name, &e)))?;
    let mut out = Capped {
        buf: Vec::new(),
        overflow: false,
    };
    match template.render_captured_to(ctx.clone(), &mut out) {
        Ok(_) => String::from_utf8(out.buf)
            .map_err(|_| RenderError(format!("template {name}: produced invalid UTF-8"))),
        Err(_) if out.overflow => Err(RenderError(format!(
            "template {name}: output exceeds {} KiB",
            MAX_OUTPUT / 1024
        ))),
        Err(e) => Err(RenderError(describe(name, &e))),
    }
}

fn describe(name: &str, e: &minijinja::Error) -> String {
    let mut msg = format!("template {name}: {}", e.kind());
    if let Some(detail) = e.detail() {
        msg.push_str(": ");
        msg.push_str(detail);
    }
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (line {line})"));
    }
    msg
}

/// Renders every string inside a JSON template (object keys stay as written).
pub fn render_json<'s>(
    env: &Environment<'s>,
    name: &'s str,
    doc: &'s Value,
    ctx: &JValue,
) -> Result<Value, RenderError> {
    Ok(match doc {
        Value::String(s) if s.contains("{{") || s.contains("{%") => {
            Value::String(render_str(env, name, s, ctx)?)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_json(env, name, v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(env, name, v, ctx)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        other => other.clone(),
    })
}

/// Counts the strings of a JSON template, to bound the work one message may cost.
fn count_strings(doc: &Value) -> usize {
    match doc {
        Value::String(_) => 1,
        Value::Array(items) => items.iter().map(count_strings).sum(),
        Value::Object(map) => map.values().map(count_strings).sum(),
        _ => 0,
    }
}

/// Errors a render can show regardless of the event's data: these make a template invalid.
pub fn is_static_error(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::SyntaxError
            | ErrorKind::UnknownFilter
            | ErrorKind::UnknownFunction
            | ErrorKind::UnknownTest
            | ErrorKind::UnknownMethod
            | ErrorKind::TemplateNotFound
            | ErrorKind::BadInclude
            | ErrorKind::TooManyArguments
            | ErrorKind::MissingArgument
    )
}

/// Checks one stored template for `kind`: its form, its structure (per kind), that every string
/// compiles, and a trial render against `example` (the catalog's example envelope) that must not
/// hit an unknown filter, function or test. Data-dependent failures are left to delivery time.
pub fn check(kind: WebhookKind, source: &str, example: &Value) -> Result<(), String> {
    if source.len() > MAX_TEMPLATE_LEN {
        return Err(format!("must be at most {} KiB", MAX_TEMPLATE_LEN / 1024));
    }
    let form = parse_form(source)?;
    let env = environment(kind, true);
    let ctx = context(example);
    let trial = |s: &str| -> Result<(), String> {
        let template = env.template_from_str(s).map_err(|e| describe_short(&e))?;
        match template.render(ctx.clone()) {
            Err(e) if is_static_error(e.kind()) => Err(describe_short(&e)),
            _ => Ok(()),
        }
    };
    match &form {
        Form::Text(s) => trial(s)?,
        Form::Json(doc) => {
            super::check_json_shape(kind, doc)?;
            if count_strings(doc) > MAX_JSON_STRINGS {
                return Err(format!(
                    "a JSON template may hold at most {MAX_JSON_STRINGS} strings"
                ));
            }
            let mut problems = Vec::new();
            visit_strings(doc, &mut |s| {
                if problems.is_empty() {
                    if let Err(e) = trial(s) {
                        problems.push(e);
                    }
                }
            });
            if let Some(p) = problems.pop() {
                return Err(p);
            }
        }
    }
    Ok(())
}

pub fn describe_short(e: &minijinja::Error) -> String {
    let mut msg = e.kind().to_string();
    if let Some(detail) = e.detail() {
        msg.push_str(": ");
        msg.push_str(detail);
    }
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (line {line})"));
    }
    msg
}

fn visit_strings(doc: &Value, f: &mut impl FnMut(&str)) {
    match doc {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit_strings(v, f)),
        _ => {}
    }
}

/// A template key is an event type, `prefix.*` or `*`, like webhook event filters.
pub fn check_key(key: &str) -> Result<(), String> {
    EventFilter::parse(&[key])
        .map(|_| ())
        .map_err(|_| "the key must be an event type, `prefix.*` or `*`".to_owned())
}

/// Cuts `s` to at most `max` characters, ending with `…` when it was cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(data: Value) -> Value {
        json!({"event": "member.created", "timestamp": "2026-11-23T10:00:00.000Z",
               "eventId": "evt_1", "data": data})
    }

    fn render(kind: WebhookKind, src: &str, data: Value) -> Result<String, RenderError> {
        let env = environment(kind, false);
        render_str(&env, "t", src, &context(&envelope(data)))
    }

    #[test]
    fn renders_the_envelope_with_emoji_and_unicode() {
        let out = render(
            WebhookKind::Discord,
            "🎉 {{ data.name }} joined {{ event }} ({{ eventId }}, {{ timestamp }})",
            json!({"name": "Zoë 🦄 李"}),
        )
        .unwrap();
        assert_eq!(
            out,
            "🎉 Zoë 🦄 李 joined member.created (evt_1, 2026-11-23T10:00:00.000Z)"
        );
    }

    #[test]
    fn no_html_escaping_for_discord_and_slack_escapes_values_only() {
        let src = "<{{ data.url }}|{{ data.name }}>";
        let data = json!({"name": "A & <B>", "url": "https://x.test/?a=1&b=2"});
        assert_eq!(
            render(WebhookKind::Discord, src, data.clone()).unwrap(),
            "<https://x.test/?a=1&b=2|A & <B>>"
        );
        assert_eq!(
            render(WebhookKind::Slack, src, data.clone()).unwrap(),
            "<https://x.test/?a=1&amp;b=2|A &amp; &lt;B&gt;>"
        );
        assert_eq!(
            render(WebhookKind::Slack, "{{ data.name | safe }}", data).unwrap(),
            "A & <B>"
        );
    }

    #[test]
    fn missing_values_print_nothing_but_reaching_into_them_fails_clearly() {
        assert_eq!(
            render(WebhookKind::Discord, "[{{ data.nope }}]", json!({})).unwrap(),
            "[]"
        );
        let err = render(WebhookKind::Discord, "{{ data.pr.title }}", json!({})).unwrap_err();
        assert!(err.0.contains("undefined"), "{err}");
        // Built-in defaults use the chainable sandbox and never fail on a missing field.
        let env = environment(WebhookKind::Discord, true);
        let out = render_str(
            &env,
            "d",
            "[{{ data.pr.title }}]",
            &context(&envelope(json!({}))),
        );
        assert_eq!(out.unwrap(), "[]");
    }

    #[test]
    fn fuel_stops_runaway_loops() {
        let err = render(
            WebhookKind::Discord,
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            json!({}),
        )
        .unwrap_err();
        assert!(err.0.contains("fuel"), "{err}");
    }

    #[test]
    fn fuel_also_bounds_memory() {
        // One unit of fuel is charged per ~64 bytes allocated: a render stays within a few MB.
        for src in [
            "{{ 'x' * 100000000 }}",
            "{% set a = 'x' * 4000000 %}{{ (a ~ a ~ a) | length }}",
            "{{ range(100000) | list | length }}",
        ] {
            let start = std::time::Instant::now();
            let err = render(WebhookKind::Discord, src, json!({})).unwrap_err();
            assert!(
                err.0.contains("fuel") || err.0.contains("too large"),
                "{src}: {err}"
            );
            assert!(start.elapsed() < std::time::Duration::from_secs(2), "{src}");
        }
    }

    #[test]
    fn output_is_capped() {
        let err = render(
            WebhookKind::Discord,
            "{% for i in range(5000) %}0123456789abcdef{% endfor %}",
            json!({}),
        )
        .unwrap_err();
        assert!(err.0.contains("output exceeds"), "{err}");
    }

    #[test]
    fn no_file_access() {
        let err = render(
            WebhookKind::Discord,
            "{% include '/etc/passwd' %}",
            json!({}),
        )
        .unwrap_err();
        assert!(
            err.0.contains("template not found") || err.0.contains("include"),
            "{err}"
        );
        assert!(check(
            WebhookKind::Discord,
            "{% include '/etc/passwd' %}",
            &envelope(json!({}))
        )
        .is_err());
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse_form("{{ data.x }}").unwrap(),
            Form::Text("{{ data.x }}".into())
        );
        assert_eq!(
            parse_form("{% if x %}y{% endif %}").unwrap(),
            Form::Text("{% if x %}y{% endif %}".into())
        );
        assert_eq!(parse_form("hi {").unwrap(), Form::Text("hi {".into()));
        assert_eq!(
            parse_form(r#" {"content": "{{ data.x }}"}"#).unwrap(),
            Form::Json(json!({"content": "{{ data.x }}"}))
        );
        assert!(parse_form(r#"{"content": "#)
            .unwrap_err()
            .contains("not valid JSON"));
    }

    #[test]
    fn json_templates_render_strings_and_keep_structure_safe() {
        let env = environment(WebhookKind::Discord, false);
        let doc = json!({"content": "{{ data.name }}", "embeds": [{"title": "T {{ data.n }}", "color": 5814783, "fields": []}]});
        let out = render_json(
            &env,
            "t",
            &doc,
            &context(&envelope(json!({"name": "say \"hi\"\n}", "n": 3}))),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"content": "say \"hi\"\n}", "embeds": [{"title": "T 3", "color": 5814783, "fields": []}]})
        );
    }

    #[test]
    fn most_specific_template_wins() {
        let t: BTreeMap<String, String> = [
            ("*", "star"),
            ("github.*", "gh"),
            ("github.pr.*", "pr"),
            ("github.pr.opened", "exact"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            select(&t, "github.pr.opened"),
            Some(("github.pr.opened", "exact"))
        );
        assert_eq!(select(&t, "github.pr.closed"), Some(("github.pr.*", "pr")));
        assert_eq!(select(&t, "github.push"), Some(("github.*", "gh")));
        assert_eq!(select(&t, "githubx.push"), Some(("*", "star")));
        assert_eq!(select(&t, "member.created"), Some(("*", "star")));
        assert_eq!(select(&BTreeMap::new(), "member.created"), None);
    }

    #[test]
    fn checks_refuse_broken_templates_only() {
        let ex = envelope(json!({"name": "Ada"}));
        let k = WebhookKind::Discord;
        assert!(check(k, "🎉 {{ data.name }} joined", &ex).is_ok());
        assert!(
            check(k, "{{ data.pr.title }}", &ex).is_ok(),
            "data-dependent"
        );
        assert!(check(k, "{{ data.name", &ex)
            .unwrap_err()
            .contains("syntax"));
        assert!(check(k, "{{ data.name | shout }}", &ex)
            .unwrap_err()
            .contains("unknown filter"));
        assert!(check(k, "{{ launch_missiles() }}", &ex)
            .unwrap_err()
            .contains("unknown function"));
        assert!(check(k, &"x".repeat(MAX_TEMPLATE_LEN + 1), &ex).is_err());
        assert!(check(k, r#"{"content": "{{ data.name | shout }}"}"#, &ex).is_err());
        assert!(check(k, r#"{"content": "ok"}"#, &ex).is_ok());
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("héllo", 5), "héllo");
        assert_eq!(truncate_chars("héllo!", 5), "héll…");
        assert_eq!(truncate_chars("🎉🎉🎉", 2), "🎉…");
    }
}
