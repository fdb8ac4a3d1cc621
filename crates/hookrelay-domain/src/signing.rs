//! Webhook secrets and the two signatures every delivery carries: the Standard Webhooks
//! `webhook-signature` (signed here, and verified for receivers) and `X-Webhook-Signature`.

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
        let mac = self.standard_mac(msg_id, timestamp, body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// The keyed MAC over `"{id}.{timestamp}.{body}"`, before finalising, so signing and
    /// verifying hash exactly the same bytes.
    fn standard_mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
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

/// Length of an HMAC-SHA256 tag: a `v1` signature of any other length cannot match.
pub const SIGNATURE_LEN: usize = 32;

/// The `v1` signatures of a `webhook-signature` header value, decoded, in header order.
/// Entries of other versions (`v1a,…` asymmetric, future ones) and malformed entries (no comma,
/// bad base64, wrong length) are skipped rather than refused: a sender may list schemes we do not
/// know next to one we do. Never panics, whatever the input.
pub fn parse_signature_header(value: &str) -> Vec<[u8; SIGNATURE_LEN]> {
    value
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| B64.decode(sig).ok())
        .filter_map(|bytes| <[u8; SIGNATURE_LEN]>::try_from(bytes.as_slice()).ok())
        .collect()
}

/// Whether any `v1` entry of `header_value` is the signature of this message under `secret`.
/// Each comparison is constant-time (`verify_slice`), so timing reveals nothing about the
/// expected tag. Timestamp tolerance is the caller's business: this checks the signature only.
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header_value: &str,
) -> bool {
    let mac = secret.standard_mac(msg_id, timestamp, body);
    parse_signature_header(header_value)
        .iter()
        .any(|sig| mac.clone().verify_slice(sig).is_ok())
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
    fn own_signature_verifies() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let header = secret.sign_standard(ID, TS, BODY);
        assert!(verify(&secret, ID, TS, BODY, &header));
        // The published test vector, checked from the receiving side.
        assert!(verify(
            &secret,
            ID,
            TS,
            BODY,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        ));
    }

    #[test]
    fn tampered_signatures_and_messages_fail() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let header = secret.sign_standard(ID, TS, BODY);
        // One changed character inside the base64 tag: still 32 bytes, just not ours.
        let mut tampered = header.clone().into_bytes();
        tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(parse_signature_header(&tampered).len(), 1);
        assert!(!verify(&secret, ID, TS, BODY, &tampered));
        assert!(!verify(&secret, ID, TS + 1, BODY, &header));
        assert!(!verify(&secret, "msg_other", TS, BODY, &header));
        assert!(!verify(&secret, ID, TS, b"{}", &header));
        assert!(!verify(&WebhookSecret::generate(), ID, TS, BODY, &header));
    }

    #[test]
    fn other_versions_and_garbage_do_not_verify() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let header = secret.sign_standard(ID, TS, BODY);
        let tag = header.strip_prefix("v1,").unwrap();
        for value in [
            format!("v2,{tag}"),
            format!("v1a,{tag}"),
            format!("V1,{tag}"),
            tag.to_owned(),
            "v1,".to_owned(),
            "v1,!!!not-base64!!!".to_owned(),
            "v1,AAAA".to_owned(), // decodes, but 3 bytes is no HMAC-SHA256 tag
            ",,, v1 , ,v1".to_owned(),
            String::new(),
            "\u{0}\u{ff}é€".to_owned(),
        ] {
            assert!(!verify(&secret, ID, TS, BODY, &value), "{value:?}");
        }
        assert!(parse_signature_header(&format!("v2,{tag} v1,AAAA junk")).is_empty());
    }

    #[test]
    fn any_listed_entry_may_match() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let other = WebhookSecret::generate();
        let header = format!(
            "{}  {} v1a,Zm9v",
            other.sign_standard(ID, TS, BODY),
            secret.sign_standard(ID, TS, BODY)
        );
        assert_eq!(parse_signature_header(&header).len(), 2);
        assert!(verify(&secret, ID, TS, BODY, &header));
        // The rotation header we send is accepted by either secret.
        let rotation = standard_signature_header(&[other.clone(), secret.clone()], ID, TS, BODY);
        assert!(verify(&secret, ID, TS, BODY, &rotation));
        assert!(verify(&other, ID, TS, BODY, &rotation));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert!(WebhookSecret::parse("plain").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_AAAA").is_err()); // 3 bytes: too short
    }
}
