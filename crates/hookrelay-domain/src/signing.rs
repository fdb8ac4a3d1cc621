//! Webhook signing keys and the signatures a delivery carries: the Standard Webhooks
//! `webhook-signature` (`v1` HMAC or `v1a` ed25519, signed here) and `X-Webhook-Signature`.

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

pub const SIGNING_KEY_PREFIX: &str = "whsk_";
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// How a webhook signs: `hmac` (Standard Webhooks `v1`, a shared `whsec_` secret; the default)
/// or `ed25519` (`v1a`, a `whsk_` private key whose `whpk_` public key receivers verify with).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureScheme {
    #[default]
    Hmac,
    Ed25519,
}

impl SignatureScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hmac => "hmac",
            Self::Ed25519 => "ed25519",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "hmac" => Some(Self::Hmac),
            "ed25519" => Some(Self::Ed25519),
            _ => None,
        }
    }
}

/// An ed25519 signing key (`whsk_` + base64 of the 32-byte seed). Like `WebhookSecret`, its
/// `Debug` and `Display` never print the value.
#[derive(Clone)]
pub struct Ed25519Key {
    text: String,
    key: ed25519_dalek::SigningKey,
}

impl Ed25519Key {
    pub fn generate() -> Self {
        let mut seed = [0u8; ed25519_dalek::SECRET_KEY_LENGTH];
        rand::thread_rng().fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    fn from_seed(seed: [u8; ed25519_dalek::SECRET_KEY_LENGTH]) -> Self {
        Self {
            text: format!("{SIGNING_KEY_PREFIX}{}", B64.encode(seed)),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// Parses a stored `whsk_` key.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        const WHAT: &str = "must start with whsk_ followed by base64 of a 32-byte ed25519 seed";
        let seed = raw
            .strip_prefix(SIGNING_KEY_PREFIX)
            .and_then(|k| B64.decode(k).ok())
            .and_then(|k| <[u8; ed25519_dalek::SECRET_KEY_LENGTH]>::try_from(k).ok())
            .ok_or(WHAT)?;
        Ok(Self::from_seed(seed))
    }

    /// The `whsk_…` text: only for encryption at rest.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// `whpk_` + base64 of the 32-byte public key: what receivers verify with.
    pub fn public_key(&self) -> String {
        format!(
            "{PUBLIC_KEY_PREFIX}{}",
            B64.encode(self.key.verifying_key().as_bytes())
        )
    }

    /// `v1a,<base64 ed25519 signature of "{id}.{timestamp}.{body}">` (Standard Webhooks).
    pub fn sign_standard(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        use ed25519_dalek::Signer;
        let mut msg = Vec::with_capacity(msg_id.len() + body.len() + 24);
        msg.extend_from_slice(msg_id.as_bytes());
        msg.push(b'.');
        msg.extend_from_slice(timestamp.to_string().as_bytes());
        msg.push(b'.');
        msg.extend_from_slice(body);
        format!("v1a,{}", B64.encode(self.key.sign(&msg).to_bytes()))
    }
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519Key([redacted])")
    }
}

/// One stored signing key of a webhook, of either scheme.
#[derive(Clone, Debug)]
pub enum SigningKey {
    Hmac(WebhookSecret),
    Ed25519(Ed25519Key),
}

impl SigningKey {
    /// A fresh key of `scheme`.
    pub fn generate(scheme: SignatureScheme) -> Self {
        match scheme {
            SignatureScheme::Hmac => Self::Hmac(WebhookSecret::generate()),
            SignatureScheme::Ed25519 => Self::Ed25519(Ed25519Key::generate()),
        }
    }

    /// A stored key: `whsk_…` is ed25519, anything else must be a `whsec_…` secret.
    pub fn parse(stored: &str) -> Result<Self, &'static str> {
        if stored.starts_with(SIGNING_KEY_PREFIX) {
            Ed25519Key::parse(stored).map(Self::Ed25519)
        } else {
            WebhookSecret::parse(stored).map(Self::Hmac)
        }
    }

    pub fn scheme(&self) -> SignatureScheme {
        match self {
            Self::Hmac(_) => SignatureScheme::Hmac,
            Self::Ed25519(_) => SignatureScheme::Ed25519,
        }
    }

    /// The text sealed at rest.
    pub fn expose(&self) -> &str {
        match self {
            Self::Hmac(s) => s.expose(),
            Self::Ed25519(k) => k.expose(),
        }
    }

    /// The `whpk_` public key of an ed25519 key; `None` for a shared secret.
    pub fn public_key(&self) -> Option<String> {
        match self {
            Self::Hmac(_) => None,
            Self::Ed25519(k) => Some(k.public_key()),
        }
    }

    /// This key's `webhook-signature` entry: `v1,…` or `v1a,…`.
    pub fn sign_standard(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        match self {
            Self::Hmac(s) => s.sign_standard(msg_id, timestamp, body),
            Self::Ed25519(k) => k.sign_standard(msg_id, timestamp, body),
        }
    }
}

/// The `webhook-signature` value for keys of any scheme: one entry per key, space-separated,
/// newest first (during a rotation, or a change of scheme, old and new sign side by side).
pub fn signature_header(keys: &[SigningKey], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut out = String::with_capacity(keys.len() * 96);
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&key.sign_standard(msg_id, timestamp, body));
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
    fn ed25519_keys_sign_v1a_over_id_timestamp_and_body() {
        use ed25519_dalek::{Signature, Verifier, VerifyingKey};
        let key = Ed25519Key::generate();
        let stored = key.expose().to_owned();
        assert!(stored.starts_with("whsk_"));
        let again = SigningKey::parse(&stored).unwrap();
        assert_eq!(again.scheme(), SignatureScheme::Ed25519);
        let public = again.public_key().unwrap();
        assert_eq!(public, key.public_key());
        let raw = B64.decode(public.strip_prefix("whpk_").unwrap()).unwrap();
        let verifying = VerifyingKey::from_bytes(&raw.try_into().unwrap()).unwrap();
        let entry = again.sign_standard(ID, TS, BODY);
        let sig = B64.decode(entry.strip_prefix("v1a,").unwrap()).unwrap();
        let sig = Signature::from_slice(&sig).unwrap();
        let signed = format!("{ID}.{TS}.{}", std::str::from_utf8(BODY).unwrap());
        assert!(verifying.verify(signed.as_bytes(), &sig).is_ok());
        assert!(verifying.verify(b"other", &sig).is_err());
        assert!(!format!("{key:?} {again:?}").contains(&stored));
    }

    #[test]
    fn mixed_keys_sign_side_by_side_and_parse_by_prefix() {
        let hmac = SigningKey::parse(SECRET).unwrap();
        assert_eq!(hmac.scheme(), SignatureScheme::Hmac);
        assert_eq!(hmac.public_key(), None);
        let ed = SigningKey::generate(SignatureScheme::Ed25519);
        let header = signature_header(&[ed.clone(), hmac.clone()], ID, TS, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert!(parts[0].starts_with("v1a,"));
        assert_eq!(parts[1], "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
        assert!(SigningKey::parse("whsk_AAAA").is_err());
        assert!(SigningKey::parse("whpk_AAAA").is_err());
        assert_eq!(
            SignatureScheme::parse("ed25519"),
            Some(SignatureScheme::Ed25519)
        );
        assert_eq!(SignatureScheme::parse("rsa"), None);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert!(WebhookSecret::parse("plain").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_AAAA").is_err()); // 3 bytes: too short
    }
}
