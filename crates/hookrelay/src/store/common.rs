//! SQL shared by SQLite and PostgreSQL. Both speak `$N` placeholders and `ON CONFLICT`, so one
//! macro generates the `Store` impl for each backend; what differs (leasing with
//! `SKIP LOCKED`, `NOTIFY`, pools, migrations) lives in inherent methods of each backend.
//!
//! A backend type using this must provide: `fn reader(&self) -> &Pool<DB>`,
//! `fn writer(&self) -> &Pool<DB>`, `fn keyring(&self) -> &Keyring`,
//! `fn hook_cache(&self) -> &fanout::HookCache`, `async fn run_migrations(&self)`,
//! `fn claim_cursor(&self) -> &ClaimCursor`,
//! `async fn lease_due_ids(tx, owner, now, lease_until, limit, exclude) -> Vec<(id, webhook_id)>`,
//! `async fn plan_queue_walks(tx)`, `async fn notify_due(tx)`,
//! `fn push_result_rows(q, records)`, `fn push_attempt_rows(q, records)`,
//! `fn push_delivery_rows(q, rows)` (the rows of the record and ingest statements),
//! `async fn forward_notifications_impl(&self, wake, notices, shutdown)`,
//! `async fn notify_impl(&self, notice)`, and the consts `ROWS_OF_WEBHOOK`,
//! `ROWS_END_LOCKED` and `ROWS_END`: how a query joins one webhook `w` to its rows `y`.

use std::collections::{BTreeMap, HashMap};

use hookrelay_domain::quota::Quotas;
use hookrelay_domain::*;

use super::{InboundStatus, StoreError, StoreResult, StoredSecret};
use crate::secrets::Keyring;

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Seals a webhook's secrets for storage, bound to the webhook's id.
pub(super) fn encode_secrets(secrets: &[StoredSecret], ring: &Keyring, owner: &str) -> String {
    ring.seal(&to_json(&secrets), owner)
}

pub(super) fn decode_secrets(
    raw: &str,
    ring: &Keyring,
    owner: &str,
) -> StoreResult<Vec<StoredSecret>> {
    from_json(&ring.open(raw, owner)?, "webhook secrets")
}

/// A webhook URL at rest: `(url, url_sealed)`. One with credentials (a broker's
/// `nats://user:pass@host`) is stored redacted, so every SQL read of `url` (lists, operational
/// events) shows it without them, and whole in `url_sealed`, sealed like secrets.
pub(super) fn encode_url(url: &str, ring: &Keyring, owner: &str) -> (String, Option<String>) {
    if crate::destinations::broker::has_credentials(url) {
        (
            crate::destinations::broker::redact_url(url),
            Some(ring.seal(url, &format!("{owner}#url"))),
        )
    } else {
        (url.to_owned(), None)
    }
}

pub(super) fn decode_url(
    url: String,
    sealed: Option<&str>,
    ring: &Keyring,
    owner: &str,
) -> StoreResult<String> {
    match sealed {
        Some(sealed) => Ok(ring.open(sealed, &format!("{owner}#url"))?),
        None => Ok(url),
    }
}

/// A source's secret at rest: sealed like webhook secrets, bound to the source's id.
pub(super) fn encode_source_secret(secret: &str, ring: &Keyring, owner: &str) -> String {
    ring.seal(secret, owner)
}

pub(super) fn decode_source_secret(raw: &str, ring: &Keyring, owner: &str) -> StoreResult<String> {
    Ok(ring.open(raw, owner)?)
}

pub(super) fn parse_inbound_status(raw: &str) -> StoreResult<InboundStatus> {
    InboundStatus::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("inbound status {raw}")))
}

pub(super) fn parse_quotas(raw: &str) -> StoreResult<Quotas> {
    from_json(raw, "tenant quotas")
}

pub(super) fn parse_string_map(raw: &str, what: &str) -> StoreResult<BTreeMap<String, String>> {
    from_json(raw, what)
}

pub(super) fn parse_role(raw: &str) -> StoreResult<Role> {
    Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("role {raw}")))
}

pub(super) fn parse_kind(raw: &str) -> StoreResult<WebhookKind> {
    WebhookKind::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("webhook kind {raw}")))
}

/// A webhook's health columns, as `rows::webhook` reads them.
pub(super) fn parse_health(
    state: &str,
    consecutive_failures: i64,
    open_until: Option<i64>,
    opens: i64,
    failing_since: Option<i64>,
    disabled_reason: Option<&str>,
    disabled_at: Option<i64>,
) -> StoreResult<hookrelay_domain::health::Health> {
    use hookrelay_domain::health::{CircuitState, DisabledReason, Health};
    Ok(Health {
        state: CircuitState::parse(state)
            .ok_or_else(|| StoreError::Corrupt(format!("circuit state {state}")))?,
        consecutive_failures: consecutive_failures.clamp(0, i64::from(u32::MAX)) as u32,
        open_until,
        opens: opens.clamp(0, i64::from(u32::MAX)) as u32,
        failing_since,
        disabled_reason: disabled_reason
            .map(|r| {
                DisabledReason::parse(r)
                    .ok_or_else(|| StoreError::Corrupt(format!("disabled reason {r}")))
            })
            .transpose()?,
        disabled_at,
    })
}

/// An operational event to write (see `emit_operational` in the store macro).
pub(super) struct Operational {
    pub tenant_id: String,
    pub event_type: &'static str,
    /// The webhook it is about: never delivered to it.
    pub about_webhook: String,
    pub at: i64,
    pub data: serde_json::Value,
}

impl Operational {
    /// The event a health change tells, if any (a re-open is the same outage).
    pub fn of_transition(t: &super::HealthTransition) -> Option<Self> {
        use hookrelay_domain::health::HealthChange;
        let (event_type, data) = match t.change {
            HealthChange::Opened => (
                "hookrelay.webhook.failing",
                serde_json::json!({
                    "webhook_id": t.webhook_id, "url": t.url, "reason": "circuit_open",
                    "failure_rate": 1.0, "attempts": t.health.consecutive_failures,
                    "window_seconds": (t.at - t.health.failing_since.unwrap_or(t.at)).max(0) / 1000,
                    "open_until": t.health.open_until.map(hookrelay_domain::time::to_rfc3339),
                }),
            ),
            HealthChange::Disabled(reason) => (
                "hookrelay.webhook.disabled",
                serde_json::json!({"webhook_id": t.webhook_id, "url": t.url, "reason": reason.as_str()}),
            ),
            HealthChange::Recovered => (
                "hookrelay.webhook.recovered",
                serde_json::json!({"webhook_id": t.webhook_id, "url": t.url}),
            ),
            HealthChange::Reopened => return None,
        };
        Some(Self {
            tenant_id: t.tenant_id.to_string(),
            event_type,
            about_webhook: t.webhook_id.to_string(),
            at: t.at,
            data,
        })
    }
}

pub(super) fn parse_status(raw: &str) -> StoreResult<DeliveryStatus> {
    DeliveryStatus::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("delivery status {raw}")))
}

/// Maps a unique-constraint violation to `Conflict`, everything else to `Database`.
pub(super) fn conflict_on_unique(err: sqlx::Error, what: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_owned())
        }
        _ => StoreError::Database(err),
    }
}

/// Most rows per multi-row statement: well under both backends' bind-parameter limits.
pub(super) const INSERT_CHUNK: usize = 256;

/// How a recorded attempt counts in the delivery statistics.
pub(super) fn attempt_tally(
    r: &super::AttemptRecord,
    created_at: i64,
) -> hookrelay_domain::stats::AttemptTally {
    use hookrelay_domain::stats::AttemptTally;
    match r.next {
        super::NextState::Succeeded => AttemptTally::Succeeded {
            latency_ms: (r.finished_at - created_at).max(0) as u64,
        },
        super::NextState::RetryAt(_) => AttemptTally::Retried,
        super::NextState::Failed => AttemptTally::Failed,
    }
}

/// Counter rows are sharded by the writing node (its lease owner), so nodes recording attempts
/// of one webhook at once never wait on each other's row locks. Stable across processes: FNV-1a.
pub(super) fn stats_shard(owner: &str) -> i64 {
    let hash = owner.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % STATS_SHARDS) as i64
}

const STATS_SHARDS: u64 = 16;

/// Counter rows per upsert statement (25 values each).
pub(super) const STATS_CHUNK: usize = 64;

/// The summed counters of `delivery_stats`, in `StatCounts` order (`rows::stat_counts` reads them).
pub(super) const STAT_SUMS: &str = "CAST(SUM(attempts) AS BIGINT) AS attempts, CAST(SUM(retried) AS BIGINT) AS retried, \
    CAST(SUM(succeeded) AS BIGINT) AS succeeded, CAST(SUM(failed) AS BIGINT) AS failed, \
    CAST(SUM(l0) AS BIGINT) AS l0, CAST(SUM(l1) AS BIGINT) AS l1, CAST(SUM(l2) AS BIGINT) AS l2, \
    CAST(SUM(l3) AS BIGINT) AS l3, CAST(SUM(l4) AS BIGINT) AS l4, CAST(SUM(l5) AS BIGINT) AS l5, \
    CAST(SUM(l6) AS BIGINT) AS l6, CAST(SUM(l7) AS BIGINT) AS l7, CAST(SUM(l8) AS BIGINT) AS l8, \
    CAST(SUM(l9) AS BIGINT) AS l9, CAST(SUM(l10) AS BIGINT) AS l10, CAST(SUM(l11) AS BIGINT) AS l11, \
    CAST(SUM(l12) AS BIGINT) AS l12, CAST(SUM(l13) AS BIGINT) AS l13, CAST(SUM(l14) AS BIGINT) AS l14, \
    CAST(SUM(l15) AS BIGINT) AS l15";

/// The additive upsert's tail: a second batch in the same bucket adds to the row.
pub(super) const STATS_UPSERT_TAIL: &str = " ON CONFLICT (tenant_id, width_ms, bucket, webhook_id, shard) DO UPDATE SET \
    attempts = delivery_stats.attempts + excluded.attempts, retried = delivery_stats.retried + excluded.retried, \
    succeeded = delivery_stats.succeeded + excluded.succeeded, failed = delivery_stats.failed + excluded.failed, \
    l0 = delivery_stats.l0 + excluded.l0, l1 = delivery_stats.l1 + excluded.l1, l2 = delivery_stats.l2 + excluded.l2, \
    l3 = delivery_stats.l3 + excluded.l3, l4 = delivery_stats.l4 + excluded.l4, l5 = delivery_stats.l5 + excluded.l5, \
    l6 = delivery_stats.l6 + excluded.l6, l7 = delivery_stats.l7 + excluded.l7, l8 = delivery_stats.l8 + excluded.l8, \
    l9 = delivery_stats.l9 + excluded.l9, l10 = delivery_stats.l10 + excluded.l10, l11 = delivery_stats.l11 + excluded.l11, \
    l12 = delivery_stats.l12 + excluded.l12, l13 = delivery_stats.l13 + excluded.l13, l14 = delivery_stats.l14 + excluded.l14, \
    l15 = delivery_stats.l15 + excluded.l15";

/// A new pending delivery: one row of `INSERT INTO deliveries`. It is due, created and updated
/// at `at`, with no attempt yet; leased when it is handed off.
pub(super) struct DeliveryRow<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub event_id: &'a str,
    pub webhook_id: &'a str,
    pub event_type: &'a str,
    pub source: Option<&'a str>,
    pub at: i64,
    pub lease_owner: Option<&'a str>,
    pub lease_until: Option<i64>,
}

impl<'a> DeliveryRow<'a> {
    pub fn new(
        id: &'a str,
        event: &'a super::Event,
        webhook_id: &'a str,
        at: i64,
        (lease_owner, lease_until): (Option<&'a str>, Option<i64>),
    ) -> Self {
        DeliveryRow {
            id,
            tenant_id: event.tenant_id.as_str(),
            event_id: event.id.as_str(),
            webhook_id,
            event_type: &event.event_type,
            source: event.source.as_deref(),
            at,
            lease_owner,
            lease_until,
        }
    }
}

/// The insert that `push_delivery_rows` completes with the rows.
/// Events without an idempotency key (those with one are inserted one by one, to learn which
/// are duplicates); the rows follow from each store's `push_event_rows`.
pub(super) const INSERT_PLAIN_EVENTS: &str =
    "INSERT INTO events (id, tenant_id, type, source, data, timestamp, created_at) ";

pub(super) const INSERT_DELIVERIES: &str = "INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, event_type, source, status, attempts, next_attempt_at, lease_owner, lease_until, created_at, updated_at) ";

/// A delivery's state after an attempt: one row of `v` in the record statement
/// (`record_attempts_with`), in the order of its columns.
pub(super) struct ResultRow<'a> {
    pub id: &'a str,
    pub owner: &'a str,
    pub status: &'static str,
    pub attempts: i64,
    pub next_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<&'a str>,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub updated_at: i64,
}

impl<'a> ResultRow<'a> {
    pub fn of(r: &'a super::AttemptRecord) -> Self {
        use super::NextState;
        let a = &r.attempt;
        let (status, next_at, delivered_at, failed_at) = match r.next {
            NextState::Succeeded => ("succeeded", None, Some(r.finished_at), None),
            NextState::RetryAt(at) => ("pending", Some(at), None, None),
            NextState::Failed => ("failed", None, None, Some(r.finished_at)),
        };
        ResultRow {
            id: a.delivery_id.as_str(),
            owner: r.lease_owner.as_str(),
            status,
            attempts: i64::from(a.n),
            next_at,
            last_status: a.response_status.map(i64::from),
            last_error: a.error.as_deref(),
            delivered_at,
            failed_at,
            updated_at: r.finished_at,
        }
    }
}

