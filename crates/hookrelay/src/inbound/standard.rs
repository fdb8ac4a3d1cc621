//! Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>` (any
//! listed may match) within five minutes; type from the body's `type`, dedupe on `webhook-id`.

use std::fmt;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use hookrelay_domain::signing::SECRET_PREFIX;
use sha2::Sha256;

use super::{check_tolerance, configured_type, ct_eq, Env, Inbound, Payload, Rejection, Verifier};

pub struct Standard {
    /// The base64-decoded part of the `whsec_…` secret.
    key: Vec<u8>,
}

impl Standard {
    /// `secret` must be `whsec_` + base64 (checked at source creation).
    pub fn new(secret: &str) -> Result<Self, String> {
        let key = secret
            .strip_prefix(SECRET_PREFIX)
            .and_then(|k| B64.decode(k).ok())
            .ok_or_else(|| "secret: must be whsec_ followed by base64".to_owned())?;
        Ok(Self { key })
    }
}

impl fmt::Debug for Standard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Standard { key: [redacted] }")
    }
}

#[async_trait]
impl Verifier for Standard {
    async fn verify(&self, req: &Inbound<'_>, _env: &Env<'_>) -> Result<(), Rejection> {
        let id = req.required("webhook-id")?;
        let timestamp = req.required("webhook-timestamp")?;
        let signatures = req.required("webhook-signature")?;
        let t: i64 = timestamp
            .parse()
            .map_err(|_| Rejection::Signature("webhook-timestamp is not a number".into()))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        // The header text is what was signed, not our rendering of the number.
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(req.body);
        let expected = mac.finalize().into_bytes();
        let matched = signatures
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|sig| B64.decode(sig).ok())
            .any(|sig| ct_eq(&sig, &expected));
        if !matched {
            return Err(Rejection::Signature(
                "no v1 signature in webhook-signature matches".into(),
            ));
        }
        check_tolerance(t, req.now_secs)
    }

    fn event_type(&self, req: &Inbound<'_>, payload: &Payload) -> Result<String, Rejection> {
        Ok(configured_type(req, payload, Some("type"), None))
    }

    fn idempotency_key(&self, req: &Inbound<'_>, _payload: &Payload) -> Option<String> {
        req.header("webhook-id").map(str::to_owned)
    }

    fn logged_headers(&self) -> Vec<&str> {
        vec!["webhook-id", "webhook-timestamp", "webhook-signature"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::testing::{headers, run};
    use hookrelay_domain::WebhookSecret;

    // The Standard Webhooks specification's published test vector.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1649367553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn request(signature: &str, ts: i64) -> axum::http::HeaderMap {
        headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", &ts.to_string()),
            ("webhook-signature", signature),
        ])
    }

    #[tokio::test]
    async fn accepts_the_published_vector() {
        let v = Standard::new(SECRET).unwrap();
        let got = run(&v, &request(SIGNATURE, TS), BODY, TS + 5)
            .await
            .unwrap();
        assert_eq!(got.provider_id.as_deref(), Some(ID));
        // No `type` in the body: the source's fallback.
        assert_eq!(got.event_type, "src-test.received");
    }

    #[tokio::test]
    async fn any_listed_signature_may_match() {
        let v = Standard::new(SECRET).unwrap();
        let other = WebhookSecret::generate().sign_standard(ID, TS, BODY);
        let header = format!("{other} v1a,c29tZXRoaW5n {SIGNATURE}");
        assert!(run(&v, &request(&header, TS), BODY, TS).await.is_ok());
    }

    #[tokio::test]
    async fn refuses_bad_signatures_and_replays() {
        let v = Standard::new(SECRET).unwrap();
        let wrong = WebhookSecret::generate().sign_standard(ID, TS, BODY);
        let err = run(&v, &request(&wrong, TS), BODY, TS).await.unwrap_err();
        assert!(matches!(err, Rejection::Signature(r) if r.contains("matches")));
        // The published vector, received an hour later: a replay.
        let err = run(&v, &request(SIGNATURE, TS), BODY, TS + 3600)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Rejection::Signature("timestamp outside tolerance (replay?)".into())
        );
        let h = headers(&[("webhook-id", ID), ("webhook-signature", SIGNATURE)]);
        let err = run(&v, &h, BODY, TS).await.unwrap_err();
        assert!(matches!(err, Rejection::Signature(r) if r.contains("webhook-timestamp")));
    }

    #[tokio::test]
    async fn type_comes_from_the_body() {
        let secret = WebhookSecret::generate();
        let v = Standard::new(secret.expose()).unwrap();
        let body = br#"{"type": "invoice.paid", "data": {}}"#;
        let sig = secret.sign_standard("msg_1", TS, body);
        let h = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &TS.to_string()),
            ("webhook-signature", &sig),
        ]);
        let got = run(&v, &h, body, TS).await.unwrap();
        assert_eq!(got.event_type, "invoice.paid");
    }
}
