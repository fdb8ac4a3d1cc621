//! Transformations: an http webhook's `transform` template renders the request body from the
//! envelope, in the same sandbox and limits as chat templates; what it renders must be JSON.

use hookrelay_domain::time::to_rfc3339;
use hookrelay_domain::{EventFilter, WebhookKind};
use serde_json::Value;

use super::template::{self, RenderError};
use crate::store::DeliveryClaim;

/// The name transform errors carry (`template transform: …`).
const NAME: &str = "transform";
/// How many catalog examples a save-time check renders at most.
const MAX_TRIALS: usize = 20;

/// Renders `source` for `envelope`; the output, without surrounding whitespace, must be JSON.
pub fn render(source: &str, envelope: &Value) -> Result<String, RenderError> {
    let env = template::environment(WebhookKind::Http, false);
    let out = template::render_str(&env, NAME, source, &template::context(envelope))?;
    let out = out.trim();
    ensure_json(out).map_err(RenderError)?;
    Ok(out.to_owned())
}

/// The body a transformed delivery posts.
pub fn body_for_claim(claim: &DeliveryClaim, source: &str) -> Result<Vec<u8>, RenderError> {
    let data: Value = serde_json::from_str(&claim.data)
        .map_err(|e| RenderError(format!("the event's data is not valid JSON: {e}")))?;
    let envelope = super::envelope(
        &claim.event_type,
        &to_rfc3339(claim.event_timestamp),
        claim.event_id.as_str(),
        data,
    );
    render(source, &envelope).map(String::into_bytes)
}

fn ensure_json(out: &str) -> Result<(), String> {
    match serde_json::from_str::<serde::de::IgnoredAny>(out) {
        Ok(_) => Ok(()),
        Err(e) => {
            let head: String = out.chars().take(80).collect();
            Err(format!(
                "template {NAME}: the output is not JSON ({e}); it began with {head:?}"
            ))
        }
    }
}

/// Checks a transform at save time: its size, that it compiles, and a trial render for every
/// catalog type the webhook subscribes to that has an example (up to 20): none may hit an
/// unknown filter, function or test, and each must render JSON. Errors that depend on data
/// the examples do not have are left to delivery time.
pub fn check(
    source: &str,
    events: &[String],
    catalog: &[(&str, Option<&Value>)],
) -> Result<(), String> {
    if source.len() > template::MAX_TEMPLATE_LEN {
        return Err(format!(
            "must be at most {} KiB",
            template::MAX_TEMPLATE_LEN / 1024
        ));
    }
    if source.trim().is_empty() {
        return Err("must not be empty (remove it with null)".into());
    }
    let filter = EventFilter::parse(events).ok();
    let examples: Vec<(&str, &Value)> = catalog
        .iter()
        .filter(|(name, _)| filter.as_ref().is_some_and(|f| f.matches(name)))
        .filter_map(|(name, example)| example.map(|e| (*name, e)))
        .take(MAX_TRIALS)
        .collect();
    let env = template::environment(WebhookKind::Http, false);
    let compiled = env
        .template_from_str(source)
        .map_err(|e| template::describe_short(&e))?;
    if examples.is_empty() {
        let ctx = template::context(&super::catalog::example_envelope(
            "example",
            Value::Object(Default::default()),
        ));
        return match compiled.render(ctx) {
            Err(e) if template::is_static_error(e.kind()) => Err(template::describe_short(&e)),
            _ => Ok(()),
        };
    }
    for (name, data) in examples {
        let ctx = template::context(&super::catalog::example_envelope(name, data.clone()));
        match compiled.render(ctx) {
            Err(e) if template::is_static_error(e.kind()) => {
                return Err(template::describe_short(&e))
            }
            Err(_) => {}
            Ok(out) => ensure_json(out.trim())
                .map_err(|m| format!("with the catalog example of {name}: {m}"))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> Value {
        super::super::envelope(
            "member.created",
            "2026-11-23T10:00:00.000Z",
            "evt_1",
            json!({"name": "Ada \"the first\"", "id": 42}),
        )
    }

    #[test]
    fn renders_json_and_refuses_anything_else() {
        let out = render(
            r#"{"user": {{ data.name | tojson }}, "n": {{ data.id }}, "type": "{{ event }}"}"#,
            &env(),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({"user": "Ada \"the first\"", "n": 42, "type": "member.created"})
        );
        let err = render("hello {{ data.name }}", &env()).unwrap_err();
        assert!(err.0.contains("not JSON"), "{err}");
        assert!(render("{{ data.a.b.c }}", &env()).is_err());
        assert!(render("{% for i in range(100000000) %}x{% endfor %}", &env()).is_err());
    }

    #[test]
    fn save_time_checks() {
        let example = json!({"name": "Ada"});
        let catalog = [("member.created", Some(&example)), ("order.paid", None)];
        let all = vec!["*".to_owned()];
        assert!(check(r#"{"n": {{ data.name | tojson }}}"#, &all, &catalog).is_ok());
        let bad = check("{{ data.name | shout }}", &all, &catalog).unwrap_err();
        assert!(
            bad.contains("shout") || bad.contains("unknown filter"),
            "{bad}"
        );
        assert!(check("{% if %}", &all, &catalog).is_err());
        let text = check("hi {{ data.name }}", &all, &catalog).unwrap_err();
        assert!(
            text.contains("member.created") && text.contains("not JSON"),
            "{text}"
        );
        // Only types without an example: nothing says what the data looks like.
        let orders = vec!["order.*".to_owned()];
        assert!(check("hi {{ data.name }}", &orders, &catalog).is_ok());
        assert!(check("  ", &all, &catalog).is_err());
    }
}
