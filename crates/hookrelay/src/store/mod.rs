//! The store is the queue: one trait for everything hookrelay persists, with an embedded SQLite
//! implementation and a PostgreSQL one for many nodes. Both share `common.rs` and one test suite.

mod common;
mod fanout;
pub mod models;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use hookrelay_domain::health::HealthPolicy;
use hookrelay_domain::time::Millis;
use hookrelay_domain::*;
use tokio::sync::Notify;

use crate::secrets::{KeyError, Keyring};
use tokio_util::sync::CancellationToken;

pub use models::*;

/// Everything that can go wrong below the API, typed so the API can map it in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("unsupported database url: {0}")]
    UnsupportedUrl(String),
    #[error("secret at rest: {0}")]
    Secret(#[from] KeyError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Whether this is the store being out of reach or out of room (PostgreSQL down or
    /// restarting, a connection lost, the pool exhausted, a full or read-only disk) rather than
    /// a fault in the request or the code: the API answers `503` with `Retry-After` for these,
    /// and workers back off and try again.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| unavailable_code(&c)),
            _ => false,
        }
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes that mean "the database cannot serve now".
fn unavailable_code(code: &str) -> bool {
    // PostgreSQL: 08 connection exception, 53 insufficient resources (53100 disk full),
    // 57P01-57P03 shutting down / restarting, 25006 read-only transaction (a standby).
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "25006")
        // SQLite (extended codes keep the primary code in their low byte): SQLITE_BUSY (5),
        // SQLITE_LOCKED (6), SQLITE_READONLY (8), SQLITE_IOERR (10), SQLITE_FULL (13),
        // SQLITE_CANTOPEN (14).
        || code
            .parse::<i64>()
            .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
}

