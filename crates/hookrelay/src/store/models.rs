//! Rows as the store reads and writes them. Plain data: validation happens before a value gets
//! here, and rendering to the contract's JSON happens in the API.

use std::collections::BTreeMap;
use std::sync::Arc;

use hookrelay_domain::quota::Quotas;
use hookrelay_domain::time::Millis;
use hookrelay_domain::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub quotas: Quotas,
    /// Days its events are kept; `None` follows `HOOKRELAY_RETENTION_DAYS`.
    pub retention_days: Option<u32>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub id: KeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    /// SHA-256 of the key, hex; the plaintext is never stored.
    pub key_hash: String,
    /// The bootstrap operator key: manages tenants and may act on any tenant.
    pub server_admin: bool,
    pub created_at: Millis,
}

/// A person who logs in to the dashboard. The password is kept only as an argon2id hash.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    /// Lower-cased; unique across the whole server because login names no tenant.
    pub email: String,
    /// PHC string (`$argon2id$v=19$...`).
    pub password_hash: String,
    pub role: Role,
    /// The bootstrap operator account: manages tenants like the server admin key.
    pub server_admin: bool,
    pub created_at: Millis,
}

/// A login session. Only the SHA-256 of the token is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: UserId,
    pub expires_at: Millis,
    pub created_at: Millis,
}

/// One signing secret of a webhook; a rotated-out secret keeps signing until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub tenant_id: TenantId,
    pub url: String,
    pub kind: WebhookKind,
    pub description: Option<String>,
    pub active: bool,
    /// Event-type patterns as the client sent them (validated by `EventFilter::parse`).
    pub events: Vec<String>,
    pub headers: BTreeMap<String, String>,
    pub rate_limit_per_sec: Option<u32>,
    pub templates: BTreeMap<String, String>,
    /// Per-webhook retry delays in seconds; `None` uses the global schedule.
    pub retry_schedule: Option<Vec<u32>>,
    /// Newest first.
    pub secrets: Vec<StoredSecret>,
    /// Payload filter over the event envelope (validated by `PayloadFilter::parse`); `None`
    /// lets every event of a matching type through.
    pub filter: Option<serde_json::Value>,
    /// `http` only: a template rendering the request body from the envelope (JSON out).
    pub transform: Option<String>,
    /// Broker kinds only: where on the broker `url` names deliveries go (NATS `{subject}`,
    /// RabbitMQ `{exchange, routing_key}`, Redis `{stream}`), checked by the kind's destination.
    pub target: Option<serde_json::Value>,
    /// Deliveries are attempted one at a time, in the order they were created; one waiting for
    /// a retry holds back every later one (the claim takes only the oldest pending one).
    pub ordered: bool,
    /// The circuit breaker and auto-disable state. The store moves it as attempts are recorded
    /// and resets it on re-activation; `update_webhook` never writes it.
    pub health: hookrelay_domain::health::Health,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Webhook {
    /// The webhook's signing keys that are still valid at `now`, newest first (rotated-out ones
    /// sign beside the new one until they expire). Unparsable stored keys are skipped.
    pub fn signing_keys(&self, now: Millis) -> Vec<SigningKey> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .filter_map(|s| SigningKey::parse(&s.secret).ok())
            .collect()
    }

    /// The scheme of the newest key: what the webhook signs with from now on.
    pub fn signature_scheme(&self) -> SignatureScheme {
        match self.secrets.first() {
            Some(s)
                if s.secret
                    .starts_with(hookrelay_domain::signing::SIGNING_KEY_PREFIX) =>
            {
                SignatureScheme::Ed25519
            }
            _ => SignatureScheme::Hmac,
        }
    }

    /// The `whpk_` public key of the newest key, for an ed25519 webhook.
    pub fn public_key(&self) -> Option<String> {
        self.secrets
            .first()
            .and_then(|s| SigningKey::parse(&s.secret).ok())
            .and_then(|k| k.public_key())
    }
}

/// A tenant's own event type, or its customisation of a built-in one (built-ins live in code:
/// `destinations::catalog`).
#[derive(Clone, Debug, PartialEq)]
pub struct EventType {
    pub tenant_id: TenantId,
    pub name: String,
    pub description: String,
    /// JSON Schema that `data` must satisfy at `POST /api/v1/events`.
    pub schema: Option<serde_json::Value>,
    /// An example `data`.
    pub example: Option<serde_json::Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub event_type: String,
    pub source: Option<String>,
    pub idempotency_key: Option<String>,
    /// The `data` object as JSON text, exactly as accepted.
    pub data: String,
    pub timestamp: Millis,
    pub created_at: Millis,
}

