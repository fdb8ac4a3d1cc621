//! Retention: deletes events past their tenant's `retention_days` (with their deliveries,
//! attempts and inbound requests) in small batches, in the background and for `hookrelay prune`.

use std::time::Duration;

use hookrelay_domain::time::now_millis;
use hookrelay_domain::TenantId;
use tokio_util::sync::CancellationToken;

use crate::store::{PruneQuery, PruneReport, Store, StoreResult};

/// Events per transaction: small, so a pass never holds the (SQLite) writer for long and ingest
/// and delivery interleave with it.
pub const BATCH: u32 = 500;
/// How often the background pass runs.
pub const EVERY: Duration = Duration::from_secs(600);

/// `7d`, `12h`, `90m`, `30s` → milliseconds (no upper bound, unlike a stats window).
pub fn parse_age(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let (num, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    n.checked_mul(match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    })
}

/// Prunes until nothing is left to remove: events older than `older_than` when given, else past
/// each tenant's retention (`default_days` for a tenant that sets none).
pub async fn prune(
    store: &dyn Store,
    default_days: u32,
    older_than: Option<i64>,
    tenant: Option<&TenantId>,
) -> StoreResult<PruneReport> {
    let mut total = PruneReport::default();
    loop {
        let query = PruneQuery {
            now: now_millis(),
            default_days,
            older_than,
            tenant: tenant.cloned(),
            batch: BATCH,
        };
        let removed = store.prune_events(&query).await?;
        total += removed;
        if removed.events < u64::from(BATCH) {
            return Ok(total);
        }
        // Let ingest and delivery take the writer between batches.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The background pass, every `EVERY` until `shutdown`.
pub async fn run(store: std::sync::Arc<dyn Store>, default_days: u32, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        match prune(store.as_ref(), default_days, None, None).await {
            Ok(r) if r.events > 0 => {
                tracing::info!(
                    events = r.events,
                    deliveries = r.deliveries,
                    attempts = r.attempts,
                    inbound_requests = r.inbound_requests,
                    "retention: pruned old events"
                )
            }
            Ok(_) => {}
            Err(e) => {
                crate::monitoring::store_error("api");
                tracing::warn!(error = %e, "retention: pruning failed; retrying at the next pass")
            }
        }
        if let Err(e) = prune_stats(store.as_ref()).await {
            crate::monitoring::store_error("api");
            tracing::warn!(error = %e, "retention: pruning delivery statistics failed; retrying at the next pass")
        }
    }
}

/// Drops delivery-statistics rows past their width's retention (a fixed span, not the tenant's:
/// the overview's week must stay whole), a few buckets at a time.
pub async fn prune_stats(store: &dyn Store) -> StoreResult<u64> {
    let mut total = 0;
    loop {
        let removed = store.prune_delivery_stats(now_millis(), 60).await?;
        total += removed;
        if removed == 0 {
            return Ok(total);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("7d"), Some(7 * 86_400_000));
        assert_eq!(parse_age("90m"), Some(90 * 60_000));
        assert_eq!(parse_age("400d"), Some(400 * 86_400_000));
        assert_eq!(parse_age("7"), None);
        assert_eq!(parse_age("0d"), None);
        assert_eq!(parse_age("d"), None);
    }
}
