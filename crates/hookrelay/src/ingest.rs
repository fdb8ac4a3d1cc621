//! Group commit for emits: concurrent requests queue their events here and a writer task stores
//! whatever has gathered in one transaction, then answers each caller. One commit serves many
//! requests, which is what lets SQLite accept thousands of events per second.
//!
//! The queue is bounded in events: past `ingest_queue_max_events` uncommitted events a submit is
//! refused at once (`Overloaded`, a `503` with `Retry-After`), so overload sheds load instead of
//! growing memory and every caller's latency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tracing::field::Empty;
use tracing::Span;

use crate::delivery::handoff::Handoff;
use crate::feed::{Change, ChangeFeed, DeliveryChange, EventChange};
use crate::store::{InboundRequest, IngestBatch, IngestOutcome, NewEvent, Store, StoreError};

type Reply = oneshot::Sender<Result<Vec<IngestOutcome>, Arc<StoreError>>>;

struct Job {
    events: Vec<NewEvent>,
    /// Inbound request records to write with the events: `(index into events, record)`.
    requests: Vec<(usize, InboundRequest)>,
    reply: Reply,
    /// The request's span, which the commit's span links to (disabled when not tracing).
    span: Span,
    /// Its place in the bound until it is committed (or failed): dropped with the job.
    _queued: QueuedEvents,
}

/// Events submitted and not yet committed, against the bound.
struct Backlog {
    queued: AtomicUsize,
    max: usize,
}

/// A job's events counted in the backlog until dropped.
struct QueuedEvents {
    backlog: Arc<Backlog>,
    n: usize,
}

impl Backlog {
    /// Counts `n` more events, unless that passes the bound. A single submit larger than the
    /// bound is still taken when nothing else waits, so a big batch is never refused forever.
    fn admit(self: &Arc<Self>, n: usize) -> Result<QueuedEvents, IngestError> {
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before > 0 && before + n > self.max {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            metrics::counter!("hookrelay_ingest_shed_events_total").increment(n as u64);
            return Err(IngestError::Overloaded { queued: before });
        }
        metrics::gauge!("hookrelay_ingest_queued_events").set((before + n) as f64);
        Ok(QueuedEvents {
            backlog: self.clone(),
            n,
        })
    }
}

impl Drop for QueuedEvents {
    fn drop(&mut self) {
        let left = self.backlog.queued.fetch_sub(self.n, Ordering::AcqRel) - self.n;
        metrics::gauge!("hookrelay_ingest_queued_events").set(left as f64);
    }
}

/// Events gathered into one transaction at most.
const MAX_EVENTS_PER_COMMIT: usize = 2000;

#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
    backlog: Arc<Backlog>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("store: {0}")]
    Store(Arc<StoreError>),
    #[error("the ingest pipeline is shutting down")]
    Closed,
    #[error("the server is at capacity: {queued} accepted events wait to be stored")]
    Overloaded { queued: usize },
}

impl Ingestor {
    /// Starts `writers` writer tasks (1 for SQLite's single writer, a few for PostgreSQL).
    /// With `handoff` (this process runs workers too), each commit leases what it can of its
    /// new deliveries to the local worker and passes them over without a claim query.
    pub fn start(
        store: Arc<dyn Store>,
        wake: Arc<Notify>,
        writers: usize,
        handoff: Option<Handoff>,
        feed: Arc<ChangeFeed>,
        max_queued_events: usize,
    ) -> Self {
        // Bounded: when the store falls behind, callers wait here (backpressure) rather than
        // piling up unbounded memory.
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            let writer = Writer {
                store: store.clone(),
                wake: wake.clone(),
                handoff: handoff.clone(),
                feed: feed.clone(),
            };
            tokio::spawn(writer.run(rx.clone()));
        }
        Self {
            tx,
            backlog: Arc::new(Backlog {
                queued: AtomicUsize::new(0),
                max: max_queued_events.max(1),
            }),
        }
    }

    /// Stores the events (and their deliveries) durably; returns one outcome per event, in order.
    pub async fn submit(&self, events: Vec<NewEvent>) -> Result<Vec<IngestOutcome>, IngestError> {
        self.submit_with_requests(events, Vec::new()).await
    }

    /// `submit`, writing inbound request records in the same commit as their events, so an
    /// accepted inbound request is never without its log entry (or the reverse).
    pub async fn submit_with_requests(
        &self,
        events: Vec<NewEvent>,
        requests: Vec<(usize, InboundRequest)>,
    ) -> Result<Vec<IngestOutcome>, IngestError> {
        let queued = self.backlog.admit(events.len())?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job {
                events,
                requests,
                reply,
                span: crate::telemetry::current_for_link(),
                _queued: queued,
            })
            .await
            .map_err(|_| IngestError::Closed)?;
        answer
            .await
            .map_err(|_| IngestError::Closed)?
            .map_err(IngestError::Store)
    }
}

