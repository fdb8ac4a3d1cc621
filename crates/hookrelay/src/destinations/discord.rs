//! Discord: the message body (`content`, `embeds`, …) within Discord's documented limits, the
//! shape JSON templates may take, and the rate-limit hints Discord answers with.
//!
//! Limits (discord.com/developers/docs/resources/webhook, /resources/message#embed-object-limits):
//! content 2000 characters; 10 embeds; title 256, description 4096, 25 fields (name 256,
//! value 1024), footer 2048, author 256; 6000 characters of embed text in all.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::template::{truncate_chars, RenderError};
use super::Raw;

pub const MAX_CONTENT: usize = 2000;
pub const MAX_EMBEDS: usize = 10;
pub const MAX_FIELDS: usize = 25;
pub const MAX_EMBED_TOTAL: usize = 6000;
const MAX_USERNAME: usize = 80;

const TOP_KEYS: &[&str] = &[
    "content",
    "embeds",
    "username",
    "avatar_url",
    "tts",
    "allowed_mentions",
    "flags",
    "thread_name",
];
const EMBED_KEYS: &[&str] = &[
    "title",
    "type",
    "description",
    "url",
    "timestamp",
    "color",
    "footer",
    "image",
    "thumbnail",
    "author",
    "fields",
];
const FIELD_KEYS: &[&str] = &["name", "value", "inline"];

