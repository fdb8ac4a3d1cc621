//! `POST /ingest/{source_name}`, the public door for providers: look the source up, rate-limit,
//! verify with its provider's verifier, then store the event and its log entry in one commit.

// Accepted and duplicate requests are logged in the same transaction as their event (through the
// group-commit ingestor). Rejected and rate-limited ones are logged by a bounded background writer
// so a flood of bad requests never slows good ones: under extreme load those log entries may be
// dropped (counted in `hookrelay_inbound_log_dropped_total`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hookrelay_domain::time::{now_millis, Millis};
use hookrelay_domain::{EventId, InboundRequestId};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::error::{current_request_id, ApiError};
use super::AppState;
use crate::config::{Config, Environment};
use crate::inbound::certs::PayPalCerts;
use crate::inbound::ratelimit::{RateLimiter, SharedRateLimiter};
use crate::inbound::{self, Env, Inbound, Provider, ProviderConfig, Rejection, Verifier};
use crate::store::{
    Event, InboundRequest, InboundStatus, IngestOutcome, NewEvent, Source, Store, StoreError,
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/ingest/{source_name}", post(ingest))
}

/// How long a node trusts its copy of a source (bounds how late a change made on another node
/// — a new secret, a pause — takes effect here; changes made on this node apply at once).
const SOURCE_CACHE_TTL: Duration = Duration::from_secs(5);
const MAX_CACHED_SOURCES: usize = 10_000;
/// Rejected and rate-limited entries waiting to be written; beyond this they are dropped.
const LOG_QUEUE: usize = 1024;
/// Log entries written per transaction by the background writer.
const LOG_BATCH: usize = 256;
/// How much of a rejected body the log keeps (enough to see what was sent).
const REJECTED_BODY_CAP: usize = 256 * 1024;
/// Rate-limited requests come in floods: keep only a glimpse of each.
const RATE_LIMITED_BODY_CAP: usize = 4 * 1024;
/// Bodies that did not become the event's data verbatim (form-encoded, duplicates' originals
/// are kept by the first request).
const ACCEPTED_BODY_CAP: usize = 256 * 1024;
/// Longest provider id used as is in an idempotency key; longer ones are hashed.
const MAX_PROVIDER_ID: usize = 200;
/// Headers kept for every provider, besides the provider's own.
const COMMON_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "user-agent",
    "x-forwarded-for",
    "x-request-id",
];
const MAX_HEADER_VALUE: usize = 1024;
/// The metrics label of requests to a source that does not exist (names are caller-chosen, so
/// they must not become label values).
const UNKNOWN_SOURCE: &str = "_unknown";

/// A source with its ready-to-use verifier.
struct Resolved {
    source: Source,
    /// `Err` when the stored settings no longer validate (a corrupt row).
    verifier: Result<Arc<dyn Verifier>, String>,
}

/// Sources by name as last read (`None`: no such source), with when they were read.
type SourceCache = RwLock<HashMap<String, (Option<Arc<Resolved>>, Instant)>>;

/// Per-source limits: this node's own on SQLite, shared through the database on PostgreSQL,
/// where several nodes may take a source's requests.
enum SourceLimiter {
    Local(RateLimiter),
    Shared(SharedRateLimiter),
}

impl SourceLimiter {
    async fn take(&self, key: &str, per_min: u32, now: Millis) -> Result<(), u64> {
        match self {
            Self::Local(l) => l.take(key, per_min, now),
            Self::Shared(s) => s.take(key, per_min, now).await,
        }
    }
}

/// Inbound runtime shared by the handlers: source cache, rate limits, PayPal certificates and
/// the writer of rejected requests.
pub struct Gateway {
    sources: SourceCache,
    limiter: SourceLimiter,
    certs: PayPalCerts,
    log: mpsc::Sender<InboundRequest>,
}

impl Gateway {
    /// Starts the background writer of the requests log (which also prunes old entries).
    pub fn start(store: Arc<dyn Store>, config: &Config) -> Arc<Self> {
        let (log, rx) = mpsc::channel(LOG_QUEUE);
        tokio::spawn(write_log(store.clone(), rx, config.inbound_log_retention));
        Arc::new(Self {
            sources: RwLock::new(HashMap::new()),
            limiter: if store.backend() == "postgres" {
                SourceLimiter::Shared(SharedRateLimiter::new(store.clone()))
            } else {
                SourceLimiter::Local(RateLimiter::default())
            },
            certs: PayPalCerts::new(config.paypal_cert_hosts.clone()),
            log,
        })
    }

