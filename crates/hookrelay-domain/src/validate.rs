//! Field-level validation shared by the API and the inbound gateway: event types, URLs, header
//! names. Errors name the field so the API can return them in `details`.

use std::fmt;

/// One invalid field, as the contract's `details` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// Event types are dotted tokens: letters, digits, `_`, `-`, `:` separated by single dots.
pub fn is_valid_event_type(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_EVENT_TYPE_LEN
        && raw.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
        })
}

pub const MAX_URL_LEN: usize = 2048;

/// Parses a webhook URL: absolute http(s), a host, no credentials, bounded length.
pub fn parse_webhook_url(raw: &str, require_https: bool) -> Result<url::Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let url = url::Url::parse(raw).map_err(|e| format!("must be an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if !require_https => {}
        "http" => return Err("must be https".into()),
        _ => return Err("must be an http or https URL".into()),
    }
    if url.host().is_none() {
        return Err("must have a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    Ok(url)
}

/// Header names a client may ask us to add to deliveries: RFC 7230 tokens that do not collide
/// with the headers we set or that would confuse the transport.
pub fn check_custom_header(name: &str, value: &str) -> Result<(), String> {
    const RESERVED: &[&str] = &[
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-webhook-event",
        "x-webhook-id",
        "x-webhook-signature",
        "x-webhook-attempt",
    ];
    let token = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err("is not a valid header name".into());
    }
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err("is set by hookrelay and cannot be overridden".into());
    }
    if value.len() > 4096 || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err("has an invalid value".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types() {
        assert!(is_valid_event_type("member.created"));
        assert!(is_valid_event_type("github.pr.opened"));
        assert!(is_valid_event_type("stripe.payment_intent.succeeded"));
        assert!(!is_valid_event_type("a..b"));
        assert!(!is_valid_event_type("a b"));
        assert!(!is_valid_event_type(""));
        assert!(!is_valid_event_type(&"a".repeat(129)));
    }

    #[test]
    fn urls() {
        assert!(parse_webhook_url("https://example.com/h", true).is_ok());
        assert!(parse_webhook_url("http://example.com/h", false).is_ok());
        assert_eq!(
            parse_webhook_url("http://example.com/h", true).unwrap_err(),
            "must be https"
        );
        assert!(parse_webhook_url("ftp://example.com", false).is_err());
        assert!(parse_webhook_url("not a url", false).is_err());
        assert!(parse_webhook_url("https://u:p@example.com", false).is_err());
    }

    #[test]
    fn custom_headers() {
        assert!(check_custom_header("X-Team", "crm").is_ok());
        assert!(check_custom_header("webhook-signature", "x").is_err());
        assert!(check_custom_header("Bad Header", "x").is_err());
        assert!(check_custom_header("X-Ok", "a\r\nb").is_err());
    }
}
