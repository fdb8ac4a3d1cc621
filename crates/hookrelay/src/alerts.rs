//! The alert evaluation loop: per-webhook failure rates from rolling in-memory counters (fed by
//! the recorder, never by scanning attempts) and each tenant's backlog, checked every few seconds.
//!
//! A crossing flips a flag stored with the webhook or tenant and writes the operational event in
//! that same transaction (`Store::set_alert`), so it fires once per crossing, on any number of
//! nodes, and again only after the value fell back below.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookrelay_domain::alerting::{over_rate, AlertThresholds, Rolling};
use hookrelay_domain::time::now_millis;
use hookrelay_domain::{TenantId, WebhookId};
use tokio_util::sync::CancellationToken;

use crate::store::{AlertChange, Store};

/// The rolling attempt counters of the webhooks this node delivered to.
pub struct AlertCounters {
    window: Duration,
    /// webhook id → (tenant, counters, whether this node last saw it over the threshold).
    hooks: Mutex<HashMap<WebhookId, (TenantId, Rolling, bool)>>,
}

impl AlertCounters {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            hooks: Mutex::new(HashMap::new()),
        }
    }

    /// Counts finished attempts: `(webhook, tenant, finished at, failed)`.
    pub fn record<'a>(
        &self,
        attempts: impl IntoIterator<Item = (&'a WebhookId, &'a TenantId, i64, bool)>,
    ) {
        let mut hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
        for (webhook, tenant, at, failed) in attempts {
            hooks
                .entry(webhook.clone())
                .or_insert_with(|| (tenant.clone(), Rolling::default(), false))
                .1
                .add(at, failed, self.window);
        }
    }

    /// The webhooks whose state against `threshold` changed since the last call, with their
    /// window's `(attempts, failures)`; webhooks idle for a whole window are forgotten.
    fn crossings(&self, now: i64, threshold: f64) -> Vec<(WebhookId, TenantId, bool, u64, u64)> {
        let mut hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = Vec::new();
        hooks.retain(|id, (tenant, rolling, over)| {
            let (attempts, failures) = rolling.totals(now, self.window);
            let now_over = over_rate(attempts, failures, threshold);
            if now_over != *over {
                *over = now_over;
                changed.push((id.clone(), tenant.clone(), now_over, attempts, failures));
            }
            attempts > 0 || *over
        });
        changed
    }
}

/// Evaluates the thresholds every `every` until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    counters: Arc<AlertCounters>,
    thresholds: AlertThresholds,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = evaluate(store.as_ref(), &counters, &thresholds).await {
            crate::monitoring::store_error("api");
            tracing::warn!(error = %e, "alert evaluation failed; retrying at the next tick");
        }
    }
}

/// One evaluation: failure-rate crossings from the counters, backlog crossings from one
/// aggregate query over the pending deliveries.
pub async fn evaluate(
    store: &dyn Store,
    counters: &AlertCounters,
    thresholds: &AlertThresholds,
) -> crate::store::StoreResult<()> {
    let now = now_millis();
    for (webhook, tenant, over, attempts, failures) in
        counters.crossings(now, thresholds.failure_rate)
    {
        store
            .set_alert(&AlertChange::FailureRate {
                tenant,
                webhook,
                over,
                attempts,
                failures,
                window_seconds: thresholds.window.as_secs(),
                at: now,
            })
            .await?;
    }
    let age_ms = thresholds.backlog_age.as_millis() as u64;
    let backlog = store.backlog_by_tenant(now).await?;
    // The same query feeds the overview's queue chart: a sample per tenant with work waiting.
    let samples: Vec<(TenantId, u64)> = backlog
        .iter()
        .filter(|b| b.pending > 0)
        .map(|b| (b.tenant_id.clone(), b.pending))
        .collect();
    if !samples.is_empty() {
        store
            .record_queue_samples(hookrelay_domain::stats::minute_of(now), &samples)
            .await?;
    }
    for b in backlog {
        let over = b.pending >= thresholds.backlog_pending || b.oldest_due_age_ms >= age_ms;
        if over != b.alerting {
            store
                .set_alert(&AlertChange::Backlog {
                    tenant: b.tenant_id,
                    over,
                    pending: b.pending,
                    oldest_pending_age_seconds: b.oldest_due_age_ms / 1000,
                    at: now,
                })
                .await?;
        }
    }
    Ok(())
}
