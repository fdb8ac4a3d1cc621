//! Request extractors that answer in the contract's error shape: strict JSON bodies (400 when
//! not a JSON object, 422 naming the field otherwise), strict query strings, and pagination.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use hookrelay_domain::validate::FieldError;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::store::PageRequest;

/// A JSON object body deserialised into `T` (which should deny unknown fields).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidJson(format!("could not read the body: {e}"))
            }
        })?;
        parse_json_object(&bytes).map(JsonBody)
    }
}

/// Parses bytes that must hold a JSON object into `T`, straight from the bytes (no
/// intermediate `Value`): syntax errors and non-objects are `400 invalid_json`, a field of the
/// wrong shape is `422 validation_failed` naming the field.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if nesting_exceeds(bytes, MAX_JSON_DEPTH) {
        return Err(ApiError::InvalidJson(format!(
            "the body nests deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::InvalidJson("the body must be a JSON object".into()),
                Err(e) => ApiError::InvalidJson(format!("the body is not valid JSON: {e}")),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        if e.inner().is_syntax() || e.inner().is_eof() {
            return ApiError::InvalidJson(format!("the body is not valid JSON: {}", e.inner()));
        }
        // The typed pass stops at the first field it refuses (an unknown or wrong-typed one),
        // before reaching a syntax error further on: a body that is not complete JSON is a
        // `400` whatever its fields. Checked only on this failure path, so accepted bodies are
        // parsed once.
        match syntax_error(bytes) {
            Some(syntax) => ApiError::InvalidJson(format!("the body is not valid JSON: {syntax}")),
            None => field_error(e),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::InvalidJson(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The syntax error of bytes that are not one complete JSON value, if any.
fn syntax_error(bytes: &[u8]) -> Option<serde_json::Error> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .err()
        .filter(|e| e.is_syntax() || e.is_eof())
}

/// Deepest nesting of arrays and objects accepted in a body. Raw `data` is stored without being
/// parsed into a tree, so the parser's own recursion limit does not apply to it.
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `[`/`{` nest deeper than `max` outside strings (a linear scan, no allocation).
pub fn nesting_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Turns a deserialisation error into a 422 naming the offending field.
fn field_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner().to_string();
    let (field, message) = match inner.strip_prefix("unknown field `") {
        // The path already ends at the unknown field.
        Some(rest) => {
            let name = rest.split('`').next().unwrap_or_default();
            let field = if path == "." { name.to_owned() } else { path };
            (field, "unknown field".to_owned())
        }
        None if inner.starts_with("missing field `") => {
            let name = inner
                .trim_start_matches("missing field `")
                .split('`')
                .next()
                .unwrap_or_default();
            let field = if path == "." {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
            (field, "is required".to_owned())
        }
        None => (
            if path == "." { "body".to_owned() } else { path },
            strip_position(&inner),
        ),
    };
    ApiError::Validation(vec![FieldError::new(field, message)])
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// A query string deserialised into `T`; malformed or unknown parameters are a 422.
pub struct StrictQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(StrictQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                let field = match inner.strip_prefix("unknown field `") {
                    Some(rest) => rest.split('`').next().unwrap_or_default().to_owned(),
                    None if path == "." => "query".to_owned(),
                    None => path,
                };
                ApiError::Validation(vec![FieldError::new(field, strip_position(&inner))])
            })
    }
}

pub const MAX_LIMIT: u32 = 1000;

/// Validates `limit` (1–1000, default 50) and `cursor`.
pub fn page(limit: Option<u32>, cursor: Option<String>) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 1000"));
    }
    if let Some(c) = &cursor {
        if c.is_empty() || c.len() > 128 {
            return Err(ApiError::field(
                "cursor",
                "is not a cursor this API returned",
            ));
        }
    }
    Ok(PageRequest { limit, cursor })
}

/// Parses an optional RFC 3339 query parameter.
pub fn time_param(field: &str, raw: &Option<String>) -> Result<Option<i64>, ApiError> {
    raw.as_deref()
        .map(|s| {
            hookrelay_domain::time::parse_rfc3339(s).ok_or_else(|| {
                ApiError::field(field, "must be an RFC 3339 time like 2026-11-23T10:00:00Z")
            })
        })
        .transpose()
}

/// The client's IP address as the socket saw it (absent when the server runs without connect
/// info). Behind a reverse proxy this is the proxy's address.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_outside_strings() {
        assert!(!nesting_exceeds(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(nesting_exceeds(br#"{"a": [1, {"b": 2}]}"#, 2));
        assert!(!nesting_exceeds(br#"{"a": "[[[[[[[[["}"#, 1));
        assert!(!nesting_exceeds(br#"{"a": "\"[[[[["}"#, 1));
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(nesting_exceeds(deep.as_bytes(), MAX_JSON_DEPTH));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        url: String,
    }

    fn code(r: Result<Strict, ApiError>) -> &'static str {
        match r {
            Err(ApiError::InvalidJson(_)) => "invalid_json",
            Err(ApiError::Validation(_)) => "validation_failed",
            Err(_) => "other",
            Ok(_) => "ok",
        }
    }

    #[test]
    fn incomplete_json_is_invalid_json_whatever_comes_first() {
        // serde refuses the unknown or wrong-typed field before it reaches the break.
        assert_eq!(
            code(parse_json_object(br#"{"nope": 1, "url": "#)),
            "invalid_json"
        );
        assert_eq!(code(parse_json_object(br#"{"url": 5, "x"#)), "invalid_json");
        assert_eq!(
            code(parse_json_object(br#"{"url": "a"} trailing"#)),
            "invalid_json"
        );
        assert_eq!(code(parse_json_object(br#"{"url": "#)), "invalid_json");
        // Complete JSON keeps its field errors.
        assert_eq!(
            code(parse_json_object(br#"{"nope": 1}"#)),
            "validation_failed"
        );
        assert_eq!(
            code(parse_json_object(br#"{"url": 5}"#)),
            "validation_failed"
        );
        assert_eq!(code(parse_json_object(br#"{}"#)), "validation_failed");
        assert_eq!(code(parse_json_object(br#"{"url": "a"}"#)), "ok");
    }
}
