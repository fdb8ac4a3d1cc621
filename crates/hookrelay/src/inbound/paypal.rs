//! PayPal: SHA256withRSA over `{transmission id}|{transmission time}|{webhook_id}|{CRC32(body)}`,
//! checked with the certificate at `PAYPAL-CERT-URL` (allowlisted hosts only, see `certs.rs`).

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hookrelay_domain::time::parse_rfc3339;
use hookrelay_domain::validate::FieldError;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{check_tolerance, event_type_from, Env, Inbound, Payload, Rejection, Verifier};

/// The settings of a `paypal` source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayPalConfig {
    /// The id PayPal gave the webhook (Developer Dashboard): part of what PayPal signs.
    pub webhook_id: String,
}

impl PayPalConfig {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let id = &self.webhook_id;
        if id.is_empty() || id.len() > 50 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(vec![FieldError::new(
                "config.webhook_id",
                "must be PayPal's webhook id (1-50 letters and digits)",
            )]);
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct PayPal {
    config: PayPalConfig,
}

impl PayPal {
    pub fn new(config: PayPalConfig) -> Self {
        Self { config }
    }
}

/// The text PayPal signs for one transmission.
pub fn signed_text(transmission_id: &str, time: &str, webhook_id: &str, body: &[u8]) -> String {
    format!(
        "{transmission_id}|{time}|{webhook_id}|{}",
        crc32fast::hash(body)
    )
}

#[async_trait]
impl Verifier for PayPal {
    async fn verify(&self, req: &Inbound<'_>, env: &Env<'_>) -> Result<(), Rejection> {
        let id = req.required("paypal-transmission-id")?;
        let time = req.required("paypal-transmission-time")?;
        let sig = req.required("paypal-transmission-sig")?;
        let cert_url = req.required("paypal-cert-url")?;
        if let Some(algo) = req.header("paypal-auth-algo") {
            if !algo.eq_ignore_ascii_case("SHA256withRSA") {
                return Err(Rejection::Signature(format!(
                    "unsupported PAYPAL-AUTH-ALGO `{algo}` (only SHA256withRSA)"
                )));
            }
        }
        let sig = B64
            .decode(sig)
            .ok()
            .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| Rejection::Signature("PAYPAL-TRANSMISSION-SIG is not base64".into()))?;
        let sent_ms = parse_rfc3339(time).ok_or_else(|| {
            Rejection::Signature("PAYPAL-TRANSMISSION-TIME is not an RFC 3339 time".into())
        })?;
        let key = env.certs.rsa_key(cert_url, req.now_secs).await?;
        let text = signed_text(id, time, &self.config.webhook_id, req.body);
        VerifyingKey::<Sha256>::new((*key).clone())
            .verify(text.as_bytes(), &sig)
            .map_err(|_| Rejection::Signature("PAYPAL-TRANSMISSION-SIG does not match".into()))?;
        check_tolerance(sent_ms.div_euclid(1000), req.now_secs)
    }

    fn event_type(&self, _req: &Inbound<'_>, payload: &Payload) -> Result<String, Rejection> {
        let t = payload.string_at("event_type").ok_or_else(|| {
            Rejection::Malformed("the body is not a PayPal event (no `event_type`)".into())
        })?;
        event_type_from(&["paypal", &t.to_ascii_lowercase()])
            .ok_or_else(|| Rejection::Malformed(format!("unusable PayPal event type `{t}`")))
    }

    fn idempotency_key(&self, _req: &Inbound<'_>, payload: &Payload) -> Option<String> {
        payload.string_at("id").map(str::to_owned)
    }

    fn logged_headers(&self) -> Vec<&str> {
        vec![
            "paypal-transmission-id",
            "paypal-transmission-time",
            "paypal-transmission-sig",
            "paypal-cert-url",
            "paypal-auth-algo",
        ]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, OnceLock};

    use super::*;
    use crate::inbound::testing::headers;
    use crate::inbound::{process, CertSource};
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::RsaPrivateKey;

    const CERT_URL: &str = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-test";
    const WEBHOOK_ID: &str = "9XL90610J3647323C";
    const NOW: i64 = 1_700_000_000;
    const TIME: &str = "2023-11-14T22:13:20Z"; // NOW as RFC 3339
    const BODY: &[u8] =
        br#"{"id": "WH-9UG43882HX7271132-6E0871324L7949614", "event_type": "PAYMENT.SALE.COMPLETED", "resource": {}}"#;