    /// Drops this node's copy of a source after it was changed here.
    pub fn forget(&self, name: &str) {
        self.sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    async fn resolve(
        &self,
        store: &dyn Store,
        name: &str,
    ) -> Result<Option<Arc<Resolved>>, StoreError> {
        {
            let cache = self.sources.read().unwrap_or_else(|p| p.into_inner());
            if let Some((entry, at)) = cache.get(name) {
                if at.elapsed() < SOURCE_CACHE_TTL {
                    return Ok(entry.clone());
                }
            }
        }
        // Names outside the pattern cannot exist: no need to ask the store.
        let entry = if is_source_name(name) {
            store.get_source_by_name(name).await?.map(|source| {
                let verifier = ProviderConfig::parse(&source.provider, &source.config)
                    .map_err(|errors| {
                        errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .and_then(|c| c.verifier(&source.name, source.secret.as_deref()));
                Arc::new(Resolved { source, verifier })
            })
        } else {
            None
        };
        let mut cache = self.sources.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_SOURCES {
            cache.clear();
        }
        cache.insert(name.to_owned(), (entry.clone(), Instant::now()));
        Ok(entry)
    }

    fn log_later(&self, entry: InboundRequest) {
        if self.log.try_send(entry).is_err() {
            metrics::counter!("hookrelay_inbound_log_dropped_total").increment(1);
        }
    }
}

/// Source names: `[a-z0-9_-]{1,64}` (they appear in URLs and event types).
pub fn is_source_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

async fn write_log(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<InboundRequest>,
    retention: Duration,
) {
    let mut batch = Vec::with_capacity(LOG_BATCH);
    // The first prune soon after start, then hourly.
    let mut prune_at = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, LOG_BATCH) => {
                if n == 0 {
                    return;
                }
                if let Err(e) = store.record_inbound_requests(&batch).await {
                    tracing::warn!(error = %e, entries = batch.len(), "could not write the inbound requests log");
                }
                batch.clear();
            }
            _ = tokio::time::sleep_until(prune_at) => {
                prune_at += Duration::from_secs(3600);
                let before = now_millis() - retention.as_millis() as Millis;
                match store.prune_inbound_requests(before).await {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned the inbound requests log"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not prune the inbound requests log"),
                }
            }
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct IngestAccepted {
    /// The event the request became.
    pub id: String,
}

#[derive(Serialize, ToSchema)]
pub struct IngestDuplicate {
    /// The event the first copy of this request became.
    pub id: String,
    pub duplicate: bool,
}

/// One request in flight, for its log entry, metric and log line.
struct Request<'a> {
    gateway: &'a Gateway,
    source: &'a Source,
    headers: &'a HeaderMap,
    received_at: Millis,
    request_id: String,
}

impl Request<'_> {
    fn entry(
        &self,
        status: InboundStatus,
        reason: Option<String>,
        logged: &[&str],
        body: &[u8],
        body_cap: Option<usize>,
    ) -> InboundRequest {
        let (body_text, truncated) = match body_cap {
            Some(cap) => {
                let (text, truncated) = capped_text(body, cap);
                (Some(text), truncated)
            }
            None => (None, false),
        };
        InboundRequest {
            id: InboundRequestId::generate(),
            source_id: self.source.id.clone(),
            tenant_id: self.source.tenant_id.clone(),
            received_at: self.received_at,
            status,
            reason,
            event_id: None,
            event_type: None,
            provider_id: None,
            request_id: Some(self.request_id.clone()),
            headers: selected_headers(self.headers, logged),
            body: body_text,
            body_truncated: truncated,
            body_size: body.len() as u64,
        }
    }

    /// Answers `error`, after counting, logging and queueing the log entry.
    fn refuse(
        &self,
        status: InboundStatus,
        reason: &str,
        logged: &[&str],
        body: &[u8],
        error: ApiError,
    ) -> Response {
        count(&self.source.name, status.as_str());
        if status == InboundStatus::RateLimited {
            tracing::debug!(source = %self.source.name, request_id = %self.request_id, "inbound request rate limited");
        } else {
            tracing::warn!(source = %self.source.name, provider = %self.source.provider,
                request_id = %self.request_id, reason, "inbound request rejected");
        }
        let cap = if status == InboundStatus::RateLimited {
            RATE_LIMITED_BODY_CAP
        } else {
            REJECTED_BODY_CAP
        };
        self.gateway.log_later(self.entry(
            status,
            Some(reason.to_owned()),
            logged,
            body,
            Some(cap),
        ));
        error.into_response()
    }
}

