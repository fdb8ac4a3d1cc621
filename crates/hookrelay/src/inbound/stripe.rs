//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>[,v1=…]`, within
//! five minutes of now; the event type is `stripe.<type>`, deduplicated on the event `id`.

use std::fmt;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{check_tolerance, ct_eq, event_type_from, Env, Inbound, Payload, Rejection, Verifier};

pub struct Stripe {
    secret: String,
}

impl Stripe {
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.to_owned(),
        }
    }
}

impl fmt::Debug for Stripe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stripe { secret: [redacted] }")
    }
}

/// The `t` and every `v1` of a `Stripe-Signature` header; other schemes (`v0`) are ignored.
fn parse_header(header: &str) -> Result<(&str, Vec<Vec<u8>>), Rejection> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp
        .ok_or_else(|| Rejection::Signature("Stripe-Signature has no timestamp (t=)".into()))?;
    if signatures.is_empty() {
        return Err(Rejection::Signature(
            "Stripe-Signature has no v1 signature".into(),
        ));
    }
    Ok((timestamp, signatures))
}

#[async_trait]
impl Verifier for Stripe {
    async fn verify(&self, req: &Inbound<'_>, _env: &Env<'_>) -> Result<(), Rejection> {
        let (timestamp, signatures) = parse_header(req.required("stripe-signature")?)?;
        let t: i64 = timestamp.parse().map_err(|_| {
            Rejection::Signature("Stripe-Signature timestamp is not a number".into())
        })?;
        let expected = mac(&self.secret, timestamp, req.body);
        if !signatures.iter().any(|s| ct_eq(s, &expected)) {
            return Err(Rejection::Signature(
                "no v1 signature in Stripe-Signature matches".into(),
            ));
        }
        check_tolerance(t, req.now_secs)
    }

    fn event_type(&self, _req: &Inbound<'_>, payload: &Payload) -> Result<String, Rejection> {
        let t = payload.string_at("type").ok_or_else(|| {
            Rejection::Malformed("the body is not a Stripe event (no `type`)".into())
        })?;
        event_type_from(&["stripe", t])
            .ok_or_else(|| Rejection::Malformed(format!("unusable Stripe event type `{t}`")))
    }

    fn idempotency_key(&self, _req: &Inbound<'_>, payload: &Payload) -> Option<String> {
        payload.string_at("id").map(str::to_owned)
    }

    fn logged_headers(&self) -> Vec<&str> {
        vec!["stripe-signature"]
    }
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// A `Stripe-Signature` header value as Stripe builds it (for tests and tools).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, &timestamp.to_string(), body))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::testing::{headers, run};

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] =
        br#"{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}}"#;

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test_secret
        assert_eq!(
            sign(SECRET, NOW, b"{}"),
            "t=1700000000,v1=ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3"
        );
    }

    #[tokio::test]
    async fn accepts_a_signed_event_and_names_it() {
        let v = Stripe::new(SECRET);
        let h = headers(&[("stripe-signature", &sign(SECRET, NOW, BODY))]);
        let got = run(&v, &h, BODY, NOW + 10).await.unwrap();
        assert_eq!(got.event_type, "stripe.payment_intent.succeeded");
        assert_eq!(
            got.provider_id.as_deref(),
            Some("evt_1NG8Du2eZvKYlo2CUI79vXWy")
        );
    }

    #[tokio::test]
    async fn any_of_several_v1_signatures_may_match() {
        let v = Stripe::new(SECRET);
        let good = sign(SECRET, NOW, BODY);
        let good_v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t={NOW},v1={},v0=ignored,v1={good_v1}", "ab".repeat(32));
        let h = headers(&[("stripe-signature", &header)]);
        assert!(run(&v, &h, BODY, NOW).await.is_ok());
    }

    #[tokio::test]
    async fn refuses_bad_signatures_and_replays() {
        let v = Stripe::new(SECRET);
        let cases = [
            (sign("whsec_other", NOW, BODY), NOW, "matches"),
            (format!("t={NOW}"), NOW, "no v1"),
            ("v1=abcd".to_owned(), NOW, "no timestamp"),
            // Signed correctly, but six minutes old: a replay.
            (sign(SECRET, NOW - 360, BODY), NOW, "tolerance"),
            // Or from too far in the future.
            (sign(SECRET, NOW + 360, BODY), NOW, "tolerance"),
        ];
        for (header, now, reason) in cases {
            let h = headers(&[("stripe-signature", &header)]);
            let err = run(&v, &h, BODY, now).await.unwrap_err();
            assert!(
                matches!(&err, Rejection::Signature(r) if r.contains(reason)),
                "{header}: {err:?}"
            );
        }
        let err = run(&v, &headers(&[]), BODY, NOW).await.unwrap_err();
        assert_eq!(
            err,
            Rejection::Signature("missing stripe-signature header".into())
        );
    }

    #[tokio::test]
    async fn a_body_without_type_is_malformed() {
        let v = Stripe::new(SECRET);
        let body = br#"{"id": "evt_1"}"#;
        let h = headers(&[("stripe-signature", &sign(SECRET, NOW, body))]);
        assert!(matches!(
            run(&v, &h, body, NOW).await,
            Err(Rejection::Malformed(_))
        ));
    }
}
