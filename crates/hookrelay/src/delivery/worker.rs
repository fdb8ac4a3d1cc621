//! The dispatch loop: lease a batch of due deliveries, send each on its own task within a
//! bounded number in flight, and sleep until new work is signalled or the next retry is due.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hookrelay_domain::time::now_millis;
use hookrelay_domain::{DeliveryId, RetrySchedule};
use opentelemetry::trace::SpanContext;
use opentelemetry::KeyValue;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Span;

use super::attempt::record_for;
use super::gate::{Admission, Gate, GateLimits};
use super::handoff::Handoff;
use super::recorder::{self, Finished, Slot};
use super::Sender;
use crate::feed::ChangeFeed;
use crate::store::{DeliveryClaim, Store};
use crate::telemetry;

/// What a worker needs, shared by its tasks.
pub struct WorkerContext {
    pub store: Arc<dyn Store>,
    pub sender: Sender,
    pub schedule: RetrySchedule,
    /// Signalled when deliveries may have become due (ingest, retry, resume, cross-node NOTIFY).
    pub wake: Arc<Notify>,
    pub concurrency: usize,
    pub claim_batch: u32,
    /// Added to the delivery timeout to form the lease.
    pub lease_grace: Duration,
    /// Unique per process: leases are owned by it.
    pub owner: String,
    pub limits: GateLimits,
    /// Where recorded attempts are announced (the dashboard's live stream).
    pub feed: Arc<ChangeFeed>,
    /// How recorded attempts move each webhook's circuit breaker and auto-disable.
    pub health: hookrelay_domain::health::HealthPolicy,
    /// The rolling attempt counters the alert loop evaluates (see `crate::alerts`).
    pub alerts: Arc<crate::alerts::AlertCounters>,
}

impl WorkerContext {
    /// How long a lease taken now lasts: an attempt's timeout plus the grace to record it.
    pub fn lease(&self) -> Duration {
        self.sender.timeout() + self.lease_grace
    }
}

/// Joins the worker's tasks on shutdown.
pub struct WorkerHandle {
    dispatch: Arc<Dispatch>,
    dispatcher: JoinHandle<()>,
    recorder: JoinHandle<()>,
    /// The ingest path's way in (see `handoff`).
    pub handoff: Handoff,
}

/// Longest wait, past the shutdown deadline, for the last results to be written (a store that
/// is down would otherwise hold the exit forever; the leases then simply expire).
const RECORD_AFTER_DEADLINE: Duration = Duration::from_secs(5);

impl WorkerHandle {
    /// The graceful half of a shutdown (call after the shutdown token was cancelled): lets
    /// in-flight attempts finish until `deadline`, cuts off those still running then, waits for
    /// every finished attempt to be recorded, and releases the leases of everything this node
    /// still holds but is no longer attempting, so another node claims it at once.
    pub async fn join(mut self, deadline: tokio::time::Instant) {
        let ctx = self.dispatch.ctx.clone();
        if tokio::time::timeout_at(deadline, &mut self.dispatcher)
            .await
            .is_err()
        {
            let running = self.dispatch.tracker.len();
            tracing::warn!(
                running,
                "shutdown grace is over: cutting off the attempts still running; their deliveries go back to the queue"
            );
            self.dispatch.abort.cancel();
            let _ = (&mut self.dispatcher).await;
        }
        let recorded = tokio::time::timeout_at(
            tokio::time::Instant::now().max(deadline) + RECORD_AFTER_DEADLINE,
            &mut self.recorder,
        )
        .await;
        if recorded.is_err() {
            tracing::warn!("the last attempt results could not be written before exit; their leases will expire");
            return;
        }
        match ctx.store.release_leases(&ctx.owner).await {
            Ok(released) => tracing::info!(released, "worker stopped; leases released"),
            Err(e) => {
                tracing::warn!(error = %e, "releasing leases at shutdown failed; they will expire")
            }
        }
    }
}

/// Longest sleep without a signal: bounds how late an expired lease (a crashed worker's) or a
/// missed cross-node notification is picked up.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// The claim loop's wait after a failed claim, doubling per failure up to the maximum.
const STORE_BACKOFF_MIN: Duration = Duration::from_millis(100);
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the claim loop and the hand-off share: the worker's slots, its fairness gate, the
/// recorder's queue and the attempts in flight.
pub(super) struct Dispatch {
    pub(super) ctx: Arc<WorkerContext>,
    /// One permit per delivery in flight, held until its attempt is recorded.
    pub(super) slots: Arc<Semaphore>,
    gate: Mutex<Gate>,
    /// Taken away once the last attempt has finished, so the recorder can drain and stop.
    recorder: Mutex<Option<mpsc::Sender<Finished>>>,
    tracker: TaskTracker,
    pub(super) shutdown: CancellationToken,
    /// Cancelled when the shutdown grace is over: attempts still running stop unrecorded, and
    /// their deliveries are released with the rest of the node's leases.
    abort: CancellationToken,
}

