//! Sends one attempt: builds the signed request for a claim (envelope, transform or chat message),
//! posts it with the shared keep-alive client or hands it to a `hookrelay listen`, and captures
//! what the receiver said (status, first 4 KiB, timing, rate-limit hints).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookrelay_domain::signing::signature_header;
use hookrelay_domain::time::{now_millis, to_rfc3339};
use hookrelay_domain::{envelope, ErrorKind, SigningKey, WebhookKind};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};

use super::guard::{check_literal, GuardedResolver, HostLookup, SystemLookup};
use super::relay::{RelayFailure, RelayHub, RelayMessage};
use crate::destinations::broker::{Broker, Brokers, Message};
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

impl SendResult {
    /// An attempt that sent nothing (or got no answer) for `error`.
    fn failed(
        started_at: i64,
        clock: Instant,
        request_headers: String,
        error: (ErrorKind, String),
    ) -> Self {
        Self {
            started_at,
            duration: clock.elapsed(),
            request_headers,
            status: None,
            retry_after: None,
            body: None,
            error: Some(error),
            retry_hint: None,
        }
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut_at_char(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The shared HTTP client, the per-attempt timeout and the target policy.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    timeout: Duration,
    policy: Arc<TargetPolicy>,
    /// Holds a chat webhook's sends after the service asked for a pause.
    pacer: Arc<Pacer>,
    /// `hookrelay listen` processes connected here, which `relay` deliveries go to.
    relay: Arc<RelayHub>,
    /// The broker destinations and their connections (one per broker URL).
    brokers: Arc<Brokers>,
    /// How broker host names are looked up (checked against `policy` before connecting).
    lookup: Arc<dyn HostLookup>,
}

/// Idle connections kept per receiver host when the caller does not size the pool.
const DEFAULT_IDLE_PER_HOST: usize = 64;

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
        Self::with_pool(timeout, policy, lookup, DEFAULT_IDLE_PER_HOST)
    }

