//! Sends one attempt: builds the signed request for a claim (the http envelope, or a rendered
//! Discord/Slack message), posts it with the shared keep-alive client, and captures what the
//! receiver said (status, first 4 KiB, timing, rate-limit hints).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookrelay_domain::signing::standard_signature_header;
use hookrelay_domain::time::{now_millis, to_rfc3339};
use hookrelay_domain::{envelope, ErrorKind, WebhookKind, WebhookSecret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};

use super::guard::{check_literal, GuardedResolver, HostLookup, SystemLookup};
use crate::destinations::{self, pacing::Pacer, RateHeaders};
use crate::store::DeliveryClaim;
use hookrelay_domain::netpolicy::TargetPolicy;

pub const USER_AGENT_VALUE: &str = concat!("hookrelay/", env!("CARGO_PKG_VERSION"));
/// How much of a response body is kept on the attempt.
pub const RESPONSE_BODY_LIMIT: usize = 4096;

/// What the receiver did with one attempt.
#[derive(Debug)]
pub struct SendResult {
    pub started_at: i64,
    pub duration: Duration,
    pub request_headers: String,
    pub status: Option<u16>,
    pub retry_after: Option<String>,
    pub body: Option<String>,
    pub error: Option<(ErrorKind, String)>,
    /// How long a chat destination asked us to hold off (Discord's `429` `retry_after`, an
    /// exhausted `X-RateLimit-*` bucket); a floor for the next attempt.
    pub retry_hint: Option<Duration>,
}

/// The shared HTTP client, the per-attempt timeout and the target policy.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    timeout: Duration,
    policy: Arc<TargetPolicy>,
    /// Holds a chat webhook's sends after the service asked for a pause.
    pacer: Arc<Pacer>,
}

impl Sender {
    /// A sender resolving names with the system resolver.
    pub fn new(timeout: Duration, policy: TargetPolicy) -> Result<Self, reqwest::Error> {
        Self::with_lookup(timeout, policy, Arc::new(SystemLookup))
    }

