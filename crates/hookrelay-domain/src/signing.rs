//! Webhook secrets and the two signatures every delivery carries: the Standard Webhooks
//! `webhook-signature` and the simpler `X-Webhook-Signature: sha256=<hex>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook signing secret (`whsec_` + base64 of 24–64 random bytes). Its `Debug` and
/// `Display` never print the value, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl WebhookSecret {
    /// A fresh secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self {
            text: format!("{SECRET_PREFIX}{}", B64.encode(&key)),
            key,
        }
    }

    /// Parses a client-supplied secret; the key must decode to 24–64 bytes.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let encoded = raw
            .strip_prefix(SECRET_PREFIX)
            .ok_or("must start with whsec_ followed by base64 of 24-64 bytes")?;
        let key = B64
            .decode(encoded)
            .map_err(|_| "must start with whsec_ followed by base64 of 24-64 bytes")?;
        if !(24..=64).contains(&key.len()) {
            return Err("must start with whsec_ followed by base64 of 24-64 bytes");
        }
        Ok(Self {
            text: raw.to_owned(),
            key,
        })
    }

    /// The full `whsec_…` text: only for answers at creation/rotation and for encryption at rest.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` (Standard Webhooks).
    pub fn sign_standard(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// `sha256=<hex HMAC-SHA256(secret string as UTF-8, body)>`.
    pub fn sign_legacy(&self, body: &[u8]) -> String {
        let mut mac =
            HmacSha256::new_from_slice(self.text.as_bytes()).expect("HMAC accepts any key length");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The `webhook-signature` header value: one `v1,` entry per valid secret, space-separated,
/// newest first.
pub fn standard_signature_header(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut out = String::with_capacity(secrets.len() * 48);
    for (i, secret) in secrets.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&secret.sign_standard(msg_id, timestamp, body));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published test vector.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1649367553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn standard_webhooks_test_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(
            secret.sign_standard(ID, TS, BODY),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn rotation_header_lists_every_secret() {
        let old = WebhookSecret::parse(SECRET).unwrap();
        let new = WebhookSecret::generate();
        let header = standard_signature_header(&[new.clone(), old.clone()], ID, TS, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                new.sign_standard(ID, TS, BODY),
                old.sign_standard(ID, TS, BODY)
            ]
        );
    }

    #[test]
    fn legacy_signature_uses_the_secret_text_as_key() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let mut mac = HmacSha256::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(BODY);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(secret.sign_legacy(BODY), expected);
    }

    #[test]
    fn generated_secrets_parse_back_and_never_print() {
        let s = WebhookSecret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(s.expose()).unwrap(), s);
        assert!(!format!("{s:?} {s}").contains(s.expose()));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert!(WebhookSecret::parse("plain").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_AAAA").is_err()); // 3 bytes: too short
    }
}