/// Splits `rows` into chunks whose lengths are powers of two, largest first, none over `max`.
///
/// A multi-row statement has one SQL text per row count, and each text is a prepared statement
/// in the connection's cache (on PostgreSQL a plan held by the server, ~100 KB for 64 rows).
/// Batch sizes vary with load, so arbitrary counts either thrash the cache (a re-prepare per
/// statement) or fill it with hundreds of large statements; powers of two bound the texts of
/// one statement to `log2(max) + 1` for at most `log2(rows)` executions.
pub(super) fn pow2_chunks<T>(rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let max = max.max(1);
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = (1usize << rest.len().ilog2()).min(max);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// The values of an `IN (...)` list padded to a power of two by repeating the last one (a
/// repeat changes nothing), for the same reason as `pow2_chunks`.
pub(super) fn padded_in_list<T>(values: &[T]) -> impl Iterator<Item = &T> {
    let padded = values.len().next_power_of_two();
    let last = values.last();
    values
        .iter()
        .chain(std::iter::repeat_n(last, padded - values.len()).flatten())
}

/// Chooses which of the claim's candidates, offered in due order, to lease: at most `limit` in
/// all, at most `cap` of any one webhook whose deliveries are batchable (circuit closed, not
/// ordered), and one of any other (the probe of a half-open circuit, the head of an ordered
/// webhook). The same choice as ranking each webhook's candidates in due order and keeping the
/// first `cap` (or one), as PostgreSQL's claim does with `ROW_NUMBER()`; offered one at a time,
/// so the caller can stop reading candidates once the batch is full.
pub(super) struct WebhookCaps {
    cap: u32,
    limit: usize,
    taken: HashMap<String, u32>,
    /// `(id, webhook_id)`, in due order.
    pub(super) chosen: Vec<(String, String)>,
}

impl WebhookCaps {
    pub(super) fn new(cap: u32, limit: u32) -> Self {
        Self {
            cap,
            limit: limit as usize,
            taken: HashMap::new(),
            chosen: Vec::new(),
        }
    }

    /// Takes the next candidate if its webhook has room; false once `limit` are chosen.
    pub(super) fn offer(&mut self, id: String, webhook: String, batchable: bool) -> bool {
        if self.is_full() {
            return false;
        }
        let room = if batchable { self.cap } else { 1 };
        let n = match self.taken.get_mut(&webhook) {
            Some(n) => n,
            None => self.taken.entry(webhook.clone()).or_default(),
        };
        if *n < room {
            *n += 1;
            self.chosen.push((id, webhook));
        }
        !self.is_full()
    }

    fn is_full(&self) -> bool {
        self.chosen.len() >= self.limit
    }
}

pub(super) const MINUTE_MS: i64 = 60_000;
pub(super) const DAY_MS: i64 = 86_400_000;

/// Start of the bucket holding `now`.
pub(super) fn bucket_start(now: i64, size: i64) -> i64 {
    now - now.rem_euclid(size)
}

/// Claim condition (on `d` joined to its webhook `w`): an ordered webhook's delivery is
/// claimable only while no older one of it is pending — waiting for a retry, or leased and in
/// flight — so they go one at a time, in creation order; a dead-lettered one lets the next go.
/// Under `SKIP LOCKED` a second claimer skips the locked head and still sees it pending.
/// The head is found as the first entry of `deliveries_webhook_pending_order`: one index probe
/// per candidate. (The earlier `NOT EXISTS` of an older pending row let PostgreSQL, with fresh
/// statistics, scan the table for each candidate: 0.7 s per claim behind a 900,000 backlog.)
pub(super) const ORDERED_HEAD_ONLY: &str =
    " AND (w.ordered = FALSE OR d.id = (SELECT e.id FROM deliveries e \
    WHERE e.webhook_id = d.webhook_id AND e.status = 'pending' ORDER BY e.created_at, e.id LIMIT 1))";

/// How many pending deliveries, in due order, one claim walks before it stops. Past them the
/// claim goes webhook by webhook (`lease_due_per_webhook`): a backlog that cannot be sent (an
/// open circuit's, a paused or rate-gated webhook's) is the oldest due work, and walking all of
/// it on every claim would cost each claim, and each idle wakeup, a scan of the whole backlog.
pub(super) const DUE_WINDOW: i64 = 1024;

/// How many webhooks with pending deliveries one claim past the window visits; successive
/// claims take turns from where the last stopped (`ClaimCursor`).
pub(super) const PER_WEBHOOK_VISITS: usize = 256;

/// The webhooks with pending deliveries after `$1`, in id order: a skip-scan of the partial
/// index `deliveries_webhook_pending_order`, one seek per webhook however many rows each holds.
/// The `ORDER BY` names that index's columns so no planner prefers another one.
pub(super) const WEBHOOKS_WITH_PENDING: &str = "WITH RECURSIVE hooks(id, n) AS (\
    SELECT (SELECT webhook_id FROM deliveries WHERE status = 'pending' AND webhook_id > $1 ORDER BY webhook_id, created_at, id LIMIT 1), CAST(1 AS BIGINT) \
    UNION ALL SELECT (SELECT webhook_id FROM deliveries WHERE status = 'pending' AND webhook_id > hooks.id ORDER BY webhook_id, created_at, id LIMIT 1), hooks.n + 1 \
    FROM hooks WHERE hooks.id IS NOT NULL AND hooks.n < $2) \
    SELECT id FROM hooks WHERE id IS NOT NULL";

/// One webhook's pending deliveries `z` (the text after `ROWS_OF_WEBHOOK` in each backend), due
/// and free, in due order: one range of the index `deliveries_webhook`. `status` is compared to a
/// subquery, not a literal, so that neither planner can match the partial index `deliveries_due`
/// (whose predicate is that literal): with one webhook holding nearly every row, statistics make
/// PostgreSQL prefer walking `deliveries_due` and filtering, which is the scan this avoids.
pub(super) const WEBHOOK_ROWS_DUE: &str = "z.status = (SELECT 'pending') AND z.next_attempt_at <= ";

/// Where the last claim past the due window stopped visiting webhooks; the next one goes on from
/// there, and starts over once a visit reaches the last webhook. In memory: after a restart the
/// turn starts at the beginning, and nodes keep turns of their own.
#[derive(Default)]
pub(super) struct ClaimCursor(std::sync::Mutex<String>);

impl ClaimCursor {
    pub(super) fn get(&self) -> String {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// After a visit of `visited` (in id order): a full visit may have more after it.
    pub(super) fn advance(&self, visited: &[String]) {
        if let Ok(mut cursor) = self.0.lock() {
            *cursor = match visited.last() {
                Some(last) if visited.len() >= PER_WEBHOOK_VISITS => last.clone(),
                _ => String::new(),
            };
        }
    }
}

/// One lease of shared rate-limit slots (`Store::lease_rate_slots`) as one upsert, so leases
/// taken at once on several nodes never overlap: $1 key, $2 interval, $3 horizon, $4 wanted,
/// all µs. From `start = max(tat, now)`, grant the slots starting by `now + horizon`, at most
/// `wanted`, and move `tat` past them; `at_us` keeps the clock read so the caller learns when the
/// first slot starts. A fresh key starts at `now`. PostgreSQL reads its own clock, so nodes whose
/// clocks differ still agree; SQLite takes it as $5. `WHERE true` keeps SQLite's parser from
/// reading `ON CONFLICT` as part of the `SELECT`.
macro_rules! rate_lease_sql {
    // Slots `start + k·interval` (k ≥ 0) starting by `now + horizon`, at most `wanted`; the
    // `CASE` because SQL's integer division truncates towards zero, not down.
    (@granted $max:literal, $min:literal) => {
        concat!(
            "CASE WHEN ", $max, "(rate_slots.tat_us, excluded.at_us) > excluded.at_us + $3 THEN 0 \
            ELSE ", $min, "($4, (excluded.at_us + $3 - ", $max, "(rate_slots.tat_us, excluded.at_us)) / $2 + 1) END"
        )
    };
    ($now:literal, $max:literal, $min:literal) => {
        concat!(
            "INSERT INTO rate_slots (key, tat_us, granted, at_us) \
            SELECT $1, n.now_us + $2 * ", $min, "($4, $3 / $2 + 1), ", $min, "($4, $3 / $2 + 1), n.now_us \
            FROM (SELECT ", $now, " AS now_us) n WHERE true \
            ON CONFLICT (key) DO UPDATE SET \
            granted = ", rate_lease_sql!(@granted $max, $min), ", \
            tat_us = ", $max, "(rate_slots.tat_us, excluded.at_us) + $2 * ", rate_lease_sql!(@granted $max, $min), ", \
            at_us = excluded.at_us \
            RETURNING tat_us, granted, at_us"
        )
    };
}
pub(super) const RATE_LEASE_POSTGRES: &str = rate_lease_sql!(
    "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
    "GREATEST",
    "LEAST"
);
pub(super) const RATE_LEASE_SQLITE: &str = rate_lease_sql!("$5", "MAX", "MIN");

/// What one lease statement's `(tat_us, granted, at_us)` means to the caller.
pub(super) fn rate_grant(
    lease: &super::RateLease,
    (tat, granted, at): (i64, i64, i64),
) -> super::RateGrant {
    let first_start = tat - granted * lease.interval_us;
    let first_in_us = if granted > 0 {
        first_start - at
    } else {
        // Nothing starts by `at + horizon`; the next slot will once the clock reaches this.
        first_start - lease.horizon_us - at
    };
    super::RateGrant {
        granted: u32::try_from(granted).unwrap_or(0),
        first_in_us: first_in_us.max(0),
    }
}

pub(super) const WEBHOOK_COLUMNS: &str =
    "w.id, w.tenant_id, w.url, w.kind, w.description, w.active, \
    w.events, w.headers, w.rate_limit_per_sec, w.templates, w.retry_schedule, w.secrets, \
    w.filter, w.transform, w.target, w.url_sealed, w.ordered, w.circuit_state, w.consecutive_failures, w.circuit_open_until, \
    w.circuit_opens, w.failing_since, w.disabled_reason, w.disabled_at, w.created_at, w.updated_at";

pub(super) const DELIVERY_COLUMNS: &str =
    "d.id, d.tenant_id, d.event_id, d.webhook_id, d.event_type, \
    d.source, d.status, d.attempts, d.next_attempt_at, d.last_response_status, d.last_error, \
    d.created_at, d.delivered_at, d.failed_at";

pub(super) const EVENT_COLUMNS: &str =
    "e.id, e.tenant_id, e.type, e.source, e.idempotency_key, e.data, e.timestamp, e.created_at";

pub(super) const SOURCE_COLUMNS: &str =
    "s.id, s.tenant_id, s.name, s.provider, s.config, s.secret, s.active, s.allow_unsigned, \
    s.rate_limit_per_min, s.created_at, s.updated_at";

pub(super) const INBOUND_REQUEST_COLUMNS: &str =
    "r.id, r.source_id, r.tenant_id, r.received_at, r.status, r.reason, r.event_id, \
    r.event_type, r.provider_id, r.request_id, r.headers, r.body, r.body_truncated, r.body_size";

macro_rules! impl_store {
    ($store:ty, $db:ty, $row:ty, $backend:literal) => {
        mod rows {
            use super::super::common::*;
            use super::super::models::*;
            use super::super::StoreResult;
            use hookrelay_domain::*;
            use sqlx::Row;

            pub fn stat_counts(r: &$row) -> StoreResult<hookrelay_domain::stats::StatCounts> {
                let n = |name: &str| -> StoreResult<u64> { Ok(r.try_get::<Option<i64>, _>(name)?.unwrap_or(0).max(0) as u64) };
                let mut latency = hookrelay_domain::stats::LatencyHistogram::default();
                for (i, bucket) in latency.0.iter_mut().enumerate() {
                    *bucket = n(&format!("l{i}"))?;
                }
                Ok(hookrelay_domain::stats::StatCounts {
                    attempts: n("attempts")?,
                    retried: n("retried")?,
                    succeeded: n("succeeded")?,
                    failed: n("failed")?,
                    latency,
                })
            }

            pub fn tenant(r: &$row) -> StoreResult<Tenant> {
                Ok(Tenant {
                    id: TenantId::from_trusted(r.try_get("id")?),
                    name: r.try_get("name")?,
                    quotas: parse_quotas(&r.try_get::<String, _>("quotas")?)?,
                    retention_days: r.try_get::<Option<i64>, _>("retention_days")?.map(|d| d.clamp(0, i64::from(u32::MAX)) as u32),
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            }

            pub fn api_key(r: &$row) -> StoreResult<ApiKey> {
                Ok(ApiKey {
                    id: KeyId::from_trusted(r.try_get("id")?),
                    tenant_id: TenantId::from_trusted(r.try_get("tenant_id")?),
                    name: r.try_get("name")?,
                    role: parse_role(&r.try_get::<String, _>("role")?)?,
                    key_hash: r.try_get("key_hash")?,
                    server_admin: r.try_get("server_admin")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            pub fn portal_link(r: &$row) -> StoreResult<PortalLink> {
                Ok(PortalLink {
                    id: PortalLinkId::from_trusted(r.try_get("id")?),
                    tenant_id: TenantId::from_trusted(r.try_get("tenant_id")?),
                    role: parse_role(&r.try_get::<String, _>("role")?)?,
                    token_hash: r.try_get("token_hash")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            }

            pub fn user(r: &$row) -> StoreResult<User> {
                Ok(User {
                    id: UserId::from_trusted(r.try_get("id")?),
                    tenant_id: TenantId::from_trusted(r.try_get("tenant_id")?),
                    email: r.try_get("email")?,
                    password_hash: r.try_get("password_hash")?,
                    role: parse_role(&r.try_get::<String, _>("role")?)?,
                    server_admin: r.try_get("server_admin")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            pub fn webhook(r: &$row, ring: &crate::secrets::Keyring) -> StoreResult<Webhook> {
                let schedule: Option<String> = r.try_get("retry_schedule")?;
                let id: String = r.try_get("id")?;
                let url = decode_url(r.try_get("url")?, r.try_get::<Option<String>, _>("url_sealed")?.as_deref(), ring, &id)?;
                Ok(Webhook {
                    secrets: decode_secrets(&r.try_get::<String, _>("secrets")?, ring, &id)?,
                    id: WebhookId::from_trusted(id),
                    tenant_id: TenantId::from_trusted(r.try_get("tenant_id")?),
                    url,
                    kind: parse_kind(&r.try_get::<String, _>("kind")?)?,
                    description: r.try_get("description")?,
                    active: r.try_get("active")?,
                    events: from_json(&r.try_get::<String, _>("events")?, "webhook events")?,
                    headers: parse_string_map(&r.try_get::<String, _>("headers")?, "webhook headers")?,
                    rate_limit_per_sec: r.try_get::<Option<i64>, _>("rate_limit_per_sec")?.map(|v| v as u32),
                    templates: parse_string_map(&r.try_get::<String, _>("templates")?, "webhook templates")?,
                    retry_schedule: schedule.map(|s| from_json(&s, "retry schedule")).transpose()?,
                    filter: r.try_get::<Option<String>, _>("filter")?.map(|f| from_json(&f, "webhook filter")).transpose()?,
                    transform: r.try_get("transform")?,
                    target: r.try_get::<Option<String>, _>("target")?.map(|t| from_json(&t, "webhook target")).transpose()?,
                    ordered: r.try_get("ordered")?,
                    health: parse_health(
                        &r.try_get::<String, _>("circuit_state")?,
                        r.try_get("consecutive_failures")?,
                        r.try_get("circuit_open_until")?,
                        r.try_get("circuit_opens")?,
                        r.try_get("failing_since")?,
                        r.try_get::<Option<String>, _>("disabled_reason")?.as_deref(),
                        r.try_get("disabled_at")?,
                    )?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            }

            pub fn event_type(r: &$row) -> StoreResult<EventType> {
                let doc = |col: &str| -> StoreResult<Option<serde_json::Value>> {
                    r.try_get::<Option<String>, _>(col)?.map(|s| from_json(&s, col)).transpose()
                };
                Ok(EventType {
                    tenant_id: TenantId::from_trusted(r.try_get("tenant_id")?),
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    schema: doc("data_schema")?,
                    example: doc("example")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            }

            pub fn event(r: &$row) -> StoreResult<Event> {
                Ok(Event {
                    id: EventId::from_trusted(r.try_get("id")?),
                    tenant_id: TenantId::from_trusted(r.try_get("tenant_id")?),
                    event_type: r.try_get("type")?,
                    source: r.try_get("source")?,
                    idempotency_key: r.try_get("idempotency_key")?,
                    data: r.try_get("data")?,
                    timestamp: r.try_get("timestamp")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            pub fn delivery(r: &$row) -> StoreResult<Delivery> {
                Ok(Delivery {
                    id: DeliveryId::from_trusted(r.try_get("id")?),
                    tenant_id: TenantId::from_trusted(r.try_get("tenant_id")?),
                    event_id: EventId::from_trusted(r.try_get("event_id")?),
                    webhook_id: WebhookId::from_trusted(r.try_get("webhook_id")?),
                    event_type: r.try_get("event_type")?,
                    source: r.try_get("source")?,
                    status: parse_status(&r.try_get::<String, _>("status")?)?,
                    attempts: r.try_get::<i64, _>("attempts")? as u32,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                    last_response_status: r.try_get::<Option<i64>, _>("last_response_status")?.map(|s| s as u16),
                    last_error: r.try_get("last_error")?,
                    created_at: r.try_get("created_at")?,
                    delivered_at: r.try_get("delivered_at")?,
                    failed_at: r.try_get("failed_at")?,
                })
            }

            pub fn attempt(r: &$row) -> StoreResult<Attempt> {
                Ok(Attempt {
                    delivery_id: DeliveryId::from_trusted(r.try_get("delivery_id")?),
                    n: r.try_get::<i64, _>("n")? as u32,
                    started_at: r.try_get("started_at")?,
                    duration_ms: r.try_get::<i64, _>("duration_ms")? as u32,
                    request_headers: r.try_get("request_headers")?,
                    response_status: r.try_get::<Option<i64>, _>("response_status")?.map(|s| s as u16),
                    response_body: r.try_get("response_body")?,
                    error: r.try_get("error")?,
                    error_kind: r.try_get("error_kind")?,
                })
            }

            pub fn source(r: &$row, ring: &crate::secrets::Keyring) -> StoreResult<Source> {
                let secret: Option<String> = r.try_get("secret")?;
                let id: String = r.try_get("id")?;
                Ok(Source {
                    secret: secret.map(|s| decode_source_secret(&s, ring, &id)).transpose()?,
                    id: SourceId::from_trusted(id),
                    tenant_id: TenantId::from_trusted(r.try_get("tenant_id")?),
                    name: r.try_get("name")?,
                    provider: r.try_get("provider")?,
                    config: from_json(&r.try_get::<String, _>("config")?, "source config")?,
                    active: r.try_get("active")?,
                    allow_unsigned: r.try_get("allow_unsigned")?,
                    rate_limit_per_min: r.try_get::<i64, _>("rate_limit_per_min")?.clamp(0, i64::from(u32::MAX)) as u32,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            }

            pub fn inbound_request(r: &$row) -> StoreResult<InboundRequest> {
                Ok(InboundRequest {
                    id: InboundRequestId::from_trusted(r.try_get("id")?),
                    source_id: SourceId::from_trusted(r.try_get("source_id")?),
                    tenant_id: TenantId::from_trusted(r.try_get("tenant_id")?),
                    received_at: r.try_get("received_at")?,
                    status: parse_inbound_status(&r.try_get::<String, _>("status")?)?,
                    reason: r.try_get("reason")?,
                    event_id: r.try_get::<Option<String>, _>("event_id")?.map(EventId::from_trusted),
                    event_type: r.try_get("event_type")?,
                    provider_id: r.try_get("provider_id")?,
                    request_id: r.try_get("request_id")?,
                    headers: r.try_get("headers")?,
                    body: r.try_get("body")?,
                    body_truncated: r.try_get("body_truncated")?,
                    body_size: r.try_get::<i64, _>("body_size")?.max(0) as u64,
                })
            }
        }

        #[async_trait::async_trait]
        impl super::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> super::StoreResult<()> {
                self.run_migrations().await
            }

            async fn ping(&self) -> super::StoreResult<()> {
                sqlx::query("SELECT 1").execute(self.reader()).await?;
                Ok(())
            }

            async fn create_tenant(&self, t: &super::Tenant) -> super::StoreResult<()> {
                sqlx::query("INSERT INTO tenants (id, name, quotas, created_at, updated_at, retention_days) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(t.id.as_str())
                    .bind(&t.name)
                    .bind(super::common::to_json(&t.quotas))
                    .bind(t.created_at)
                    .bind(t.updated_at)
                    .bind(t.retention_days.map(i64::from))
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::common::conflict_on_unique(e, "a tenant with this name exists"))?;
                Ok(())
            }

            async fn get_tenant(&self, id: &hookrelay_domain::TenantId) -> super::StoreResult<super::Tenant> {
                let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or(super::StoreError::NotFound)?;
                rows::tenant(&row)
            }

            async fn get_tenant_by_name(&self, name: &str) -> super::StoreResult<Option<super::Tenant>> {
                let row = sqlx::query("SELECT * FROM tenants WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(rows::tenant).transpose()
            }

            async fn list_tenants(&self, page: &super::PageRequest) -> super::StoreResult<super::Page<super::Tenant>> {
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT * FROM tenants WHERE 1 = 1");
                push_page(&mut q, "id", page);
                let rows = q.build().fetch_all(self.reader()).await?;
                let items = rows.iter().map(rows::tenant).collect::<super::StoreResult<Vec<_>>>()?;
                Ok(super::Page::from_rows(items, page.limit, |t| t.id.to_string()))
            }

            async fn update_tenant(&self, t: &super::Tenant) -> super::StoreResult<()> {
                let done = sqlx::query("UPDATE tenants SET name = $1, quotas = $2, updated_at = $3, retention_days = $5 WHERE id = $4")
                    .bind(&t.name)
                    .bind(super::common::to_json(&t.quotas))
                    .bind(t.updated_at)
                    .bind(t.id.as_str())
                    .bind(t.retention_days.map(i64::from))
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::common::conflict_on_unique(e, "a tenant with this name exists"))?;
                expect_one(done.rows_affected())
            }

            async fn create_api_key(&self, k: &super::ApiKey) -> super::StoreResult<()> {
                sqlx::query("INSERT INTO api_keys (id, tenant_id, name, role, key_hash, server_admin, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(k.id.as_str())
                    .bind(k.tenant_id.as_str())
                    .bind(&k.name)
                    .bind(k.role.as_str())
                    .bind(&k.key_hash)
                    .bind(k.server_admin)
                    .bind(k.created_at)
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::common::conflict_on_unique(e, "this key exists"))?;
                Ok(())
            }

            async fn find_api_key_by_hash(&self, hash: &str) -> super::StoreResult<Option<super::ApiKey>> {
                let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1")
                    .bind(hash)
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(rows::api_key).transpose()
            }

            async fn list_api_keys(&self, tenant: &hookrelay_domain::TenantId, page: &super::PageRequest) -> super::StoreResult<super::Page<super::ApiKey>> {
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT * FROM api_keys WHERE tenant_id = ");
                q.push_bind(tenant.as_str());
                push_page(&mut q, "id", page);
                let rows = q.build().fetch_all(self.reader()).await?;
                let items = rows.iter().map(rows::api_key).collect::<super::StoreResult<Vec<_>>>()?;
                Ok(super::Page::from_rows(items, page.limit, |k| k.id.to_string()))
            }

            async fn delete_api_key(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::KeyId) -> super::StoreResult<()> {
                let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND tenant_id = $2")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .execute(self.writer())
                    .await?;
                expect_one(done.rows_affected())
            }

            async fn has_server_admin_key(&self) -> super::StoreResult<bool> {
                let row = sqlx::query("SELECT id FROM api_keys WHERE server_admin = TRUE LIMIT 1")
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.is_some())
            }

            async fn create_user(&self, u: &super::User) -> super::StoreResult<()> {
                sqlx::query("INSERT INTO users (id, tenant_id, email, password_hash, role, server_admin, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(u.id.as_str())
                    .bind(u.tenant_id.as_str())
                    .bind(&u.email)
                    .bind(&u.password_hash)
                    .bind(u.role.as_str())
                    .bind(u.server_admin)
                    .bind(u.created_at)
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::common::conflict_on_unique(e, "a user with this email exists"))?;
                Ok(())
            }

            async fn find_user_by_email(&self, email: &str) -> super::StoreResult<Option<super::User>> {
                let row = sqlx::query("SELECT * FROM users WHERE email = $1")
                    .bind(email)
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(rows::user).transpose()
            }

            async fn list_users(&self, tenant: &hookrelay_domain::TenantId, page: &super::PageRequest) -> super::StoreResult<super::Page<super::User>> {
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT * FROM users WHERE tenant_id = ");
                q.push_bind(tenant.as_str());
                push_page(&mut q, "id", page);
                let rows = q.build().fetch_all(self.reader()).await?;
                let items = rows.iter().map(rows::user).collect::<super::StoreResult<Vec<_>>>()?;
                Ok(super::Page::from_rows(items, page.limit, |u| u.id.to_string()))
            }

            async fn delete_user(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::UserId) -> super::StoreResult<()> {
                // The user's sessions go with it: `sessions.user_id` cascades on delete.
                let done = sqlx::query("DELETE FROM users WHERE id = $1 AND tenant_id = $2")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .execute(self.writer())
                    .await?;
                expect_one(done.rows_affected())
            }

            async fn has_users(&self) -> super::StoreResult<bool> {
                let row = sqlx::query("SELECT id FROM users LIMIT 1")
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.is_some())
            }

            async fn create_session(&self, s: &super::Session) -> super::StoreResult<()> {
                sqlx::query("INSERT INTO sessions (token_hash, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&s.token_hash)
                    .bind(s.user_id.as_str())
                    .bind(s.expires_at)
                    .bind(s.created_at)
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::common::conflict_on_unique(e, "this session exists"))?;
                Ok(())
            }

            async fn find_session(&self, token_hash: &str, now: hookrelay_domain::time::Millis) -> super::StoreResult<Option<(super::Session, super::User)>> {
                let row = sqlx::query("SELECT s.token_hash, s.user_id, s.expires_at, s.created_at AS session_created_at, u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2")
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(self.reader())
                    .await?;
                let Some(r) = row else { return Ok(None) };
                use sqlx::Row;
                let session = super::Session {
                    token_hash: r.try_get("token_hash")?,
                    user_id: hookrelay_domain::UserId::from_trusted(r.try_get("user_id")?),
                    expires_at: r.try_get("expires_at")?,
                    created_at: r.try_get("session_created_at")?,
                };
                Ok(Some((session, rows::user(&r)?)))
            }

            async fn delete_session(&self, token_hash: &str) -> super::StoreResult<()> {
                let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(self.writer())
                    .await?;
                expect_one(done.rows_affected())
            }

            async fn purge_expired_sessions(&self, now: hookrelay_domain::time::Millis) -> super::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                // Login failures a day old are past any lockout window (at most a day).
                sqlx::query("DELETE FROM login_failures WHERE since <= $1")
                    .bind(now - super::common::DAY_MS)
                    .execute(self.writer())
                    .await?;
                sqlx::query("DELETE FROM portal_links WHERE expires_at <= $1")
                    .bind(now - super::common::DAY_MS)
                    .execute(self.writer())
                    .await?;
                // Rate-limit rows idle for a day are as good as new (a limit that changed
                // leaves its old row behind).
                sqlx::query("DELETE FROM rate_slots WHERE tat_us <= $1")
                    .bind((now - super::common::DAY_MS) * 1000)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn login_failures(&self, key: &str, now: hookrelay_domain::time::Millis, window_ms: i64) -> super::StoreResult<Option<(u32, hookrelay_domain::time::Millis)>> {
                let row: Option<(i64, i64)> = sqlx::query_as("SELECT count, since FROM login_failures WHERE key = $1 AND since > $2")
                    .bind(key)
                    .bind(now - window_ms)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.map(|(count, since)| (u32::try_from(count).unwrap_or(u32::MAX), since)))
            }

            async fn add_login_failure(&self, keys: &[&str], now: hookrelay_domain::time::Millis, window_ms: i64) -> super::StoreResult<()> {
                for key in keys {
                    // One statement, so failures counted at once on several nodes all count.
                    sqlx::query("INSERT INTO login_failures (key, count, since) VALUES ($1, 1, $2) \
                        ON CONFLICT (key) DO UPDATE SET \
                        count = CASE WHEN login_failures.since <= $3 THEN 1 ELSE login_failures.count + 1 END, \
                        since = CASE WHEN login_failures.since <= $3 THEN $2 ELSE login_failures.since END")
                        .bind(*key)
                        .bind(now)
                        .bind(now - window_ms)
                        .execute(self.writer())
                        .await?;
                }
                Ok(())
            }

            async fn clear_login_failures(&self, key: &str) -> super::StoreResult<()> {
                sqlx::query("DELETE FROM login_failures WHERE key = $1")
                    .bind(key)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn create_portal_link(&self, l: &super::PortalLink) -> super::StoreResult<()> {
                sqlx::query("INSERT INTO portal_links (id, tenant_id, role, token_hash, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(l.id.as_str())
                    .bind(l.tenant_id.as_str())
                    .bind(l.role.as_str())
                    .bind(&l.token_hash)
                    .bind(l.created_at)
                    .bind(l.expires_at)
                    .bind(l.revoked_at)
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::common::conflict_on_unique(e, "this portal link exists"))?;
                Ok(())
            }

            async fn find_portal_link_by_hash(&self, token_hash: &str, now: hookrelay_domain::time::Millis) -> super::StoreResult<Option<super::PortalLink>> {
                let row = sqlx::query("SELECT * FROM portal_links WHERE token_hash = $1 AND expires_at > $2 AND revoked_at IS NULL")
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(rows::portal_link).transpose()
            }

            async fn list_portal_links(&self, tenant: &hookrelay_domain::TenantId, now: hookrelay_domain::time::Millis) -> super::StoreResult<Vec<super::PortalLink>> {
                let rows = sqlx::query("SELECT * FROM portal_links WHERE tenant_id = $1 AND expires_at > $2 AND revoked_at IS NULL ORDER BY id DESC LIMIT 1000")
                    .bind(tenant.as_str())
                    .bind(now)
                    .fetch_all(self.reader())
                    .await?;
                rows.iter().map(rows::portal_link).collect()
            }

            async fn revoke_portal_link(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::PortalLinkId, now: hookrelay_domain::time::Millis) -> super::StoreResult<()> {
                let done = sqlx::query("UPDATE portal_links SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL AND expires_at > $3")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                expect_one(done.rows_affected())
            }

            async fn lease_rate_slots(&self, leases: &[super::RateLease], now_us: i64) -> super::StoreResult<Vec<super::RateGrant>> {
                let sql = if $backend == "postgres" { super::common::RATE_LEASE_POSTGRES } else { super::common::RATE_LEASE_SQLITE };
                let mut grants = Vec::with_capacity(leases.len());
                for lease in leases {
                    let interval = lease.interval_us.max(1);
                    let q = sqlx::query_as(sql)
                        .bind(&lease.key)
                        .bind(interval)
                        .bind(lease.horizon_us.max(0))
                        .bind(i64::from(lease.wanted));
                    // PostgreSQL reads its own clock: a fifth parameter would be refused.
                    let q = if $backend == "postgres" { q } else { q.bind(now_us) };
                    let row: (i64, i64, i64) = q.fetch_one(self.writer()).await?;
                    grants.push(super::common::rate_grant(lease, row));
                }
                Ok(grants)
            }

            async fn create_webhook(&self, w: &super::Webhook) -> super::StoreResult<()> {
                let q = sqlx::query("INSERT INTO webhooks (id, tenant_id, url, kind, description, active, events, headers, rate_limit_per_sec, templates, retry_schedule, secrets, filter, transform, target, url_sealed, ordered, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)")
                    .bind(w.id.as_str())
                    .bind(w.tenant_id.as_str());
                bind_webhook_fields(q, w, self.keyring()).bind(w.created_at).bind(w.updated_at).execute(self.writer()).await?;
                Ok(())
            }

            async fn get_webhook(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::WebhookId) -> super::StoreResult<super::Webhook> {
                let sql = format!("SELECT {} FROM webhooks w WHERE w.id = $1 AND w.tenant_id = $2", super::common::WEBHOOK_COLUMNS);
                let row = sqlx::query(&sql)
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or(super::StoreError::NotFound)?;
                rows::webhook(&row, self.keyring())
            }

            async fn list_webhooks(&self, tenant: &hookrelay_domain::TenantId, query: &super::WebhookQuery, page: &super::PageRequest) -> super::StoreResult<super::Page<super::Webhook>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!("SELECT {} FROM webhooks w WHERE w.tenant_id = ", super::common::WEBHOOK_COLUMNS));
                q.push_bind(tenant.as_str());
                if let Some(active) = query.active {
                    q.push(" AND w.active = ").push_bind(active);
                }
                match &query.event {
                    // Filters are matched in Rust, so fetch the tenant's (bounded) list and page it here.
                    Some(event_type) => {
                        if let Some(cursor) = &page.cursor {
                            q.push(" AND w.id < ").push_bind(cursor.clone());
                        }
                        q.push(" ORDER BY w.id DESC");
                        let rows = q.build().fetch_all(self.reader()).await?;
                        let mut items = Vec::new();
                        for row in &rows {
                            let w = rows::webhook(row, self.keyring())?;
                            let matches = hookrelay_domain::EventFilter::parse(&w.events)
                                .map(|f| f.matches(event_type))
                                .unwrap_or(false);
                            if matches {
                                items.push(w);
                                if items.len() > page.limit as usize {
                                    break;
                                }
                            }
                        }
                        Ok(super::Page::from_rows(items, page.limit, |w| w.id.to_string()))
                    }
                    None => {
                        push_page(&mut q, "w.id", page);
                        let rows = q.build().fetch_all(self.reader()).await?;
                        let items = rows.iter().map(|r| rows::webhook(r, self.keyring())).collect::<super::StoreResult<Vec<_>>>()?;
                        Ok(super::Page::from_rows(items, page.limit, |w| w.id.to_string()))
                    }
                }
            }

            async fn count_webhooks(&self, tenant: &hookrelay_domain::TenantId) -> super::StoreResult<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_one(self.reader())
                    .await?;
                Ok(n as u64)
            }

            async fn update_webhook(&self, w: &super::Webhook, discard_held: bool) -> super::StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                if w.active && discard_held {
                    // Before the update, while the row still says whether it was paused: only a
                    // re-activation discards, an active webhook's pending deliveries held nothing.
                    sqlx::query("UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = $1 WHERE webhook_id = $2 AND status = 'pending' AND lease_owner IS NULL AND EXISTS (SELECT 1 FROM webhooks WHERE id = $2 AND tenant_id = $3 AND active = FALSE)")
                        .bind(w.updated_at)
                        .bind(w.id.as_str())
                        .bind(w.tenant_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                // Re-activating (a paused or auto-disabled webhook) clears its health: the reason
                // it was disabled and its circuit. `active` on the right is the row's old value.
                let q = sqlx::query("UPDATE webhooks SET circuit_state = CASE WHEN $4 AND active = FALSE THEN 'closed' ELSE circuit_state END, \
                    consecutive_failures = CASE WHEN $4 AND active = FALSE THEN 0 ELSE consecutive_failures END, \
                    circuit_open_until = CASE WHEN $4 AND active = FALSE THEN NULL ELSE circuit_open_until END, \
                    circuit_opens = CASE WHEN $4 AND active = FALSE THEN 0 ELSE circuit_opens END, \
                    failing_since = CASE WHEN $4 AND active = FALSE THEN NULL ELSE failing_since END, \
                    disabled_reason = CASE WHEN $4 THEN NULL ELSE disabled_reason END, \
                    disabled_at = CASE WHEN $4 THEN NULL ELSE disabled_at END, \
                    url = $1, kind = $2, description = $3, active = $4, events = $5, headers = $6, rate_limit_per_sec = $7, templates = $8, retry_schedule = $9, secrets = $10, filter = $11, transform = $12, target = $13, url_sealed = $14, ordered = $15, updated_at = $16 WHERE id = $17 AND tenant_id = $18");
                let done = bind_webhook_fields(q, w, self.keyring())
                    .bind(w.updated_at)
                    .bind(w.id.as_str())
                    .bind(w.tenant_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                expect_one(done.rows_affected())?;
                if w.active {
                    Self::notify_due(&mut tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn delete_webhook(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::WebhookId) -> super::StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .execute(&mut *tx)
                    .await?;
                expect_one(done.rows_affected())?;
                sqlx::query("UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE webhook_id = $2 AND status = 'pending'")
                    .bind(hookrelay_domain::time::now_millis())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn webhook_stats(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::WebhookId, since: i64) -> super::StoreResult<super::WebhookStats> {
                use sqlx::Row;
                // Bounded: a window's percentiles are computed from at most this many attempts.
                let rows = sqlx::query("SELECT a.response_status, a.error_kind, a.duration_ms FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = $1 AND d.tenant_id = $2 AND a.started_at >= $3 ORDER BY a.started_at DESC LIMIT 100000")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .bind(since)
                    .fetch_all(self.reader())
                    .await?;
                let mut stats = super::WebhookStats::default();
                for row in &rows {
                    let status: Option<i64> = row.try_get("response_status")?;
                    let error_kind: Option<String> = row.try_get("error_kind")?;
                    stats.attempts += 1;
                    // No status and no error: a broker's acknowledgement.
                    if error_kind.is_none() && matches!(status, None | Some(200..=299)) {
                        stats.successes += 1;
                    } else {
                        stats.failures += 1;
                    }
                    stats.durations_ms.push(row.try_get::<i64, _>("duration_ms")? as u32);
                }
                stats.durations_ms.sort_unstable();
                Ok(stats)
            }

            async fn delivery_stats(&self, tenant: &hookrelay_domain::TenantId, query: &super::StatsQuery) -> super::StoreResult<Vec<(i64, hookrelay_domain::stats::StatCounts)>> {
                let step = query.step_ms.max(query.width_ms).max(1);
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT (bucket / ");
                q.push_bind(step).push(") * ").push_bind(step).push(" AS point, ").push(super::common::STAT_SUMS)
                    .push(" FROM delivery_stats WHERE tenant_id = ").push_bind(tenant.as_str())
                    .push(" AND width_ms = ").push_bind(query.width_ms)
                    .push(" AND bucket >= ").push_bind(query.since);
                if let Some(hook) = &query.webhook {
                    q.push(" AND webhook_id = ").push_bind(hook.as_str());
                }
                q.push(" GROUP BY point ORDER BY point");
                let rows = q.build().fetch_all(self.reader()).await?;
                rows.iter()
                    .map(|r| Ok((sqlx::Row::try_get::<i64, _>(r, "point")?, rows::stat_counts(r)?)))
                    .collect()
            }

            async fn delivery_stats_by_webhook(&self, tenant: &hookrelay_domain::TenantId, width_ms: i64, since: i64) -> super::StoreResult<Vec<(hookrelay_domain::WebhookId, hookrelay_domain::stats::StatCounts)>> {
                let sql = format!("SELECT webhook_id, {} FROM delivery_stats WHERE tenant_id = $1 AND width_ms = $2 AND bucket >= $3 GROUP BY webhook_id", super::common::STAT_SUMS);
                let rows = sqlx::query(&sql)
                    .bind(tenant.as_str())
                    .bind(width_ms)
                    .bind(since)
                    .fetch_all(self.reader())
                    .await?;
                rows.iter()
                    .map(|r| Ok((hookrelay_domain::WebhookId::from_trusted(sqlx::Row::try_get(r, "webhook_id")?), rows::stat_counts(r)?)))
                    .collect()
            }

            async fn tenant_queue(&self, tenant: &hookrelay_domain::TenantId, webhook: Option<&hookrelay_domain::WebhookId>) -> super::StoreResult<super::TenantQueue> {
                // Through the partial index of pending deliveries by (webhook, created_at) and the
                // one of failed deliveries: no scan of what was delivered.
                let ((pending, oldest), dead): ((i64, Option<i64>), i64) = match webhook {
                    Some(hook) => (
                        sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE webhook_id = $1 AND tenant_id = $2 AND status = 'pending'")
                            .bind(hook.as_str()).bind(tenant.as_str()).fetch_one(self.reader()).await?,
                        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE webhook_id = $1 AND tenant_id = $2 AND status = 'failed'")
                            .bind(hook.as_str()).bind(tenant.as_str()).fetch_one(self.reader()).await?,
                    ),
                    None => (
                        sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending' AND webhook_id IN (SELECT id FROM webhooks WHERE tenant_id = $1)")
                            .bind(tenant.as_str()).fetch_one(self.reader()).await?,
                        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE tenant_id = $1 AND status = 'failed'")
                            .bind(tenant.as_str()).fetch_one(self.reader()).await?,
                    ),
                };
                Ok(super::TenantQueue {
                    pending: pending.max(0) as u64,
                    oldest_pending_created_at: oldest,
                    dead_letter: dead.max(0) as u64,
                })
            }

            async fn prune_delivery_stats(&self, now: i64, batch: u32) -> super::StoreResult<u64> {
                let mut removed = 0;
                for (width, keep) in hookrelay_domain::stats::ROW_WIDTHS {
                    let done = sqlx::query("DELETE FROM delivery_stats WHERE width_ms = $1 AND bucket IN \
                        (SELECT DISTINCT bucket FROM delivery_stats WHERE width_ms = $1 AND bucket < $2 ORDER BY bucket LIMIT $3)")
                        .bind(width)
                        .bind(now - keep)
                        .bind(i64::from(batch.max(1)))
                        .execute(self.writer())
                        .await?;
                    removed += done.rows_affected();
                }
                let done = sqlx::query("DELETE FROM queue_samples WHERE minute IN \
                    (SELECT DISTINCT minute FROM queue_samples WHERE minute < $1 ORDER BY minute LIMIT $2)")
                    .bind(now - hookrelay_domain::stats::QUEUE_SAMPLE_RETENTION_MS)
                    .bind(i64::from(batch.max(1)))
                    .execute(self.writer())
                    .await?;
                removed += done.rows_affected();
                Ok(removed)
            }

            async fn record_queue_samples(&self, minute: i64, samples: &[(hookrelay_domain::TenantId, u64)]) -> super::StoreResult<()> {
                for chunk in super::common::pow2_chunks(samples, super::common::INSERT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO queue_samples (tenant_id, minute, pending) ");
                    q.push_values(chunk, |mut b, (tenant, pending)| {
                        b.push_bind(tenant.as_str()).push_bind(minute).push_bind(*pending as i64);
                    });
                    q.push(" ON CONFLICT (tenant_id, minute) DO UPDATE SET pending = excluded.pending");
                    q.build().execute(self.writer()).await?;
                }
                Ok(())
            }

            async fn queue_samples(&self, tenant: &hookrelay_domain::TenantId, since: i64, step_ms: i64) -> super::StoreResult<Vec<(i64, u64)>> {
                let step = step_ms.max(60_000);
                let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT (minute / $1) * $1 AS point, MAX(pending) FROM queue_samples \
                    WHERE tenant_id = $2 AND minute >= $3 GROUP BY point ORDER BY point")
                    .bind(step)
                    .bind(tenant.as_str())
                    .bind(since)
                    .fetch_all(self.reader())
                    .await?;
                Ok(rows.into_iter().map(|(p, n)| (p, n.max(0) as u64)).collect())
            }

            async fn create_event_type(&self, t: &super::EventType) -> super::StoreResult<()> {
                sqlx::query("INSERT INTO event_types (tenant_id, name, description, data_schema, example, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(t.tenant_id.as_str())
                    .bind(&t.name)
                    .bind(&t.description)
                    .bind(t.schema.as_ref().map(super::common::to_json))
                    .bind(t.example.as_ref().map(super::common::to_json))
                    .bind(t.created_at)
                    .bind(t.updated_at)
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::common::conflict_on_unique(e, "an event type with this name exists"))?;
                Ok(())
            }

            async fn put_event_type(&self, t: &super::EventType) -> super::StoreResult<()> {
                sqlx::query("INSERT INTO event_types (tenant_id, name, description, data_schema, example, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                             ON CONFLICT (tenant_id, name) DO UPDATE SET description = excluded.description, data_schema = excluded.data_schema, example = excluded.example, updated_at = excluded.updated_at")
                    .bind(t.tenant_id.as_str())
                    .bind(&t.name)
                    .bind(&t.description)
                    .bind(t.schema.as_ref().map(super::common::to_json))
                    .bind(t.example.as_ref().map(super::common::to_json))
                    .bind(t.created_at)
                    .bind(t.updated_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn get_event_type(&self, tenant: &hookrelay_domain::TenantId, name: &str) -> super::StoreResult<Option<super::EventType>> {
                let row = sqlx::query("SELECT * FROM event_types WHERE tenant_id = $1 AND name = $2")
                    .bind(tenant.as_str())
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(rows::event_type).transpose()
            }

            async fn list_event_types(&self, tenant: &hookrelay_domain::TenantId) -> super::StoreResult<Vec<super::EventType>> {
                let rows = sqlx::query("SELECT * FROM event_types WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_all(self.reader())
                    .await?;
                let mut types = rows.iter().map(rows::event_type).collect::<super::StoreResult<Vec<_>>>()?;
                // Byte order in Rust: PostgreSQL's collation would sort differently from SQLite.
                types.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(types)
            }

            async fn delete_event_type(&self, tenant: &hookrelay_domain::TenantId, name: &str) -> super::StoreResult<()> {
                let done = sqlx::query("DELETE FROM event_types WHERE tenant_id = $1 AND name = $2")
                    .bind(tenant.as_str())
                    .bind(name)
                    .execute(self.writer())
                    .await?;
                expect_one(done.rows_affected())
            }

            async fn ingest_leasing(&self, events: &[super::NewEvent], requests: &[(usize, super::InboundRequest)], offer: Option<&super::LeaseOffer<'_>>) -> super::StoreResult<super::IngestBatch> {
                use super::IngestOutcome;
                use hookrelay_domain::*;
                use std::collections::HashMap;
                use std::sync::Arc;

                let mut tx = self.writer().begin().await?;
                let mut outcomes = Vec::with_capacity(events.len());
                // Per tenant, once per batch: its webhooks (through the fan-out cache) and quotas.
                let mut hooks: HashMap<String, ResolvedHooks> = HashMap::new();
                let mut quota = reserve_quota(&mut tx, events).await?;
                // (delivery, its event and the event's index, webhook, leased under the offer)
                let mut deliveries: Vec<(DeliveryId, &super::NewEvent, usize, WebhookId, bool)> = Vec::new();
                let mut leased: Vec<super::DeliveryClaim> = Vec::new();
                let mut plain: Vec<&super::Event> = Vec::new();

                for (index, ne) in events.iter().enumerate() {
                    let e = &ne.event;
                    if let Some(refusal) = quota.admit(e.tenant_id.as_str()) {
                        // A repeat of an accepted event stores nothing: it is answered as a
                        // duplicate even when the tenant is over its quota.
                        let existing: Option<String> = match &e.idempotency_key {
                            Some(key) => sqlx::query_scalar("SELECT id FROM events WHERE tenant_id = $1 AND idempotency_key = $2")
                                .bind(e.tenant_id.as_str())
                                .bind(key)
                                .fetch_optional(&mut *tx)
                                .await?,
                            None => None,
                        };
                        outcomes.push(match existing {
                            Some(id) => IngestOutcome::Duplicate { id: EventId::from_trusted(id) },
                            None => refusal,
                        });
                        continue;
                    }
                    if let Some(key) = &e.idempotency_key {
                        let inserted: Option<String> = sqlx::query_scalar("INSERT INTO events (id, tenant_id, type, source, idempotency_key, data, timestamp, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id")
                            .bind(e.id.as_str()).bind(e.tenant_id.as_str()).bind(&e.event_type).bind(&e.source)
                            .bind(key).bind(&e.data).bind(e.timestamp).bind(e.created_at)
                            .fetch_optional(&mut *tx)
                            .await?;
                        if inserted.is_none() {
                            let existing: String = sqlx::query_scalar("SELECT id FROM events WHERE tenant_id = $1 AND idempotency_key = $2")
                                .bind(e.tenant_id.as_str())
                                .bind(key)
                                .fetch_one(&mut *tx)
                                .await?;
                            outcomes.push(IngestOutcome::Duplicate { id: EventId::from_trusted(existing) });
                            quota.unuse(e.tenant_id.as_str());
                            continue;
                        }
                    } else {
                        plain.push(e);
                    }

                    if !hooks.contains_key(e.tenant_id.as_str()) {
                        let resolved = resolve_tenant_hooks(&mut tx, self.hook_cache(), &e.tenant_id, self.keyring()).await?;
                        hooks.insert(e.tenant_id.to_string(), resolved);
                    }
                    let tenant = &hooks[e.tenant_id.as_str()];
                    let candidates: Arc<[u32]> = match &ne.only_webhook {
                        // `/test` targets one webhook whatever its filters.
                        Some(only) => tenant.cached.hooks.iter().enumerate().filter(|(_, h)| &h.id == only).map(|(i, _)| i as u32).collect(),
                        None => tenant.cached.matching(&e.event_type),
                    };
                    let mut ids = Vec::new();
                    // The envelope payload filters see, built only when a webhook whose event
                    // types match has a payload filter (emits that need none never parse data).
                    let mut envelope: Option<Option<serde_json::Value>> = None;
                    // The payload shared by this event's leased claims.
                    let mut shared_data: Option<Arc<str>> = None;
                    for &i in candidates.iter() {
                        let hook = &tenant.cached.hooks[i as usize];
                        if ne.only_webhook.is_none() && !payload_wants(hook, e, &mut envelope) {
                            continue;
                        }
                        let id = DeliveryId::generate();
                        let quotas = &tenant.cached.quotas;
                        let lease_to = match (offer, &hook.webhook) {
                            (Some(o), Some(w)) if tenant.live[i as usize] && ne.lease.is_none() && leased.len() < o.max && (o.accepts)(w, quotas) => Some((w, quotas)),
                            _ => None,
                        };
                        if let Some((webhook, quotas)) = lease_to {
                            leased.push(super::DeliveryClaim {
                                delivery_id: id.clone(),
                                tenant_id: e.tenant_id.clone(),
                                event_id: e.id.clone(),
                                event_type: e.event_type.clone(),
                                event_timestamp: e.timestamp,
                                data: shared_data.get_or_insert_with(|| Arc::from(e.data.as_str())).clone(),
                                attempts_made: 0,
                                created_at: e.created_at,
                                webhook: webhook.clone(),
                                tenant_quotas: quotas.clone(),
                            });
                        }
                        ids.push(id.clone());
                        deliveries.push((id, ne, index, hook.id.clone(), lease_to.is_some()));
                    }
                    outcomes.push(IngestOutcome::Accepted { id: e.id.clone(), deliveries: ids.len() as u32, delivery_ids: ids });
                }

                for chunk in super::common::pow2_chunks(&plain, super::common::INSERT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(super::common::INSERT_PLAIN_EVENTS);
                    <$store>::push_event_rows(&mut q, chunk);
                    q.build().execute(&mut *tx).await?;
                }

                let rows: Vec<super::common::DeliveryRow> = deliveries
                    .iter()
                    .map(|(id, ne, _, hook, by_offer)| {
                        let e = &ne.event;
                        let (lease_owner, lease_until) = match (&ne.lease, offer) {
                            (Some((owner, until)), _) => (Some(owner.as_str()), Some(*until)),
                            (None, Some(o)) if *by_offer => (Some(o.owner), Some(o.lease_until)),
                            _ => (None, None),
                        };
                        super::common::DeliveryRow::new(id.as_str(), e, hook.as_str(), e.created_at, (lease_owner, lease_until))
                    })
                    .collect();
                insert_delivery_rows(&mut tx, &rows).await?;
                insert_inbound_requests(&mut tx, requests, &outcomes).await?;
                // Other nodes need waking only for what this node did not lease to itself.
                if deliveries.len() > leased.len() {
                    Self::notify_due(&mut tx).await?;
                }
                quota.give_back(&mut tx).await?;
                tx.commit().await?;
                let created = deliveries
                    .into_iter()
                    .map(|(id, _, event, webhook_id, _)| super::CreatedDelivery { event, id, webhook_id })
                    .collect();
                Ok(super::IngestBatch { outcomes, created, leased })
            }

            async fn event_usage(&self, tenant: &hookrelay_domain::TenantId, now: i64) -> super::StoreResult<super::EventUsage> {
                use super::common::{bucket_start, DAY_MS, MINUTE_MS};
                let count = |bucket: &'static str, start: i64| {
                    sqlx::query_scalar::<_, i64>("SELECT count FROM tenant_usage WHERE tenant_id = $1 AND bucket = $2 AND bucket_start = $3")
                        .bind(tenant.as_str())
                        .bind(bucket)
                        .bind(start)
                        .fetch_optional(self.reader())
                };
                let minute = count("m", bucket_start(now, MINUTE_MS)).await?.unwrap_or(0);
                let day = count("d", bucket_start(now, DAY_MS)).await?.unwrap_or(0);
                Ok(super::EventUsage { this_minute: minute.max(0) as u64, today: day.max(0) as u64 })
            }

            async fn get_event(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::EventId) -> super::StoreResult<(super::Event, Vec<super::Delivery>)> {
                let sql = format!("SELECT {} FROM events e WHERE e.id = $1 AND e.tenant_id = $2", super::common::EVENT_COLUMNS);
                let row = sqlx::query(&sql)
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or(super::StoreError::NotFound)?;
                let event = rows::event(&row)?;
                let sql = format!("SELECT {} FROM deliveries d WHERE d.event_id = $1 ORDER BY d.id", super::common::DELIVERY_COLUMNS);
                let rows = sqlx::query(&sql).bind(id.as_str()).fetch_all(self.reader()).await?;
                let deliveries = rows.iter().map(rows::delivery).collect::<super::StoreResult<Vec<_>>>()?;
                Ok((event, deliveries))
            }

            async fn list_events(&self, tenant: &hookrelay_domain::TenantId, query: &super::EventQuery, page: &super::PageRequest) -> super::StoreResult<super::Page<super::Event>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!("SELECT {} FROM events e WHERE e.tenant_id = ", super::common::EVENT_COLUMNS));
                q.push_bind(tenant.as_str());
                if let Some(t) = &query.event_type {
                    q.push(" AND e.type = ").push_bind(t.clone());
                }
                if let Some(s) = &query.source {
                    q.push(" AND e.source = ").push_bind(s.clone());
                }
                if let Some(since) = query.since {
                    q.push(" AND e.created_at >= ").push_bind(since);
                }
                if let Some(until) = query.until {
                    q.push(" AND e.created_at < ").push_bind(until);
                }
                push_page(&mut q, "e.id", page);
                let events = futures::StreamExt::map(q.build().fetch(self.reader()), |row| rows::event(&row?));
                super::Page::collect_budgeted(events, page.limit, super::PAGE_BYTE_BUDGET, |e| e.data.len(), |e| e.id.to_string()).await
            }

            async fn get_delivery(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::DeliveryId) -> super::StoreResult<(super::Delivery, super::Event, Vec<super::Attempt>)> {
                let sql = format!("SELECT {} FROM deliveries d WHERE d.id = $1 AND d.tenant_id = $2", super::common::DELIVERY_COLUMNS);
                let row = sqlx::query(&sql)
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or(super::StoreError::NotFound)?;
                let delivery = rows::delivery(&row)?;
                let sql = format!("SELECT {} FROM events e WHERE e.id = $1", super::common::EVENT_COLUMNS);
                let row = sqlx::query(&sql).bind(delivery.event_id.as_str()).fetch_one(self.reader()).await?;
                let event = rows::event(&row)?;
                let rows = sqlx::query("SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY n")
                    .bind(id.as_str())
                    .fetch_all(self.reader())
                    .await?;
                let attempts = rows.iter().map(rows::attempt).collect::<super::StoreResult<Vec<_>>>()?;
                Ok((delivery, event, attempts))
            }

            async fn list_deliveries(&self, tenant: &hookrelay_domain::TenantId, query: &super::DeliveryQuery, page: &super::PageRequest) -> super::StoreResult<super::Page<super::Delivery>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!("SELECT {} FROM deliveries d WHERE d.tenant_id = ", super::common::DELIVERY_COLUMNS));
                q.push_bind(tenant.as_str());
                if let Some(s) = query.status {
                    q.push(" AND d.status = ").push_bind(s.as_str());
                }
                if let Some(t) = &query.event_type {
                    q.push(" AND d.event_type = ").push_bind(t.clone());
                }
                if let Some(w) = &query.webhook_id {
                    q.push(" AND d.webhook_id = ").push_bind(w.to_string());
                }
                if let Some(s) = &query.source {
                    q.push(" AND d.source = ").push_bind(s.clone());
                }
                if let Some(since) = query.since {
                    q.push(" AND d.created_at >= ").push_bind(since);
                }
                if let Some(until) = query.until {
                    q.push(" AND d.created_at < ").push_bind(until);
                }
                if let Some(e) = &query.event_id {
                    q.push(" AND d.event_id = ").push_bind(e.to_string());
                }
                if let Some(d) = &query.delivery_id {
                    q.push(" AND d.id = ").push_bind(d.to_string());
                }
                push_page(&mut q, "d.id", page);
                let rows = q.build().fetch_all(self.reader()).await?;
                let items = rows.iter().map(rows::delivery).collect::<super::StoreResult<Vec<_>>>()?;
                Ok(super::Page::from_rows(items, page.limit, |d| d.id.to_string()))
            }

            async fn list_dlq(&self, tenant: &hookrelay_domain::TenantId, query: &super::DlqQuery, page: &super::PageRequest) -> super::StoreResult<super::Page<super::Delivery>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!("SELECT {} FROM deliveries d WHERE d.status = 'failed' AND d.tenant_id = ", super::common::DELIVERY_COLUMNS));
                q.push_bind(tenant.as_str());
                if let Some(w) = &query.webhook_id {
                    q.push(" AND d.webhook_id = ").push_bind(w.to_string());
                }
                if let Some(t) = &query.event_type {
                    q.push(" AND d.event_type = ").push_bind(t.clone());
                }
                push_page(&mut q, "d.id", page);
                let rows = q.build().fetch_all(self.reader()).await?;
                let items = rows.iter().map(rows::delivery).collect::<super::StoreResult<Vec<_>>>()?;
                Ok(super::Page::from_rows(items, page.limit, |d| d.id.to_string()))
            }

            async fn retry_delivery(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::DeliveryId) -> super::StoreResult<()> {
                self.make_due(tenant, id, false).await
            }

            async fn retry_dlq_delivery(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::DeliveryId) -> super::StoreResult<()> {
                self.make_due(tenant, id, true).await
            }

            async fn release_waiting(&self, tenant: &hookrelay_domain::TenantId, webhook: &hookrelay_domain::WebhookId) -> super::StoreResult<u64> {
                let now = hookrelay_domain::time::now_millis();
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query("UPDATE deliveries SET next_attempt_at = $1, updated_at = $1 WHERE tenant_id = $2 AND webhook_id = $3 AND status = 'pending' AND next_attempt_at > $1")
                    .bind(now)
                    .bind(tenant.as_str())
                    .bind(webhook.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() > 0 {
                    Self::notify_due(&mut tx).await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn retry_dlq_bulk(&self, tenant: &hookrelay_domain::TenantId, webhook: Option<&hookrelay_domain::WebhookId>, since: Option<i64>) -> super::StoreResult<u64> {
                let now = hookrelay_domain::time::now_millis();
                let mut tx = self.writer().begin().await?;
                let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE deliveries SET status = 'pending', failed_at = NULL, next_attempt_at = ");
                q.push_bind(now).push(", updated_at = ").push_bind(now);
                q.push(" WHERE status = 'failed' AND tenant_id = ").push_bind(tenant.as_str());
                q.push(" AND webhook_id IN (SELECT id FROM webhooks WHERE tenant_id = ").push_bind(tenant.as_str()).push(")");
                if let Some(w) = webhook {
                    q.push(" AND webhook_id = ").push_bind(w.as_str());
                }
                if let Some(since) = since {
                    q.push(" AND failed_at >= ").push_bind(since);
                }
                let done = q.build().execute(&mut *tx).await?;
                if done.rows_affected() > 0 {
                    Self::notify_due(&mut tx).await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn replay_event(&self, tenant: &hookrelay_domain::TenantId, event: &hookrelay_domain::EventId, webhooks: Option<&[hookrelay_domain::WebhookId]>) -> super::StoreResult<Vec<super::CreatedDelivery>> {
                let now = hookrelay_domain::time::now_millis();
                let mut tx = self.writer().begin().await?;
                let sql = format!("SELECT {} FROM events e WHERE e.id = $1 AND e.tenant_id = $2", super::common::EVENT_COLUMNS);
                let row = sqlx::query(&sql)
                    .bind(event.as_str())
                    .bind(tenant.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(super::StoreError::NotFound)?;
                let event = rows::event(&row)?;
                let hooks = resolve_tenant_hooks(&mut tx, self.hook_cache(), tenant, self.keyring()).await?;
                let mut envelope = None;
                let chosen: Vec<&super::fanout::FanOutHook> = hooks.cached.hooks.iter()
                    .filter(|h| match webhooks {
                        // Named webhooks get the event whatever their filters: the caller chose.
                        Some(named) => named.contains(&h.id),
                        None => wants(h, &event, &mut envelope),
                    })
                    .collect();
                let created: Vec<super::CreatedDelivery> = chosen.iter()
                    .map(|h| super::CreatedDelivery { event: 0, id: hookrelay_domain::DeliveryId::generate(), webhook_id: h.id.clone() })
                    .collect();
                let rows: Vec<(&hookrelay_domain::DeliveryId, &super::Event, &hookrelay_domain::WebhookId)> =
                    created.iter().map(|c| (&c.id, &event, &c.webhook_id)).collect();
                insert_due_deliveries(&mut tx, &rows, now).await?;
                if !rows.is_empty() {
                    Self::notify_due(&mut tx).await?;
                }
                tx.commit().await?;
                Ok(created)
            }

            async fn replay_webhook(&self, tenant: &hookrelay_domain::TenantId, webhook: &hookrelay_domain::WebhookId, since: i64, until: Option<i64>, mode: super::ReplayMode) -> super::StoreResult<u64> {
                // A bulk replay may cover many events: it goes in small transactions (each
                // commits its deliveries, which workers may start on at once) so it never holds
                // the writer for long.
                const BATCH: i64 = 256;
                let mut after: Option<String> = None;
                let mut queued = 0u64;
                loop {
                    let now = hookrelay_domain::time::now_millis();
                    let mut tx = self.writer().begin().await?;
                    let hooks = resolve_tenant_hooks(&mut tx, self.hook_cache(), tenant, self.keyring()).await?;
                    let hook = hooks.cached.hooks.iter().find(|h| &h.id == webhook);
                    let Some(hook) = hook else {
                        // Validated when stored, so a webhook missing here is not the tenant's
                        // (or was deleted meanwhile, or its filter no longer parses).
                        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM webhooks WHERE id = $1 AND tenant_id = $2")
                            .bind(webhook.as_str()).bind(tenant.as_str()).fetch_optional(&mut *tx).await?;
                        return match exists { None if after.is_none() => Err(super::StoreError::NotFound), _ => Ok(queued) };
                    };
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!("SELECT {} FROM events e WHERE e.tenant_id = ", super::common::EVENT_COLUMNS));
                    q.push_bind(tenant.as_str());
                    q.push(" AND e.created_at >= ").push_bind(since);
                    if let Some(until) = until {
                        q.push(" AND e.created_at < ").push_bind(until);
                    }
                    if let Some(after) = &after {
                        q.push(" AND e.id > ").push_bind(after.clone());
                    }
                    match mode {
                        super::ReplayMode::Missing => {
                            q.push(" AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.webhook_id = ").push_bind(webhook.as_str()).push(")");
                        }
                        super::ReplayMode::Failed => {
                            q.push(" AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'failed' AND d.webhook_id = ").push_bind(webhook.as_str()).push(")");
                            q.push(" AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status IN ('succeeded', 'pending') AND d.webhook_id = ").push_bind(webhook.as_str()).push(")");
                        }
                        super::ReplayMode::All => {}
                    }
                    q.push(" ORDER BY e.id LIMIT ").push_bind(BATCH);
                    let found = q.build().fetch_all(&mut *tx).await?;
                    let events = found.iter().map(rows::event).collect::<super::StoreResult<Vec<_>>>()?;
                    let Some(last) = events.last() else {
                        tx.commit().await?;
                        return Ok(queued);
                    };
                    after = Some(last.id.to_string());
                    let ids: Vec<hookrelay_domain::DeliveryId> = events.iter().map(|_| hookrelay_domain::DeliveryId::generate()).collect();
                    let rows: Vec<(&hookrelay_domain::DeliveryId, &super::Event, &hookrelay_domain::WebhookId)> = events.iter().zip(&ids)
                        .filter(|(e, _)| wants(hook, e, &mut None))
                        .map(|(e, id)| (id, e, &hook.id))
                        .collect();
                    insert_due_deliveries(&mut tx, &rows, now).await?;
                    if !rows.is_empty() {
                        Self::notify_due(&mut tx).await?;
                    }
                    tx.commit().await?;
                    queued += rows.len() as u64;
                    if (events.len() as i64) < BATCH {
                        return Ok(queued);
                    }
                }
            }

            async fn claim_due_excluding(&self, owner: &str, now: i64, lease_until: i64, limit: u32, exclude: &super::ClaimExclusions) -> super::StoreResult<Vec<super::DeliveryClaim>> {
                let mut tx = self.writer().begin().await?;
                let mut leased = Self::lease_due_ids(&mut tx, owner, now, lease_until, limit, exclude).await?;
                // The first pass walks only the due window; when it took too few and more is due
                // than the window holds, the rest may be behind a held backlog: webhook by webhook.
                if (leased.len() as u32) < limit && due_window_full(&mut tx, Some(now)).await? {
                    let hooks = webhooks_with_pending(&mut tx, &self.claim_cursor().get()).await?;
                    self.claim_cursor().advance(&hooks);
                    let mut taken: Vec<String> = leased.iter().map(|(_, webhook)| webhook.clone()).collect();
                    taken.sort_unstable();
                    taken.dedup();
                    let more = lease_due_per_webhook(&mut tx, &hooks, owner, now, lease_until, limit - leased.len() as u32, exclude, &taken).await?;
                    leased.extend(more);
                }
                let ids: Vec<String> = leased.into_iter().map(|(id, _)| id).collect();
                let claims = fetch_claims(&mut tx, &ids, self.keyring()).await?;
                // A claim of a webhook whose circuit is not closed is its probe: the circuit is
                // half-open until the probe's lease ends, and no other delivery of it goes.
                let probed: Vec<String> = claims
                    .iter()
                    .filter(|c| c.webhook.health.state != hookrelay_domain::health::CircuitState::Closed)
                    .map(|c| c.webhook.id.to_string())
                    .collect();
                if !probed.is_empty() {
                    let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE webhooks SET circuit_state = 'half_open', circuit_open_until = ");
                    q.push_bind(lease_until).push(" WHERE circuit_state <> 'closed' AND id IN (");
                    let mut sep = q.separated(", ");
                    for id in super::common::padded_in_list(&probed) {
                        sep.push_bind(id.clone());
                    }
                    q.push(")");
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(claims)
            }

            async fn release_claims(&self, owner: &str, releases: &[(hookrelay_domain::DeliveryId, i64)]) -> super::StoreResult<()> {
                if releases.is_empty() {
                    return Ok(());
                }
                let mut tx = self.writer().begin().await?;
                for chunk in super::common::pow2_chunks(releases, super::common::INSERT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("WITH v(id, due) AS (");
                    q.push_values(chunk, |mut b, (id, due)| {
                        b.push_bind(id.as_str()).push_bind(*due);
                    });
                    q.push(") UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, next_attempt_at = v.due FROM v \
                            WHERE deliveries.id = v.id AND deliveries.lease_owner = ").push_bind(owner);
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn load_claim(&self, id: &hookrelay_domain::DeliveryId) -> super::StoreResult<Option<super::DeliveryClaim>> {
                let mut conn = self.reader().acquire().await?;
                Ok(fetch_claims(&mut conn, &[id.to_string()], self.keyring()).await?.pop())
            }

            async fn record_attempts_with(&self, records: &[super::AttemptRecord], policy: &hookrelay_domain::health::HealthPolicy) -> super::StoreResult<Vec<super::HealthTransition>> {
                use super::NextState;
                let mut tx = self.writer().begin().await?;
                // Only the lease owner moves the delivery and writes its attempt: a worker whose
                // lease expired and was taken over must not leave a row that, through
                // `ON CONFLICT DO NOTHING`, would then drop the new owner's attempt of the same `n`.
                // One statement per chunk: per-row round trips dominate on PostgreSQL.
                let mut owned_ids = Vec::with_capacity(records.len());
                for chunk in super::common::pow2_chunks(records, super::common::INSERT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "WITH v(id, owner, status, attempts, next_at, last_status, last_error, delivered_at, failed_at, updated_at) AS (",
                    );
                    Self::push_result_rows(&mut q, chunk);
                    q.push(") UPDATE deliveries SET status = v.status, attempts = v.attempts, next_attempt_at = v.next_at, \
                            last_response_status = v.last_status, last_error = v.last_error, \
                            delivered_at = COALESCE(v.delivered_at, deliveries.delivered_at), failed_at = v.failed_at, \
                            lease_owner = NULL, lease_until = NULL, updated_at = v.updated_at \
                            FROM v WHERE deliveries.id = v.id AND deliveries.lease_owner = v.owner RETURNING deliveries.id, deliveries.webhook_id, deliveries.tenant_id, deliveries.event_id, deliveries.event_type, deliveries.created_at");
                    let ids: Vec<(String, String, String, String, String, i64)> = q.build_query_as().fetch_all(&mut *tx).await?;
                    owned_ids.extend(ids);
                }
                // delivery -> (tenant, event, event type, created at), for the exhausted events
                // and the statistics.
                let delivery_meta: std::collections::HashMap<String, (String, String, String, i64)> = owned_ids
                    .iter()
                    .map(|(id, _, tenant, event, ty, created)| (id.clone(), (tenant.clone(), event.clone(), ty.clone(), *created)))
                    .collect();
                let owned_ids: std::collections::HashMap<String, String> = owned_ids.into_iter().map(|(id, hook, ..)| (id, hook)).collect();
                let owned: Vec<&super::AttemptRecord> =
                    records.iter().filter(|r| owned_ids.contains_key(r.attempt.delivery_id.as_str())).collect();
                let mut tally = hookrelay_domain::stats::StatsTally::default();
                for r in &owned {
                    let id = r.attempt.delivery_id.as_str();
                    let (Some(hook), Some((tenant, _, _, created))) = (owned_ids.get(id), delivery_meta.get(id)) else { continue };
                    tally.count(tenant, hook, r.finished_at, super::common::attempt_tally(r, *created));
                }
                if let Some(first) = owned.first() {
                    write_stats(&mut tx, &tally, super::common::stats_shard(&first.lease_owner)).await?;
                }
                for chunk in super::common::pow2_chunks(&owned, super::common::INSERT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO attempts (delivery_id, n, started_at, duration_ms, request_headers, response_status, response_body, error, error_kind) ");
                    Self::push_attempt_rows(&mut q, chunk);
                    q.push(" ON CONFLICT (delivery_id, n) DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
                let transitions = update_health(&mut tx, &owned, &owned_ids, policy).await?;
                // The operational events these attempts cause, in the same transaction: once
                // per occurrence, as the state change itself is recorded once.
                let mut ops: Vec<super::common::Operational> = transitions.iter().filter_map(super::common::Operational::of_transition).collect();
                for r in &owned {
                    let id = r.attempt.delivery_id.as_str();
                    let (Some(hook), Some((tenant, event, ty, _))) = (owned_ids.get(id), delivery_meta.get(id)) else { continue };
                    // An operational event's own exhaustion tells nobody: two failing
                    // subscribers would otherwise tell each other forever.
                    if r.next == NextState::Failed && !ty.starts_with(hookrelay_domain::health::OPERATIONAL_PREFIX) {
                        ops.push(super::common::Operational {
                            tenant_id: tenant.clone(),
                            event_type: "hookrelay.delivery.exhausted",
                            about_webhook: hook.clone(),
                            at: r.finished_at,
                            data: serde_json::json!({
                                "delivery_id": id, "webhook_id": hook, "event_id": event, "event_type": ty,
                                "attempts": r.attempt.n, "last_error": r.attempt.error,
                            }),
                        });
                    }
                }
                if emit_operational(&mut tx, &ops).await? > 0 {
                    Self::notify_due(&mut tx).await?;
                }
                tx.commit().await?;
                Ok(transitions)
            }

            async fn release_leases(&self, owner: &str) -> super::StoreResult<u64> {
                let done = sqlx::query("UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 AND status = 'pending'")
                    .bind(owner)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn next_due_at(&self) -> super::StoreResult<Option<i64>> {
                // A delivery its webhook's open circuit holds is not next; the circuit's end is.
                // The walk in due order stops at the due window's end; past it, webhook by webhook.
                let now = hookrelay_domain::time::now_millis();
                let mut tx = self.reader().begin().await?;
                Self::plan_queue_walks(&mut tx).await?;
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT d.next_attempt_at FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'pending' AND d.lease_owner IS NULL AND w.active = TRUE AND (w.circuit_open_until IS NULL OR w.circuit_open_until <= d.next_attempt_at) AND d.next_attempt_at <= ");
                push_due_window_end(&mut q, None);
                q.push(super::common::ORDERED_HEAD_ONLY);
                q.push(" ORDER BY d.next_attempt_at LIMIT 1");
                let at: Option<i64> = match q.build_query_scalar().fetch_optional(&mut *tx).await? {
                    Some(at) => Some(at),
                    None if due_window_full(&mut tx, None).await? => next_due_per_webhook(&mut tx, now).await?,
                    None => None,
                };
                let reopens: Option<i64> = sqlx::query_scalar("SELECT MIN(circuit_open_until) FROM webhooks WHERE active = TRUE AND circuit_open_until > $1")
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(match (at, reopens) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                })
            }

            async fn queue_stats(&self, now: i64) -> super::StoreResult<super::QueueStats> {
                let (pending, oldest): (i64, Option<i64>) = sqlx::query_as("SELECT COUNT(*), MIN(CASE WHEN next_attempt_at <= $1 THEN next_attempt_at END) FROM deliveries WHERE status = 'pending'")
                    .bind(now)
                    .fetch_one(self.reader())
                    .await?;
                // The partial index `deliveries_failed` answers this without touching the table.
                let dead_letter: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'failed'")
                    .fetch_one(self.reader())
                    .await?;
                let open_circuits: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE circuit_state <> 'closed'")
                    .fetch_one(self.reader())
                    .await?;
                Ok(super::QueueStats {
                    open_circuits: open_circuits.max(0) as u64,
                    dead_letter: dead_letter.max(0) as u64,
                    pending: pending as u64,
                    oldest_due_age_ms: oldest.map(|o| (now - o).max(0) as u64).unwrap_or(0),
                })
            }

            async fn backlog_by_tenant(&self, now: i64) -> super::StoreResult<Vec<super::TenantBacklog>> {
                let rows: Vec<(String, bool, i64, Option<i64>)> = sqlx::query_as("SELECT t.id, t.backlog_alerting, COUNT(d.id), MIN(CASE WHEN d.next_attempt_at <= $1 THEN d.next_attempt_at END) \
                    FROM tenants t LEFT JOIN deliveries d ON d.tenant_id = t.id AND d.status = 'pending' GROUP BY t.id, t.backlog_alerting \
                    HAVING COUNT(d.id) > 0 OR t.backlog_alerting = TRUE")
                    .bind(now)
                    .fetch_all(self.reader())
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, alerting, pending, oldest)| super::TenantBacklog {
                        tenant_id: hookrelay_domain::TenantId::from_trusted(id),
                        pending: pending.max(0) as u64,
                        oldest_due_age_ms: oldest.map(|o| (now - o).max(0) as u64).unwrap_or(0),
                        alerting,
                    })
                    .collect())
            }

            async fn set_alert(&self, change: &super::AlertChange) -> super::StoreResult<bool> {
                use super::AlertChange;
                let mut tx = self.writer().begin().await?;
                let (flipped, op) = match change {
                    AlertChange::Backlog { tenant, over, pending, oldest_pending_age_seconds, at } => {
                        let done = sqlx::query("UPDATE tenants SET backlog_alerting = $1 WHERE id = $2 AND backlog_alerting <> $1")
                            .bind(*over)
                            .bind(tenant.as_str())
                            .execute(&mut *tx)
                            .await?;
                        let op = super::common::Operational {
                            tenant_id: tenant.to_string(),
                            event_type: "hookrelay.queue.backlog",
                            about_webhook: String::new(),
                            at: *at,
                            data: serde_json::json!({"pending": pending, "oldest_pending_age_seconds": oldest_pending_age_seconds}),
                        };
                        (done.rows_affected() == 1, op)
                    }
                    AlertChange::FailureRate { tenant, webhook, over, attempts, failures, window_seconds, at } => {
                        let url: Option<String> = sqlx::query_scalar("UPDATE webhooks SET rate_alerting = $1 WHERE id = $2 AND tenant_id = $3 AND rate_alerting <> $1 RETURNING url")
                            .bind(*over)
                            .bind(webhook.as_str())
                            .bind(tenant.as_str())
                            .fetch_optional(&mut *tx)
                            .await?;
                        let rate = if *attempts == 0 { 0.0 } else { *failures as f64 / *attempts as f64 };
                        let op = super::common::Operational {
                            tenant_id: tenant.to_string(),
                            event_type: "hookrelay.webhook.failing",
                            about_webhook: webhook.to_string(),
                            at: *at,
                            data: serde_json::json!({
                                "webhook_id": webhook, "url": url, "reason": "failure_rate",
                                "failure_rate": (rate * 1000.0).round() / 1000.0, "attempts": attempts,
                                "window_seconds": window_seconds,
                            }),
                        };
                        (url.is_some(), op)
                    }
                };
                let raised = flipped && matches!(change, AlertChange::Backlog { over: true, .. } | AlertChange::FailureRate { over: true, .. });
                if raised && emit_operational(&mut tx, std::slice::from_ref(&op)).await? > 0 {
                    Self::notify_due(&mut tx).await?;
                }
                tx.commit().await?;
                Ok(flipped)
            }

            async fn reseal_secrets(&self) -> super::StoreResult<u64> {
                let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, secrets FROM webhooks").fetch_all(self.reader()).await?;
                let mut changed = 0;
                for (id, stored) in rows {
                    if self.keyring().is_current(&stored) {
                        continue;
                    }
                    let plain = self.keyring().open(&stored, &id)?;
                    sqlx::query("UPDATE webhooks SET secrets = $1 WHERE id = $2 AND secrets = $3")
                        .bind(self.keyring().seal(&plain, &id))
                        .bind(&id)
                        .bind(&stored)
                        .execute(self.writer())
                        .await?;
                    changed += 1;
                }
                let rows: Vec<(String, Option<String>)> = sqlx::query_as("SELECT id, url_sealed FROM webhooks WHERE url_sealed IS NOT NULL").fetch_all(self.reader()).await?;
                for (id, stored) in rows {
                    let Some(stored) = stored else { continue };
                    if self.keyring().is_current(&stored) {
                        continue;
                    }
                    let context = format!("{id}#url");
                    let plain = self.keyring().open(&stored, &context)?;
                    sqlx::query("UPDATE webhooks SET url_sealed = $1 WHERE id = $2 AND url_sealed = $3")
                        .bind(self.keyring().seal(&plain, &context))
                        .bind(&id)
                        .bind(&stored)
                        .execute(self.writer())
                        .await?;
                    changed += 1;
                }
                let rows: Vec<(String, Option<String>)> = sqlx::query_as("SELECT id, secret FROM sources").fetch_all(self.reader()).await?;
                for (id, stored) in rows {
                    let Some(stored) = stored else { continue };
                    if self.keyring().is_current(&stored) {
                        continue;
                    }
                    let plain = self.keyring().open(&stored, &id)?;
                    sqlx::query("UPDATE sources SET secret = $1 WHERE id = $2 AND secret = $3")
                        .bind(self.keyring().seal(&plain, &id))
                        .bind(&id)
                        .bind(&stored)
                        .execute(self.writer())
                        .await?;
                    changed += 1;
                }
                Ok(changed)
            }

            async fn create_source(&self, src: &super::Source) -> super::StoreResult<()> {
                let q = sqlx::query("INSERT INTO sources (id, tenant_id, name, provider, config, secret, active, allow_unsigned, rate_limit_per_min, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                    .bind(src.id.as_str())
                    .bind(src.tenant_id.as_str());
                bind_source_fields(q, src, self.keyring())
                    .bind(src.created_at)
                    .bind(src.updated_at)
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::common::conflict_on_unique(e, "a source with this name exists"))?;
                Ok(())
            }

            async fn get_source(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::SourceId) -> super::StoreResult<super::Source> {
                let sql = format!("SELECT {} FROM sources s WHERE s.id = $1 AND s.tenant_id = $2", super::common::SOURCE_COLUMNS);
                let row = sqlx::query(&sql)
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or(super::StoreError::NotFound)?;
                rows::source(&row, self.keyring())
            }

            async fn get_source_by_name(&self, name: &str) -> super::StoreResult<Option<super::Source>> {
                let sql = format!("SELECT {} FROM sources s WHERE s.name = $1", super::common::SOURCE_COLUMNS);
                let row = sqlx::query(&sql).bind(name).fetch_optional(self.reader()).await?;
                row.as_ref().map(|r| rows::source(r, self.keyring())).transpose()
            }

            async fn list_sources(&self, tenant: &hookrelay_domain::TenantId, page: &super::PageRequest) -> super::StoreResult<super::Page<super::Source>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!("SELECT {} FROM sources s WHERE s.tenant_id = ", super::common::SOURCE_COLUMNS));
                q.push_bind(tenant.as_str());
                push_page(&mut q, "s.id", page);
                let rows = q.build().fetch_all(self.reader()).await?;
                let items = rows.iter().map(|r| rows::source(r, self.keyring())).collect::<super::StoreResult<Vec<_>>>()?;
                Ok(super::Page::from_rows(items, page.limit, |s| s.id.to_string()))
            }

            async fn update_source(&self, src: &super::Source) -> super::StoreResult<()> {
                let q = sqlx::query("UPDATE sources SET name = $1, provider = $2, config = $3, secret = $4, active = $5, allow_unsigned = $6, rate_limit_per_min = $7, updated_at = $8 WHERE id = $9 AND tenant_id = $10");
                let done = bind_source_fields(q, src, self.keyring())
                    .bind(src.updated_at)
                    .bind(src.id.as_str())
                    .bind(src.tenant_id.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::common::conflict_on_unique(e, "a source with this name exists"))?;
                expect_one(done.rows_affected())
            }

            async fn delete_source(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::SourceId) -> super::StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query("DELETE FROM sources WHERE id = $1 AND tenant_id = $2")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .execute(&mut *tx)
                    .await?;
                expect_one(done.rows_affected())?;
                sqlx::query("DELETE FROM inbound_requests WHERE source_id = $1 AND tenant_id = $2")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_inbound_requests(&self, requests: &[super::InboundRequest]) -> super::StoreResult<()> {
                if requests.is_empty() {
                    return Ok(());
                }
                let mut tx = self.writer().begin().await?;
                for chunk in super::common::pow2_chunks(requests, super::common::INSERT_CHUNK / 2) {
                    push_inbound_rows(&mut tx, chunk.iter().map(|r| (r, r.status, r.event_id.as_ref()))).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_inbound_requests(&self, tenant: &hookrelay_domain::TenantId, source: &hookrelay_domain::SourceId, query: &super::InboundRequestQuery, page: &super::PageRequest) -> super::StoreResult<super::Page<super::InboundRequest>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!("SELECT {} FROM inbound_requests r WHERE r.source_id = ", super::common::INBOUND_REQUEST_COLUMNS));
                q.push_bind(source.as_str());
                q.push(" AND r.tenant_id = ").push_bind(tenant.as_str());
                if let Some(status) = query.status {
                    q.push(" AND r.status = ").push_bind(status.as_str());
                }
                push_page(&mut q, "r.id", page);
                let requests = futures::StreamExt::map(q.build().fetch(self.reader()), |row| rows::inbound_request(&row?));
                super::Page::collect_budgeted(requests, page.limit, super::PAGE_BYTE_BUDGET, |r| r.body.as_ref().map_or(0, String::len) + r.headers.len(), |r| r.id.to_string()).await
            }

            async fn prune_events(&self, query: &super::PruneQuery) -> super::StoreResult<super::PruneReport> {
                let mut tx = self.writer().begin().await?;
                // Oldest first, by creation; an event with a pending delivery is kept whatever
                // its age (it is still being delivered, or held for a paused webhook).
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT e.id FROM events e JOIN tenants t ON t.id = e.tenant_id WHERE e.created_at < ");
                match query.older_than {
                    Some(age) => {
                        q.push_bind(query.now - age);
                    }
                    None => {
                        q.push_bind(query.now).push(" - COALESCE(t.retention_days, ").push_bind(i64::from(query.default_days)).push(") * 86400000");
                    }
                }
                if let Some(t) = &query.tenant {
                    q.push(" AND e.tenant_id = ").push_bind(t.to_string());
                }
                q.push(" AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending') ORDER BY e.created_at LIMIT ")
                    .push_bind(i64::from(query.batch.max(1)));
                let ids: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await?;
                if ids.is_empty() {
                    return Ok(super::PruneReport::default());
                }
                let run = |sql: &str| {
                    let mut q = sqlx::QueryBuilder::<$db>::new(sql);
                    let mut sep = q.separated(", ");
                    for id in super::common::padded_in_list(&ids) {
                        sep.push_bind(id.clone());
                    }
                    q.push(")");
                    q
                };
                // Pending deliveries are re-checked in each statement: one created meanwhile
                // (a replay) keeps its event, and nothing of it is removed.
                let attempts = run("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE status <> 'pending' AND event_id IN (")
                    .push(")").build().execute(&mut *tx).await?.rows_affected();
                let events = run("DELETE FROM events WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status = 'pending') AND id IN (")
                    .build().execute(&mut *tx).await?.rows_affected();
                let deliveries = run("DELETE FROM deliveries WHERE status <> 'pending' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = deliveries.event_id) AND event_id IN (")
                    .build().execute(&mut *tx).await?.rows_affected();
                let inbound_requests = run("DELETE FROM inbound_requests WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = inbound_requests.event_id) AND event_id IN (")
                    .build().execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(super::PruneReport { events, deliveries, attempts, inbound_requests })
            }

            async fn prune_inbound_requests(&self, before: i64) -> super::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM inbound_requests WHERE received_at < $1")
                    .bind(before)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn forward_notifications(&self, wake: std::sync::Arc<tokio::sync::Notify>, notices: std::sync::Arc<dyn super::NoticeSink>, shutdown: tokio_util::sync::CancellationToken) {
                self.forward_notifications_impl(wake, notices, shutdown).await
            }

            async fn notify(&self, notice: super::Notice<'_>) -> super::StoreResult<()> {
                self.notify_impl(notice).await
            }
        }

        impl $store {
            async fn make_due(&self, tenant: &hookrelay_domain::TenantId, id: &hookrelay_domain::DeliveryId, only_failed: bool) -> super::StoreResult<()> {
                let now = hookrelay_domain::time::now_millis();
                let mut tx = self.writer().begin().await?;
                let row: Option<(String, String)> = sqlx::query_as("SELECT d.status, d.webhook_id FROM deliveries d WHERE d.id = $1 AND d.tenant_id = $2")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let (status, webhook_id) = row.ok_or(super::StoreError::NotFound)?;
                if only_failed && status != "failed" {
                    return Err(super::StoreError::NotFound);
                }
                let hook: Option<String> = sqlx::query_scalar("SELECT id FROM webhooks WHERE id = $1")
                    .bind(&webhook_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if hook.is_none() {
                    return Err(super::StoreError::Conflict("the delivery's webhook was deleted".into()));
                }
                sqlx::query("UPDATE deliveries SET status = 'pending', next_attempt_at = $1, failed_at = NULL, updated_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                Self::notify_due(&mut tx).await?;
                tx.commit().await?;
                Ok(())
            }
        }

        /// One tenant's event allowance within an ingest transaction.
        struct Allowance {
            /// Events that may still be stored.
            left: u64,
            /// `left` as it started.
            initial: u64,
            /// Added to the usage rows up front.
            reserved: u64,
            refusal: super::IngestOutcome,
        }

        /// Per-tenant event allowances for one ingest transaction.
        struct QuotaBook {
            tenants: std::collections::HashMap<String, Allowance>,
            minute: i64,
            day: i64,
        }

        impl QuotaBook {
            /// `None`: go ahead (counted). `Some(refusal)`: over quota.
            fn admit(&mut self, tenant: &str) -> Option<super::IngestOutcome> {
                let a = self.tenants.get_mut(tenant)?;
                if a.left == 0 {
                    return Some(a.refusal.clone());
                }
                a.left -= 1;
                None
            }

            /// A duplicate stored nothing, so it does not count.
            fn unuse(&mut self, tenant: &str) {
                if let Some(a) = self.tenants.get_mut(tenant) {
                    a.left += 1;
                }
            }

            /// Returns the reservation not used by stored events (refused or duplicate ones).
            async fn give_back(&self, tx: &mut sqlx::Transaction<'_, $db>) -> super::StoreResult<()> {
                for (tenant, a) in &self.tenants {
                    let used = a.initial - a.left;
                    let unused = a.reserved.saturating_sub(used) as i64;
                    if unused == 0 {
                        continue;
                    }
                    for (bucket, start) in [("m", self.minute), ("d", self.day)] {
                        sqlx::query("UPDATE tenant_usage SET count = count - $1 WHERE tenant_id = $2 AND bucket = $3 AND bucket_start = $4")
                            .bind(unused)
                            .bind(tenant)
                            .bind(bucket)
                            .bind(start)
                            .execute(&mut **tx)
                            .await?;
                    }
                }
                Ok(())
            }
        }

        /// Reserves, per tenant with event quotas, as many of its events as the limits allow.
        /// The upsert holds the usage rows' locks until commit, so concurrent nodes see exact
        /// counts.
        async fn reserve_quota(tx: &mut sqlx::Transaction<'_, $db>, events: &[super::NewEvent]) -> super::StoreResult<QuotaBook> {
            use super::common::{bucket_start, DAY_MS, MINUTE_MS};
            let now = hookrelay_domain::time::now_millis();
            let mut book = QuotaBook { tenants: Default::default(), minute: bucket_start(now, MINUTE_MS), day: bucket_start(now, DAY_MS) };
            let mut wanted: std::collections::HashMap<&str, (u64, super::EventQuota)> = Default::default();
            for ne in events.iter().filter(|ne| ne.quota != super::EventQuota::default()) {
                wanted.entry(ne.event.tenant_id.as_str()).or_insert((0, ne.quota)).0 += 1;
            }
            for (tenant, (n, q)) in wanted {
                let mut left = n;
                let mut refusal = super::IngestOutcome::QuotaExceeded { limit: "events_per_minute", retry_after_secs: 1 };
                for (bucket, start, size, limit, name) in [
                    ("m", book.minute, MINUTE_MS, q.per_minute, "events_per_minute"),
                    ("d", book.day, DAY_MS, q.per_day, "events_per_day"),
                ] {
                    let total: i64 = sqlx::query_scalar("INSERT INTO tenant_usage (tenant_id, bucket, bucket_start, count) VALUES ($1, $2, $3, $4) \
                        ON CONFLICT (tenant_id, bucket, bucket_start) DO UPDATE SET count = tenant_usage.count + $4 RETURNING count")
                        .bind(tenant)
                        .bind(bucket)
                        .bind(start)
                        .bind(n as i64)
                        .fetch_one(&mut **tx)
                        .await?;
                    if let Some(limit) = limit {
                        let before = (total as u64).saturating_sub(n);
                        let room = limit.saturating_sub(before);
                        if room < left {
                            left = room;
                            let retry = ((start + size - now).max(0) as u64).div_ceil(1000).max(1);
                            refusal = super::IngestOutcome::QuotaExceeded { limit: name, retry_after_secs: retry };
                        }
                    }
                }
                book.tenants.insert(tenant.to_owned(), Allowance { left, initial: left, reserved: n, refusal });
            }
            Ok(book)
        }

        fn expect_one(rows: u64) -> super::StoreResult<()> {
            if rows == 0 {
                Err(super::StoreError::NotFound)
            } else {
                Ok(())
            }
        }

        /// Appends where the due window ends (see `common::DUE_WINDOW`): the due time of the
        /// `DUE_WINDOW`-th pending delivery (due by `due_by`, when given) or, with fewer, `due_by`
        /// (all of them). A walk of `deliveries_due` bounded by it reads at most that many rows,
        /// plus ties.
        fn push_due_window_end(q: &mut sqlx::QueryBuilder<'_, $db>, due_by: Option<i64>) {
            q.push("COALESCE((SELECT next_attempt_at FROM deliveries WHERE status = 'pending'");
            if let Some(now) = due_by {
                q.push(" AND next_attempt_at <= ").push_bind(now);
            }
            q.push(format!(" ORDER BY next_attempt_at LIMIT 1 OFFSET {}), ", super::common::DUE_WINDOW - 1));
            match due_by {
                Some(now) => q.push_bind(now),
                None => q.push(i64::MAX.to_string()),
            };
            q.push(")");
        }

        /// Whether more deliveries are pending (and due by `due_by`, when given) than the due
        /// window holds: only then can a walk bounded by it have missed one.
        async fn due_window_full(conn: &mut <$db as sqlx::Database>::Connection, due_by: Option<i64>) -> super::StoreResult<bool> {
            let mut q = sqlx::QueryBuilder::<$db>::new("SELECT next_attempt_at FROM deliveries WHERE status = 'pending'");
            if let Some(now) = due_by {
                q.push(" AND next_attempt_at <= ").push_bind(now);
            }
            q.push(format!(" ORDER BY next_attempt_at LIMIT 1 OFFSET {}", super::common::DUE_WINDOW - 1));
            let last: Option<Option<i64>> = q.build_query_scalar().fetch_optional(&mut *conn).await?;
            Ok(last.is_some())
        }

        /// Up to `PER_WEBHOOK_VISITS` webhooks with pending deliveries, in id order after `after`.
        async fn webhooks_with_pending(conn: &mut <$db as sqlx::Database>::Connection, after: &str) -> super::StoreResult<Vec<String>> {
            Ok(sqlx::query_scalar(super::common::WEBHOOKS_WITH_PENDING)
                .bind(after)
                .bind(super::common::PER_WEBHOOK_VISITS as i64)
                .fetch_all(&mut *conn)
                .await?)
        }

        /// `w.id IN hooks`, and the webhook may send now: active, no open circuit, not excluded by
        /// the worker (`exclude`) nor taken from by this claim's first pass (`taken`, so that
        /// `max_per_webhook` holds across both passes).
        fn push_may_send(q: &mut sqlx::QueryBuilder<'_, $db>, hooks: &[String], now: i64, exclude: &super::ClaimExclusions, taken: &[String]) {
            q.push(" WHERE w.id IN (");
            let mut sep = q.separated(", ");
            for id in super::common::padded_in_list(hooks) {
                sep.push_bind(id.clone());
            }
            q.push(") AND w.active = TRUE AND (w.circuit_open_until IS NULL OR w.circuit_open_until <= ")
                .push_bind(now)
                .push(")");
            push_not_in(q, "w.id", &exclude.webhooks);
            push_not_in(q, "w.id", taken);
            push_not_in(q, "w.tenant_id", &exclude.tenants);
        }

        /// The claim past the due window: each visited webhook that may send gets an index range
        /// of its own — up to `max_per_webhook` of its due deliveries, in due order, while its
        /// circuit is closed; one (the probe) when it is not; its head (the oldest pending one,
        /// if due and free) when it is ordered. The same rules as the first pass, which takes
        /// them from one walk in due order. The outer `WHERE` checks again, on the row as it is
        /// when updated, that it is still pending and free.
        #[allow(clippy::too_many_arguments)]
        async fn lease_due_per_webhook(tx: &mut sqlx::Transaction<'_, $db>, hooks: &[String], owner: &str, now: i64, lease_until: i64, limit: u32, exclude: &super::ClaimExclusions, taken: &[String]) -> super::StoreResult<Vec<(String, String)>> {
            if hooks.is_empty() || limit == 0 {
                return Ok(Vec::new());
            }
            let per_webhook = i64::from(exclude.max_per_webhook.unwrap_or(limit).min(limit));
            let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE deliveries SET lease_owner = ");
            q.push_bind(owner).push(", lease_until = ").push_bind(lease_until);
            q.push(" WHERE status = 'pending' AND (lease_until IS NULL OR lease_until <= ")
                .push_bind(now)
                .push(") AND id IN (SELECT id FROM (");
            for (i, (circuit, take)) in [("= 'closed'", per_webhook), ("<> 'closed'", 1)].into_iter().enumerate() {
                if i > 0 {
                    q.push(" UNION ALL ");
                }
                q.push("SELECT y.id, y.next_attempt_at FROM webhooks w")
                    .push(<$store>::ROWS_OF_WEBHOOK)
                    .push(super::common::WEBHOOK_ROWS_DUE)
                    .push_bind(now)
                    .push(" AND (z.lease_until IS NULL OR z.lease_until <= ")
                    .push_bind(now)
                    .push(") ORDER BY z.next_attempt_at LIMIT ")
                    .push_bind(take)
                    .push(<$store>::ROWS_END_LOCKED);
                push_may_send(&mut q, hooks, now, exclude, taken);
                q.push(format!(" AND w.ordered = FALSE AND w.circuit_state {circuit}"));
            }
            // The head is chosen unlocked: skipping a locked head would hand out the one after it.
            q.push(" UNION ALL SELECT y.id, y.next_attempt_at FROM webhooks w")
                .push(<$store>::ROWS_OF_WEBHOOK)
                .push("z.status = 'pending' ORDER BY z.created_at, z.id LIMIT 1")
                .push(<$store>::ROWS_END);
            push_may_send(&mut q, hooks, now, exclude, taken);
            q.push(" AND w.ordered = TRUE AND y.next_attempt_at <= ")
                .push_bind(now)
                .push(" AND (y.lease_until IS NULL OR y.lease_until <= ")
                .push_bind(now)
                .push(")) c ORDER BY next_attempt_at LIMIT ")
                .push_bind(i64::from(limit))
                .push(") RETURNING id, webhook_id");
            Ok(q.build_query_as().fetch_all(&mut **tx).await?)
        }

        /// `next_due_at` past the due window: the earliest of each visited webhook's first free
        /// pending delivery (an ordered one's head), unless its open circuit holds it (the
        /// circuit's end counts then).
        /// A visit that did not reach the last webhook answers "within a second" at the latest.
        async fn next_due_per_webhook(conn: &mut <$db as sqlx::Database>::Connection, now: i64) -> super::StoreResult<Option<i64>> {
            let hooks = webhooks_with_pending(&mut *conn, "").await?;
            if hooks.is_empty() {
                return Ok(None);
            }
            // An ordered webhook's first is its head, and only while the head is not out.
            let mut q = sqlx::QueryBuilder::<$db>::new("SELECT MIN(first) FROM (");
            for (i, (rows, ordered)) in [
                ("z.status = (SELECT 'pending') AND z.lease_owner IS NULL ORDER BY z.next_attempt_at LIMIT 1", "FALSE"),
                ("z.status = 'pending' ORDER BY z.created_at, z.id LIMIT 1", "TRUE AND y.lease_owner IS NULL"),
            ]
            .into_iter()
            .enumerate()
            {
                if i > 0 {
                    q.push(" UNION ALL ");
                }
                q.push("SELECT CASE WHEN w.circuit_open_until IS NULL OR w.circuit_open_until <= y.next_attempt_at THEN y.next_attempt_at END AS first FROM webhooks w")
                    .push(<$store>::ROWS_OF_WEBHOOK)
                    .push(rows)
                    .push(<$store>::ROWS_END)
                    .push(" WHERE w.active = TRUE AND w.id IN (");
                let mut sep = q.separated(", ");
                for id in super::common::padded_in_list(&hooks) {
                    sep.push_bind(id.clone());
                }
                q.push(format!(") AND w.ordered = {ordered}"));
            }
            q.push(") firsts");
            let first: Option<i64> = q.build_query_scalar().fetch_one(&mut *conn).await?;
            Ok(if hooks.len() >= super::common::PER_WEBHOOK_VISITS {
                Some(first.map_or(now + 1000, |f| f.min(now + 1000)))
            } else {
                first
            })
        }

        /// Appends `AND col NOT IN (…)` when the list is non-empty.
        #[allow(dead_code)]
        fn push_not_in(q: &mut sqlx::QueryBuilder<'_, $db>, col: &str, values: &[String]) {
            if values.is_empty() {
                return;
            }
            q.push(format!(" AND {col} NOT IN ("));
            let mut sep = q.separated(", ");
            for v in super::common::padded_in_list(values) {
                sep.push_bind(v.clone());
            }
            q.push(")");
        }

        /// Appends the cursor condition, newest-first order and `limit + 1` (to know if more remain).
        fn push_page(q: &mut sqlx::QueryBuilder<'_, $db>, id_col: &str, page: &super::PageRequest) {
            if let Some(cursor) = &page.cursor {
                q.push(format!(" AND {id_col} < ")).push_bind(cursor.clone());
            }
            q.push(format!(" ORDER BY {id_col} DESC LIMIT ")).push_bind(i64::from(page.limit) + 1);
        }

        fn bind_webhook_fields<'q>(
            q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            w: &'q super::Webhook,
            ring: &crate::secrets::Keyring,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            let (url, url_sealed) = super::common::encode_url(&w.url, ring, w.id.as_str());
            q.bind(url)
                .bind(w.kind.as_str())
                .bind(&w.description)
                .bind(w.active)
                .bind(super::common::to_json(&w.events))
                .bind(super::common::to_json(&w.headers))
                .bind(w.rate_limit_per_sec.map(i64::from))
                .bind(super::common::to_json(&w.templates))
                .bind(w.retry_schedule.as_ref().map(super::common::to_json))
                .bind(super::common::encode_secrets(&w.secrets, ring, w.id.as_str()))
                .bind(w.filter.as_ref().map(super::common::to_json))
                .bind(&w.transform)
                .bind(w.target.as_ref().map(super::common::to_json))
                .bind(url_sealed)
                .bind(w.ordered)
        }

        fn bind_source_fields<'q>(
            q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            src: &'q super::Source,
            ring: &crate::secrets::Keyring,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            q.bind(&src.name)
                .bind(&src.provider)
                .bind(super::common::to_json(&src.config))
                .bind(src.secret.as_deref().map(|secret| super::common::encode_source_secret(secret, ring, src.id.as_str())))
                .bind(src.active)
                .bind(src.allow_unsigned)
                .bind(i64::from(src.rate_limit_per_min))
        }

        /// Writes the requests-log entries that came with ingested events, their status and
        /// event id taken from each event's outcome.
        async fn insert_inbound_requests(
            tx: &mut sqlx::Transaction<'_, $db>,
            requests: &[(usize, super::InboundRequest)],
            outcomes: &[super::IngestOutcome],
        ) -> super::StoreResult<()> {
            use super::{IngestOutcome, InboundStatus};
            let mut rows = Vec::with_capacity(requests.len());
            for (i, r) in requests {
                let (status, id) = match outcomes.get(*i) {
                    Some(IngestOutcome::Accepted { id, .. }) => (InboundStatus::Accepted, id),
                    Some(IngestOutcome::Duplicate { id }) => (InboundStatus::Duplicate, id),
                    // Sources do not carry event quotas today; kept exhaustive for when they do.
                    Some(IngestOutcome::QuotaExceeded { .. }) => {
                        rows.push((r, InboundStatus::RateLimited, None));
                        continue;
                    }
                    None => return Err(super::StoreError::Corrupt(format!("inbound request for event {i} of {}", outcomes.len()))),
                };
                rows.push((r, status, Some(id)));
            }
            for chunk in super::common::pow2_chunks(&rows, super::common::INSERT_CHUNK / 2) {
                push_inbound_rows(tx, chunk.iter().cloned()).await?;
            }
            Ok(())
        }

        async fn push_inbound_rows<'a>(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: impl Iterator<Item = (&'a super::InboundRequest, super::InboundStatus, Option<&'a hookrelay_domain::EventId>)>,
        ) -> super::StoreResult<()> {
            let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO inbound_requests (id, source_id, tenant_id, received_at, status, reason, event_id, event_type, provider_id, request_id, headers, body, body_truncated, body_size) ");
            q.push_values(rows, |mut b, (r, status, event_id)| {
                b.push_bind(r.id.as_str()).push_bind(r.source_id.as_str()).push_bind(r.tenant_id.as_str())
                    .push_bind(r.received_at).push_bind(status.as_str()).push_bind(&r.reason)
                    .push_bind(event_id.map(|e| e.as_str())).push_bind(&r.event_type)
                    .push_bind(&r.provider_id).push_bind(&r.request_id).push_bind(&r.headers)
                    .push_bind(&r.body).push_bind(r.body_truncated)
                    .push_bind(i64::try_from(r.body_size).unwrap_or(i64::MAX));
            });
            q.build().execute(&mut **tx).await?;
            Ok(())
        }

        /// A tenant's webhooks for one ingest commit: the cached decode (`store::fanout`), and
        /// which of them may be sent to now (read live each commit, never cached).
        struct ResolvedHooks {
            cached: std::sync::Arc<super::fanout::TenantHooks>,
            /// Per hook of `cached.hooks`: active, with a closed circuit. A webhook whose circuit
            /// is not closed still gets its deliveries; they wait for the claim path's probe.
            live: Vec<bool>,
        }

        /// The tenant's webhooks through the fan-out cache: one narrow read of the tenant's
        /// generation and its webhooks' live state, and a full load (filters parsed, secrets
        /// opened) only when the generation moved or the rows are not the cached ones.
        async fn resolve_tenant_hooks(
            tx: &mut sqlx::Transaction<'_, $db>,
            cache: &super::fanout::HookCache,
            tenant: &hookrelay_domain::TenantId,
            ring: &crate::secrets::Keyring,
        ) -> super::StoreResult<ResolvedHooks> {
            use sqlx::Row;
            let rows = sqlx::query("SELECT t.hooks_generation, w.id, w.active, w.circuit_state FROM tenants t \
                LEFT JOIN webhooks w ON w.tenant_id = t.id WHERE t.id = $1 ORDER BY w.id")
                .bind(tenant.as_str())
                .fetch_all(&mut **tx)
                .await?;
            let Some(first) = rows.first() else {
                // No such tenant: nothing to fan out to.
                let empty = super::fanout::TenantHooks::new(-1, Vec::new(), 0, Default::default());
                return Ok(ResolvedHooks { cached: std::sync::Arc::new(empty), live: Vec::new() });
            };
            let generation: i64 = first.try_get(0)?;
            let (cached, just_loaded) = match cache.get(tenant.as_str(), generation) {
                Some(hit) => (hit, false),
                None => {
                    let loaded = std::sync::Arc::new(load_tenant_hooks(tx, tenant, generation, ring).await?);
                    cache.put(tenant.as_str(), loaded.clone());
                    (loaded, true)
                }
            };
            let (live, same) = live_state(&cached, &rows)?;
            // A load that differs from the narrow read raced a change (PostgreSQL reads each
            // statement afresh); the next commit's generation reloads it, so no second load now.
            if same || just_loaded {
                return Ok(ResolvedHooks { cached, live });
            }
            // Not the rows the entry was loaded from: a change no trigger announced (a hand
            // edit, say). Load them afresh rather than fan out to the wrong set.
            tracing::warn!(tenant = %tenant, "the fan-out cache's webhooks differ from the stored ones at the same generation; reloading");
            let fresh = std::sync::Arc::new(load_tenant_hooks(tx, tenant, generation, ring).await?);
            cache.put(tenant.as_str(), fresh.clone());
            let (live, _) = live_state(&fresh, &rows)?;
            Ok(ResolvedHooks { cached: fresh, live })
        }

        /// Which cached hooks are sendable by the live `(generation, id, active, circuit_state)`
        /// rows, and whether those rows are exactly the cached set. Both are in id order.
        fn live_state(cached: &super::fanout::TenantHooks, rows: &[$row]) -> super::StoreResult<(Vec<bool>, bool)> {
            use sqlx::Row;
            let mut live = vec![false; cached.hooks.len()];
            let mut next = 0;
            let mut seen = 0;
            for r in rows {
                let Some(id) = r.try_get::<Option<&str>, _>(1)? else { continue };
                seen += 1;
                if cached.hooks.get(next).is_some_and(|h| h.id.as_str() == id) {
                    live[next] = r.try_get::<bool, _>(2)? && r.try_get::<&str, _>(3)? == "closed";
                    next += 1;
                }
            }
            Ok((live, next == cached.hooks.len() && seen == cached.rows))
        }

        /// Reads and decodes a tenant's webhooks (and quotas) for the fan-out cache.
        async fn load_tenant_hooks(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant: &hookrelay_domain::TenantId,
            generation: i64,
            ring: &crate::secrets::Keyring,
        ) -> super::StoreResult<super::fanout::TenantHooks> {
            use hookrelay_domain::{EventFilter, PayloadFilter, WebhookId};
            use sqlx::Row;
            // The tenant's quotas ride along on every row (a tenant without webhooks needs none).
            let sql = format!("SELECT {}, t.quotas AS t_quotas FROM webhooks w JOIN tenants t ON t.id = w.tenant_id WHERE w.tenant_id = $1 ORDER BY w.id", super::common::WEBHOOK_COLUMNS);
            let rows = sqlx::query(&sql).bind(tenant.as_str()).fetch_all(&mut **tx).await?;
            let quotas = match rows.first() {
                Some(r) => super::common::parse_quotas(&r.try_get::<String, _>("t_quotas")?)?,
                None => Default::default(),
            };
            let mut hooks = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: String = r.try_get("id")?;
                // Validated when stored; patterns that no longer parse match nothing rather
                // than letting everything through.
                let Some(filter) = r.try_get::<String, _>("events").ok()
                    .and_then(|raw| serde_json::from_str::<Vec<String>>(&raw).ok())
                    .and_then(|patterns| EventFilter::parse(&patterns).ok()) else { continue };
                let payload = match r.try_get::<Option<String>, _>("filter")? {
                    None => None,
                    Some(raw) => match serde_json::from_str(&raw).map_err(|e| e.to_string()).and_then(|v| PayloadFilter::parse(&v).map_err(|e| e.to_string())) {
                        Ok(f) => Some(f),
                        Err(err) => {
                            tracing::warn!(webhook = %id, error = %err, "stored payload filter is invalid; the webhook matches nothing");
                            continue;
                        }
                    },
                };
                // A webhook that cannot be read whole still gets its deliveries; the claim
                // path will report why it cannot send them.
                let webhook = rows::webhook(r, ring).ok().map(std::sync::Arc::new);
                hooks.push(super::fanout::FanOutHook { id: WebhookId::from_trusted(id), filter, payload, webhook });
            }
            Ok(super::fanout::TenantHooks::new(generation, hooks, rows.len(), quotas))
        }

        /// Whether fan-out sends event `e` to `hook`: its event-type patterns, then its payload
        /// filter.
        fn wants(hook: &super::fanout::FanOutHook, e: &super::Event, envelope: &mut Option<Option<serde_json::Value>>) -> bool {
            hook.filter.matches(&e.event_type) && payload_wants(hook, e, envelope)
        }

        /// Whether `hook`'s payload filter passes event `e`, over the envelope (built once per
        /// event, in `envelope`, and only when needed).
        fn payload_wants(hook: &super::fanout::FanOutHook, e: &super::Event, envelope: &mut Option<Option<serde_json::Value>>) -> bool {
            match &hook.payload {
                None => true,
                Some(p) => envelope
                    .get_or_insert_with(|| {
                        let data: serde_json::Value = serde_json::from_str(&e.data).ok()?;
                        Some(serde_json::json!({"event": e.event_type, "timestamp": hookrelay_domain::time::to_rfc3339(e.timestamp), "eventId": e.id, "data": data}))
                    })
                    .as_ref()
                    .is_some_and(|env| p.matches(env)),
            }
        }

        /// Inserts new pending deliveries of stored events, due at `now` (replays).
        async fn insert_due_deliveries(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: &[(&hookrelay_domain::DeliveryId, &super::Event, &hookrelay_domain::WebhookId)],
            now: i64,
        ) -> super::StoreResult<()> {
            let rows: Vec<super::common::DeliveryRow> = rows
                .iter()
                .map(|(id, e, hook)| super::common::DeliveryRow::new(id.as_str(), e, hook.as_str(), now, (None, None)))
                .collect();
            insert_delivery_rows(tx, &rows).await
        }

        /// Inserts new deliveries, one statement per chunk.
        async fn insert_delivery_rows(tx: &mut sqlx::Transaction<'_, $db>, rows: &[super::common::DeliveryRow<'_>]) -> super::StoreResult<()> {
            for chunk in super::common::pow2_chunks(rows, super::common::INSERT_CHUNK) {
                let mut q = sqlx::QueryBuilder::<$db>::new(super::common::INSERT_DELIVERIES);
                <$store>::push_delivery_rows(&mut q, chunk);
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Moves the health of the webhooks the recorded attempts went to, in the attempts'
        /// order, and writes back only what changed (a healthy webhook's success writes nothing).
        /// Adds a batch's counters to their rows (see `hookrelay_domain::stats`).
        async fn write_stats(
            tx: &mut sqlx::Transaction<'_, $db>,
            tally: &hookrelay_domain::stats::StatsTally,
            shard: i64,
        ) -> super::StoreResult<()> {
            let rows: Vec<_> = tally.0.iter().collect();
            for chunk in super::common::pow2_chunks(&rows, super::common::STATS_CHUNK) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO delivery_stats (tenant_id, webhook_id, width_ms, bucket, shard, attempts, retried, succeeded, failed, \
                     l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15) ",
                );
                q.push_values(chunk, |mut b, ((tenant, hook, width, bucket), c)| {
                    b.push_bind(tenant.as_str()).push_bind(hook.as_str()).push_bind(*width).push_bind(*bucket).push_bind(shard)
                        .push_bind(c.attempts as i64).push_bind(c.retried as i64).push_bind(c.succeeded as i64).push_bind(c.failed as i64);
                    for n in c.latency.0 {
                        b.push_bind(n as i64);
                    }
                });
                q.push(super::common::STATS_UPSERT_TAIL);
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        async fn update_health(
            tx: &mut sqlx::Transaction<'_, $db>,
            records: &[&super::AttemptRecord],
            webhook_of: &std::collections::HashMap<String, String>,
            policy: &hookrelay_domain::health::HealthPolicy,
        ) -> super::StoreResult<Vec<super::HealthTransition>> {
            use hookrelay_domain::health::Verdict;
            use sqlx::Row;
            if records.is_empty() {
                return Ok(Vec::new());
            }
            let mut ids: Vec<&str> = webhook_of.values().map(String::as_str).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut q = sqlx::QueryBuilder::<$db>::new("SELECT id, tenant_id, url, circuit_state, consecutive_failures, circuit_open_until, circuit_opens, failing_since, disabled_reason, disabled_at FROM webhooks WHERE id IN (");
            let mut sep = q.separated(", ");
            for id in super::common::padded_in_list(&ids) {
                sep.push_bind(id.to_string());
            }
            q.push(")");
            let rows = q.build().fetch_all(&mut **tx).await?;
            // webhook id -> (tenant, health before, health now)
            let mut health = std::collections::HashMap::new();
            for r in &rows {
                let h = super::common::parse_health(
                    &r.try_get::<String, _>("circuit_state")?,
                    r.try_get("consecutive_failures")?,
                    r.try_get("circuit_open_until")?,
                    r.try_get("circuit_opens")?,
                    r.try_get("failing_since")?,
                    r.try_get::<Option<String>, _>("disabled_reason")?.as_deref(),
                    r.try_get("disabled_at")?,
                )?;
                health.insert(r.try_get::<String, _>("id")?, (r.try_get::<String, _>("tenant_id")?, r.try_get::<String, _>("url")?, h.clone(), h));
            }
            let mut ordered: Vec<&&super::AttemptRecord> = records.iter().collect();
            ordered.sort_by_key(|r| r.finished_at);
            let mut transitions = Vec::new();
            for r in ordered {
                let Some(hook) = webhook_of.get(r.attempt.delivery_id.as_str()) else { continue };
                // A webhook deleted meanwhile has no health to move.
                let Some((tenant, url, _, h)) = health.get_mut(hook) else { continue };
                let verdict = Verdict::of(r.next == super::NextState::Succeeded, r.attempt.response_status);
                if let Some(change) = h.apply(verdict, r.attempt.started_at, r.finished_at, policy) {
                    transitions.push(super::HealthTransition {
                        webhook_id: hookrelay_domain::WebhookId::from_trusted(hook.clone()),
                        tenant_id: hookrelay_domain::TenantId::from_trusted(tenant.clone()),
                        url: url.clone(),
                        change,
                        health: h.clone(),
                        at: r.finished_at,
                    });
                }
            }
            for (id, (_, _, before, h)) in &health {
                if before == h {
                    continue;
                }
                let disabled = h.disabled_reason.is_some() && before.disabled_reason.is_none();
                sqlx::query("UPDATE webhooks SET circuit_state = $1, consecutive_failures = $2, circuit_open_until = $3, circuit_opens = $4, failing_since = $5, disabled_reason = $6, disabled_at = $7, active = CASE WHEN $8 THEN FALSE ELSE active END WHERE id = $9")
                    .bind(h.state.as_str())
                    .bind(i64::from(h.consecutive_failures))
                    .bind(h.open_until)
                    .bind(i64::from(h.opens))
                    .bind(h.failing_since)
                    .bind(h.disabled_reason.map(|r| r.as_str()))
                    .bind(h.disabled_at)
                    .bind(disabled)
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(transitions)
        }

        /// Writes operational events into their tenants' event logs, each with one delivery per
        /// webhook that names it explicitly (`hookrelay.*` or the exact type; never `*`), never
        /// to the webhook it is about. Returns how many deliveries it created.
        async fn emit_operational(tx: &mut sqlx::Transaction<'_, $db>, ops: &[super::common::Operational]) -> super::StoreResult<usize> {
            use sqlx::Row;
            let mut created = 0;
            let mut hooks: std::collections::HashMap<&str, Vec<(String, Vec<String>)>> = Default::default();
            for op in ops {
                if !hooks.contains_key(op.tenant_id.as_str()) {
                    let rows = sqlx::query("SELECT id, events FROM webhooks WHERE tenant_id = $1")
                        .bind(&op.tenant_id)
                        .fetch_all(&mut **tx)
                        .await?;
                    let mut list = Vec::with_capacity(rows.len());
                    for r in &rows {
                        let events: Vec<String> = serde_json::from_str(&r.try_get::<String, _>("events")?).unwrap_or_default();
                        list.push((r.try_get::<String, _>("id")?, events));
                    }
                    hooks.insert(op.tenant_id.as_str(), list);
                }
                let event_id = hookrelay_domain::EventId::generate();
                sqlx::query("INSERT INTO events (id, tenant_id, type, source, idempotency_key, data, timestamp, created_at) VALUES ($1, $2, $3, NULL, NULL, $4, $5, $5)")
                    .bind(event_id.as_str())
                    .bind(&op.tenant_id)
                    .bind(op.event_type)
                    .bind(op.data.to_string())
                    .bind(op.at)
                    .execute(&mut **tx)
                    .await?;
                for (hook, patterns) in &hooks[op.tenant_id.as_str()] {
                    if hook == &op.about_webhook || !hookrelay_domain::health::subscribes_explicitly(patterns, op.event_type) {
                        continue;
                    }
                    sqlx::query("INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, event_type, source, status, attempts, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, NULL, 'pending', 0, $6, $6, $6)")
                        .bind(hookrelay_domain::DeliveryId::generate().as_str())
                        .bind(&op.tenant_id)
                        .bind(event_id.as_str())
                        .bind(hook)
                        .bind(op.event_type)
                        .bind(op.at)
                        .execute(&mut **tx)
                        .await?;
                    created += 1;
                }
            }
            Ok(created)
        }

        /// The claims of deliveries `ids`: their rows with their events', then each distinct
        /// webhook (and its tenant's quotas) read and decoded once, shared by its claims as one
        /// `Arc`, as is each distinct event's payload (a fan-out's claims share one copy). A
        /// delivery whose webhook is gone is left out, as the join it replaces did.
        async fn fetch_claims(conn: &mut <$db as sqlx::Database>::Connection, ids: &[String], ring: &crate::secrets::Keyring) -> super::StoreResult<Vec<super::DeliveryClaim>> {
            use hookrelay_domain::{DeliveryId, EventId};
            use sqlx::Row;
            use std::collections::HashMap;
            use std::sync::Arc;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut q = sqlx::QueryBuilder::<$db>::new(
                "SELECT d.id, d.event_id, d.webhook_id, d.attempts, d.created_at, e.type AS e_type, e.timestamp AS e_timestamp, e.data AS e_data \
                 FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id IN (",
            );
            let mut sep = q.separated(", ");
            for id in super::common::padded_in_list(ids) {
                sep.push_bind(id.clone());
            }
            q.push(") ORDER BY d.next_attempt_at");
            let rows = q.build().fetch_all(&mut *conn).await?;
            let hook_ids: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String, _>("webhook_id"))
                .collect::<Result<std::collections::HashSet<_>, _>>()?
                .into_iter()
                .collect();
            let mut hooks: HashMap<String, (Arc<super::Webhook>, hookrelay_domain::quota::Quotas)> = HashMap::with_capacity(hook_ids.len());
            if !hook_ids.is_empty() {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {}, t.quotas AS t_quotas FROM webhooks w JOIN tenants t ON t.id = w.tenant_id WHERE w.id IN (",
                    super::common::WEBHOOK_COLUMNS
                ));
                let mut sep = q.separated(", ");
                for id in super::common::padded_in_list(&hook_ids) {
                    sep.push_bind(id.clone());
                }
                q.push(")");
                for r in q.build().fetch_all(&mut *conn).await? {
                    let quotas = super::common::parse_quotas(&r.try_get::<String, _>("t_quotas")?)?;
                    let webhook = rows::webhook(&r, ring)?;
                    hooks.insert(webhook.id.to_string(), (Arc::new(webhook), quotas));
                }
            }
            let mut payloads: HashMap<String, Arc<str>> = HashMap::new();
            let mut claims = Vec::with_capacity(rows.len());
            for r in &rows {
                let Some((webhook, quotas)) = hooks.get(r.try_get::<&str, _>("webhook_id")?) else { continue };
                let event_id: String = r.try_get("event_id")?;
                let data = match payloads.get(&event_id) {
                    Some(data) => data.clone(),
                    None => {
                        let data: Arc<str> = Arc::from(r.try_get::<&str, _>("e_data")?);
                        payloads.insert(event_id.clone(), data.clone());
                        data
                    }
                };
                claims.push(super::DeliveryClaim {
                    delivery_id: DeliveryId::from_trusted(r.try_get("id")?),
                    tenant_id: webhook.tenant_id.clone(),
                    event_id: EventId::from_trusted(event_id),
                    event_type: r.try_get("e_type")?,
                    event_timestamp: r.try_get("e_timestamp")?,
                    data,
                    attempts_made: r.try_get::<i64, _>("attempts")? as u32,
                    created_at: r.try_get("created_at")?,
                    webhook: webhook.clone(),
                    tenant_quotas: quotas.clone(),
                });
            }
            Ok(claims)
        }
    };
}

pub(super) use impl_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_keep_due_order_within_each_webhooks_cap() {
        let c =
            |id: &str, hook: &str, batchable: bool| (id.to_string(), hook.to_string(), batchable);
        let candidates = [
            c("a1", "a", true),
            c("b1", "b", false),
            c("a2", "a", true),
            c("b2", "b", false),
            c("a3", "a", true),
            c("c1", "c", true),
            c("a4", "a", true),
        ];
        let ids = |cap, limit| -> Vec<String> {
            let mut caps = WebhookCaps::new(cap, limit);
            let mut offered = 0;
            for (id, hook, batchable) in candidates.iter().cloned() {
                offered += 1;
                if !caps.offer(id, hook, batchable) {
                    break;
                }
            }
            if limit > 0 && caps.chosen.len() == limit as usize {
                assert_eq!(
                    caps.chosen.last().map(|(id, _)| id),
                    candidates.get(offered - 1).map(|c| &c.0),
                    "no candidate is read past a full batch"
                );
            }
            for (id, hook) in &caps.chosen {
                assert!(
                    id.starts_with(hook.as_str()),
                    "{id} is paired with its own webhook"
                );
            }
            caps.chosen.into_iter().map(|(id, _)| id).collect()
        };
        // Two of the batchable webhook, one of the other (its probe or head), in due order.
        assert_eq!(ids(2, 10), ["a1", "b1", "a2", "c1"]);
        // The limit cuts in due order, after the caps.
        assert_eq!(ids(2, 3), ["a1", "b1", "a2"]);
        // No cap of its own: the limit alone.
        assert_eq!(ids(10, 10), ["a1", "b1", "a2", "a3", "c1", "a4"]);
        assert_eq!(ids(0, 10), ["b1"]);
        assert!(ids(2, 0).is_empty());
    }

    #[test]
    fn pow2_chunks_cover_the_rows_in_order_with_few_sizes() {
        let rows: Vec<u32> = (0..1000).collect();
        for n in [0usize, 1, 2, 3, 37, 64, 255, 256, 257, 1000] {
            let chunks: Vec<&[u32]> = pow2_chunks(&rows[..n], 256).collect();
            let joined: Vec<u32> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, rows[..n], "every row once, in order (n = {n})");
            assert!(chunks
                .iter()
                .all(|c| c.len().is_power_of_two() && c.len() <= 256));
        }
        let sizes =
            |n: usize| -> Vec<usize> { pow2_chunks(&rows[..n], 256).map(<[u32]>::len).collect() };
        assert_eq!(sizes(37), [32, 4, 1]);
        assert_eq!(sizes(600), [256, 256, 64, 16, 8]);
    }

    #[test]
    fn claim_turns_go_on_after_a_full_visit_and_start_over_after_a_short_one() {
        let cursor = ClaimCursor::default();
        assert_eq!(cursor.get(), "");
        let full: Vec<String> = (0..PER_WEBHOOK_VISITS)
            .map(|i| format!("w{i:04}"))
            .collect();
        cursor.advance(&full);
        assert_eq!(cursor.get(), full[PER_WEBHOOK_VISITS - 1]);
        cursor.advance(&full[..3]);
        assert_eq!(
            cursor.get(),
            "",
            "a visit that reached the last webhook starts over"
        );
        cursor.advance(&[]);
        assert_eq!(cursor.get(), "");
    }

    #[test]
    fn in_lists_pad_to_a_power_of_two_with_the_last_value() {
        let padded: Vec<&str> = padded_in_list(&["a", "b", "c"]).copied().collect();
        assert_eq!(padded, ["a", "b", "c", "c"]);
        assert_eq!(padded_in_list(&["a"]).count(), 1);
        assert_eq!(padded_in_list::<&str>(&[]).count(), 0);
    }
}