    /// A sender with its own name lookup (tests use a fixed table).
    pub fn with_lookup(
        timeout: Duration,
        policy: TargetPolicy,
        lookup: Arc<dyn HostLookup>,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
                lookup,
            }))
            // A proxy would connect on our behalf to addresses we never checked.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .tcp_nodelay(true)
            .use_rustls_tls()
            .build()?;
        Ok(Self {
            client,
            timeout,
            policy,
            pacer: Arc::new(Pacer::default()),
        })
    }

    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Posts the delivery as attempt number `attempt_n`.
    pub async fn send(&self, claim: &DeliveryClaim, attempt_n: u32) -> SendResult {
        let kind = claim.webhook.kind;
        let chat = kind != WebhookKind::Http;
        if chat {
            self.pacer.wait_turn(claim.webhook.id.as_str()).await;
        }
        let started_at = now_millis();
        let clock = Instant::now();
        let body = if chat {
            match destinations::body_for_claim(claim) {
                Ok(body) => body,
                // Nothing is sent: the attempt records why, and the delivery fails at once.
                Err(e) => {
                    return SendResult {
                        started_at,
                        duration: clock.elapsed(),
                        request_headers: String::from("{}"),
                        status: None,
                        retry_after: None,
                        body: None,
                        error: Some((ErrorKind::Render, e.to_string())),
                        retry_hint: None,
                    }
                }
            }
        } else {
            envelope::http_body(
                &claim.event_type,
                &to_rfc3339(claim.event_timestamp),
                claim.event_id.as_str(),
                &claim.data,
            )
        };
        let (headers, shown) = self.headers(claim, attempt_n, started_at, &body);
        let blocked = match url::Url::parse(&claim.webhook.url) {
            Ok(url) => check_literal(&self.policy, &url)
                .err()
                .map(|b| b.to_string()),
            Err(e) => Some(format!("invalid URL: {e}")),
        };
        if let Some(reason) = blocked {
            return SendResult {
                started_at,
                duration: clock.elapsed(),
                request_headers: shown,
                status: None,
                retry_after: None,
                body: None,
                error: Some((ErrorKind::BlockedAddress, reason)),
                retry_hint: None,
            };
        }
        let request = self
            .client
            .post(&claim.webhook.url)
            .headers(headers)
            .timeout(self.timeout)
            .body(body);
        let mut result = SendResult {
            started_at,
            duration: Duration::ZERO,
            request_headers: shown,
            status: None,
            retry_after: None,
            body: None,
            error: None,
            retry_hint: None,
        };
        match request.send().await {
            Ok(mut response) => {
                result.status = Some(response.status().as_u16());
                result.retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let rate = RateHeaders {
                    remaining: header("x-ratelimit-remaining"),
                    reset_after: header("x-ratelimit-reset-after"),
                    retry_after: result.retry_after.clone(),
                };
                let mut kept = Vec::new();
                // Read at most the first 4 KiB; a timeout while reading still counts the status.
                while let Ok(Some(chunk)) = response.chunk().await {
                    let room = RESPONSE_BODY_LIMIT - kept.len();
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if kept.len() >= RESPONSE_BODY_LIMIT {
                        break;
                    }
                }
                result.body = Some(String::from_utf8_lossy(&kept).into_owned());
                if chat {
                    result.retry_hint = destinations::retry_hint(
                        kind,
                        result.status,
                        &rate,
                        result.body.as_deref(),
                    );
                    if let Some(pause) = result.retry_hint {
                        self.pacer.hold(claim.webhook.id.as_str(), pause);
                    }
                }
            }
            Err(e) => result.error = Some(classify_transport_error(&e)),
        }
        result.duration = clock.elapsed();
        result
    }

    /// The request headers, and the same headers as JSON with signatures redacted.
    fn headers(
        &self,
        claim: &DeliveryClaim,
        attempt_n: u32,
        now: i64,
        body: &[u8],
    ) -> (HeaderMap, String) {
        let unix_secs = now / 1000;
        let secrets: Vec<WebhookSecret> = claim
            .webhook
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .filter_map(|s| WebhookSecret::parse(&s.secret).ok())
            .collect();
        let msg_id = claim.delivery_id.as_str();
        let mut map = HeaderMap::with_capacity(12 + claim.webhook.headers.len());
        let mut shown = serde_json::Map::new();
        let mut put = |name: &str, value: String, redact: bool| {
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(name),
                HeaderValue::try_from(value.as_str()),
            ) {
                map.insert(n, v);
                let display = if redact {
                    String::from("[redacted]")
                } else {
                    value
                };
                shown.insert(name.to_owned(), serde_json::Value::String(display));
            }
        };
        // Custom headers first, so ours always win.
        for (name, value) in &claim.webhook.headers {
            put(name, value.clone(), false);
        }
        put(CONTENT_TYPE.as_str(), "application/json".into(), false);
        put(USER_AGENT.as_str(), USER_AGENT_VALUE.into(), false);
        put("webhook-id", msg_id.to_owned(), false);
        put("webhook-timestamp", unix_secs.to_string(), false);
        put(
            "webhook-signature",
            standard_signature_header(&secrets, msg_id, unix_secs, body),
            true,
        );
        put("x-webhook-event", claim.event_type.clone(), false);
        put("x-webhook-id", msg_id.to_owned(), false);
        if let Some(newest) = secrets.first() {
            put("x-webhook-signature", newest.sign_legacy(body), true);
        }
        put("x-webhook-attempt", attempt_n.to_string(), false);
        (map, serde_json::Value::Object(shown).to_string())
    }
}

fn classify_transport_error(e: &reqwest::Error) -> (ErrorKind, String) {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    let kind = if lower.contains("blocked address") {
        ErrorKind::BlockedAddress
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        ErrorKind::Dns
    } else if lower.contains("certificate") || lower.contains("tls") {
        ErrorKind::Tls
    } else if e.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Other
    };
    let message = match kind {
        ErrorKind::Timeout => String::from("timed out waiting for the receiver"),
        // The guard's own words, without reqwest's wrapping.
        ErrorKind::BlockedAddress => chain[lower.find("blocked address").unwrap_or(0)..].to_owned(),
        _ => chain,
    };
    (kind, message)
}
