//! The dispatch loop: lease a batch of due deliveries, send each on its own task within a
//! bounded number in flight, and sleep until new work is signalled or the next retry is due.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hookrelay_domain::time::now_millis;
use hookrelay_domain::RetrySchedule;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::attempt::record_for;
use super::gate::{Admission, Gate, GateLimits};
use super::recorder::{self, Finished};
use super::Sender;
use crate::store::{DeliveryClaim, Store};

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
}

/// Joins the worker's tasks on shutdown.
pub struct WorkerHandle {
    dispatcher: JoinHandle<()>,
    recorder: JoinHandle<()>,
    listener: JoinHandle<()>,
}

impl WorkerHandle {
    /// Waits for in-flight attempts to be recorded (up to `deadline`), then returns.
    pub async fn join(self, deadline: Duration) {
        let _ = tokio::time::timeout(deadline, async {
            let _ = self.dispatcher.await;
            let _ = self.recorder.await;
        })
        .await;
        self.listener.abort();
    }
}

/// Longest sleep without a signal: bounds how late an expired lease (a crashed worker's) or a
/// missed cross-node notification is picked up.
const MAX_IDLE: Duration = Duration::from_secs(1);

pub fn spawn_workers(ctx: WorkerContext, shutdown: CancellationToken) -> WorkerHandle {
    let ctx = Arc::new(ctx);
    let (tx, rx) = mpsc::channel::<Finished>(ctx.concurrency.max(16));
    let recorder = tokio::spawn(recorder::run(ctx.store.clone(), rx));
    let listener = {
        let (store, wake, shutdown) = (ctx.store.clone(), ctx.wake.clone(), shutdown.clone());
        tokio::spawn(async move { store.forward_wakeups(wake, shutdown).await })
    };
    let dispatcher = tokio::spawn(dispatch_loop(ctx, tx, shutdown));
    WorkerHandle {
        dispatcher,
        recorder,
        listener,
    }
}

async fn dispatch_loop(
    ctx: Arc<WorkerContext>,
    tx: mpsc::Sender<Finished>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(ctx.concurrency));
    let lease = ctx.sender.timeout() + ctx.lease_grace;
    let mut inflight = tokio::task::JoinSet::new();
    let gate = Arc::new(Mutex::new(Gate::new(ctx.limits)));
    let mut last_tidy = Instant::now();
    while !shutdown.is_cancelled() {
        // Wait for at least one free slot, then take as many more as a batch may use.
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
        };
        let extra = (ctx.claim_batch as usize - 1).min(slots.available_permits());
        let mut permits = vec![first];
        for _ in 0..extra {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let now = now_millis();
        let exclude = lock(&gate).exclusions(Instant::now());
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
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "claiming deliveries failed");
                drop(permits);
                idle(&ctx, &shutdown, Duration::from_millis(500)).await;
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
        let mut give_back = Vec::new();
        let decided_at = Instant::now();
        for (claim, permit) in claims.into_iter().zip(permits) {
            let admission = lock(&gate).admit(&claim, decided_at);
            match admission {
                Admission::Later(wait) => {
                    give_back.push((claim.delivery_id, now_millis() + wait.as_millis() as i64))
                }
                Admission::Send => {
                    let (ctx, tx, gate) = (ctx.clone(), tx.clone(), gate.clone());
                    inflight.spawn(async move {
                        let record = attempt(&ctx, &claim).await;
                        if lock(&gate).finish(claim.webhook.id.as_str(), claim.tenant_id.as_str()) {
                            // The dispatcher skipped this webhook or tenant; it may claim again.
                            ctx.wake.notify_one();
                        }
                        let _ = tx
                            .send(Finished {
                                record,
                                permit: Some(permit),
                            })
                            .await;
                    });
                }
            }
        }
        if !give_back.is_empty() {
            if let Err(e) = ctx.store.release_claims(&ctx.owner, &give_back).await {
                tracing::warn!(error = %e, "giving back gated deliveries failed; their leases will expire");
            }
        }
        if last_tidy.elapsed() > Duration::from_secs(5) {
            lock(&gate).tidy(Instant::now());
            last_tidy = Instant::now();
        }
        // Reap finished tasks so the set does not grow.
        while inflight.try_join_next().is_some() {}
    }
    // Let in-flight attempts finish and be recorded; the caller bounds this with a deadline.
    while inflight.join_next().await.is_some() {}
    if let Err(e) = ctx.store.release_leases(&ctx.owner).await {
        tracing::warn!(error = %e, "releasing leases at shutdown failed; they will expire");
    }
}

fn lock(gate: &Mutex<Gate>) -> MutexGuard<'_, Gate> {
    gate.lock().unwrap_or_else(|p| p.into_inner())
}

async fn idle(ctx: &WorkerContext, shutdown: &CancellationToken, wait: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = ctx.wake.notified() => {}
        _ = tokio::time::sleep(wait) => {}
    }
}

async fn attempt(ctx: &WorkerContext, claim: &DeliveryClaim) -> crate::store::AttemptRecord {
    let n = claim.attempts_made + 1;
    let sent = ctx.sender.send(claim, n).await;
    record_for(claim, n, sent, &ctx.schedule, &ctx.owner)
}