    /// A sender keeping up to `idle_per_host` idle connections to each receiver: the worker
    /// concurrency, so a node whose deliveries all go to one host reuses a connection for each
    /// delivery in flight instead of closing the surplus and reconnecting (a TCP handshake, and
    /// with TLS a handshake more, per delivery past the limit).
    pub fn with_pool(
        timeout: Duration,
        policy: TargetPolicy,
        lookup: Arc<dyn HostLookup>,
        idle_per_host: usize,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
                lookup: lookup.clone(),
            }))
            // A proxy would connect on our behalf to addresses we never checked.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(idle_per_host)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .tcp_nodelay(true)
            .use_rustls_tls()
            .build()?;
        Ok(Self {
            client,
            timeout,
            policy,
            pacer: Arc::new(Pacer::default()),
            relay: Arc::new(RelayHub::default()),
            brokers: Arc::new(Brokers::new()),
            lookup,
        })
    }

    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The listeners of `relay` webhooks connected to this process.
    pub fn relay(&self) -> &Arc<RelayHub> {
        &self.relay
    }

    /// The body of this delivery: a chat message, an http webhook's `transform`, or the envelope.
    /// Also what the delivery detail shows as the request ("copy as curl" in the dashboard).
    pub fn body(claim: &DeliveryClaim) -> Result<Vec<u8>, (ErrorKind, String)> {
        if claim.webhook.kind.is_broker() {
            return Ok(envelope::http_body(
                &claim.event_type,
                &to_rfc3339(claim.event_timestamp),
                claim.event_id.as_str(),
                &claim.data,
            ));
        }
        if claim.webhook.kind.is_chat() {
            return destinations::body_for_claim(claim).map_err(|e| (ErrorKind::Render, e.0));
        }
        match &claim.webhook.transform {
            Some(source) => destinations::transform::body_for_claim(claim, source)
                .map_err(|e| (ErrorKind::TemplateError, e.0)),
            None => Ok(envelope::http_body(
                &claim.event_type,
                &to_rfc3339(claim.event_timestamp),
                claim.event_id.as_str(),
                &claim.data,
            )),
        }
    }

    /// Posts the delivery as attempt number `attempt_n`.
    pub async fn send(&self, claim: &DeliveryClaim, attempt_n: u32) -> SendResult {
        let kind = claim.webhook.kind;
        let chat = kind.is_chat();
        if chat {
            self.pacer.wait_turn(claim.webhook.id.as_str()).await;
        }
        let started_at = now_millis();
        let clock = Instant::now();
        let body = match Self::body(claim) {
            Ok(body) => body,
            // Nothing is sent: the attempt records why, and the delivery fails at once.
            Err(e) => return SendResult::failed(started_at, clock, String::from("{}"), e),
        };
        let (headers, shown) = self.headers(claim, attempt_n, started_at, &body);
        if kind == WebhookKind::Relay {
            return self
                .send_to_listener(claim, attempt_n, (started_at, clock), &headers, shown, body)
                .await;
        }
        if kind.is_broker() {
            return self
                .publish(claim, (started_at, clock), &headers, shown, &body)
                .await;
        }
        // Parsed once: the same `Url` is checked and then handed to the client as is.
        let target = url::Url::parse(&claim.webhook.url)
            .map_err(|e| format!("invalid URL: {e}"))
            .and_then(|url| match check_literal(&self.policy, &url) {
                Ok(()) => Ok(url),
                Err(blocked) => Err(blocked.to_string()),
            });
        let url = match target {
            Ok(url) => url,
            Err(reason) => {
                return SendResult::failed(
                    started_at,
                    clock,
                    shown,
                    (ErrorKind::BlockedAddress, reason),
                )
            }
        };
        let request = self
            .client
            .post(url)
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

    /// Publishes the attempt to the webhook's broker: the same body and headers an http
    /// delivery would carry. Success is the broker's acknowledgement, kept as the attempt's
    /// `response_body` (there is no HTTP status).
    async fn publish(
        &self,
        claim: &DeliveryClaim,
        (started_at, clock): (i64, Instant),
        headers: &HeaderMap,
        shown: String,
        body: &[u8],
    ) -> SendResult {
        let url = match url::Url::parse(&claim.webhook.url) {
            Ok(url) => url,
            Err(e) => {
                return SendResult::failed(
                    started_at,
                    clock,
                    shown,
                    (ErrorKind::Other, format!("invalid broker URL: {e}")),
                )
            }
        };
        let headers: Vec<(String, String)> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let message = Message {
            delivery_id: claim.delivery_id.as_str(),
            event_type: &claim.event_type,
            headers: &headers,
            body,
        };
        let broker = Broker {
            url: &url,
            policy: &self.policy,
            lookup: &self.lookup,
            timeout: self.timeout,
        };
        let outcome = self
            .brokers
            .publish(
                claim.webhook.kind,
                &broker,
                claim.webhook.target.as_ref(),
                &message,
            )
            .await;
        match outcome {
            Ok(ack) => SendResult {
                started_at,
                duration: clock.elapsed(),
                request_headers: shown,
                status: None,
                retry_after: None,
                body: Some(cut_at_char(ack, RESPONSE_BODY_LIMIT)),
                error: None,
                retry_hint: None,
            },
            Err(e) => SendResult::failed(started_at, clock, shown, e),
        }
    }

    /// Hands the attempt to a `hookrelay listen` connected for the webhook; its report of the
    /// local receiver's answer is the attempt's outcome.
    async fn send_to_listener(
        &self,
        claim: &DeliveryClaim,
        attempt_n: u32,
        (started_at, clock): (i64, Instant),
        headers: &HeaderMap,
        shown: String,
        body: Vec<u8>,
    ) -> SendResult {
        let message = RelayMessage {
            token: String::new(),
            delivery_id: claim.delivery_id.to_string(),
            event_type: claim.event_type.clone(),
            attempt: attempt_n,
            headers: headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let answer = self
            .relay
            .deliver(claim.webhook.id.as_str(), message, self.timeout)
            .await;
        let failure = |e: (ErrorKind, &str)| {
            SendResult::failed(started_at, clock, shown.clone(), (e.0, e.1.to_owned()))
        };
        match answer {
            Err(RelayFailure::NoListener) => failure((
                ErrorKind::Connect,
                "no `hookrelay listen` is connected for this webhook",
            )),
            Err(RelayFailure::TimedOut) => failure((
                ErrorKind::Timeout,
                "timed out waiting for the listener's answer",
            )),
            Err(RelayFailure::Vanished) => failure((
                ErrorKind::Timeout,
                "the listener disconnected before answering",
            )),
            // No status and no error would read as a broker's acknowledgement: it is neither.
            Ok(a) if a.status.is_none() && a.error.is_none() => failure((
                ErrorKind::Other,
                "the listener reported neither a status nor an error",
            )),
            Ok(a) => SendResult {
                started_at,
                duration: a
                    .duration_ms
                    .map_or_else(|| clock.elapsed(), |ms| Duration::from_millis(ms.into())),
                request_headers: shown,
                status: a.status,
                retry_after: None,
                body: a.body.map(|b| cut_at_char(b, RESPONSE_BODY_LIMIT)),
                error: a
                    .error
                    .map(|e| (ErrorKind::Connect, format!("the local receiver: {e}"))),
                retry_hint: None,
            },
        }
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
        let keys = claim.webhook.signing_keys(now);
        let msg_id = claim.delivery_id.as_str();
        let mut headers = ShownHeaders::with_capacity(12 + claim.webhook.headers.len());
        // Custom headers first, so ours always win.
        for (name, value) in &claim.webhook.headers {
            if let Ok(name) = HeaderName::try_from(name.as_str()) {
                headers.put(name, value, false);
            }
        }
        headers.put(CONTENT_TYPE, "application/json", false);
        headers.put(USER_AGENT, USER_AGENT_VALUE, false);
        headers.put(WEBHOOK_ID.clone(), msg_id, false);
        headers.put(WEBHOOK_TIMESTAMP.clone(), &unix_secs.to_string(), false);
        let signature = signature_header(&keys, msg_id, unix_secs, body);
        headers.put(WEBHOOK_SIGNATURE.clone(), &signature, true);
        headers.put(X_WEBHOOK_EVENT.clone(), &claim.event_type, false);
        headers.put(X_WEBHOOK_ID.clone(), msg_id, false);
        // A hex HMAC needs a shared secret: an ed25519 webhook has none, so it sends no
        // X-Webhook-Signature (its receivers verify the `v1a` entry with the public key).
        if let Some(SigningKey::Hmac(newest)) = keys.first() {
            headers.put(X_WEBHOOK_SIGNATURE.clone(), &newest.sign_legacy(body), true);
        }
        headers.put(X_WEBHOOK_ATTEMPT.clone(), &attempt_n.to_string(), false);
        headers.finish()
    }
}

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const X_WEBHOOK_EVENT: HeaderName = HeaderName::from_static("x-webhook-event");
const X_WEBHOOK_ID: HeaderName = HeaderName::from_static("x-webhook-id");
const X_WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("x-webhook-signature");
const X_WEBHOOK_ATTEMPT: HeaderName = HeaderName::from_static("x-webhook-attempt");

/// The headers of one request, and the JSON object of them that the attempt records (in the
/// order they were set, later values replacing earlier ones, signatures redacted), written as
/// they are set rather than built as a `serde_json::Map`: this runs for every attempt.
struct ShownHeaders {
    map: HeaderMap,
    /// `(name, JSON-escaped value)` in order of first appearance.
    shown: Vec<(HeaderName, String)>,
}

impl ShownHeaders {
    fn with_capacity(n: usize) -> Self {
        Self {
            map: HeaderMap::with_capacity(n),
            shown: Vec::with_capacity(n),
        }
    }

    /// Sets `name`; a value that is not a valid header value is left out of both.
    fn put(&mut self, name: HeaderName, value: &str, redact: bool) {
        let Ok(v) = HeaderValue::try_from(value) else {
            return;
        };
        let display = json_string(if redact { "[redacted]" } else { value });
        match self.shown.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = display,
            None => self.shown.push((name.clone(), display)),
        }
        self.map.insert(name, v);
    }

    fn finish(self) -> (HeaderMap, String) {
        let mut out = String::with_capacity(
            self.shown
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 4)
                .sum::<usize>()
                + 2,
        );
        out.push('{');
        for (i, (name, value)) in self.shown.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Header names are lower-case tokens: no character of theirs needs escaping.
            out.push('"');
            out.push_str(name.as_str());
            out.push_str("\":");
            out.push_str(value);
        }
        out.push('}');
        (self.map, out)
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_headers_keep_first_position_take_last_value_and_redact() {
        let mut h = ShownHeaders::with_capacity(4);
        h.put(HeaderName::from_static("x-team"), "crm \"north\"", false);
        h.put(WEBHOOK_ID.clone(), "custom", false);
        h.put(WEBHOOK_SIGNATURE.clone(), "v1,secret", true);
        h.put(WEBHOOK_ID.clone(), "dlv_1", false);
        // Not a valid header value: left out of both.
        h.put(HeaderName::from_static("x-bad"), "line\nbreak", false);
        let (map, shown) = h.finish();
        assert_eq!(
            shown,
            r#"{"x-team":"crm \"north\"","webhook-id":"dlv_1","webhook-signature":"[redacted]"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(parsed["x-team"], "crm \"north\"");
        assert_eq!(map.get("webhook-id").unwrap(), "dlv_1");
        assert_eq!(map.get("webhook-signature").unwrap(), "v1,secret");
        assert!(map.get("x-bad").is_none());
        assert_eq!(map.len(), 3);
    }
}
