//! Inbound verification: one `Verifier` per provider proves who sent a request from its raw bytes
//! and headers, then names the event it carries and the provider's id for deduplication.

// Verifiers are pure: they read the request and their settings, nothing else. The one outside
// input, PayPal's signing certificate, reaches them through the `CertSource` trait (`certs.rs` is
// the real, fetching implementation). `ratelimit.rs` holds the per-source token buckets.

pub mod certs;
pub mod github;
pub mod hmac;
pub mod none;
pub mod paypal;
pub mod ratelimit;
pub mod standard;
pub mod stripe;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::HeaderMap;
use hookrelay_domain::validate::{is_valid_event_type, FieldError, MAX_EVENT_TYPE_LEN};
use serde::de::DeserializeOwned;
use serde_json::Value;
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from our clock, either way (Stripe's and Standard
/// Webhooks' own default). Older is a replay; newer is a clock we cannot trust.
pub const TOLERANCE_SECS: i64 = 300;

/// Longest secret a source accepts (providers use far less; this bounds the row).
pub const MAX_SECRET_LEN: usize = 1024;

/// One request as a verifier sees it.
pub struct Inbound<'a> {
    pub source_name: &'a str,
    pub headers: &'a HeaderMap,
    /// The raw body, exactly as received: every scheme signs these bytes.
    pub body: &'a [u8],
    /// Unix seconds at receipt, for timestamp tolerance.
    pub now_secs: i64,
}

impl Inbound<'_> {
    /// A header's value when present and visible ASCII; the first one when repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    /// A header the scheme cannot do without: its absence is a bad signature.
    fn required(&self, name: &str) -> Result<&str, Rejection> {
        match self.header(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Rejection::Signature(format!("missing {name} header"))),
        }
    }
}

/// The body decoded once the signature is good.
#[derive(Clone, Debug)]
pub struct Payload {
    /// The JSON document: the body itself, or GitHub's form-encoded `payload` field.
    pub json: Option<Value>,
    /// The event's `data` as JSON text: the body verbatim when it is JSON, else the decoded
    /// form payload, else the body as a JSON string.
    pub data: String,
    /// Whether `data` is the raw body byte for byte (then the requests log need not keep it).
    pub data_is_body: bool,
}

impl Payload {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        let form = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if form {
            let payload = form_urlencoded::parse(body)
                .find(|(k, _)| k == "payload")
                .map(|(_, v)| v.into_owned());
            if let Some(text) = payload {
                if let Ok(json) = serde_json::from_str::<Value>(&text) {
                    return Self {
                        data: json.to_string(),
                        json: Some(json),
                        data_is_body: false,
                    };
                }
            }
        }
        if let Ok(text) = std::str::from_utf8(body) {
            if let Ok(json) = serde_json::from_str::<Value>(text) {
                return Self {
                    data: text.to_owned(),
                    json: Some(json),
                    data_is_body: true,
                };
            }
        }
        Self {
            json: None,
            data: Value::String(String::from_utf8_lossy(body).into_owned()).to_string(),
            data_is_body: false,
        }
    }

    /// A string at a dotted path (`event.type`) of the JSON document.
    pub fn string_at(&self, path: &str) -> Option<&str> {
        let mut at = self.json.as_ref()?;
        for part in path.split('.') {
            at = match at {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        at.as_str()
    }
}

/// Why a request was not turned into an event. The reason is for the requests log and the
/// operator; it never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A missing or wrong signature, or a timestamp outside tolerance: `401 invalid_signature`.
    Signature(String),
    /// Signed, but not what the provider sends (no event type, not JSON): `400 invalid_json`.
    Malformed(String),
    /// Verification could not run now (PayPal's certificate could not be fetched): `503`.
    Unavailable(String),
}

impl Rejection {
    pub fn reason(&self) -> &str {
        match self {
            Self::Signature(r) | Self::Malformed(r) | Self::Unavailable(r) => r,
        }
    }
}