/// An event to ingest. `only_webhook` restricts fan-out to one webhook and `lease` hands its
/// deliveries straight to a caller that sends them itself (the `/test` action).
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event: Event,
    pub only_webhook: Option<WebhookId>,
    /// `(owner, lease_until)`.
    pub lease: Option<(String, Millis)>,
    /// The tenant's event quotas, checked and counted in the ingest transaction.
    pub quota: EventQuota,
}

/// Lets an ingest lease some of the deliveries it creates to the ingesting node's own worker,
/// which sends them at once without a claim query (see `delivery::handoff`). A delivery is
/// leased only when `accepts` takes its webhook and tenant quotas, at most `max` in all; the
/// others are created unleased for the claim path, as without an offer.
pub struct LeaseOffer<'a> {
    pub owner: &'a str,
    pub lease_until: Millis,
    pub max: usize,
    pub accepts: &'a (dyn Fn(&Webhook, &Quotas) -> bool + Send + Sync),
}

/// What an ingest wrote: one outcome per event, in order, the deliveries it created, and those
/// of them it leased under a `LeaseOffer`, ready to send.
#[derive(Debug, Default)]
pub struct IngestBatch {
    pub outcomes: Vec<IngestOutcome>,
    pub created: Vec<CreatedDelivery>,
    pub leased: Vec<DeliveryClaim>,
}

/// A delivery an ingest created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedDelivery {
    /// Index of its event in the ingested slice.
    pub event: usize,
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
}

/// Event limits of the emitting tenant (`None`: unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventQuota {
    pub per_minute: Option<u64>,
    pub per_day: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    Accepted {
        id: EventId,
        deliveries: u32,
        delivery_ids: Vec<DeliveryId>,
    },
    Duplicate {
        id: EventId,
    },
    /// Refused: the tenant is over `limit`; nothing was stored.
    QuotaExceeded {
        limit: &'static str,
        retry_after_secs: u64,
    },
}

/// Events counted against a tenant's quotas in the current windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventUsage {
    pub this_minute: u64,
    pub today: u64,
}

/// An inbound source: where a provider posts (`POST /ingest/{name}`) and how its requests are
/// verified. `provider` and `config` are validated by `crate::inbound` before they get here.
#[derive(Clone, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub tenant_id: TenantId,
    /// Unique across tenants: the ingest path names no tenant.
    pub name: String,
    pub provider: String,
    /// Provider-specific settings (a JSON object).
    pub config: serde_json::Value,
    /// The shared secret in plaintext (the store encrypts it at rest); `None` for providers
    /// that verify without one.
    pub secret: Option<String>,
    pub active: bool,
    /// Lets a `none` source run where unsigned sources are otherwise refused (`prod`).
    pub allow_unsigned: bool,
    pub rate_limit_per_min: u32,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("config", &self.config)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("active", &self.active)
            .field("allow_unsigned", &self.allow_unsigned)
            .field("rate_limit_per_min", &self.rate_limit_per_min)
            .finish()
    }
}

/// What became of one request to `POST /ingest/{source}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundStatus {
    Accepted,
    Duplicate,
    Rejected,
    RateLimited,
}

impl InboundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "accepted" => Self::Accepted,
            "duplicate" => Self::Duplicate,
            "rejected" => Self::Rejected,
            "rate_limited" => Self::RateLimited,
            _ => return None,
        })
    }
}

/// One entry of a source's requests log.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundRequest {
    pub id: InboundRequestId,
    pub source_id: SourceId,
    pub tenant_id: TenantId,
    pub received_at: Millis,
    /// For a record written with its event by `ingest_with_requests`, the store sets this (and
    /// `event_id`) from the ingest outcome.
    pub status: InboundStatus,
    pub reason: Option<String>,
    pub event_id: Option<EventId>,
    pub event_type: Option<String>,
    /// The provider's own id of the delivery (what duplicates are recognised by).
    pub provider_id: Option<String>,
    /// The `X-Request-Id` hookrelay answered with.
    pub request_id: Option<String>,
    /// Selected request headers as a JSON object (never credentials).
    pub headers: String,
    /// The raw body, capped; `None` when the event's data holds it verbatim.
    pub body: Option<String>,
    pub body_truncated: bool,
    /// Size of the whole body in bytes.
    pub body_size: u64,
}