impl Dispatch {
    /// Runs each claim past the gate: admitted ones start an attempt on their own task (their
    /// slot travels with it); the others are returned with when to try them again. Each
    /// attempt's span links to `started_by`, the claim's or the ingest commit's span.
    pub(super) fn start(
        self: &Arc<Self>,
        claims: impl IntoIterator<Item = (DeliveryClaim, Slot)>,
        started_by: Option<&SpanContext>,
    ) -> Vec<(DeliveryId, i64)> {
        let mut give_back = Vec::new();
        let decided_at = Instant::now();
        let Some(recorder) = self.recorder_queue() else {
            // Shutting down: what was leased goes back at once.
            return claims
                .into_iter()
                .map(|(c, _)| (c.delivery_id, now_millis()))
                .collect();
        };
        for (claim, slot) in claims {
            let admission = self.gate().admit(&claim, decided_at);
            let start_at = match admission {
                Admission::Later(wait) => {
                    give_back.push((claim.delivery_id, now_millis() + wait.as_millis() as i64));
                    continue;
                }
                Admission::Send => None,
                Admission::SendAt(at) => Some(tokio::time::Instant::from_std(at)),
            };
            let (this, recorder) = (self.clone(), recorder.clone());
            let n = claim.attempts_made + 1;
            let span = telemetry::attempt_span(&claim, n, started_by);
            self.tracker.spawn(async move {
                if let Some(at) = start_at {
                    // A shared rate's slot that starts shortly (at most the lease horizon).
                    tokio::select! {
                        biased;
                        _ = this.abort.cancelled() => return,
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                // Cut off at the end of the shutdown grace: the request is dropped, so
                // once the lease is released no other node can overlap this attempt.
                let record = tokio::select! {
                    biased;
                    _ = this.abort.cancelled() => return,
                    record = attempt(&this.ctx, &claim, n, span) => record,
                };
                let was_capped = this
                    .gate()
                    .finish(claim.webhook.id.as_str(), claim.tenant_id.as_str());
                if was_capped {
                    // The dispatcher skipped this webhook or tenant; it may claim again.
                    this.ctx.wake.notify_one();
                }
                let _ = recorder
                    .send(Finished {
                        record,
                        slot: Some(slot),
                        claim: Some(claim),
                    })
                    .await;
            });
        }
        give_back
    }

    /// Hands refused claims back to the store unattempted, due again at the given times.
    pub(super) async fn give_back(&self, releases: &[(DeliveryId, i64)]) {
        if releases.is_empty() {
            return;
        }
        if let Err(e) = self
            .ctx
            .store
            .release_claims(&self.ctx.owner, releases)
            .await
        {
            tracing::warn!(error = %e, "giving back gated deliveries failed; their leases will expire");
        }
    }

    /// Runs `future` as one of this worker's tasks (awaited at shutdown).
    pub(super) fn track(&self, future: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(future);
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recorder_queue(&self) -> Option<mpsc::Sender<Finished>> {
        self.recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

pub fn spawn_workers(ctx: WorkerContext, shutdown: CancellationToken) -> WorkerHandle {
    let ctx = Arc::new(ctx);
    let (tx, rx) = mpsc::channel::<Finished>(ctx.concurrency.max(16));
    let recorder = tokio::spawn(recorder::run(
        ctx.store.clone(),
        ctx.feed.clone(),
        ctx.health,
        ctx.alerts.clone(),
        rx,
    ));
    let dispatch = Arc::new(Dispatch {
        slots: Arc::new(Semaphore::new(ctx.concurrency)),
        gate: Mutex::new(Gate::new(ctx.limits)),
        recorder: Mutex::new(Some(tx)),
        tracker: TaskTracker::new(),
        shutdown,
        abort: CancellationToken::new(),
        ctx,
    });
    let handoff = Handoff::new(dispatch.clone());
    let dispatcher = tokio::spawn(dispatch_loop(dispatch.clone()));
    WorkerHandle {
        dispatch,
        dispatcher,
        recorder,
        handoff,
    }
}

async fn dispatch_loop(dispatch: Arc<Dispatch>) {
    let ctx = dispatch.ctx.clone();
    let shutdown = dispatch.shutdown.clone();
    let lease = ctx.lease();
    let mut last_tidy = Instant::now();
    // Grows while the store keeps failing (an outage), so a down database is not hammered.
    let mut store_backoff = STORE_BACKOFF_MIN;
    while !shutdown.is_cancelled() {
        // Wait for at least one free slot, then take as many more as a batch may use.
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = dispatch.slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
        };
        let permits = more_permits(&dispatch.slots, first, ctx.claim_batch as usize);
        let claim_started = telemetry::started();
        let now = now_millis();
        let exclude = dispatch.gate().exclusions(Instant::now());
        let claims = match ctx
            .store
            .claim_due_excluding(
                &ctx.owner,
                now,
                now + lease.as_millis() as i64,
                permits.len() as u32,
                &exclude,
            )
            .await
        {
            Ok(c) => {
                store_backoff = STORE_BACKOFF_MIN;
                c
            }
            Err(e) => {
                crate::monitoring::store_error("claim");
                tracing::error!(error = %e, retry_in = ?store_backoff, "claiming deliveries failed");
                drop(permits);
                // Not `idle`: a wake-up (an emit) must not cut the back-off short.
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(store_backoff) => {}
                }
                store_backoff = (store_backoff * 2).min(STORE_BACKOFF_MAX);
                continue;
            }
        };
        if claims.is_empty() {
            drop(permits);
            let wait = match ctx.store.next_due_at().await {
                Ok(Some(at)) => Duration::from_millis((at - now_millis()).max(0) as u64),
                _ => MAX_IDLE,
            };
            // A floor keeps a due-but-unclaimable row (its lease not yet expired, or its webhook
            // gated) from spinning us.
            idle(
                &ctx,
                &shutdown,
                wait.clamp(Duration::from_millis(20), MAX_IDLE),
            )
            .await;
            continue;
        }
        // Only a claim that found work gets a span (an idle worker claims every second).
        let claim_span = claim_started.and_then(|at| {
            telemetry::batch_span(
                "delivery.claim",
                at,
                vec![
                    KeyValue::new("db.system.name", telemetry::db_system(ctx.store.backend())),
                    KeyValue::new("hookrelay.claim.requested", permits.len() as i64),
                    KeyValue::new("hookrelay.claim.claimed", claims.len() as i64),
                ],
            )
        });
        lease_rate_slots(&dispatch, &claims).await;
        let slots = permits.into_iter().map(Slot::claimed);
        let give_back = dispatch.start(claims.into_iter().zip(slots), claim_span.as_ref());
        dispatch.give_back(&give_back).await;
        if last_tidy.elapsed() > Duration::from_secs(5) {
            dispatch.gate().tidy(Instant::now());
            last_tidy = Instant::now();
        }
    }
    // Let in-flight attempts finish (`WorkerHandle::join` bounds this with the grace), then
    // close the recorder's queue so it drains and stops.
    dispatch.tracker.close();
    dispatch.tracker.wait().await;
    dispatch
        .recorder
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
}

/// With rates shared through the store: leases the slots `claims` need, one statement per
/// limited webhook and tenant. A failed lease leaves them without slots: they go back, to be
/// claimed again shortly.
async fn lease_rate_slots(dispatch: &Dispatch, claims: &[DeliveryClaim]) {
    let leases = dispatch.gate().rate_leases(claims, Instant::now());
    if leases.is_empty() {
        return;
    }
    let now_us = now_millis() * 1000;
    match dispatch.ctx.store.lease_rate_slots(&leases, now_us).await {
        Ok(grants) => dispatch
            .gate()
            .grant_leases(&leases, &grants, Instant::now()),
        Err(e) => {
            crate::monitoring::store_error("lease_rate_slots");
            tracing::warn!(error = %e, "leasing rate-limit slots failed; the deliveries go back");
        }
    }
}

/// `first` and up to `batch - 1` more permits that are free right now.
fn more_permits(
    slots: &Arc<Semaphore>,
    first: OwnedSemaphorePermit,
    batch: usize,
) -> Vec<OwnedSemaphorePermit> {
    let extra = batch.saturating_sub(1).min(slots.available_permits());
    let mut permits = Vec::with_capacity(extra + 1);
    permits.push(first);
    for _ in 0..extra {
        match slots.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    permits
}

async fn idle(ctx: &WorkerContext, shutdown: &CancellationToken, wait: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = ctx.wake.notified() => {}
        _ = tokio::time::sleep(wait) => {}
    }
}

/// Attempt `n` of `claim`, in its span.
async fn attempt(
    ctx: &WorkerContext,
    claim: &DeliveryClaim,
    n: u32,
    span: Span,
) -> crate::store::AttemptRecord {
    let sent = telemetry::in_span(&span, ctx.sender.send(claim, n)).await;
    let record = record_for(claim, n, sent, &ctx.schedule, &ctx.owner);
    telemetry::record_attempt(&span, &record);
    record
}
