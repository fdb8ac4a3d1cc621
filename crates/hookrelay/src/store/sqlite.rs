//! The embedded store: one SQLite file in WAL mode. All writes go through a single connection
//! (SQLite has one writer anyway, so this avoids lock contention); reads use a small pool.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::common::impl_store;
use super::{StoreError, StoreResult};
use crate::secrets::Keyring;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    keyring: Arc<Keyring>,
    /// Each tenant's decoded webhooks between ingest commits (see `store::fanout`).
    hook_cache: super::fanout::HookCache,
    /// Where claims past the due window take their turn among webhooks.
    claim_cursor: super::common::ClaimCursor,
}

impl SqliteStore {
    /// Opens (creating if needed, folder included) the database a `sqlite://PATH` URL names.
    pub async fn connect(url: &str, keyring: Arc<Keyring>, full_sync: bool) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a committed transaction survives a process crash (kill -9);
            // only an OS crash or power loss can lose the last commits. FULL (on request)
            // fsyncs each commit. See docs/operations.md.
            .synchronous(if full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // The writer's 32 MB keeps the hot indexes (due deliveries, idempotency keys) cached.
            .pragma("cache_size", "-32000")
            .pragma("temp_store", "memory")
            // Room for every query text we use; multi-row statements come in power-of-two sizes
            // (see `common::pow2_chunks`), so none is re-prepared under load.
            .statement_cache_capacity(256);
        if let Some(parent) = Path::new(options.get_filename()).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::UnsupportedUrl(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            // Readers page through large payloads (event lists); a 4 MB cache each keeps four of
            // them from holding 128 MB of pages the OS page cache has anyway.
            .connect_with(options.pragma("cache_size", "-4000"))
            .await?;
        Ok(Self {
            writer,
            reader,
            keyring,
            hook_cache: Default::default(),
            claim_cursor: Default::default(),
        })
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
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

    /// One writer: the per-webhook subquery needs no row locks.
    const ROWS_OF_WEBHOOK: &'static str =
        " JOIN deliveries y ON y.id IN (SELECT z.id FROM deliveries z WHERE z.webhook_id = w.id AND ";
    const ROWS_END_LOCKED: &'static str = ")";
    const ROWS_END: &'static str = ")";

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.writer)
            .await?;
        Ok(())
    }

    /// One writer means the candidates cannot change between the read and the update: no row
    /// locks needed. The per-webhook cap is applied in Rust (`common::WebhookCaps`)
    /// rather than with `ROW_NUMBER() OVER (PARTITION BY webhook_id …)`: SQLite's window sorts
    /// and buffers every candidate and was half of the claim's instructions (docs/perf.md).
    async fn lease_due_ids(
        tx: &mut Transaction<'_, Sqlite>,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
        exclude: &super::ClaimExclusions,
    ) -> StoreResult<Vec<(String, String)>> {
        // Candidates in due order. A webhook whose circuit is open is skipped here, in the
        // query: its deliveries are neither leased nor handed back. `batchable` is false for
        // an ordered webhook and for one whose circuit is not closed: those get one (the head,
        // or the probe).
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(
            "SELECT d.id, d.webhook_id, (w.ordered = FALSE AND w.circuit_state = 'closed') AS batchable \
             FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND w.active = TRUE AND (w.circuit_open_until IS NULL OR w.circuit_open_until <= ",
        );
        q.push_bind(now).push(") AND d.next_attempt_at <= ");
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
        // The statement allows `limit × 4` candidates, room to skip webhooks at their cap;
        // reading stops once the batch is full (with one busy webhook, after `limit` rows).
        let mut caps =
            super::common::WebhookCaps::new(exclude.max_per_webhook.unwrap_or(limit), limit);
        {
            let mut found = q
                .build_query_as::<(String, String, bool)>()
                .fetch(&mut **tx);
            while let Some((id, webhook, batchable)) = found.try_next().await? {
                if !caps.offer(id, webhook, batchable) {
                    break;
                }
            }
        }
        if caps.chosen.is_empty() {
            return Ok(Vec::new());
        }
        // Every chosen row is updated: nothing else writes between the read and here.
        let mut u = sqlx::QueryBuilder::<Sqlite>::new("UPDATE deliveries SET lease_owner = ");
        u.push_bind(owner)
            .push(", lease_until = ")
            .push_bind(lease_until)
            .push(" WHERE id IN (");
        let mut ids = u.separated(", ");
        for (id, _) in super::common::padded_in_list(&caps.chosen) {
            ids.push_bind(id.as_str());
        }
        u.push(")");
        u.build().execute(&mut **tx).await?;
        Ok(caps.chosen)
    }