fn count(source: &str, outcome: &'static str) {
    metrics::counter!("hookrelay_inbound_requests_total", "source" => source.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// The first `cap` bytes as text, never holding NUL (which PostgreSQL text refuses).
fn capped_text(body: &[u8], cap: usize) -> (String, bool) {
    let truncated = body.len() > cap;
    let text = String::from_utf8_lossy(&body[..body.len().min(cap)]).replace('\0', "\u{FFFD}");
    (text, truncated)
}

/// The headers worth keeping, as a JSON object (lower-case names, values capped).
fn selected_headers(headers: &HeaderMap, extra: &[&str]) -> String {
    let mut out = serde_json::Map::new();
    for name in COMMON_HEADERS.iter().chain(extra) {
        let name = name.to_ascii_lowercase();
        if let Some(v) = headers.get(name.as_str()) {
            let (text, _) = capped_text(v.as_bytes(), MAX_HEADER_VALUE);
            out.insert(name, serde_json::Value::String(text));
        }
    }
    serde_json::Value::Object(out).to_string()
}

/// `src:{source id}:{provider id}`, hashing provider ids too long to index comfortably.
fn idempotency_key(source: &Source, provider_id: &str) -> String {
    if provider_id.len() <= MAX_PROVIDER_ID {
        format!("src:{}:{provider_id}", source.id)
    } else {
        let digest = Sha256::digest(provider_id.as_bytes());
        format!("src:{}:sha256:{}", source.id, hex::encode(digest))
    }
}

#[utoipa::path(post, path = "/ingest/{source_name}", tag = "sources", operation_id = "ingest.receive",
    params(("source_name" = String, Path, description = "the source's `name`")),
    request_body(content = String, description = "whatever the provider sends, verified over its raw bytes (JSON; GitHub's form-encoded `payload=` too; other bodies become a JSON string in the event's `data`)"),
    responses(
        (status = 202, body = IngestAccepted, description = "verified and stored (event, its deliveries and the log entry in one commit); delivery happens afterwards"),
        (status = 200, body = IngestDuplicate, description = "a repeat of a delivery already accepted (same provider id): nothing new is stored but the log entry"),
        (status = 400, description = "`invalid_json`: signed, but not what the provider sends (e.g. a Stripe body without `type`)"),
        (status = 401, description = "`invalid_signature`: missing or wrong signature, or a timestamp more than 5 minutes from now (a replay); the message says which"),
        (status = 404, description = "no source has this name"),
        (status = 413, description = "the body is over the size limit"),
        (status = 429, description = "`rate_limited`: over the source's `rate_limit_per_min` on this node; `Retry-After` says when to come back"),
        (status = 503, description = "the source is paused (`active: false`), or PayPal's certificate could not be fetched")))]