/// One writer task: gathers queued jobs into a commit.
struct Writer {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    handoff: Option<Handoff>,
    feed: Arc<ChangeFeed>,
}

impl Writer {
    async fn run(self, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
        let mut jobs: Vec<Job> = Vec::with_capacity(256);
        loop {
            {
                let mut rx = rx.lock().await;
                let Some(first) = rx.recv().await else { return };
                let mut count = first.events.len();
                jobs.push(first);
                while count < MAX_EVENTS_PER_COMMIT {
                    match rx.try_recv() {
                        Ok(job) => {
                            count += job.events.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
            }
            self.commit(&mut jobs).await;
        }
    }

    async fn commit(&self, jobs: &mut Vec<Job>) {
        // The events move into one slice (payloads are not copied); each job keeps its count
        // to take its outcomes back.
        let mut all: Vec<NewEvent> = Vec::with_capacity(jobs.iter().map(|j| j.events.len()).sum());
        let mut counts = Vec::with_capacity(jobs.len());
        let mut requests = Vec::new();
        for job in jobs.iter_mut() {
            let offset = all.len();
            requests.extend(job.requests.drain(..).map(|(i, r)| (offset + i, r)));
            counts.push(job.events.len());
            all.append(&mut job.events);
        }
        // A root span: one commit serves many requests, each of which it links to.
        let span = tracing::info_span!(
            parent: None,
            "ingest.commit",
            db.system.name = crate::telemetry::db_system(self.store.backend()),
            hookrelay.events = all.len(),
            hookrelay.requests = jobs.len(),
            hookrelay.deliveries.created = Empty,
            hookrelay.deliveries.handed_off = Empty,
        );
        if !span.is_disabled() {
            for job in jobs.iter().take(crate::telemetry::MAX_LINKS) {
                span.follows_from(&job.span);
            }
        }
        let written = crate::telemetry::in_span(&span, self.write(&all, &requests, &span)).await;
        match written {
            Ok((outcomes, handed_off)) => {
                let created: u64 = outcomes
                    .iter()
                    .map(|o| match o {
                        IngestOutcome::Accepted { deliveries, .. } => u64::from(*deliveries),
                        IngestOutcome::Duplicate { .. } | IngestOutcome::QuotaExceeded { .. } => 0,
                    })
                    .sum();
                span.record("hookrelay.deliveries.created", created);
                span.record("hookrelay.deliveries.handed_off", handed_off);
                metrics::counter!("hookrelay_events_ingested_total").increment(all.len() as u64);
                metrics::counter!("hookrelay_deliveries_handed_off_total")
                    .increment(handed_off as u64);
                // Handed-off deliveries are on their way; the claim loop is woken for the rest.
                if created > handed_off as u64 {
                    self.wake.notify_one();
                }
                let mut outcomes = outcomes.into_iter();
                for (job, count) in jobs.drain(..).zip(counts) {
                    let mine: Vec<IngestOutcome> = outcomes.by_ref().take(count).collect();
                    let _ = job.reply.send(Ok(mine));
                }
            }
            Err(e) => {
                // Inside the span: the error is recorded on it too.
                span.in_scope(
                    || tracing::error!(error = %e, events = all.len(), "ingest commit failed"),
                );
                let e = Arc::new(e);
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// One transaction; with a hand-off, the new deliveries it leased go to the local worker
    /// once the commit is durable (slots the commit did not use are freed). What was created
    /// is announced on the feed first, so no watcher sees an attempt's result before the
    /// delivery. Returns the outcomes and how many deliveries were handed off.
    async fn write(
        &self,
        events: &[NewEvent],
        requests: &[(usize, InboundRequest)],
        span: &Span,
    ) -> Result<(Vec<IngestOutcome>, usize), StoreError> {
        let store = self.store.as_ref();
        let reservation = self
            .handoff
            .as_ref()
            .and_then(|h| Some((h, h.reserve(events.len())?)));
        let Some((handoff, reservation)) = reservation else {
            let batch = store.ingest_leasing(events, requests, None).await?;
            self.announce(events, &batch);
            return Ok((batch.outcomes, 0));
        };
        let accepts =
            |w: &crate::store::Webhook, q: &hookrelay_domain::quota::Quotas| handoff.accepts(w, q);
        let offer = handoff.offer(&reservation, &accepts);
        let mut batch = store.ingest_leasing(events, requests, Some(&offer)).await?;
        self.announce(events, &batch);
        let leased = std::mem::take(&mut batch.leased);
        let handed_off = leased.len();
        // The attempts of handed-off deliveries link to this commit.
        handoff.start(leased, reservation, crate::telemetry::span_context(span));
        Ok((batch.outcomes, handed_off))
    }

    fn announce(&self, events: &[NewEvent], batch: &IngestBatch) {
        if self.feed.is_watched() {
            self.feed.publish(changes_of(events, batch));
        }
    }
}

/// The feed's view of a committed ingest: each accepted event, then each delivery created.
fn changes_of(events: &[NewEvent], batch: &IngestBatch) -> Vec<Change> {
    let accepted = batch
        .outcomes
        .iter()
        .zip(events)
        .filter_map(|(outcome, ne)| match outcome {
            IngestOutcome::Accepted { id, deliveries, .. } => Some(Change::Event(EventChange {
                tenant_id: ne.event.tenant_id.clone(),
                id: id.clone(),
                event_type: ne.event.event_type.clone(),
                source: ne.event.source.clone(),
                created_at: ne.event.created_at,
                deliveries: *deliveries,
            })),
            IngestOutcome::Duplicate { .. } | IngestOutcome::QuotaExceeded { .. } => None,
        });
    let created = batch.created.iter().filter_map(|c| {
        let e = &events.get(c.event)?.event;
        Some(Change::Delivery(DeliveryChange {
            tenant_id: e.tenant_id.clone(),
            id: c.id.clone(),
            event_id: e.id.clone(),
            event_type: e.event_type.clone(),
            webhook_id: c.webhook_id.clone(),
            status: hookrelay_domain::DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(e.created_at),
            last_response_status: None,
            last_error: None,
            created_at: Some(e.created_at),
            updated_at: e.created_at,
        }))
    });
    accepted.chain(created).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(max: usize) -> Arc<Backlog> {
        Arc::new(Backlog {
            queued: AtomicUsize::new(0),
            max,
        })
    }

    #[test]
    fn the_backlog_sheds_past_its_bound_and_frees_what_was_committed() {
        let b = backlog(150);
        let first = b.admit(100).expect("room");
        let second = b.admit(50).expect("exactly at the bound");
        match b.admit(1) {
            Err(IngestError::Overloaded { queued }) => assert_eq!(queued, 150),
            other => panic!("expected Overloaded, got {:?}", other.map(|_| ())),
        }
        assert_eq!(
            b.queued.load(Ordering::Acquire),
            150,
            "a refusal counts nothing"
        );
        drop(first);
        assert_eq!(b.queued.load(Ordering::Acquire), 50);
        let third = b.admit(100).expect("room again once committed");
        drop((second, third));
        assert_eq!(b.queued.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_batch_larger_than_the_bound_is_taken_when_nothing_waits() {
        let b = backlog(10);
        let big = b.admit(1000).expect("alone, it goes through");
        assert!(b.admit(1).is_err(), "but nothing joins it");
        drop(big);
        assert!(b.admit(1).is_ok());
    }
}
