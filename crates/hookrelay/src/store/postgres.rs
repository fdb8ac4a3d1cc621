//! The scale-out store: many stateless nodes share one PostgreSQL database. Claims use
//! `FOR UPDATE SKIP LOCKED` so workers never contend; `LISTEN/NOTIFY` wakes them across nodes.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::common::impl_store;
use super::{Notice, NoticeSink, StoreResult};
use crate::secrets::Keyring;

/// Prepared statements kept per connection (see `common::pow2_chunks`).
const STATEMENT_CACHE: usize = 256;

/// The channel ingest and retries notify on when deliveries become due.
const DUE_CHANNEL: &str = "hookrelay_due";
/// The change feed's channels: a node announcing stream watchers, and relayed changes.
const WATCH_CHANNEL: &str = "hookrelay_feed_watch";
const CHANGES_CHANNEL: &str = "hookrelay_feed_changes";

/// How long a query waits for a connection. While PostgreSQL is down every connect fails, so
/// this bounds how long an API call takes to answer `503` (and a worker to back off).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PgStore {
    pool: PgPool,
    keyring: Arc<Keyring>,
    /// Each tenant's decoded webhooks between ingest commits (see `store::fanout`).
    hook_cache: super::fanout::HookCache,
    /// Where claims past the due window take their turn among webhooks.
    claim_cursor: super::common::ClaimCursor,
}