    pub(crate) fn test_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| {
            RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation")
        })
    }

    struct FixedCert;

    #[async_trait]
    impl CertSource for FixedCert {
        async fn rsa_key(&self, url: &str, _: i64) -> Result<Arc<rsa::RsaPublicKey>, Rejection> {
            if url == CERT_URL {
                Ok(Arc::new(test_key().to_public_key()))
            } else {
                Err(Rejection::Signature(format!("{url} is not allowed")))
            }
        }
    }

    fn sign(text: &str) -> String {
        let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(test_key().clone());
        B64.encode(key.sign(text.as_bytes()).to_bytes())
    }

    fn request(id: &str, time: &str, sig: &str, cert_url: &str) -> axum::http::HeaderMap {
        headers(&[
            ("paypal-transmission-id", id),
            ("paypal-transmission-time", time),
            ("paypal-transmission-sig", sig),
            ("paypal-cert-url", cert_url),
            ("paypal-auth-algo", "SHA256withRSA"),
        ])
    }

    async fn run(
        h: &axum::http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<super::super::Verified, Rejection> {
        let v = PayPal::new(PayPalConfig {
            webhook_id: WEBHOOK_ID.into(),
        });
        let req = Inbound {
            source_name: "pp",
            headers: h,
            body,
            now_secs: now,
        };
        process(&v, &req, &Env { certs: &FixedCert }).await
    }

    #[test]
    fn the_signed_text_uses_the_body_crc32_in_decimal() {
        // CRC-32 (IEEE) check value: "123456789" -> 0xCBF43926.
        assert_eq!(
            signed_text("t-1", TIME, WEBHOOK_ID, b"123456789"),
            format!("t-1|{TIME}|{WEBHOOK_ID}|3421780262")
        );
    }

    #[tokio::test]
    async fn accepts_a_signed_transmission() {
        let sig = sign(&signed_text("d938e770", TIME, WEBHOOK_ID, BODY));
        let got = run(&request("d938e770", TIME, &sig, CERT_URL), BODY, NOW + 1)
            .await
            .unwrap();
        assert_eq!(got.event_type, "paypal.payment.sale.completed");
        assert_eq!(
            got.provider_id.as_deref(),
            Some("WH-9UG43882HX7271132-6E0871324L7949614")
        );
    }

    #[tokio::test]
    async fn refuses_forgeries_replays_and_foreign_certificates() {
        let good = sign(&signed_text("d938e770", TIME, WEBHOOK_ID, BODY));
        // Signed for another webhook id.
        let other = sign(&signed_text("d938e770", TIME, "OTHERWEBHOOK", BODY));
        let err = run(&request("d938e770", TIME, &other, CERT_URL), BODY, NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, Rejection::Signature(r) if r.contains("does not match")));
        // A tampered body changes the CRC.
        let err = run(&request("d938e770", TIME, &good, CERT_URL), b"{}", NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, Rejection::Signature(r) if r.contains("does not match")));
        // A genuine transmission replayed an hour later.
        let err = run(
            &request("d938e770", TIME, &good, CERT_URL),
            BODY,
            NOW + 3600,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Rejection::Signature(r) if r.contains("tolerance")));
        // A certificate from anywhere else.
        let err = run(
            &request("d938e770", TIME, &good, "https://evil.example/cert"),
            BODY,
            NOW,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Rejection::Signature(r) if r.contains("not allowed")));
        let err = run(&request("d938e770", TIME, "%%%", CERT_URL), BODY, NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, Rejection::Signature(r) if r.contains("base64")));
        let err = run(&headers(&[]), BODY, NOW).await.unwrap_err();
        assert!(matches!(err, Rejection::Signature(r) if r.contains("missing")));
    }

    #[test]
    fn webhook_id_is_checked() {
        let e = crate::inbound::ProviderConfig::parse(
            "paypal",
            &serde_json::json!({"webhook_id": "has space"}),
        )
        .unwrap_err();
        assert_eq!(e[0].field, "config.webhook_id");
    }
}