/// Checks a JSON template's structure at webhook creation, so a typo is a `422`, not a `400`
/// from Discord at 3 a.m.
pub fn check_shape(doc: &Value) -> Result<(), String> {
    let obj = doc.as_object().ok_or("a JSON template must be an object")?;
    only_keys(obj, TOP_KEYS, "")?;
    if !obj.contains_key("content") && !obj.contains_key("embeds") {
        return Err("a Discord JSON template needs `content` or `embeds`".into());
    }
    if let Some(embeds) = obj.get("embeds") {
        let list = embeds.as_array().ok_or("embeds: must be an array")?;
        if list.len() > MAX_EMBEDS {
            return Err(format!("embeds: Discord allows at most {MAX_EMBEDS}"));
        }
        for (i, embed) in list.iter().enumerate() {
            let e = embed
                .as_object()
                .ok_or_else(|| format!("embeds[{i}]: must be an object"))?;
            only_keys(e, EMBED_KEYS, &format!("embeds[{i}]."))?;
            if let Some(fields) = e.get("fields") {
                let fields = fields
                    .as_array()
                    .ok_or_else(|| format!("embeds[{i}].fields: must be an array"))?;
                if fields.len() > MAX_FIELDS {
                    return Err(format!(
                        "embeds[{i}].fields: Discord allows at most {MAX_FIELDS}"
                    ));
                }
                for (j, f) in fields.iter().enumerate() {
                    let f = f
                        .as_object()
                        .ok_or_else(|| format!("embeds[{i}].fields[{j}]: must be an object"))?;
                    only_keys(f, FIELD_KEYS, &format!("embeds[{i}].fields[{j}]."))?;
                    if !f.contains_key("name") || !f.contains_key("value") {
                        return Err(format!("embeds[{i}].fields[{j}]: needs `name` and `value`"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{at}{k}: not a Discord message field (use {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

/// The body to post, from a rendered template: over-long text is cut (ending in `…`) so a
/// message still goes out; a message with nothing to show is a render error.
pub fn message(raw: Raw) -> Result<Value, RenderError> {
    let mut msg = match raw {
        Raw::Text(text) => json!({ "content": text }),
        Raw::Json(v) => v,
    };
    let Some(obj) = msg.as_object_mut() else {
        return Err(RenderError(
            "a Discord message must be a JSON object".into(),
        ));
    };
    // `"content": 5` in a JSON template is meant as text; Discord would refuse a number.
    if let Some(c) = obj.get_mut("content") {
        if c.is_number() || c.is_boolean() {
            *c = Value::String(c.to_string());
        }
    }
    clip(obj, "content", MAX_CONTENT);
    clip(obj, "username", MAX_USERNAME);
    drop_if_empty(obj, "avatar_url");
    drop_if_empty(obj, "thread_name");
    let mut total = 0;
    if let Some(Value::Array(embeds)) = obj.get_mut("embeds") {
        for (i, embed) in embeds.iter_mut().enumerate() {
            if let Value::Object(e) = embed {
                total += tidy_embed(e).map_err(|m| RenderError(format!("embeds[{i}].{m}")))?;
            }
        }
        // An embed left with nothing to show is refused by Discord; leave it out instead.
        embeds.retain(|e| {
            [
                "title",
                "description",
                "fields",
                "image",
                "thumbnail",
                "author",
                "footer",
            ]
            .iter()
            .any(|k| e.get(k).is_some())
        });
        if embeds.is_empty() {
            obj.remove("embeds");
        }
    }
    if total > MAX_EMBED_TOTAL {
        return Err(RenderError(format!(
            "the embeds hold {total} characters of text; Discord allows {MAX_EMBED_TOTAL} in all"
        )));
    }
    if !obj.contains_key("content") && !obj.contains_key("embeds") {
        return Err(RenderError(
            "the rendered Discord message is empty (it needs content or an embed)".into(),
        ));
    }
    // A member called "@everyone" must not ping a whole server: no mentions unless asked for.
    obj.entry("allowed_mentions")
        .or_insert_with(|| json!({ "parse": [] }));
    Ok(msg)
}

/// Cuts a string field to `max` characters; removes it when it rendered empty.
fn clip(obj: &mut Map<String, Value>, key: &str, max: usize) -> usize {
    match obj.get_mut(key) {
        Some(Value::String(s)) if s.trim().is_empty() => {
            obj.remove(key);
            0
        }
        Some(Value::String(s)) => {
            *s = truncate_chars(s, max);
            s.chars().count()
        }
        _ => 0,
    }
}

fn drop_if_empty(obj: &mut Map<String, Value>, key: &str) {
    if obj
        .get(key)
        .and_then(Value::as_str)
        .is_some_and(|s| s.trim().is_empty())
    {
        obj.remove(key);
    }
}

/// Applies the per-part limits to one embed and returns its text length.
fn tidy_embed(e: &mut Map<String, Value>) -> Result<usize, String> {
    let mut total = clip(e, "title", 256) + clip(e, "description", 4096);
    for key in ["url", "timestamp", "type"] {
        drop_if_empty(e, key);
    }
    if let Some(color) = e.get("color").cloned() {
        match parse_color(&color) {
            Ok(Some(c)) => {
                e.insert("color".into(), json!(c));
            }
            Ok(None) => {
                e.remove("color");
            }
            Err(m) => return Err(format!("color: {m}")),
        }
    }
    for (key, text_key, max) in [("footer", "text", 2048), ("author", "name", 256)] {
        if let Some(Value::Object(part)) = e.get_mut(key) {
            total += clip(part, text_key, max);
            for k in ["url", "icon_url"] {
                drop_if_empty(part, k);
            }
            if !part.contains_key(text_key) {
                e.remove(key);
            }
        }
    }
    for key in ["image", "thumbnail"] {
        if let Some(Value::Object(part)) = e.get_mut(key) {
            drop_if_empty(part, "url");
            if !part.contains_key("url") {
                e.remove(key);
            }
        }
    }
    if let Some(Value::Array(fields)) = e.get_mut("fields") {
        for f in fields.iter_mut() {
            if let Value::Object(f) = f {
                for (key, max) in [("name", 256), ("value", 1024)] {
                    // Discord refuses an empty name or value; a zero-width space keeps the layout.
                    let text = match f.get(key) {
                        Some(Value::String(s)) if !s.trim().is_empty() => truncate_chars(s, max),
                        Some(Value::String(_)) | None | Some(Value::Null) => "\u{200b}".to_owned(),
                        Some(other) => truncate_chars(&other.to_string(), max),
                    };
                    total += text.chars().count();
                    f.insert(key.into(), Value::String(text));
                }
                if let Some(Value::String(s)) = f.get("inline") {
                    let b = s.trim() == "true";
                    f.insert("inline".into(), Value::Bool(b));
                }
            }
        }
        if fields.is_empty() {
            e.remove("fields");
        }
    }
    Ok(total)
}

/// A colour as Discord wants it (an integer). Templates may give `5814783`, `"5814783"`,
/// `"#58b9ff"` or `"0x58b9ff"`; an empty string means none.
fn parse_color(v: &Value) -> Result<Option<u32>, String> {
    let bad = || format!("{v} is not a colour (use 5814783 or \"#58b9ff\")");
    match v {
        Value::Number(n) => n
            .as_u64()
            .filter(|c| *c <= 0xFF_FFFF)
            .map(|c| Some(c as u32))
            .ok_or_else(bad),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix('#').or_else(|| s.strip_prefix("0x")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => s.parse::<u32>().ok(),
            };
            parsed.filter(|c| *c <= 0xFF_FFFF).map(Some).ok_or_else(bad)
        }
        Value::Null => Ok(None),
        _ => Err(bad()),
    }
}

/// How long Discord asked us to wait, from a `429`'s JSON body (`retry_after`, fractional
/// seconds) or an exhausted bucket (`X-RateLimit-Remaining: 0` + `X-RateLimit-Reset-After`).
pub fn rate_limit_hint(
    status: Option<u16>,
    remaining: Option<&str>,
    reset_after: Option<&str>,
    body: Option<&str>,
) -> Option<Duration> {
    let secs = |raw: &str| {
        raw.trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
    };
    let from_body = (status == Some(429))
        .then(|| body.and_then(|b| serde_json::from_str::<Value>(b).ok()))
        .flatten()
        .and_then(|v| v.get("retry_after").and_then(Value::as_f64))
        .and_then(|s| secs(&s.to_string()));
    let exhausted = remaining.is_some_and(|r| r.trim() == "0") || status == Some(429);
    let from_bucket = exhausted.then(|| reset_after.and_then(secs)).flatten();
    match (from_body, from_bucket) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_becomes_content_without_mentions() {
        let m = message(Raw::Text("🎉 Ada joined".into())).unwrap();
        assert_eq!(
            m,
            json!({"content": "🎉 Ada joined", "allowed_mentions": {"parse": []}})
        );
    }

    #[test]
    fn long_content_is_cut_at_2000_characters() {
        let m = message(Raw::Text("é".repeat(2500))).unwrap();
        let c = m["content"].as_str().unwrap();
        assert_eq!(c.chars().count(), MAX_CONTENT);
        assert!(c.ends_with('…'));
    }

    #[test]
    fn empty_messages_are_render_errors() {
        assert!(message(Raw::Text("  ".into())).is_err());
        assert!(message(Raw::Json(json!({"content": "", "embeds": [{"color": 1}]}))).is_err());
    }

    #[test]
    fn embeds_are_tidied_to_discord_limits() {
        let m = message(Raw::Json(json!({
            "embeds": [{"title": "t".repeat(300), "url": "", "color": "#58b9ff",
                        "fields": [{"name": "By", "value": "", "inline": "true"}],
                        "footer": {"text": ""}, "thumbnail": {"url": ""}}],
            "allowed_mentions": {"parse": ["users"]}
        })))
        .unwrap();
        let e = &m["embeds"][0];
        assert_eq!(e["title"].as_str().unwrap().chars().count(), 256);
        assert!(
            e.get("url").is_none() && e.get("footer").is_none() && e.get("thumbnail").is_none()
        );
        assert_eq!(e["color"], 0x58b9ff);
        assert_eq!(
            e["fields"][0],
            json!({"name": "By", "value": "\u{200b}", "inline": true})
        );
        assert_eq!(m["allowed_mentions"], json!({"parse": ["users"]}));
        assert!(message(Raw::Json(
            json!({"embeds": [{"title": "x", "color": "blue"}]})
        ))
        .is_err());
        let huge = json!({"embeds": (0..2).map(|_| json!({"description": "d".repeat(4000)})).collect::<Vec<_>>()});
        assert!(message(Raw::Json(huge)).unwrap_err().0.contains("6000"));
    }

    #[test]
    fn shapes() {
        assert!(check_shape(&json!({"content": "x"})).is_ok());
        assert!(check_shape(
            &json!({"embeds": [{"title": "x", "fields": [{"name": "a", "value": "b"}]}]})
        )
        .is_ok());
        assert!(check_shape(&json!({"text": "x"}))
            .unwrap_err()
            .contains("text"));
        assert!(check_shape(&json!({"username": "x"})).is_err());
        assert!(check_shape(&json!({"embeds": {}})).is_err());
        assert!(check_shape(&json!({"embeds": [{"titel": "x"}]}))
            .unwrap_err()
            .contains("embeds[0].titel"));
        assert!(check_shape(&json!({"embeds": [{"fields": [{"name": "a"}]}]})).is_err());
        let many: Vec<Value> = (0..11).map(|_| json!({"title": "x"})).collect();
        assert!(check_shape(&json!({"embeds": many})).is_err());
    }

    #[test]
    fn hints_from_429_body_and_exhausted_buckets() {
        let body =
            r#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#;
        assert_eq!(
            rate_limit_hint(Some(429), None, None, Some(body)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            rate_limit_hint(Some(429), Some("0"), Some("2.25"), Some(body)),
            Some(Duration::from_millis(2250))
        );
        assert_eq!(
            rate_limit_hint(Some(204), Some("0"), Some("0.8"), None),
            Some(Duration::from_millis(800))
        );
        assert_eq!(
            rate_limit_hint(Some(204), Some("3"), Some("0.8"), None),
            None
        );
        assert_eq!(
            rate_limit_hint(Some(429), None, None, Some("not json")),
            None
        );
        assert_eq!(rate_limit_hint(Some(500), None, None, Some(body)), None);
    }
}