#[derive(Clone, Debug, Default)]
pub struct InboundRequestQuery {
    pub status: Option<InboundStatus>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    pub event_type: String,
    pub source: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Millis>,
    pub last_response_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub delivered_at: Option<Millis>,
    pub failed_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    pub n: u32,
    pub started_at: Millis,
    pub duration_ms: u32,
    /// JSON object of the request headers, signatures redacted.
    pub request_headers: String,
    pub response_status: Option<u16>,
    /// The first 4 KiB of the response body.
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub error_kind: Option<String>,
}

/// A leased delivery with everything needed to send it, fetched in one round trip.
#[derive(Clone, Debug)]
pub struct DeliveryClaim {
    pub delivery_id: DeliveryId,
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub event_type: String,
    pub event_timestamp: Millis,
    /// Shared by every claim of one event (a fan-out does not copy the payload per webhook).
    pub data: Arc<str>,
    /// Attempts made before this one.
    pub attempts_made: u32,
    /// When the delivery was created (for its end-to-end latency).
    pub created_at: Millis,
    /// Shared by the claims of one webhook in a batch.
    pub webhook: Arc<Webhook>,
    /// The tenant's own quotas (for its delivery rate ceiling).
    pub tenant_quotas: Quotas,
}

/// Webhooks and tenants a claim must skip, and how many of one webhook's deliveries one claim
/// may take (so a single busy webhook does not fill a batch only to have most of it handed back).
#[derive(Clone, Debug, Default)]
pub struct ClaimExclusions {
    pub webhooks: Vec<String>,
    pub tenants: Vec<String>,
    pub max_per_webhook: Option<u32>,
}

/// A link that opens one tenant's dashboard with one role for someone without an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalLink {
    pub id: PortalLinkId,
    pub tenant_id: TenantId,
    /// `editor` or `viewer`.
    pub role: Role,
    /// SHA-256 of the token, hex; the token itself is shown once, at creation.
    pub token_hash: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// A request for time slots from one shared rate limit (see `Store::lease_rate_slots`): slots
/// are `interval_us` apart, and none may start more than `horizon_us` past the store's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLease {
    pub key: String,
    pub interval_us: i64,
    pub horizon_us: i64,
    pub wanted: u32,
}

/// Slots granted by `Store::lease_rate_slots`: `granted` slots, the first starting
/// `first_in_us` after the store's clock read (the others follow `interval_us` apart). With
/// none granted, `first_in_us` is how long until one would be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateGrant {
    pub granted: u32,
    pub first_in_us: i64,
}

/// What a finished attempt does to its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextState {
    Succeeded,
    RetryAt(Millis),
    Failed,
}

/// A change of a webhook's health that recording attempts caused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthTransition {
    pub webhook_id: WebhookId,
    pub tenant_id: TenantId,
    /// The webhook's URL, for the operational event about it.
    pub url: String,
    pub change: hookrelay_domain::health::HealthChange,
    /// The webhook's health right after the change.
    pub health: hookrelay_domain::health::Health,
    pub at: Millis,
}

#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub lease_owner: String,
    pub attempt: Attempt,
    pub next: NextState,
    pub finished_at: Millis,
}

/// One tenant's pending deliveries, for the backlog alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantBacklog {
    pub tenant_id: TenantId,
    pub pending: u64,
    pub oldest_due_age_ms: u64,
    /// Whether its backlog alert is raised (it crossed, and has not fallen back below yet).
    pub alerting: bool,
}

/// An alert threshold crossed one way or the other (see `crate::alerts`).
#[derive(Clone, Debug, PartialEq)]
pub enum AlertChange {
    FailureRate {
        tenant: TenantId,
        webhook: WebhookId,
        over: bool,
        attempts: u64,
        failures: u64,
        window_seconds: u64,
        at: Millis,
    },
    Backlog {
        tenant: TenantId,
        over: bool,
        pending: u64,
        oldest_pending_age_seconds: u64,
        at: Millis,
    },
}

/// What one pruning pass looks at: events created before their tenant's retention (or before
/// `now - older_than` for every tenant, when given), at most `batch` of them.
#[derive(Clone, Debug)]
pub struct PruneQuery {
    pub now: Millis,
    /// Retention of a tenant that sets none, in days.
    pub default_days: u32,
    /// Overrides every tenant's retention (`hookrelay prune --older-than`), in milliseconds.
    pub older_than: Option<Millis>,
    pub tenant: Option<TenantId>,
    pub batch: u32,
}

