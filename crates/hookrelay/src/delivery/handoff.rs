//! The hand-off: the ingest transaction leases some of the deliveries it creates to this node's
//! worker and passes them over in memory, so a fresh event is sent without a claim query.
//!
//! Everything stays in the store: a handed-off delivery is a `pending` row leased to this node,
//! exactly as if the claim loop had taken it, so a crash before the attempt is recorded only
//! lets the lease expire and the delivery is claimed again (at least once, as ever). Two limits
//! keep the claim loop in charge of fairness: the hand-off holds at most half of the worker's
//! slots (retries, backlogs and other nodes' deliveries always have room), and it takes only
//! deliveries whose webhook and tenant have no delivery rate limit (rate-limited ones are paced
//! by the claim loop, which skips a webhook while its bucket is dry). The gate still admits
//! every handed-off delivery; one it refuses is given back, as a claimed one would be.

use std::sync::Arc;

use hookrelay_domain::quota::Quotas;
use hookrelay_domain::time::now_millis;
use opentelemetry::trace::SpanContext;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::gate::Gate;
use super::recorder::Slot;
use super::worker::Dispatch;
use crate::store::{DeliveryClaim, LeaseOffer, Webhook};

/// The ingest path's door into this node's worker.
#[derive(Clone)]
pub struct Handoff {
    dispatch: Arc<Dispatch>,
    /// The hand-off's share of the worker's slots.
    share: Arc<Semaphore>,
}

/// Slots set aside for the deliveries of one ingest commit; what the commit does not use is
/// freed when this is dropped.
pub struct Reservation {
    worker: OwnedSemaphorePermit,
    share: OwnedSemaphorePermit,
}

impl Reservation {
    pub fn len(&self) -> usize {
        self.worker.num_permits()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take_one(&mut self) -> Option<Slot> {
        Some(Slot::handed_off(
            self.worker.split(1)?,
            self.share.split(1)?,
        ))
    }
}

/// Slots one commit may set aside per event it holds (a fan-out beyond this goes to the claim
/// loop), and at least.
const SLOTS_PER_EVENT: usize = 4;
const MIN_SLOTS: usize = 16;

impl Handoff {
    pub(super) fn new(dispatch: Arc<Dispatch>) -> Self {
        let share = Arc::new(Semaphore::new((dispatch.ctx.concurrency / 2).max(1)));
        Self { dispatch, share }
    }

    /// Sets aside free slots for a commit of `events` events; `None` when there are none (or
    /// the worker is stopping), and the commit leases nothing.
    pub fn reserve(&self, events: usize) -> Option<Reservation> {
        if self.dispatch.shutdown.is_cancelled() {
            return None;
        }
        let want = (events.saturating_mul(SLOTS_PER_EVENT))
            .max(MIN_SLOTS)
            .min(self.share.available_permits())
            .min(self.dispatch.slots.available_permits());
        if want == 0 {
            return None;
        }
        let share = self
            .share
            .clone()
            .try_acquire_many_owned(want as u32)
            .ok()?;
        let worker = self
            .dispatch
            .slots
            .clone()
            .try_acquire_many_owned(want as u32)
            .ok()?;
        Some(Reservation { worker, share })
    }

    /// Whether a delivery of `webhook` in a tenant with `quotas` may be handed off: only the
    /// in-flight caps, which the gate checks on arrival, apply to it.
    pub fn accepts(&self, webhook: &Webhook, quotas: &Quotas) -> bool {
        Gate::is_unmetered(&self.dispatch.ctx.limits, webhook, quotas)
    }

    /// The offer an ingest of up to `reservation.len()` handed-off deliveries makes to the
    /// store, leasing them to this node from now.
    pub fn offer<'a>(
        &'a self,
        reservation: &Reservation,
        accepts: &'a (dyn Fn(&Webhook, &Quotas) -> bool + Send + Sync),
    ) -> LeaseOffer<'a> {
        LeaseOffer {
            owner: &self.dispatch.ctx.owner,
            lease_until: now_millis() + self.dispatch.ctx.lease().as_millis() as i64,
            max: reservation.len(),
            accepts,
        }
    }

    /// Starts the deliveries a committed ingest leased under this reservation's offer; their
    /// attempts' spans link to `commit` (the ingest commit's span, when tracing).
    pub fn start(
        &self,
        leased: Vec<DeliveryClaim>,
        mut reservation: Reservation,
        commit: Option<SpanContext>,
    ) {
        if leased.is_empty() {
            return;
        }
        let mut claims = Vec::with_capacity(leased.len());
        let mut unslotted = Vec::new();
        for claim in leased {
            match reservation.take_one() {
                Some(slot) => claims.push((claim, slot)),
                // The store leases no more than the offer's `max`; should it, the extra are
                // given back rather than left leased until their lease expires.
                None => unslotted.push((claim.delivery_id, now_millis())),
            }
        }
        drop(reservation);
        let mut give_back = self.dispatch.start(claims, commit.as_ref());
        give_back.extend(unslotted);
        if !give_back.is_empty() {
            let dispatch = self.dispatch.clone();
            self.dispatch
                .track(async move { dispatch.give_back(&give_back).await });
        }
    }
}
