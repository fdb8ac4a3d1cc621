//! Thin client for the hookrelay public API (admin key, tenant header) and the bench's setup:
//! tenants and webhooks pointing at the local receiver, with their signing keys.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::receiver::decode_secret;

/// Header through which the server admin key acts on another tenant.
pub const TENANT_HEADER: &str = "X-Tenant-Id";

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    base: String,
    auth: HeaderValue,
}

impl Api {
    /// One keep-alive pool sized for `concurrency` in-flight requests.
    pub fn new(base_url: &str, admin_key: &str, concurrency: usize) -> Result<Api> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        let auth = HeaderValue::from_str(&format!("Bearer {admin_key}"))
            .context("admin key is not a valid header value")?;
        Ok(Api {
            client,
            base: base_url.trim_end_matches('/').to_string(),
            auth,
        })
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        tenant: Option<&str>,
    ) -> RequestBuilder {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.auth.clone());
        if let Some(id) = tenant {
            req = req.header(TENANT_HEADER, id);
        }
        req
    }

    /// POST with a JSON body already serialized.
    pub fn post_json(
        &self,
        path: &str,
        tenant: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> RequestBuilder {
        self.request(reqwest::Method::POST, path, tenant)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
    }
}

/// `{"error": {"code", "message", ...}}` as far as the bench needs it.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ApiError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

/// Reads a JSON answer of the expected status, or fails with the status and error body.
pub async fn expect_json<T: DeserializeOwned>(
    resp: Response,
    expected: StatusCode,
    what: &str,
) -> Result<T> {
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .with_context(|| format!("{what}: reading the answer"))?;
    if status != expected {
        bail!(
            "{what}: expected HTTP {expected}, got {status}: {}",
            describe_error(&bytes)
        );
    }
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{what}: unexpected answer body {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )
    })
}

/// `code: message` of an error body, else the start of the raw body.
pub fn describe_error(bytes: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => format!("{}: {}", body.error.code, body.error.message),
        Err(_) => String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
    }
}

/// The error code of an error body, if it is one.
pub fn error_code(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(bytes)
        .ok()
        .map(|b| b.error.code)
}

/// One tenant of the run; `header` is None for the built-in `default` tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub header: Option<String>,
}

/// One webhook of the run.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    pub key: Vec<u8>,
}

/// Tenants and webhooks; webhook `j` of tenant `i` has global index `i * per_tenant + j`.
#[derive(Debug, Clone)]
pub struct Topology {
    pub tenants: Vec<Tenant>,
    pub per_tenant: u32,
    pub webhooks: Vec<Webhook>,
}

impl Topology {
    pub fn tenant_header(&self, tenant: u32) -> Option<&str> {
        self.tenants
            .get(tenant as usize)
            .and_then(|t| t.header.as_deref())
    }

    /// Webhook id → global index.
    pub fn webhook_index(&self) -> HashMap<&str, u32> {
        self.webhooks
            .iter()
            .enumerate()
            .map(|(i, w)| (w.id.as_str(), i as u32))
            .collect()
    }
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct CreatedWebhook {
    id: String,
    secret: String,
}

/// The body creating webhook `j` of tenant `i`: an http one at the receiver's
/// `http://127.0.0.1:<port>/t<i>/w<j>`, subscribed to `bench.*`.
pub fn http_webhook(receiver_port: u16, i: u32, j: u32) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{receiver_port}/t{i}/w{j}");
    serde_json::json!({ "url": url, "events": ["bench.*"] })
}

/// Creates tenants 1.. (tenant 0 is `default`) and `per_tenant` webhooks in each, webhook `j`
/// of tenant `i` created with `webhook_body(i, j)`.
pub async fn setup(
    api: &Api,
    tenants: u32,
    per_tenant: u32,
    webhook_body: impl Fn(u32, u32) -> serde_json::Value,
) -> Result<Topology> {
    use futures::{StreamExt, TryStreamExt};
    let mut list = Vec::with_capacity(tenants as usize);
    list.push(Tenant {
        name: "default".to_string(),
        header: None,
    });
    let created: Vec<Tenant> = futures::stream::iter(1..tenants)
        .map(|i| async move {
            let name = format!("bench-{i}");
            let body = serde_json::json!({ "name": name }).to_string();
            let resp = api
                .post_json("/api/v1/tenants", None, body)
                .send()
                .await
                .with_context(|| format!("creating tenant {name}"))?;
            let created: Created = expect_json(
                resp,
                StatusCode::CREATED,
                &format!("creating tenant {name}"),
            )
            .await?;
            Ok::<_, anyhow::Error>(Tenant {
                name,
                header: Some(created.id),
            })
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    list.extend(created);
    let jobs: Vec<(u32, u32)> = (0..list.len() as u32)
        .flat_map(|i| (0..per_tenant).map(move |j| (i, j)))
        .collect();
    let list_ref = &list;
    let webhook_body = &webhook_body;
    let webhooks: Vec<Webhook> = futures::stream::iter(jobs)
        .map(|(i, j)| async move {
            let tenant = &list_ref[i as usize];
            let body = webhook_body(i, j);
            let what = format!("creating webhook {body} in tenant {}", tenant.name);
            let resp = api
                .post_json(
                    "/api/v1/webhooks",
                    tenant.header.as_deref(),
                    body.to_string(),
                )
                .send()
                .await
                .with_context(|| what.clone())?;
            let created: CreatedWebhook = expect_json(resp, StatusCode::CREATED, &what).await?;
            let key = decode_secret(&created.secret).with_context(|| what.clone())?;
            Ok::<_, anyhow::Error>(Webhook {
                id: created.id,
                key,
            })
        })
        // In order: webhook k of the topology is tenant k / per_tenant's (k % per_tenant)th.
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Topology {
        tenants: list,
        per_tenant,
        webhooks,
    })
}

/// Setup requests in flight at once: a 100,000-webhook topology is created in about a minute
/// instead of ten (each creation is its own transaction on the server either way).
const SETUP_CONCURRENCY: usize = 16;

/// A delivery as listed in `GET /api/v1/events/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRow {
    #[serde(default)]
    pub webhook_id: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Deserialize)]
struct EventDetail {
    #[serde(default)]
    deliveries: Vec<DeliveryRow>,
}

/// The deliveries of one event, as the server sees them.
pub async fn event_deliveries(
    api: &Api,
    event_id: &str,
    tenant: Option<&str>,
) -> Result<Vec<DeliveryRow>> {
    let what = format!("reading event {event_id}");
    let resp = api
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/events/{event_id}"),
            tenant,
        )
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| what.clone())?;
    let detail: EventDetail = expect_json(resp, StatusCode::OK, &what).await?;
    Ok(detail.deliveries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_error_bodies() {
        let body =
            br#"{"error":{"code":"rate_limited","message":"slow down","request_id":"req_1"}}"#;
        assert_eq!(describe_error(body), "rate_limited: slow down");
        assert_eq!(error_code(body).as_deref(), Some("rate_limited"));
        assert_eq!(describe_error(b"oops"), "oops");
        assert_eq!(error_code(b"oops"), None);
    }
}