/// Where PayPal's signing certificates come from (fetched and cached in production, a fixed
/// key in tests).
#[async_trait]
pub trait CertSource: Send + Sync {
    /// The RSA public key of the certificate at `url`, refusing hosts outside the allowlist.
    async fn rsa_key(&self, url: &str, now_secs: i64) -> Result<Arc<rsa::RsaPublicKey>, Rejection>;
}

/// What verifiers may use besides the request.
pub struct Env<'a> {
    pub certs: &'a dyn CertSource,
}

/// One provider's scheme. `verify` runs first, on the raw bytes; the other two only on a
/// request that passed it.
#[async_trait]
pub trait Verifier: Send + Sync + fmt::Debug {
    async fn verify(&self, req: &Inbound<'_>, env: &Env<'_>) -> Result<(), Rejection>;
    /// The hookrelay event type (`github.pr.opened`, `stripe.invoice.paid`, …).
    fn event_type(&self, req: &Inbound<'_>, payload: &Payload) -> Result<String, Rejection>;
    /// The provider's id of this delivery, which duplicates share; `None` when there is none.
    fn idempotency_key(&self, req: &Inbound<'_>, payload: &Payload) -> Option<String>;
    /// Headers of this scheme worth keeping in the requests log (never a credential).
    fn logged_headers(&self) -> Vec<&str>;
}

/// A verified request, ready to become an event.
#[derive(Clone, Debug)]
pub struct Verified {
    pub event_type: String,
    pub provider_id: Option<String>,
    pub payload: Payload,
}

/// Verifies, then decodes and names the event.
pub async fn process(
    verifier: &dyn Verifier,
    req: &Inbound<'_>,
    env: &Env<'_>,
) -> Result<Verified, Rejection> {
    verifier.verify(req, env).await?;
    let payload = Payload::parse(req.headers, req.body);
    let event_type = verifier.event_type(req, &payload)?;
    let provider_id = verifier
        .idempotency_key(req, &payload)
        .filter(|k| !k.is_empty());
    Ok(Verified {
        event_type,
        provider_id,
        payload,
    })
}

/// The providers a source can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Github,
    Stripe,
    PayPal,
    Standard,
    Hmac,
    None,
}

impl Provider {
    pub const ALL: [Provider; 6] = [
        Self::Github,
        Self::Stripe,
        Self::PayPal,
        Self::Standard,
        Self::Hmac,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::PayPal => "paypal",
            Self::Standard => "standard",
            Self::Hmac => "hmac",
            Self::None => "none",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// A provider with its validated settings.
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderConfig {
    Github,
    Stripe,
    PayPal(paypal::PayPalConfig),
    Standard,
    Hmac(hmac::HmacConfig),
    None(none::NoneConfig),
}

/// Settings of providers that take none: only `{}` (or nothing) is accepted.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

impl ProviderConfig {
    /// Validates a provider name and its `config` object as a client sent them; errors name
    /// `provider` or `config.<field>`.
    pub fn parse(provider: &str, config: &Value) -> Result<Self, Vec<FieldError>> {
        let Some(p) = Provider::parse(provider) else {
            return Err(vec![FieldError::new(
                "provider",
                "must be github, stripe, paypal, standard, hmac or none",
            )]);
        };
        let config = match config {
            Value::Null => Value::Object(Default::default()),
            Value::Object(_) => config.clone(),
            _ => return Err(vec![FieldError::new("config", "must be an object")]),
        };
        Ok(match p {
            Provider::Github => {
                settings::<NoSettings>(config)?;
                Self::Github
            }
            Provider::Stripe => {
                settings::<NoSettings>(config)?;
                Self::Stripe
            }
            Provider::Standard => {
                settings::<NoSettings>(config)?;
                Self::Standard
            }
            Provider::PayPal => {
                let c: paypal::PayPalConfig = settings(config)?;
                c.validate()?;
                Self::PayPal(c)
            }
            Provider::Hmac => {
                let c: hmac::HmacConfig = settings(config)?;
                c.validate()?;
                Self::Hmac(c)
            }
            Provider::None => {
                let c: none::NoneConfig = settings(config)?;
                c.validate()?;
                Self::None(c)
            }
        })
    }

    pub fn provider(&self) -> Provider {
        match self {
            Self::Github => Provider::Github,
            Self::Stripe => Provider::Stripe,
            Self::PayPal(_) => Provider::PayPal,
            Self::Standard => Provider::Standard,
            Self::Hmac(_) => Provider::Hmac,
            Self::None(_) => Provider::None,
        }
    }

    /// The settings as stored and shown, defaults filled in.
    pub fn to_json(&self) -> Value {
        let value = match self {
            Self::Github | Self::Stripe | Self::Standard => Ok(Value::Object(Default::default())),
            Self::PayPal(c) => serde_json::to_value(c),
            Self::Hmac(c) => serde_json::to_value(c),
            Self::None(c) => serde_json::to_value(c),
        };
        value.unwrap_or_else(|_| Value::Object(Default::default()))
    }

    /// Checks the secret this provider needs (or must not have).
    pub fn check_secret(&self, secret: Option<&str>) -> Result<(), FieldError> {
        let invalid = |m: &str| Err(FieldError::new("secret", m));
        match (self, secret) {
            (Self::PayPal(_), Some(_)) => invalid(
                "paypal verifies with PayPal's certificate: set config.webhook_id, not a secret",
            ),
            (Self::None(_), Some(_)) => invalid("provider none verifies nothing: omit the secret"),
            (Self::PayPal(_) | Self::None(_), None) => Ok(()),
            (_, None) => invalid("is required for this provider"),
            (Self::Standard, Some(s)) => hookrelay_domain::WebhookSecret::parse(s)
                .map(|_| ())
                .map_err(|m| FieldError::new("secret", m)),
            (_, Some(s)) => {
                if s.is_empty() || s.len() > MAX_SECRET_LEN {
                    invalid("must be 1-1024 characters")
                } else if s.chars().any(char::is_control) {
                    invalid("must not contain control characters")
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The verifier for a source with these settings. Fails only on a secret that
    /// `check_secret` would refuse (a corrupt row).
    pub fn verifier(
        &self,
        source_name: &str,
        secret: Option<&str>,
    ) -> Result<Arc<dyn Verifier>, String> {
        self.check_secret(secret).map_err(|e| e.to_string())?;
        let secret = secret.unwrap_or_default();
        Ok(match self {
            Self::Github => Arc::new(github::GitHub::new(secret)),
            Self::Stripe => Arc::new(stripe::Stripe::new(secret)),
            Self::Standard => Arc::new(standard::Standard::new(secret)?),
            Self::PayPal(c) => Arc::new(paypal::PayPal::new(c.clone())),
            Self::Hmac(c) => Arc::new(hmac::GenericHmac::new(c.clone(), secret, source_name)),
            Self::None(c) => Arc::new(none::Unsigned::new(c.clone(), source_name)),
        })
    }
}

/// Deserialises a provider's settings, naming the offending field as `config.<path>`.
fn settings<T: DeserializeOwned>(config: Value) -> Result<T, Vec<FieldError>> {
    serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let (field, message) = if let Some(rest) = inner.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or_default();
            (name.to_owned(), "unknown field".to_owned())
        } else if let Some(rest) = inner.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or_default();
            (name.to_owned(), "is required".to_owned())
        } else {
            let field = if path == "." { String::new() } else { path };
            (field, inner)
        };
        let field = if field.is_empty() {
            "config".to_owned()
        } else {
            format!("config.{field}")
        };
        vec![FieldError::new(field, message)]
    })
}

/// Constant-time equality, so a forger learns nothing from how long a comparison took.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Refuses a signed timestamp outside `TOLERANCE_SECS` of now.
pub fn check_tolerance(timestamp_secs: i64, now_secs: i64) -> Result<(), Rejection> {
    // `abs_diff`, not `(now - t).abs()`: a signed `t` near `i64::MIN` overflowed the subtraction
    // (a panic in debug builds, a wrap that could pass the check in release). Found by fuzzing.
    if now_secs.abs_diff(timestamp_secs) > TOLERANCE_SECS.unsigned_abs() {
        Err(Rejection::Signature(
            "timestamp outside tolerance (replay?)".into(),
        ))
    } else {
        Ok(())
    }
}

/// Builds an event type from parts that may hold dots of their own, replacing characters an
/// event type cannot have with `_`. `None` when nothing usable is left or it is too long.
pub fn event_type_from(parts: &[&str]) -> Option<String> {
    let segments: Vec<String> = parts
        .iter()
        .flat_map(|p| p.split('.'))
        .map(|seg| {
            seg.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .filter(|seg| !seg.is_empty())
        .collect();
    let joined = segments.join(".");
    (joined.len() <= MAX_EVENT_TYPE_LEN && is_valid_event_type(&joined)).then_some(joined)
}

/// A configured type (JSON path first, then header), else `<source>.received`.
fn configured_type(
    req: &Inbound<'_>,
    payload: &Payload,
    path: Option<&str>,
    header: Option<&str>,
) -> String {
    let found = path
        .and_then(|p| payload.string_at(p))
        .or_else(|| header.and_then(|h| req.header(h)))
        .and_then(|t| event_type_from(&[t]));
    found
        .or_else(|| event_type_from(&[req.source_name, "received"]))
        .unwrap_or_else(|| "source.received".to_owned())
}

/// A configured delivery id (JSON path first, then header).
fn configured_id(
    req: &Inbound<'_>,
    payload: &Payload,
    path: Option<&str>,
    header: Option<&str>,
) -> Option<String> {
    path.and_then(|p| payload.string_at(p))
        .or_else(|| header.and_then(|h| req.header(h)))
        .map(str::to_owned)
}

/// Checks a header name a source configures.
fn check_header_name(field: &str, name: &str, errors: &mut Vec<FieldError>) {
    let token = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        errors.push(FieldError::new(field, "is not a valid header name"));
    }
}

/// Checks a dotted JSON path a source configures (`type`, `event.type`, `events.0.type`).
fn check_path(field: &str, path: &str, errors: &mut Vec<FieldError>) {
    let ok = !path.is_empty() && path.len() <= 256 && path.split('.').all(|s| !s.is_empty());
    if !ok {
        errors.push(FieldError::new(
            field,
            "must be a dotted JSON path like `type` or `event.type`",
        ));
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A certificate source that knows no certificate: enough for every provider but PayPal.
    pub struct NoCerts;

    #[async_trait]
    impl CertSource for NoCerts {
        async fn rsa_key(&self, url: &str, _: i64) -> Result<Arc<rsa::RsaPublicKey>, Rejection> {
            Err(Rejection::Signature(format!("no certificate for {url}")))
        }
    }

    pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                axum::http::HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    pub async fn run(
        v: &dyn Verifier,
        headers: &HeaderMap,
        body: &[u8],
        now_secs: i64,
    ) -> Result<Verified, Rejection> {
        let req = Inbound {
            source_name: "src-test",
            headers,
            body,
            now_secs,
        };
        process(v, &req, &Env { certs: &NoCerts }).await
    }
}

#[cfg(test)]
mod tests {
    use super::testing::headers;
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_keeps_json_verbatim_and_decodes_forms() {
        let p = Payload::parse(&HeaderMap::new(), b"{ \"a\" : 1 }");
        assert_eq!(p.data, "{ \"a\" : 1 }");
        assert!(p.data_is_body);
        assert_eq!(p.json, Some(json!({"a": 1})));

        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let p = Payload::parse(&form, b"payload=%7B%22action%22%3A%22opened%22%7D");
        assert_eq!(p.json, Some(json!({"action": "opened"})));
        assert_eq!(p.data, r#"{"action":"opened"}"#);
        assert!(!p.data_is_body);

        let p = Payload::parse(&HeaderMap::new(), b"Hello, World!");
        assert_eq!(p.data, "\"Hello, World!\"");
        assert!(p.json.is_none());
    }

    #[test]
    fn paths_reach_nested_strings() {
        let p = Payload::parse(
            &HeaderMap::new(),
            br#"{"event": {"type": "order.paid"}, "list": [{"id": "x"}], "n": 1}"#,
        );
        assert_eq!(p.string_at("event.type"), Some("order.paid"));
        assert_eq!(p.string_at("list.0.id"), Some("x"));
        assert_eq!(p.string_at("n"), None);
        assert_eq!(p.string_at("missing.path"), None);
    }

    #[test]
    fn event_types_are_sanitised() {
        assert_eq!(
            event_type_from(&["github", "pull_request_review", "submitted"]).as_deref(),
            Some("github.pull_request_review.submitted")
        );
        assert_eq!(
            event_type_from(&["stripe", "payment_intent.succeeded"]).as_deref(),
            Some("stripe.payment_intent.succeeded")
        );
        assert_eq!(
            event_type_from(&["order paid!"]).as_deref(),
            Some("order_paid_")
        );
        assert_eq!(event_type_from(&["..", ""]), None);
        assert_eq!(event_type_from(&[&"a".repeat(200)]), None);
    }

    #[test]
    fn tolerance_is_five_minutes_either_way() {
        assert!(check_tolerance(1000, 1300).is_ok());
        assert!(check_tolerance(1300, 1000).is_ok());
        assert!(check_tolerance(1000, 1301).is_err());
        assert!(check_tolerance(1302, 1001).is_err());
    }

    #[test]
    fn tolerance_survives_extreme_timestamps() {
        let now: i64 = 1_700_000_000;
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, now.wrapping_sub(i64::MIN)] {
            assert!(check_tolerance(t, now).is_err(), "{t}");
        }
        assert!(check_tolerance(i64::MAX, i64::MAX).is_ok());
        assert!(check_tolerance(i64::MIN, i64::MIN + 300).is_ok());
    }

    #[test]
    fn provider_settings_are_validated_with_field_names() {
        assert_eq!(
            ProviderConfig::parse("github", &Value::Null),
            Ok(ProviderConfig::Github)
        );
        let e = ProviderConfig::parse("gitlab", &Value::Null).unwrap_err();
        assert_eq!(e[0].field, "provider");
        let e = ProviderConfig::parse("github", &json!({"extra": 1})).unwrap_err();
        assert_eq!(e[0].field, "config.extra");
        let e = ProviderConfig::parse("stripe", &json!([1])).unwrap_err();
        assert_eq!(e[0].field, "config");
        let e = ProviderConfig::parse("paypal", &json!({})).unwrap_err();
        assert_eq!(e[0].field, "config.webhook_id");
        let e = ProviderConfig::parse("hmac", &json!({"header": "X-Sig", "algorithm": "md5"}))
            .unwrap_err();
        assert_eq!(e[0].field, "config.algorithm");
    }

    #[test]
    fn secrets_per_provider() {
        let gh = ProviderConfig::Github;
        assert!(gh.check_secret(Some("It's a Secret to Everybody")).is_ok());
        assert_eq!(gh.check_secret(None).unwrap_err().field, "secret");
        assert!(gh.check_secret(Some("")).is_err());
        assert!(ProviderConfig::Standard
            .check_secret(Some("not-whsec"))
            .is_err());
        assert!(ProviderConfig::Standard
            .check_secret(Some("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"))
            .is_ok());
        let none = ProviderConfig::parse("none", &Value::Null).unwrap();
        assert!(none.check_secret(None).is_ok());
        assert!(none.check_secret(Some("x")).is_err());
    }

    #[test]
    fn verifiers_never_print_their_secret() {
        let secret = "sup3r-s3cret-value";
        for provider in ["github", "stripe"] {
            let v = ProviderConfig::parse(provider, &Value::Null)
                .unwrap()
                .verifier("s", Some(secret))
                .unwrap();
            assert!(!format!("{v:?}").contains(secret), "{provider}");
        }
        let v = ProviderConfig::parse("hmac", &json!({"header": "X-Sig"}))
            .unwrap()
            .verifier("s", Some(secret))
            .unwrap();
        assert!(!format!("{v:?}").contains(secret));
    }
}
