//! Writes finished attempts back to the store in batches: many attempts, one transaction. The
//! worker's in-flight permit travels with each record, so a slow store slows claiming
//! (backpressure) instead of letting results pile up in memory.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_domain::health::HealthPolicy;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::feed::{Change, ChangeFeed, DeliveryChange};
use crate::store::{AttemptRecord, DeliveryClaim, NextState, Store};

/// One finished attempt waiting to be written, holding its worker slot until then.
pub struct Finished {
    pub record: AttemptRecord,
    pub slot: Option<Slot>,
    /// What was sent, for announcing the result on the change feed.
    pub claim: Option<DeliveryClaim>,
}

/// The place a delivery takes in the worker while it is in flight: a worker permit, and for a
/// handed-off delivery also one of the hand-off's share. Dropping it frees both.
pub struct Slot {
    _worker: OwnedSemaphorePermit,
    _handoff: Option<OwnedSemaphorePermit>,
}

impl Slot {
    /// A slot of a delivery the claim loop leased.
    pub fn claimed(worker: OwnedSemaphorePermit) -> Self {
        Self {
            _worker: worker,
            _handoff: None,
        }
    }

    /// A slot of a delivery the ingest path handed over.
    pub fn handed_off(worker: OwnedSemaphorePermit, handoff: OwnedSemaphorePermit) -> Self {
        Self {
            _worker: worker,
            _handoff: Some(handoff),
        }
    }
}

const MAX_BATCH: usize = 512;

/// Runs until every sender is dropped and the queue is drained.
pub async fn run(
    store: Arc<dyn Store>,
    feed: Arc<ChangeFeed>,
    policy: HealthPolicy,
    alerts: Arc<crate::alerts::AlertCounters>,
    mut rx: mpsc::Receiver<Finished>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // The records move out of the batch (the store reads them by reference); the slots
        // stay in `held` until the records are written, which is the backpressure.
        let (records, held): (Vec<AttemptRecord>, Vec<Held>) = batch
            .drain(..)
            .map(|f| (f.record, (f.slot, f.claim)))
            .unzip();
        let span = tracing::info_span!(
            parent: None,
            "delivery.record",
            db.system.name = crate::telemetry::db_system(store.backend()),
            hookrelay.records = records.len(),
        );
        crate::telemetry::in_span(&span, write_with_retry(store.as_ref(), &records, &policy)).await;
        let sent = || {
            records
                .iter()
                .zip(&held)
                .filter_map(|(r, (_, claim))| Some((r, claim.as_ref()?)))
        };
        for (r, (_, claim)) in records.iter().zip(&held) {
            count(r, claim.as_ref());
        }
        // In memory, per batch: what the failure-rate alert is evaluated on.
        alerts.record(sent().map(|(r, c)| {
            (
                &c.webhook.id,
                &c.tenant_id,
                r.finished_at,
                r.next != NextState::Succeeded,
            )
        }));
        if feed.is_watched() {
            feed.publish(sent().map(|(r, c)| change_of(r, c)).collect());
        }
        drop(held);
    }
}

/// What a record keeps until it is written: its slot, and the claim it was sent for.
type Held = (Option<Slot>, Option<DeliveryClaim>);

/// The delivery as the recorded attempt left it.
fn change_of(record: &AttemptRecord, claim: &DeliveryClaim) -> Change {
    Change::Delivery(DeliveryChange::after(
        record,
        &claim.tenant_id,
        &claim.event_id,
        &claim.event_type,
        &claim.webhook.id,
    ))
}

/// A store outage must not drop results: keep trying. If the process dies meanwhile, the leases
/// expire and the deliveries are attempted again (at-least-once).
async fn write_with_retry(store: &dyn Store, records: &[AttemptRecord], policy: &HealthPolicy) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.record_attempts_with(records, policy).await {
            Ok(transitions) => {
                for t in transitions {
                    tracing::warn!(webhook = %t.webhook_id, tenant = %t.tenant_id, change = ?t.change, "webhook health changed");
                }
                return;
            }
            Err(e) => {
                crate::monitoring::store_error("record");
                tracing::error!(error = %e, count = records.len(), "recording attempts failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn count(r: &AttemptRecord, claim: Option<&DeliveryClaim>) {
    let outcome = match (r.attempt.response_status, r.next) {
        (_, NextState::Succeeded) => "success",
        (_, NextState::RetryAt(_)) => "retry",
        (_, NextState::Failed) => "failed",
    };
    metrics::counter!("hookrelay_attempts_total", "outcome" => outcome).increment(1);
    metrics::histogram!("hookrelay_attempt_duration_seconds")
        .record(f64::from(r.attempt.duration_ms) / 1000.0);
    match r.next {
        NextState::Succeeded => {
            metrics::counter!("hookrelay_deliveries_total", "status" => "succeeded").increment(1);
            if let Some(claim) = claim {
                // From the delivery's creation (its event's commit) to the receiver's 2xx,
                // retries included: the latency a subscriber sees.
                let latency_ms = (r.finished_at - claim.created_at).max(0);
                metrics::histogram!("hookrelay_delivery_latency_seconds")
                    .record(latency_ms as f64 / 1000.0);
            }
        }
        NextState::Failed => {
            metrics::counter!("hookrelay_deliveries_total", "status" => "failed").increment(1)
        }
        NextState::RetryAt(_) => metrics::counter!("hookrelay_retries_total").increment(1),
    }
}