    /// SQLite's planner walks `deliveries_due` in due order without statistics to mislead it.
    async fn plan_queue_walks(_tx: &mut Transaction<'_, Sqlite>) -> StoreResult<()> {
        Ok(())
    }

    /// The rows of `v` in the record statement, as `VALUES`.
    fn push_result_rows<'a>(
        q: &mut sqlx::QueryBuilder<'a, Sqlite>,
        records: &'a [super::AttemptRecord],
    ) {
        q.push_values(records, |mut b, r| {
            let v = super::common::ResultRow::of(r);
            b.push_bind(v.id)
                .push_bind(v.owner)
                .push_bind(v.status)
                .push_bind(v.attempts)
                .push_bind(v.next_at)
                .push_bind(v.last_status)
                .push_bind(v.last_error)
                .push_bind(v.delivered_at)
                .push_bind(v.failed_at)
                .push_bind(v.updated_at);
        });
    }

    /// The rows of `INSERT INTO events` (`common::INSERT_PLAIN_EVENTS`), as `VALUES`.
    fn push_event_rows<'a>(q: &mut sqlx::QueryBuilder<'a, Sqlite>, events: &'a [&'a super::Event]) {
        q.push_values(events, |mut b, e| {
            b.push_bind(e.id.as_str())
                .push_bind(e.tenant_id.as_str())
                .push_bind(e.event_type.as_str())
                .push_bind(e.source.as_deref())
                .push_bind(e.data.as_str())
                .push_bind(e.timestamp)
                .push_bind(e.created_at);
        });
    }

    /// The rows of `INSERT INTO deliveries`, as `VALUES`.
    fn push_delivery_rows<'a>(
        q: &mut sqlx::QueryBuilder<'a, Sqlite>,
        rows: &'a [super::common::DeliveryRow<'a>],
    ) {
        q.push_values(rows, |mut b, d| {
            b.push_bind(d.id)
                .push_bind(d.tenant_id)
                .push_bind(d.event_id)
                .push_bind(d.webhook_id)
                .push_bind(d.event_type)
                .push_bind(d.source)
                .push_bind("pending")
                .push_bind(0i64)
                .push_bind(d.at)
                .push_bind(d.lease_owner)
                .push_bind(d.lease_until)
                .push_bind(d.at)
                .push_bind(d.at);
        });
    }

    /// The rows of `INSERT INTO attempts`, as `VALUES`.
    fn push_attempt_rows<'a>(
        q: &mut sqlx::QueryBuilder<'a, Sqlite>,
        records: &'a [&'a super::AttemptRecord],
    ) {
        q.push_values(records, |mut b, r| {
            let a = &r.attempt;
            b.push_bind(a.delivery_id.as_str())
                .push_bind(i64::from(a.n))
                .push_bind(a.started_at)
                .push_bind(i64::from(a.duration_ms))
                .push_bind(a.request_headers.as_str())
                .push_bind(a.response_status.map(i64::from))
                .push_bind(a.response_body.as_deref())
                .push_bind(a.error.as_deref())
                .push_bind(a.error_kind.as_deref());
        });
    }

    /// In-process wakeups are enough for a single node; the caller signals them.
    async fn notify_due(_tx: &mut Transaction<'_, Sqlite>) -> StoreResult<()> {
        Ok(())
    }

    async fn forward_notifications_impl(
        &self,
        _wake: Arc<Notify>,
        _notices: Arc<dyn super::NoticeSink>,
        _shutdown: CancellationToken,
    ) {
    }

    /// One process, no other node to tell.
    async fn notify_impl(&self, _notice: super::Notice<'_>) -> StoreResult<()> {
        Ok(())
    }
}

impl_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "sqlite");

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous_of(full_sync: bool) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db", dir.path().display());
        let ring = Arc::new(Keyring::new(&Keyring::generate_key(), &[]).unwrap());
        let store = SqliteStore::connect(&url, ring, full_sync).await.unwrap();
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(store.writer())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn commits_wait_for_the_disk_only_when_asked() {
        // SQLite's codes: 1 = NORMAL, 2 = FULL.
        assert_eq!(synchronous_of(false).await, 1);
        assert_eq!(synchronous_of(true).await, 2);
    }
}
