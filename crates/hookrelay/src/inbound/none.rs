//! `none`: accepts every request unverified — anyone who knows the URL can inject events. For
//! trusted networks and tests only; refused in `prod` unless the source sets `allow_unsigned`.

use async_trait::async_trait;
use hookrelay_domain::validate::FieldError;
use serde::{Deserialize, Serialize};

use super::hmac::check_type_and_id;
use super::{configured_id, configured_type, Env, Inbound, Payload, Rejection, Verifier};

/// The settings of a `none` source: where the event type and delivery id are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoneConfig {
    #[serde(default)]
    pub type_path: Option<String>,
    #[serde(default)]
    pub type_header: Option<String>,
    #[serde(default)]
    pub id_path: Option<String>,
    #[serde(default)]
    pub id_header: Option<String>,
}

impl NoneConfig {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
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
}

#[derive(Debug)]
pub struct Unsigned {
    config: NoneConfig,
}

impl Unsigned {
    pub fn new(config: NoneConfig, _source_name: &str) -> Self {
        Self { config }
    }
}

#[async_trait]
impl Verifier for Unsigned {
    async fn verify(&self, _req: &Inbound<'_>, _env: &Env<'_>) -> Result<(), Rejection> {
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
        [c.type_header.as_ref(), c.id_header.as_ref()]
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

    #[tokio::test]
    async fn accepts_anything_and_reads_type_and_id() {
        let v = Unsigned::new(
            NoneConfig {
                type_path: Some("kind".into()),
                id_header: Some("X-Id".into()),
                ..Default::default()
            },
            "ci",
        );
        let got = run(
            &v,
            &headers(&[("x-id", "42")]),
            br#"{"kind": "build.done"}"#,
            0,
        )
        .await
        .unwrap();
        assert_eq!(got.event_type, "build.done");
        assert_eq!(got.provider_id.as_deref(), Some("42"));
        let got = run(&v, &headers(&[]), b"plain text", 0).await.unwrap();
        assert_eq!(got.event_type, "src-test.received");
        assert_eq!(got.provider_id, None);
        assert_eq!(got.payload.data, "\"plain text\"");
    }
}