pub async fn ingest(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let received_at = now_millis();
    let gateway = &s.inbound;
    let resolved = match gateway.resolve(s.store.as_ref(), &name).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            count(UNKNOWN_SOURCE, "not_found");
            return ApiError::not_found("source").into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let source = &resolved.source;
    let req = Request {
        gateway,
        source,
        headers: &headers,
        received_at,
        request_id: current_request_id(),
    };
    let logged = match &resolved.verifier {
        Ok(v) => v.logged_headers(),
        Err(_) => Vec::new(),
    };
    // The body is only read once the request is known to be worth reading.
    let raw: &[u8] = match &body {
        Ok(b) => b,
        Err(_) => &[],
    };
    if !source.active {
        return req.refuse(
            InboundStatus::Rejected,
            "the source is paused (active: false)",
            &logged,
            raw,
            ApiError::Unavailable("this source is paused".into()),
        );
    }
    if let Err(retry_after_secs) = gateway
        .limiter
        .take(source.id.as_str(), source.rate_limit_per_min, received_at)
        .await
    {
        return req.refuse(
            InboundStatus::RateLimited,
            &format!(
                "over the source's limit of {} requests/min",
                source.rate_limit_per_min
            ),
            &logged,
            raw,
            ApiError::RateLimited {
                message: format!(
                    "this source accepts {} requests/min; retry in {retry_after_secs} s",
                    source.rate_limit_per_min
                ),
                retry_after_secs,
            },
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let (reason, error) = if too_large {
                (
                    format!("the body is over {} bytes", s.config.max_body_bytes),
                    ApiError::PayloadTooLarge,
                )
            } else {
                (
                    format!("the body could not be read: {rejection}"),
                    ApiError::InvalidJson("the body could not be read".into()),
                )
            };
            return req.refuse(InboundStatus::Rejected, &reason, &logged, &[], error);
        }
    };
    let verifier = match &resolved.verifier {
        Ok(v) => v.clone(),
        Err(problem) => {
            return req.refuse(
                InboundStatus::Rejected,
                &format!("the source's settings are invalid: {problem}"),
                &logged,
                &body,
                ApiError::Internal(format!(
                    "source {} has invalid settings: {problem}",
                    source.id
                )),
            )
        }
    };
    if source.provider == Provider::None.as_str()
        && s.config.env == Environment::Prod
        && !source.allow_unsigned
    {
        let reason = "unsigned sources are refused in prod unless allow_unsigned is set";
        return req.refuse(
            InboundStatus::Rejected,
            reason,
            &logged,
            &body,
            ApiError::InvalidSignature(reason.into()),
        );
    }

    let inbound = Inbound {
        source_name: &source.name,
        headers: &headers,
        body: &body,
        now_secs: received_at.div_euclid(1000),
    };
    let env = Env {
        certs: &gateway.certs,
    };
    let span = tracing::info_span!(
        "inbound.verify",
        hookrelay.source = source.name.as_str(),
        hookrelay.provider = source.provider.as_str(),
        hookrelay.outcome = tracing::field::Empty,
    );
    let verified =
        crate::telemetry::in_span(&span, inbound::process(verifier.as_ref(), &inbound, &env)).await;
    span.record(
        "hookrelay.outcome",
        match &verified {
            Ok(_) => "verified",
            Err(Rejection::Signature(_)) => "invalid_signature",
            Err(Rejection::Malformed(_)) => "malformed",
            Err(Rejection::Unavailable(_)) => "unavailable",
        },
    );
    drop(span);
    let verified = match verified {
        Ok(v) => v,
        Err(rejection) => {
            let reason = rejection.reason().to_owned();
            let error = match rejection {
                Rejection::Signature(r) => ApiError::InvalidSignature(r),
                Rejection::Malformed(r) => ApiError::InvalidJson(r),
                Rejection::Unavailable(r) => ApiError::Unavailable(r),
            };
            return req.refuse(InboundStatus::Rejected, &reason, &logged, &body, error);
        }
    };

    let mut entry = req.entry(
        InboundStatus::Accepted,
        None,
        &logged,
        &body,
        (!verified.payload.data_is_body).then_some(ACCEPTED_BODY_CAP),
    );
    entry.event_type = Some(verified.event_type.clone());
    entry.provider_id = verified.provider_id.clone();
    let event = NewEvent {
        event: Event {
            id: EventId::generate(),
            tenant_id: source.tenant_id.clone(),
            event_type: verified.event_type,
            source: Some(source.name.clone()),
            idempotency_key: verified
                .provider_id
                .as_deref()
                .map(|p| idempotency_key(source, p)),
            data: verified.payload.data,
            timestamp: received_at,
            created_at: received_at,
        },
        only_webhook: None,
        lease: None,
        // Providers rarely retry a 429, so inbound traffic is limited per source (its own rate
        // limit) rather than by the tenant's event quotas.
        quota: Default::default(),
    };
    let outcome = match s
        .ingestor
        .submit_with_requests(vec![event], vec![(0, entry)])
        .await
    {
        Ok(mut outcomes) => outcomes.pop(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    match outcome {
        Some(IngestOutcome::Accepted { id, .. }) => {
            count(&source.name, "accepted");
            crate::telemetry::annotate_current("hookrelay.event_id", &id);
            tracing::debug!(source = %source.name, event_id = %id, "inbound request accepted");
            (
                StatusCode::ACCEPTED,
                Json(IngestAccepted { id: id.to_string() }),
            )
                .into_response()
        }
        Some(IngestOutcome::Duplicate { id }) => {
            count(&source.name, "duplicate");
            (
                StatusCode::OK,
                Json(IngestDuplicate {
                    id: id.to_string(),
                    duplicate: true,
                }),
            )
                .into_response()
        }
        Some(IngestOutcome::QuotaExceeded {
            limit,
            retry_after_secs,
        }) => ApiError::QuotaExceeded {
            message: format!("the tenant's {limit} quota is used up"),
            retry_after_secs,
        }
        .into_response(),
        None => ApiError::Internal("no ingest outcome".into()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn source_names() {
        assert!(is_source_name("gh-main"));
        assert!(is_source_name("stripe_live2"));
        assert!(!is_source_name(""));
        assert!(!is_source_name("GH"));
        assert!(!is_source_name("a.b"));
        assert!(!is_source_name(&"a".repeat(65)));
    }

    #[test]
    fn log_bodies_are_capped_text_without_nul() {
        assert_eq!(capped_text(b"abc", 2), ("ab".to_owned(), true));
        assert_eq!(capped_text(b"a\0b", 10), ("a\u{FFFD}b".to_owned(), false));
        let (text, _) = capped_text(&[0xff, b'x'], 10);
        assert_eq!(text, "\u{FFFD}x");
    }

    #[test]
    fn only_selected_headers_are_kept() {
        let h = crate::inbound::testing::headers(&[
            ("content-type", "application/json"),
            ("authorization", "Bearer secret"),
            ("cookie", "session=1"),
            ("x-github-event", "push"),
        ]);
        let kept: serde_json::Value =
            serde_json::from_str(&selected_headers(&h, &["x-github-event"])).unwrap();
        assert_eq!(
            kept,
            json!({"content-type": "application/json", "x-github-event": "push"})
        );
    }
}
