//! Generic HMAC: a configurable header with `[prefix]<hex|base64 HMAC-SHA1/256/512>`, an optional
//! signed timestamp for replay protection, event type and delivery id from a JSON path or header.

use std::fmt;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use hookrelay_domain::validate::FieldError;
use serde::{Deserialize, Serialize};

use super::{
    check_header_name, check_path, check_tolerance, configured_id, configured_type, ct_eq, Env,
    Inbound, Payload, Rejection, Verifier,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
}

/// The settings of an `hmac` source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacConfig {
    /// The header carrying the signature, e.g. `X-Signature`.
    pub header: String,
    #[serde(default)]
    pub algorithm: Algorithm,
    #[serde(default)]
    pub encoding: Encoding,
    /// Text before the signature in the header, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A header with the Unix time of sending (seconds, or milliseconds), which must then be
    /// part of the signed payload and within five minutes of now.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// What is signed, with `{body}` and `{timestamp}` placeholders. Default: `{body}`, or
    /// `{timestamp}.{body}` with a timestamp header (Slack: `v0:{timestamp}:{body}`).
    #[serde(default)]
    pub signed_payload: Option<String>,
    /// Dotted JSON path of the event type in the body (e.g. `event.type`).
    #[serde(default)]
    pub type_path: Option<String>,
    /// Header holding the event type.
    #[serde(default)]
    pub type_header: Option<String>,
    /// Dotted JSON path of the provider's delivery id, for deduplication.
    #[serde(default)]
    pub id_path: Option<String>,
    /// Header holding the provider's delivery id, for deduplication.
    #[serde(default)]
    pub id_header: Option<String>,
}

impl HmacConfig {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_header_name("config.header", &self.header, &mut errors);
        if let Some(p) = &self.prefix {
            if p.len() > 64 || p.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    "config.prefix",
                    "must be at most 64 printable characters",
                ));
            }
        }
        if let Some(h) = &self.timestamp_header {
            check_header_name("config.timestamp_header", h, &mut errors);
        }
        if let Some(t) = &self.signed_payload {
            if t.matches("{body}").count() != 1 || !t.ends_with("{body}") {
                errors.push(FieldError::new(
                    "config.signed_payload",
                    "must end with {body} and hold it once",
                ));
            } else if t.contains("{timestamp}") != self.timestamp_header.is_some() {
                errors.push(FieldError::new(
                    "config.signed_payload",
                    "must hold {timestamp} exactly when timestamp_header is set",
                ));
            } else if t.len() > 256 {
                errors.push(FieldError::new(
                    "config.signed_payload",
                    "must be at most 256 characters",
                ));
            }
        }
        check_type_and_id(
            [
                &self.type_path,
                &self.type_header,
                &self.id_path,
                &self.id_header,
            ],
            &mut errors,
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The text signed before the body, `{timestamp}` filled in.
    fn signed_prefix(&self, timestamp: Option<&str>) -> String {
        let template = match (&self.signed_payload, timestamp) {
            (Some(t), _) => t.as_str(),
            (None, Some(_)) => "{timestamp}.{body}",
            (None, None) => "{body}",
        };
        let before_body = template.strip_suffix("{body}").unwrap_or_default();
        before_body.replace("{timestamp}", timestamp.unwrap_or_default())
    }
}

/// The settings `hmac` and `none` share to find an event's type and id: each from a JSON path
/// or a header, not both. Given as `[type_path, type_header, id_path, id_header]`.
pub(super) fn check_type_and_id(fields: [&Option<String>; 4], errors: &mut Vec<FieldError>) {
    let [type_path, type_header, id_path, id_header] = fields;
    if type_path.is_some() && type_header.is_some() {
        errors.push(FieldError::new(
            "config.type_header",
            "set type_path or type_header, not both",
        ));
    }
    if id_path.is_some() && id_header.is_some() {
        errors.push(FieldError::new(
            "config.id_header",
            "set id_path or id_header, not both",
        ));
    }
    for (field, value, is_path) in [
        ("config.type_path", type_path, true),
        ("config.type_header", type_header, false),
        ("config.id_path", id_path, true),
        ("config.id_header", id_header, false),
    ] {
        match (value, is_path) {
            (Some(v), true) => check_path(field, v, errors),
            (Some(v), false) => check_header_name(field, v, errors),
            (None, _) => {}
        }
    }
}

pub struct GenericHmac {
    config: HmacConfig,
    secret: String,
}