impl PgStore {
    pub async fn connect(url: &str, keyring: Arc<Keyring>, max: u32) -> StoreResult<Self> {
        // Room for every query text we use: multi-row statements come in power-of-two sizes
        // (see `common::pow2_chunks`), so their texts are few and none is re-prepared.
        let options = PgConnectOptions::from_str(url)?.statement_cache_capacity(STATEMENT_CACHE);
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            keyring,
            hook_cache: Default::default(),
            claim_cursor: Default::default(),
        })
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn hook_cache(&self) -> &super::fanout::HookCache {
        &self.hook_cache
    }

    fn claim_cursor(&self) -> &super::common::ClaimCursor {
        &self.claim_cursor
    }

    /// `LATERAL` gives each webhook its own index range; claimers on other nodes skip the rows
    /// one holds (`SKIP LOCKED`), as in the first pass.
    const ROWS_OF_WEBHOOK: &'static str = " CROSS JOIN LATERAL (SELECT z.id, z.next_attempt_at, z.lease_until, z.lease_owner FROM deliveries z WHERE z.webhook_id = w.id AND ";
    const ROWS_END_LOCKED: &'static str = " FOR UPDATE OF z SKIP LOCKED) y";
    const ROWS_END: &'static str = ") y";

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// `SKIP LOCKED` lets concurrent workers on many nodes take disjoint batches without waiting.
    async fn lease_due_ids(
        tx: &mut Transaction<'_, Postgres>,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
        exclude: &super::ClaimExclusions,
    ) -> StoreResult<Vec<(String, String)>> {
        // A lease lost in a database crash only makes the delivery claimable again, so claims
        // need not wait for the WAL flush; ingest and attempt records still do. The plan setting
        // is `plan_queue_walks`'s, in the same round trip.
        sqlx::query(
            "SELECT set_config('synchronous_commit', 'off', true), set_config('enable_bitmapscan', 'off', true)",
        )
        .execute(&mut **tx)
        .await?;
        let mut q = sqlx::QueryBuilder::<Postgres>::new("UPDATE deliveries SET lease_owner = ");
        q.push_bind(owner)
            .push(", lease_until = ")
            .push_bind(lease_until);
        // Candidates in due order, then at most `max_per_webhook` of any one webhook, and one
        // (the probe) of a webhook whose circuit is not closed. A webhook whose circuit is open
        // is skipped here, in the query: its deliveries are neither leased nor handed back.
        q.push(
            " WHERE id IN (SELECT id FROM (SELECT c.id, c.next_attempt_at, c.cstate, \
               ROW_NUMBER() OVER (PARTITION BY c.webhook_id ORDER BY c.next_attempt_at) AS rn FROM (\
               SELECT d.id, d.webhook_id, d.next_attempt_at, CASE WHEN w.ordered THEN 'ordered' ELSE w.circuit_state END AS cstate FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
               WHERE d.status = 'pending' AND w.active = TRUE AND (w.circuit_open_until IS NULL OR w.circuit_open_until <= ",
        )
        .push_bind(now)
        .push(") AND d.next_attempt_at <= ");
        push_due_window_end(&mut q, Some(now));
        q.push(" AND (d.lease_until IS NULL OR d.lease_until <= ")
            .push_bind(now)
            .push(")");
        q.push(super::common::ORDERED_HEAD_ONLY);
        push_not_in(&mut q, "d.webhook_id", &exclude.webhooks);
        push_not_in(&mut q, "d.tenant_id", &exclude.tenants);
        let candidates = i64::from(limit)
            * if exclude.max_per_webhook.is_some() {
                4
            } else {
                1
            };
        q.push(" ORDER BY d.next_attempt_at LIMIT ")
            .push_bind(candidates);
        q.push(
            " FOR UPDATE OF d SKIP LOCKED) c) ranked WHERE rn <= CASE WHEN cstate = 'closed' THEN ",
        )
        .push_bind(i64::from(exclude.max_per_webhook.unwrap_or(limit)))
        .push(" ELSE 1 END")
        .push(" ORDER BY next_attempt_at LIMIT ")
        .push_bind(i64::from(limit));
        q.push(") RETURNING id, webhook_id");
        Ok(q.build_query_as().fetch_all(&mut **tx).await?)
    }

    /// The queue's walks (the due window, the claim's candidates) follow `deliveries_due` in due
    /// order whatever the statistics say. With stale ones (autovacuum off, or a backlog grown
    /// since the last `ANALYZE`) the planner expects a few hundred due rows where a million wait,
    /// and picks a bitmap scan and a sort of all of them: 0.5 s per claim instead of 1 ms.
    async fn plan_queue_walks(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
        sqlx::query("SET LOCAL enable_bitmapscan = off")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The rows of `v` in the record statement, as one array per column: `UNNEST` keeps the
    /// statement text the same for every batch and binds 10 parameters instead of 10 per row
    /// (formatting each `$N` into the text cost 29.5k instructions per delivery with `VALUES`).
    fn push_result_rows<'a>(
        q: &mut sqlx::QueryBuilder<'a, Postgres>,
        records: &'a [super::AttemptRecord],
    ) {
        let rows: Vec<super::common::ResultRow> =
            records.iter().map(super::common::ResultRow::of).collect();
        let r = || rows.iter();
        Unnest::open(q, "SELECT * FROM UNNEST(")
            .column(r().map(|v| v.id), "text")
            .column(r().map(|v| v.owner), "text")
            .column(r().map(|v| v.status), "text")
            .column(r().map(|v| v.attempts), "int8")
            .column(r().map(|v| v.next_at), "int8")
            .column(r().map(|v| v.last_status), "int8")
            .column(r().map(|v| v.last_error), "text")
            .column(r().map(|v| v.delivered_at), "int8")
            .column(r().map(|v| v.failed_at), "int8")
            .column(r().map(|v| v.updated_at), "int8")
            .close(")");
    }

    /// The rows of `INSERT INTO events` (`common::INSERT_PLAIN_EVENTS`), as one array per
    /// column (see `push_result_rows`).
    fn push_event_rows<'a>(
        q: &mut sqlx::QueryBuilder<'a, Postgres>,
        events: &'a [&'a super::Event],
    ) {
        let e = || events.iter();
        Unnest::open(q, "SELECT * FROM UNNEST(")
            .column(e().map(|e| e.id.as_str()), "text")
            .column(e().map(|e| e.tenant_id.as_str()), "text")
            .column(e().map(|e| e.event_type.as_str()), "text")
            .column(e().map(|e| e.source.as_deref()), "text")
            .column(e().map(|e| e.data.as_str()), "text")
            .column(e().map(|e| e.timestamp), "int8")
            .column(e().map(|e| e.created_at), "int8")
            .close(")");
    }

    /// The rows of `INSERT INTO deliveries`, as one array per column (see `push_result_rows`).
    fn push_delivery_rows<'a>(
        q: &mut sqlx::QueryBuilder<'a, Postgres>,
        rows: &'a [super::common::DeliveryRow<'a>],
    ) {
        let d = || rows.iter();
        Unnest::open(q, "SELECT r.id, r.tenant_id, r.event_id, r.webhook_id, r.event_type, r.source, 'pending', 0, r.at, r.lease_owner, r.lease_until, r.at, r.at FROM UNNEST(")
            .column(d().map(|d| d.id), "text")
            .column(d().map(|d| d.tenant_id), "text")
            .column(d().map(|d| d.event_id), "text")
            .column(d().map(|d| d.webhook_id), "text")
            .column(d().map(|d| d.event_type), "text")
            .column(d().map(|d| d.source), "text")
            .column(d().map(|d| d.at), "int8")
            .column(d().map(|d| d.lease_owner), "text")
            .column(d().map(|d| d.lease_until), "int8")
            .close(") AS r(id, tenant_id, event_id, webhook_id, event_type, source, at, lease_owner, lease_until)");
    }

    /// The rows of `INSERT INTO attempts`, as one array per column (see `push_result_rows`).
    fn push_attempt_rows<'a>(
        q: &mut sqlx::QueryBuilder<'a, Postgres>,
        records: &'a [&'a super::AttemptRecord],
    ) {
        let a = || records.iter().map(|r| &r.attempt);
        Unnest::open(q, "SELECT * FROM UNNEST(")
            .column(a().map(|a| a.delivery_id.as_str()), "text")
            .column(a().map(|a| i64::from(a.n)), "int8")
            .column(a().map(|a| a.started_at), "int8")
            .column(a().map(|a| i64::from(a.duration_ms)), "int8")
            .column(a().map(|a| a.request_headers.as_str()), "text")
            .column(a().map(|a| a.response_status.map(i64::from)), "int8")
            .column(a().map(|a| a.response_body.as_deref()), "text")
            .column(a().map(|a| a.error.as_deref()), "text")
            .column(a().map(|a| a.error_kind.as_deref()), "text")
            .close(")");
    }

    /// Sent at commit, so listeners on every node see work only once it is visible.
    async fn notify_due(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(DUE_CHANNEL)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn forward_notifications_impl(
        &self,
        wake: Arc<Notify>,
        notices: Arc<dyn NoticeSink>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(e) = listener
                .listen_all([DUE_CHANNEL, WATCH_CHANNEL, CHANGES_CHANNEL])
                .await
            {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                continue;
            }
            backoff = Duration::from_millis(100);
            // Anything committed while we were not listening is picked up by the worker's poll.
            wake.notify_one();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    msg = listener.recv() => match msg {
                        Ok(n) => match n.channel() {
                            WATCH_CHANNEL => notices.watcher_seen(n.payload()),
                            CHANGES_CHANNEL => notices.changes_received(n.payload()),
                            _ => wake.notify_one(),
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                            break;
                        }
                    }
                }
            }
        }
    }

    async fn notify_impl(&self, notice: Notice<'_>) -> StoreResult<()> {
        let (channel, payload) = match notice {
            Notice::Watching(node) => (WATCH_CHANNEL, node),
            Notice::Changes(batch) => (CHANGES_CHANNEL, batch),
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The arrays of an `UNNEST(…)` row source, one bound parameter per column, each cast to
/// its SQL array type (`$1::text[], $2::int8[], …`), in the order the statement names them.
struct Unnest<'q, 'a> {
    q: &'q mut sqlx::QueryBuilder<'a, Postgres>,
    columns: usize,
}

impl<'q, 'a> Unnest<'q, 'a> {
    /// Starts with `head`, the text up to and including `UNNEST(`.
    fn open(q: &'q mut sqlx::QueryBuilder<'a, Postgres>, head: &str) -> Self {
        q.push(head);
        Self { q, columns: 0 }
    }

    /// Binds one column's values as an array of `sql_type`.
    fn column<T>(self, values: impl Iterator<Item = T>, sql_type: &str) -> Self
    where
        Vec<T>: 'a + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres>,
    {
        if self.columns > 0 {
            self.q.push(", ");
        }
        self.q.push_bind(values.collect::<Vec<T>>());
        self.q.push(format_args!("::{sql_type}[]"));
        Self {
            q: self.q,
            columns: self.columns + 1,
        }
    }

    /// Ends with `tail`, the text from the closing parenthesis on.
    fn close(self, tail: &str) {
        self.q.push(tail);
    }
}

impl_store!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow, "postgres");