/// Persistence for every resource, and the delivery queue.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for health output and metrics labels.
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> StoreResult<()>;
    async fn ping(&self) -> StoreResult<()>;

    // Tenants
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Tenant>;
    async fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>>;
    async fn list_tenants(&self, page: &PageRequest) -> StoreResult<Page<Tenant>>;
    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()>;

    // API keys
    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn find_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn list_api_keys(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> StoreResult<Page<ApiKey>>;
    async fn delete_api_key(&self, tenant: &TenantId, id: &KeyId) -> StoreResult<()>;
    /// Whether any server-admin key exists (the bootstrap key was already made).
    async fn has_server_admin_key(&self) -> StoreResult<bool>;

    // Dashboard users and their sessions
    /// `Conflict` when the email is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    /// By lower-cased email.
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self, tenant: &TenantId, page: &PageRequest) -> StoreResult<Page<User>>;
    /// Deletes the user and, with it, every session of theirs.
    async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<()>;
    /// Whether any user exists (the bootstrap account was already made).
    async fn has_users(&self) -> StoreResult<bool>;
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// The unexpired session with this token hash, and its user.
    async fn find_session(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<(Session, User)>>;
    /// Revokes one session; `NotFound` when it does not exist (already logged out).
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Drops sessions that expired before `now`; returns how many.
    async fn purge_expired_sessions(&self, now: Millis) -> StoreResult<u64>;
    /// Failed logins counted under `key` in the window of `window_ms` that began at the first
    /// of them: `(count, since)`, or `None` when there are none in a live window.
    async fn login_failures(
        &self,
        key: &str,
        now: Millis,
        window_ms: i64,
    ) -> StoreResult<Option<(u32, Millis)>>;
    /// Counts one failed login under each key (a window past `window_ms` starts again at 1).
    async fn add_login_failure(
        &self,
        keys: &[&str],
        now: Millis,
        window_ms: i64,
    ) -> StoreResult<()>;
    /// Forgets the failures counted under `key` (a successful login).
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;

    // Portal links
    async fn create_portal_link(&self, link: &PortalLink) -> StoreResult<()>;
    /// The link with this token hash, if it is neither expired at `now` nor revoked.
    async fn find_portal_link_by_hash(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<PortalLink>>;
    /// The tenant's links that still work at `now`, newest first (at most 1,000).
    async fn list_portal_links(
        &self,
        tenant: &TenantId,
        now: Millis,
    ) -> StoreResult<Vec<PortalLink>>;
    /// Ends a link at once; `NotFound` when the tenant has no such working link.
    async fn revoke_portal_link(
        &self,
        tenant: &TenantId,
        id: &PortalLinkId,
        now: Millis,
    ) -> StoreResult<()>;

    /// Leases time slots from shared rate limits, one answer per request, in order: the
    /// generic cell rate algorithm, one row per key, so nodes sharing the database share each
    /// limit. PostgreSQL reads its own clock (nodes' clocks may differ); SQLite uses `now_us`.
    async fn lease_rate_slots(
        &self,
        leases: &[RateLease],
        now_us: i64,
    ) -> StoreResult<Vec<RateGrant>>;

    // Webhooks
    async fn create_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    async fn get_webhook(&self, tenant: &TenantId, id: &WebhookId) -> StoreResult<Webhook>;
    async fn list_webhooks(
        &self,
        tenant: &TenantId,
        query: &WebhookQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Webhook>>;
    async fn count_webhooks(&self, tenant: &TenantId) -> StoreResult<u64>;
    /// Replaces the stored webhook. When it is re-activated with `discard_held`, the deliveries
    /// that waited while it was paused are cancelled.
    async fn update_webhook(&self, webhook: &Webhook, discard_held: bool) -> StoreResult<()>;
    /// Deletes the webhook and cancels its pending deliveries.
    async fn delete_webhook(&self, tenant: &TenantId, id: &WebhookId) -> StoreResult<()>;
    async fn webhook_stats(
        &self,
        tenant: &TenantId,
        id: &WebhookId,
        since: Millis,
    ) -> StoreResult<WebhookStats>;

    /// The tenant's (or one webhook's) delivery counters from `query.since`, summed per
    /// `query.step_ms`: `(point start, counts)`, oldest first; points without rows are absent.
    async fn delivery_stats(
        &self,
        tenant: &TenantId,
        query: &StatsQuery,
    ) -> StoreResult<Vec<(Millis, hookrelay_domain::stats::StatCounts)>>;
    /// The same counters summed per webhook (every webhook with rows in the window).
    async fn delivery_stats_by_webhook(
        &self,
        tenant: &TenantId,
        width_ms: Millis,
        since: Millis,
    ) -> StoreResult<Vec<(WebhookId, hookrelay_domain::stats::StatCounts)>>;
    /// Pending and dead-lettered deliveries of the tenant, or of one of its webhooks.
    async fn tenant_queue(
        &self,
        tenant: &TenantId,
        webhook: Option<&WebhookId>,
    ) -> StoreResult<TenantQueue>;
    /// Writes each tenant's pending count as its sample of `minute` (the latest write of a
    /// minute wins), in one statement.
    async fn record_queue_samples(
        &self,
        minute: Millis,
        samples: &[(TenantId, u64)],
    ) -> StoreResult<()>;
    /// The tenant's queue samples from `since`, the largest of each `step_ms`:
    /// `(point start, pending)`, oldest first; minutes without a sample are absent (empty).
    async fn queue_samples(
        &self,
        tenant: &TenantId,
        since: Millis,
        step_ms: Millis,
    ) -> StoreResult<Vec<(Millis, u64)>>;
    /// Deletes counter rows past their width's retention (`hookrelay_domain::stats::ROW_WIDTHS`)
    /// and queue samples past `hookrelay_domain::stats::QUEUE_SAMPLE_RETENTION_MS`, in one batch
    /// of at most `batch` buckets (or minutes) each; returns how many rows.
    async fn prune_delivery_stats(&self, now: Millis, batch: u32) -> StoreResult<u64>;

    // Event catalog: the tenant's own types and customised built-ins.
    /// `Conflict` when the tenant already has a type of this name.
    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()>;
    /// Inserts or replaces (keeping `created_at` of an existing row).
    async fn put_event_type(&self, event_type: &EventType) -> StoreResult<()>;
    async fn get_event_type(&self, tenant: &TenantId, name: &str)
        -> StoreResult<Option<EventType>>;
    /// All of the tenant's rows, by name (a catalog is small and merged with built-ins in Rust).
    async fn list_event_types(&self, tenant: &TenantId) -> StoreResult<Vec<EventType>>;
    async fn delete_event_type(&self, tenant: &TenantId, name: &str) -> StoreResult<()>;

    // Events
    /// Writes each event and one delivery per matching webhook (event-type patterns, then the
    /// payload filter of webhooks that have one), all in one transaction.
    async fn ingest(&self, events: &[NewEvent]) -> StoreResult<Vec<IngestOutcome>> {
        self.ingest_with_requests(events, &[]).await
    }
    /// `ingest`, also writing in the same transaction the inbound request records that came
    /// with some of the events: `(index into events, record)`. Each record's status becomes
    /// `accepted` or `duplicate` and its `event_id` the new or original event's id.
    async fn ingest_with_requests(
        &self,
        events: &[NewEvent],
        requests: &[(usize, InboundRequest)],
    ) -> StoreResult<Vec<IngestOutcome>> {
        Ok(self.ingest_leasing(events, requests, None).await?.outcomes)
    }
    /// `ingest_with_requests`, leasing up to `offer.max` of the new deliveries to
    /// `offer.owner` (see `LeaseOffer`) and returning them as claims. A delivery of a paused
    /// webhook, or of an event that carries its own `lease`, is never leased by the offer.
    async fn ingest_leasing(
        &self,
        events: &[NewEvent],
        requests: &[(usize, InboundRequest)],
        offer: Option<&LeaseOffer<'_>>,
    ) -> StoreResult<IngestBatch>;
    /// Events counted in the tenant's current minute and day.
    async fn event_usage(&self, tenant: &TenantId, now: Millis) -> StoreResult<EventUsage>;
    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> StoreResult<(Event, Vec<Delivery>)>;
    async fn list_events(
        &self,
        tenant: &TenantId,
        query: &EventQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Event>>;

    // Deliveries and the queue
    async fn get_delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
    ) -> StoreResult<(Delivery, Event, Vec<Attempt>)>;
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        query: &DeliveryQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Delivery>>;
    async fn list_dlq(
        &self,
        tenant: &TenantId,
        query: &DlqQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Delivery>>;
    /// Makes a delivery due now, whatever its status.
    async fn retry_delivery(&self, tenant: &TenantId, id: &DeliveryId) -> StoreResult<()>;
    /// Makes a failed delivery due now; `NotFound` unless it is in the dead-letter queue.
    async fn retry_dlq_delivery(&self, tenant: &TenantId, id: &DeliveryId) -> StoreResult<()>;
    /// Makes every failed delivery of the tenant matching the filter due now.
    async fn retry_dlq_bulk(
        &self,
        tenant: &TenantId,
        webhook: Option<&WebhookId>,
        since: Option<Millis>,
    ) -> StoreResult<u64>;

    /// New deliveries of a stored event, due now: to `webhooks` (those of them that still
    /// exist in the tenant), or when `None` to every webhook whose filters match the event now.
    /// `NotFound` when the event is not the tenant's. Returns what was created.
    async fn replay_event(
        &self,
        tenant: &TenantId,
        event: &EventId,
        webhooks: Option<&[WebhookId]>,
    ) -> StoreResult<Vec<CreatedDelivery>>;
    /// Re-delivers to one webhook the events accepted in `[since, until)` that it matches now
    /// and that `mode` picks; returns how many deliveries were created. `NotFound` when the
    /// webhook is not the tenant's.
    async fn replay_webhook(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        since: Millis,
        until: Option<Millis>,
        mode: ReplayMode,
    ) -> StoreResult<u64>;

    /// Makes the webhook's pending deliveries that wait for a later retry due now (a `relay`
    /// listener connected: what waited for one goes at once); returns how many.
    async fn release_waiting(&self, tenant: &TenantId, webhook: &WebhookId) -> StoreResult<u64>;

    /// Leases up to `limit` due deliveries of active webhooks to `owner` until `lease_until`.
    async fn claim_due(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryClaim>> {
        self.claim_due_excluding(owner, now, lease_until, limit, &ClaimExclusions::default())
            .await
    }
    /// `claim_due`, skipping webhooks and tenants the worker cannot take more of right now
    /// (at their in-flight cap or out of rate tokens): the fairness lever.
    async fn claim_due_excluding(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
        limit: u32,
        exclude: &ClaimExclusions,
    ) -> StoreResult<Vec<DeliveryClaim>>;
    /// Hands claimed deliveries back unattempted, due again at the given times.
    async fn release_claims(
        &self,
        owner: &str,
        releases: &[(DeliveryId, Millis)],
    ) -> StoreResult<()>;
    /// Reads one delivery as a claim without leasing it (its lease was set at ingest: `/test`).
    async fn load_claim(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryClaim>>;
    /// Records finished attempts and the resulting delivery states, in one transaction.
    async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<()> {
        self.record_attempts_with(records, &HealthPolicy::default())
            .await
            .map(drop)
    }
    /// `record_attempts`, also moving the health (circuit breaker, auto-disable) of the webhooks
    /// the attempts went to under `policy`, in the same transaction; returns the changes.
    async fn record_attempts_with(
        &self,
        records: &[AttemptRecord],
        policy: &HealthPolicy,
    ) -> StoreResult<Vec<HealthTransition>>;
    /// Gives back leases held by `owner` (graceful shutdown) so others need not wait them out.
    async fn release_leases(&self, owner: &str) -> StoreResult<u64>;
    /// The earliest `next_attempt_at` among claimable deliveries, to sleep exactly that long.
    async fn next_due_at(&self) -> StoreResult<Option<Millis>>;
    async fn queue_stats(&self, now: Millis) -> StoreResult<QueueStats>;
    /// Every tenant with pending deliveries or a raised backlog alert: its pending count and
    /// oldest due age (one aggregate query, for the alert loop).
    async fn backlog_by_tenant(&self, now: Millis) -> StoreResult<Vec<TenantBacklog>>;
    /// Raises or clears an alert: flips its stored flag and, when it was raised, writes the
    /// operational event in the same transaction. `false` when the flag already was so (another
    /// node told it first).
    async fn set_alert(&self, change: &AlertChange) -> StoreResult<bool>;

    /// Re-seals every stored secret with the current master key; returns how many changed.
    async fn reseal_secrets(&self) -> StoreResult<u64>;
    // Inbound sources
    async fn create_source(&self, source: &Source) -> StoreResult<()>;
    async fn get_source(&self, tenant: &TenantId, id: &SourceId) -> StoreResult<Source>;
    /// Any tenant's source: the public ingest route is addressed by name alone.
    async fn get_source_by_name(&self, name: &str) -> StoreResult<Option<Source>>;
    async fn list_sources(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> StoreResult<Page<Source>>;
    async fn update_source(&self, source: &Source) -> StoreResult<()>;
    /// Deletes the source and its requests log; its events stay in the event log.
    async fn delete_source(&self, tenant: &TenantId, id: &SourceId) -> StoreResult<()>;
    /// Writes requests-log entries that have no event (rejected, rate limited), in one
    /// transaction.
    async fn record_inbound_requests(&self, requests: &[InboundRequest]) -> StoreResult<()>;
    async fn list_inbound_requests(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        query: &InboundRequestQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundRequest>>;
    /// Deletes one batch of events past retention, with their deliveries, attempts and inbound
    /// requests, in one transaction — never an event that has a `pending` delivery. Callers
    /// loop until a batch removes fewer than `query.batch` events.
    async fn prune_events(&self, query: &PruneQuery) -> StoreResult<PruneReport>;
    /// Deletes requests-log entries received before `before`; returns how many.
    async fn prune_inbound_requests(&self, before: Millis) -> StoreResult<u64>;

    /// Forwards cross-node signals until `shutdown` (PostgreSQL `LISTEN`): "work is due" into
    /// `wake`, the change feed's notices into `notices`. A single-node store has none and
    /// returns at once.
    async fn forward_notifications(
        &self,
        _wake: Arc<Notify>,
        _notices: Arc<dyn NoticeSink>,
        _shutdown: CancellationToken,
    ) {
    }
    /// Sends `notice` to every node (PostgreSQL `NOTIFY`); a single-node store has no other
    /// node and drops it.
    async fn notify(&self, _notice: Notice<'_>) -> StoreResult<()> {
        Ok(())
    }
}

/// What nodes tell each other for the dashboard's change feed (see `crate::feed`).
#[derive(Clone, Copy, Debug)]
pub enum Notice<'a> {
    /// This node (named) has stream watchers.
    Watching(&'a str),
    /// A batch of changes, as the feed encodes them.
    Changes(&'a str),
}

/// Receives the notices other nodes send.
pub trait NoticeSink: Send + Sync {
    fn watcher_seen(&self, node: &str);
    fn changes_received(&self, payload: &str);
}

/// How to connect, besides the URL.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// The most PostgreSQL connections the process opens (SQLite always uses one writer and
    /// four readers).
    pub pool_size: u32,
    /// SQLite: fsync every commit (`synchronous=FULL`) rather than rely on the WAL surviving
    /// the process (`NORMAL`).
    pub sqlite_full_sync: bool,
}

impl StoreOptions {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            pool_size: config.db_max_connections,
            sqlite_full_sync: config.sqlite_synchronous == crate::config::SqliteSync::Full,
        }
    }
}

/// Opens the store a `sqlite://` or `postgres://` URL names; secrets are sealed with `keyring`.
pub async fn connect(
    url: &str,
    keyring: Arc<Keyring>,
    options: &StoreOptions,
) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            sqlite::SqliteStore::connect(url, keyring, options.sqlite_full_sync).await?,
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(
            postgres::PgStore::connect(url, keyring, options.pool_size).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(
            url.split(':').next().unwrap_or_default().to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_apart_from_faults() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(StoreError::Database(sqlx::Error::Io(io)).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolClosed).is_unavailable());
        assert!(!StoreError::NotFound.is_unavailable());
        assert!(!StoreError::Conflict("dup".into()).is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        // PostgreSQL: connection lost, shutting down, disk full, a standby; not a bad query.
        for code in ["08006", "57P01", "57P03", "53100", "25006"] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!unavailable_code(code), "{code}");
        }
        // SQLite: full (13), read-only (8), an I/O error (extended 10 | 3 << 8), busy (5);
        // a constraint (19, 2067) is the request's fault.
        for code in ["13", "8", "778", "5"] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["19", "2067", "1"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }
}