/// What pruning removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
    pub inbound_requests: u64,
}

impl std::ops::AddAssign for PruneReport {
    fn add_assign(&mut self, o: Self) {
        self.events += o.events;
        self.deliveries += o.deliveries;
        self.attempts += o.attempts;
        self.inbound_requests += o.inbound_requests;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Pending deliveries that are due or waiting for a retry.
    pub pending: u64,
    /// Age of the oldest due delivery, in milliseconds.
    pub oldest_due_age_ms: u64,
    /// Deliveries in the dead-letter queue (status `failed`).
    pub dead_letter: u64,
    /// Webhooks whose circuit is not closed (open or half-open).
    pub open_circuits: u64,
}

/// Which delivery counters to read (see `hookrelay_domain::stats`): rows `width_ms` wide from
/// `since`, summed into points `step_ms` wide, of one webhook or of the whole tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsQuery {
    pub width_ms: i64,
    pub since: i64,
    pub step_ms: i64,
    pub webhook: Option<WebhookId>,
}

/// A tenant's (or one webhook's) queue right now, read through indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantQueue {
    /// Deliveries pending (due or waiting for a retry).
    pub pending: u64,
    /// When the oldest pending delivery was created: how long something has waited.
    pub oldest_pending_created_at: Option<i64>,
    /// Deliveries in the dead-letter queue.
    pub dead_letter: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookStats {
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    /// Durations of the attempts in the window, ascending, for percentiles.
    pub durations_ms: Vec<u32>,
}

/// Cursor pagination, newest first: `cursor` is the last id of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: 50,
            cursor: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Most payload bytes (event data, request bodies) one page holds. A page of large payloads
/// ends early with a `next_cursor` rather than hold `limit` of them in memory at once: a
/// thousand 1 MiB events would otherwise be a gigabyte per list request.
pub const PAGE_BYTE_BUDGET: usize = 4 * 1024 * 1024;

impl<T> Page<T> {
    /// Builds a page from rows streamed newest first (the query asks for `limit + 1`), stopping
    /// at `limit` items or once their `size_of` reaches `budget`, whichever comes first. The
    /// first item is always taken, so a page is never empty while rows remain.
    pub async fn collect_budgeted<S, E>(
        mut rows: S,
        limit: u32,
        budget: usize,
        size_of: impl Fn(&T) -> usize,
        id_of: impl Fn(&T) -> String,
    ) -> Result<Self, E>
    where
        S: futures::Stream<Item = Result<T, E>> + Unpin,
    {
        use futures::TryStreamExt;
        let mut items = Vec::new();
        let mut bytes = 0usize;
        let mut next_cursor = None;
        while let Some(item) = rows.try_next().await? {
            if items.len() >= limit as usize || bytes >= budget {
                // `item` proves there is more; the cursor points past what we keep.
                next_cursor = items.last().map(&id_of);
                break;
            }
            bytes += size_of(&item);
            items.push(item);
        }
        Ok(Self { items, next_cursor })
    }

    /// Builds a page from up to `limit + 1` rows fetched newest first.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, id_of: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(id_of) } else { None };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct WebhookQuery {
    pub active: Option<bool>,
    /// Only webhooks whose filters match this event type.
    pub event: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub event_type: Option<String>,
    pub source: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryQuery {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub webhook_id: Option<WebhookId>,
    pub source: Option<String>,
    pub since: Option<Millis>,
    /// Created before this time (exclusive).
    pub until: Option<Millis>,
    pub event_id: Option<EventId>,
    pub delivery_id: Option<DeliveryId>,
}

#[derive(Clone, Debug, Default)]
pub struct DlqQuery {
    pub webhook_id: Option<WebhookId>,
    pub event_type: Option<String>,
}

/// Which events of a window a webhook replay re-delivers (among those it matches now).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplayMode {
    /// Events it never had a delivery of.
    #[default]
    Missing,
    /// Events whose delivery to it failed, and that none of its deliveries has since
    /// delivered or is still trying to.
    Failed,
    /// Every one.
    All,
}

impl ReplayMode {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "missing" => Some(Self::Missing),
            "failed" => Some(Self::Failed),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}
