//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`, the event type from
//! `X-GitHub-Event` and the payload's `action`, deduplicated on `X-GitHub-Delivery`.

use std::fmt;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{event_type_from, Env, Inbound, Payload, Rejection, Verifier};

pub struct GitHub {
    secret: String,
}

impl GitHub {
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.to_owned(),
        }
    }
}

impl fmt::Debug for GitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GitHub { secret: [redacted] }")
    }
}

/// The contract's names: `pull_request` becomes `pr`, every other event keeps GitHub's name.
fn event_name(github_event: &str) -> &str {
    match github_event {
        "pull_request" => "pr",
        other => other,
    }
}

#[async_trait]
impl Verifier for GitHub {
    async fn verify(&self, req: &Inbound<'_>, _env: &Env<'_>) -> Result<(), Rejection> {
        let header = req.required("x-hub-signature-256")?;
        let hex_sig = header.strip_prefix("sha256=").ok_or_else(|| {
            Rejection::Signature("X-Hub-Signature-256 must start with sha256=".into())
        })?;
        let given = hex::decode(hex_sig)
            .map_err(|_| Rejection::Signature("X-Hub-Signature-256 is not hexadecimal".into()))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes())
            .map_err(|_| Rejection::Signature("unusable secret".into()))?;
        mac.update(req.body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&given)
            .map_err(|_| Rejection::Signature("X-Hub-Signature-256 does not match".into()))
    }

    fn event_type(&self, req: &Inbound<'_>, payload: &Payload) -> Result<String, Rejection> {
        let event = req
            .header("x-github-event")
            .filter(|e| !e.is_empty())
            .ok_or_else(|| Rejection::Malformed("missing X-GitHub-Event header".into()))?;
        let action = payload.string_at("action");
        let mut parts = vec!["github", event_name(event)];
        parts.extend(action);
        event_type_from(&parts)
            .ok_or_else(|| Rejection::Malformed(format!("unusable X-GitHub-Event `{event}`")))
    }

    fn idempotency_key(&self, req: &Inbound<'_>, _payload: &Payload) -> Option<String> {
        req.header("x-github-delivery").map(str::to_owned)
    }

    fn logged_headers(&self) -> Vec<&str> {
        vec![
            "x-github-event",
            "x-github-delivery",
            "x-github-hook-id",
            "x-github-hook-installation-target-id",
            "x-github-hook-installation-target-type",
            "x-hub-signature-256",
        ]
    }
}

/// Signs a body the way GitHub does (for tests and the bench).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::testing::{headers, run};

    // GitHub's published example ("Validating webhook deliveries").
    const DOC_SECRET: &str = "It's a Secret to Everybody";
    const DOC_PAYLOAD: &[u8] = b"Hello, World!";
    const DOC_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn signs_like_the_published_example() {
        assert_eq!(sign(DOC_SECRET, DOC_PAYLOAD), DOC_SIGNATURE);
    }

    #[tokio::test]
    async fn accepts_the_published_example() {
        let v = GitHub::new(DOC_SECRET);
        let h = headers(&[
            ("x-hub-signature-256", DOC_SIGNATURE),
            ("x-github-event", "ping"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ]);
        let got = run(&v, &h, DOC_PAYLOAD, 0).await.unwrap();
        assert_eq!(got.event_type, "github.ping");
        assert_eq!(
            got.provider_id.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(got.payload.data, "\"Hello, World!\"");
    }

    #[tokio::test]
    async fn refuses_wrong_missing_and_malformed_signatures() {
        let v = GitHub::new(DOC_SECRET);
        let wrong = sign("another secret", DOC_PAYLOAD);
        for (sig, reason) in [
            (Some(wrong.as_str()), "does not match"),
            (None, "missing x-hub-signature-256"),
            (Some("sha1=abcd"), "must start with sha256="),
            (Some("sha256=zz"), "not hexadecimal"),
        ] {
            let mut pairs = vec![("x-github-event", "ping")];
            pairs.extend(sig.map(|s| ("x-hub-signature-256", s)));
            let err = run(&v, &headers(&pairs), DOC_PAYLOAD, 0).await.unwrap_err();
            assert!(
                matches!(&err, Rejection::Signature(r) if r.contains(reason)),
                "{err:?}"
            );
        }
        // A tampered body fails with the original signature.
        let h = headers(&[
            ("x-hub-signature-256", DOC_SIGNATURE),
            ("x-github-event", "ping"),
        ]);
        assert!(run(&v, &h, b"Hello, World?", 0).await.is_err());
    }

    #[tokio::test]
    async fn names_events_as_the_contract_maps_them() {
        let v = GitHub::new("s");
        let cases: [(&str, &[u8], &str); 6] = [
            ("push", br#"{"ref": "refs/heads/main"}"#, "github.push"),
            (
                "pull_request",
                br#"{"action": "opened"}"#,
                "github.pr.opened",
            ),
            ("issues", br#"{"action": "opened"}"#, "github.issues.opened"),
            (
                "release",
                br#"{"action": "published"}"#,
                "github.release.published",
            ),
            (
                "ping",
                br#"{"zen": "Keep it logically awesome."}"#,
                "github.ping",
            ),
            (
                "pull_request_review",
                br#"{"action": "submitted"}"#,
                "github.pull_request_review.submitted",
            ),
        ];
        for (event, body, want) in cases {
            let sig = sign("s", body);
            let h = headers(&[("x-hub-signature-256", &sig), ("x-github-event", event)]);
            let got = run(&v, &h, body, 0).await.unwrap();
            assert_eq!(got.event_type, want);
        }
    }

    #[tokio::test]
    async fn form_encoded_payloads_are_decoded() {
        let v = GitHub::new("s");
        let body = b"payload=%7B%22action%22%3A%22closed%22%2C%22number%22%3A7%7D";
        let sig = sign("s", body);
        let h = headers(&[
            ("x-hub-signature-256", &sig),
            ("x-github-event", "pull_request"),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        let got = run(&v, &h, body, 0).await.unwrap();
        assert_eq!(got.event_type, "github.pr.closed");
        assert_eq!(got.payload.data, r#"{"action":"closed","number":7}"#);
    }

    #[tokio::test]
    async fn a_signed_request_without_event_header_is_malformed() {
        let v = GitHub::new("s");
        let sig = sign("s", b"{}");
        let h = headers(&[("x-hub-signature-256", &sig)]);
        assert!(matches!(
            run(&v, &h, b"{}", 0).await,
            Err(Rejection::Malformed(_))
        ));
    }
}
