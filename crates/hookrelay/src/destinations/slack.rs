//! Slack incoming webhooks: the message body (`text`, optional `blocks`/`attachments`) within
//! Slack's limits, and the shape JSON templates may take.
//!
//! Limits (api.slack.com/reference/block-kit, /messaging/webhooks): 50 blocks; a text object
//! 3000 characters (a header's 150); `text` is cut by Slack past 40,000 characters.

use serde_json::{json, Map, Value};

use super::template::{truncate_chars, RenderError};
use super::Raw;

pub const MAX_TEXT: usize = 40_000;
pub const MAX_BLOCKS: usize = 50;
const MAX_BLOCK_TEXT: usize = 3000;
const MAX_HEADER_TEXT: usize = 150;
const MAX_ATTACHMENTS: usize = 20;

const TOP_KEYS: &[&str] = &[
    "text",
    "blocks",
    "attachments",
    "username",
    "icon_emoji",
    "icon_url",
    "mrkdwn",
    "unfurl_links",
    "unfurl_media",
    "thread_ts",
];

pub fn check_shape(doc: &Value) -> Result<(), String> {
    let obj = doc.as_object().ok_or("a JSON template must be an object")?;
    if let Some(k) = obj.keys().find(|k| !TOP_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "{k}: not a Slack message field (use {})",
            TOP_KEYS.join(", ")
        ));
    }
    if !["text", "blocks", "attachments"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Err("a Slack JSON template needs `text`, `blocks` or `attachments`".into());
    }
    if let Some(blocks) = obj.get("blocks") {
        let list = blocks.as_array().ok_or("blocks: must be an array")?;
        if list.len() > MAX_BLOCKS {
            return Err(format!("blocks: Slack allows at most {MAX_BLOCKS}"));
        }
        for (i, b) in list.iter().enumerate() {
            if !b.get("type").is_some_and(Value::is_string) {
                return Err(format!("blocks[{i}]: must be an object with a `type`"));
            }
        }
    }
    if let Some(att) = obj.get("attachments") {
        let list = att.as_array().ok_or("attachments: must be an array")?;
        if list.len() > MAX_ATTACHMENTS {
            return Err(format!("attachments: at most {MAX_ATTACHMENTS}"));
        }
    }
    Ok(())
}

/// The body to post: over-long text is cut (ending in `…`); an empty message is a render error.
pub fn message(raw: Raw) -> Result<Value, RenderError> {
    let mut msg = match raw {
        Raw::Text(text) => json!({ "text": text }),
        Raw::Json(v) => v,
    };
    let Some(obj) = msg.as_object_mut() else {
        return Err(RenderError("a Slack message must be a JSON object".into()));
    };
    match obj.get_mut("text") {
        Some(Value::String(s)) if s.trim().is_empty() => {
            obj.remove("text");
        }
        Some(Value::String(s)) => *s = truncate_chars(s, MAX_TEXT),
        _ => {}
    }
    if let Some(Value::Array(blocks)) = obj.get_mut("blocks") {
        for block in blocks.iter_mut() {
            let max = if block.get("type").and_then(Value::as_str) == Some("header") {
                MAX_HEADER_TEXT
            } else {
                MAX_BLOCK_TEXT
            };
            if let Value::Object(b) = block {
                clip_texts(b, max);
            }
        }
        if blocks.is_empty() {
            obj.remove("blocks");
        }
    }
    if !["text", "blocks", "attachments"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Err(RenderError(
            "the rendered Slack message is empty (it needs text or blocks)".into(),
        ));
    }
    Ok(msg)
}

/// Cuts every `text` string inside a block to `max` characters.
fn clip_texts(obj: &mut Map<String, Value>, max: usize) {
    for (key, value) in obj.iter_mut() {
        match value {
            Value::String(s) if key == "text" => *s = truncate_chars(s, max),
            Value::Object(inner) => clip_texts(inner, max),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        clip_texts(inner, max);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_blocks() {
        assert_eq!(
            message(Raw::Text("🎉 hi".into())).unwrap(),
            json!({"text": "🎉 hi"})
        );
        let m = message(Raw::Json(json!({"text": "fallback", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "h".repeat(200)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "s".repeat(3100)}}]})))
        .unwrap();
        assert_eq!(
            m["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            150
        );
        assert_eq!(
            m["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            3000
        );
        assert!(message(Raw::Text(" ".into())).is_err());
        assert!(message(Raw::Json(json!({"text": "", "blocks": []}))).is_err());
    }

    #[test]
    fn shapes() {
        assert!(check_shape(&json!({"text": "x"})).is_ok());
        assert!(check_shape(&json!({"blocks": [{"type": "divider"}]})).is_ok());
        assert!(check_shape(&json!({"content": "x"}))
            .unwrap_err()
            .contains("content"));
        assert!(check_shape(&json!({"blocks": [{}]})).is_err());
        assert!(check_shape(&json!({"icon_emoji": ":tada:"})).is_err());
    }
}