impl GenericHmac {
    pub fn new(config: HmacConfig, secret: &str, _source_name: &str) -> Self {
        Self {
            config,
            secret: secret.to_owned(),
        }
    }
}

impl fmt::Debug for GenericHmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenericHmac")
            .field("config", &self.config)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// HMAC of `parts` concatenated, with the configured hash.
pub fn compute(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("any key length");
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

/// Seconds from a timestamp header that may be in seconds or milliseconds.
fn timestamp_secs(raw: &str) -> Option<i64> {
    let n: i64 = raw.parse().ok()?;
    // Past 100 billion a Unix time in seconds would be in the year 5138: it is milliseconds.
    Some(if n > 100_000_000_000 { n / 1000 } else { n })
}

#[async_trait]
impl Verifier for GenericHmac {
    async fn verify(&self, req: &Inbound<'_>, _env: &Env<'_>) -> Result<(), Rejection> {
        let c = &self.config;
        let header = req.required(&c.header)?;
        let encoded = match &c.prefix {
            Some(prefix) => header.strip_prefix(prefix.as_str()).ok_or_else(|| {
                Rejection::Signature(format!("{} must start with {prefix}", c.header))
            })?,
            None => header,
        };
        let given = match c.encoding {
            Encoding::Hex => hex::decode(encoded).ok(),
            Encoding::Base64 => B64.decode(encoded).ok(),
        }
        .ok_or_else(|| {
            Rejection::Signature(format!("{} is not valid {:?}", c.header, c.encoding))
        })?;
        let timestamp = match &c.timestamp_header {
            Some(h) => Some(req.required(h)?),
            None => None,
        };
        let prefix = c.signed_prefix(timestamp);
        let expected = compute(
            c.algorithm,
            self.secret.as_bytes(),
            &[prefix.as_bytes(), req.body],
        );
        if !ct_eq(&given, &expected) {
            return Err(Rejection::Signature(format!("{} does not match", c.header)));
        }
        if let (Some(raw), Some(h)) = (timestamp, &c.timestamp_header) {
            let secs = timestamp_secs(raw)
                .ok_or_else(|| Rejection::Signature(format!("{h} is not a Unix time")))?;
            check_tolerance(secs, req.now_secs)?;
        }
        Ok(())
    }

    fn event_type(&self, req: &Inbound<'_>, payload: &Payload) -> Result<String, Rejection> {
        let c = &self.config;
        Ok(configured_type(
            req,
            payload,
            c.type_path.as_deref(),
            c.type_header.as_deref(),
        ))
    }

    fn idempotency_key(&self, req: &Inbound<'_>, payload: &Payload) -> Option<String> {
        let c = &self.config;
        configured_id(req, payload, c.id_path.as_deref(), c.id_header.as_deref())
    }

    fn logged_headers(&self) -> Vec<&str> {
        let c = &self.config;
        [
            Some(&c.header),
            c.timestamp_header.as_ref(),
            c.type_header.as_ref(),
            c.id_header.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::testing::{headers, run};
    use crate::inbound::ProviderConfig;
    use serde_json::json;

    fn config(v: serde_json::Value) -> HmacConfig {
        match ProviderConfig::parse("hmac", &v).unwrap() {
            ProviderConfig::Hmac(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn published_hmac_vectors() {
        // RFC 4231 test case 2 (SHA-256 and SHA-512) and RFC 2202 test case 2 (SHA-1).
        let key = b"Jefe";
        let data: &[u8] = b"what do ya want for nothing?";
        assert_eq!(
            hex::encode(compute(Algorithm::Sha256, key, &[data])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(compute(Algorithm::Sha512, key, &[&data[..10], &data[10..]])),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        assert_eq!(
            hex::encode(compute(Algorithm::Sha1, key, &[data])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[tokio::test]
    async fn hex_with_prefix() {
        let c = config(
            json!({"header": "X-Signature", "prefix": "sha256=", "type_path": "event.type", "id_header": "X-Delivery"}),
        );
        let v = GenericHmac::new(c, "s3cret", "shop");
        let body = br#"{"event": {"type": "order.paid"}}"#;
        let sig = format!(
            "sha256={}",
            hex::encode(compute(Algorithm::Sha256, b"s3cret", &[body]))
        );
        let h = headers(&[("x-signature", &sig), ("x-delivery", "d-1")]);
        let got = run(&v, &h, body, 0).await.unwrap();
        assert_eq!(got.event_type, "order.paid");
        assert_eq!(got.provider_id.as_deref(), Some("d-1"));
        let h = headers(&[("x-signature", &sig[7..])]);
        assert!(run(&v, &h, body, 0).await.is_err(), "prefix required");
    }

    #[tokio::test]
    async fn base64_sha512_and_fallback_type() {
        let c = config(json!({"header": "X-Sig", "algorithm": "sha512", "encoding": "base64"}));
        let v = GenericHmac::new(c, "k", "shop");
        let sig = B64.encode(compute(Algorithm::Sha512, b"k", &[b"{}"]));
        let got = run(&v, &headers(&[("x-sig", &sig)]), b"{}", 0)
            .await
            .unwrap();
        assert_eq!(got.event_type, "src-test.received");
        assert_eq!(got.provider_id, None);
        let bad = B64.encode(compute(Algorithm::Sha256, b"k", &[b"{}"]));
        assert!(run(&v, &headers(&[("x-sig", &bad)]), b"{}", 0)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn timestamps_are_signed_and_checked() {
        // Slack's scheme.
        let c = config(json!({"header": "X-Slack-Signature", "prefix": "v0=",
            "timestamp_header": "X-Slack-Request-Timestamp", "signed_payload": "v0:{timestamp}:{body}",
            "type_header": "X-Kind"}));
        let v = GenericHmac::new(c, "k", "slack");
        let body = b"token=x&team_id=T1";
        let sign = |ts: i64| {
            format!(
                "v0={}",
                hex::encode(compute(
                    Algorithm::Sha256,
                    b"k",
                    &[format!("v0:{ts}:").as_bytes(), body]
                ))
            )
        };
        let now = 1_700_000_000;
        let req = |sig: String, ts: i64| {
            headers(&[
                ("x-slack-signature", &sig),
                ("x-slack-request-timestamp", &ts.to_string()),
                ("x-kind", "slash.command"),
            ])
        };
        let got = run(&v, &req(sign(now), now), body, now).await.unwrap();
        assert_eq!(got.event_type, "slash.command");
        // A replay of a genuine request from ten minutes ago.
        let err = run(&v, &req(sign(now - 600), now - 600), body, now)
            .await
            .unwrap_err();
        assert!(matches!(err, Rejection::Signature(r) if r.contains("tolerance")));
        // A fresh timestamp on an old signature does not verify.
        assert!(run(&v, &req(sign(now - 600), now), body, now)
            .await
            .is_err());
        // Milliseconds are understood.
        let c = config(json!({"header": "X-Sig", "timestamp_header": "X-Ts"}));
        let v = GenericHmac::new(c, "k", "ms");
        let ts = (now * 1000).to_string();
        let sig = hex::encode(compute(
            Algorithm::Sha256,
            b"k",
            &[format!("{ts}.").as_bytes(), b"{}"],
        ));
        let h = headers(&[("x-sig", &sig), ("x-ts", &ts)]);
        assert!(run(&v, &h, b"{}", now).await.is_ok());
    }

    #[test]
    fn settings_are_checked() {
        let bad = [
            (json!({"header": "bad header"}), "config.header"),
            (
                json!({"header": "X", "encoding": "base32"}),
                "config.encoding",
            ),
            (
                json!({"header": "X", "signed_payload": "{body}.x"}),
                "config.signed_payload",
            ),
            (
                json!({"header": "X", "signed_payload": "{timestamp}.{body}"}),
                "config.signed_payload",
            ),
            (
                json!({"header": "X", "type_path": "a..b"}),
                "config.type_path",
            ),
            (
                json!({"header": "X", "type_path": "a", "type_header": "B"}),
                "config.type_header",
            ),
            (
                json!({"header": "X", "id_header": "no good"}),
                "config.id_header",
            ),
            (json!({"header": "X", "whatever": 1}), "config.whatever"),
            (json!({}), "config.header"),
        ];
        for (v, field) in bad {
            let e = ProviderConfig::parse("hmac", &v).unwrap_err();
            assert_eq!(e[0].field, field, "{v}");
        }
        let c = ProviderConfig::parse("hmac", &json!({"header": "X-Sig"})).unwrap();
        assert_eq!(
            c.to_json(),
            json!({"header": "X-Sig", "algorithm": "sha256", "encoding": "hex", "prefix": null,
                   "timestamp_header": null, "signed_payload": null, "type_path": null,
                   "type_header": null, "id_path": null, "id_header": null})
        );
    }
}
