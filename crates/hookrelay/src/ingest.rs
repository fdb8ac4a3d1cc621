//! Group commit for emits: concurrent requests queue their events here and a writer task stores
//! whatever has gathered in one transaction, then answers each caller. One commit serves many
//! requests, which is what lets SQLite accept thousands of events per second.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex, Notify};

use crate::store::{InboundRequest, IngestOutcome, NewEvent, Store, StoreError};

type Reply = oneshot::Sender<Result<Vec<IngestOutcome>, Arc<StoreError>>>;

struct Job {
    events: Vec<NewEvent>,
    /// Inbound request records to write with the events: `(index into events, record)`.
    requests: Vec<(usize, InboundRequest)>,
    reply: Reply,
}

/// Events gathered into one transaction at most.
const MAX_EVENTS_PER_COMMIT: usize = 2000;

#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("store: {0}")]
    Store(Arc<StoreError>),
    #[error("the ingest pipeline is shutting down")]
    Closed,
}

impl Ingestor {
    /// Starts `writers` writer tasks (1 for SQLite's single writer, a few for PostgreSQL).
    pub fn start(store: Arc<dyn Store>, wake: Arc<Notify>, writers: usize) -> Self {
        // Bounded: when the store falls behind, callers wait here (backpressure) rather than
        // piling up unbounded memory.
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_loop(store.clone(), wake.clone(), rx.clone()));
        }
        Self { tx }
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
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job {
                events,
                requests,
                reply,
            })
            .await
            .map_err(|_| IngestError::Closed)?;
        answer
            .await
            .map_err(|_| IngestError::Closed)?
            .map_err(IngestError::Store)
    }
}

async fn write_loop(store: Arc<dyn Store>, wake: Arc<Notify>, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
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
        commit(store.as_ref(), &wake, &mut jobs).await;
    }
}

async fn commit(store: &dyn Store, wake: &Notify, jobs: &mut Vec<Job>) {
    let all: Vec<NewEvent> = jobs.iter().flat_map(|j| j.events.iter().cloned()).collect();
    let mut requests = Vec::new();
    let mut offset = 0;
    for job in jobs.iter_mut() {
        requests.extend(job.requests.drain(..).map(|(i, r)| (offset + i, r)));
        offset += job.events.len();
    }
    match store.ingest_with_requests(&all, &requests).await {
        Ok(outcomes) => {
            let created: u64 = outcomes
                .iter()
                .map(|o| match o {
                    IngestOutcome::Accepted { deliveries, .. } => u64::from(*deliveries),
                    IngestOutcome::Duplicate { .. } | IngestOutcome::QuotaExceeded { .. } => 0,
                })
                .sum();
            metrics::counter!("hookrelay_events_ingested_total").increment(all.len() as u64);
            if created > 0 {
                wake.notify_one();
            }
            let mut outcomes = outcomes.into_iter();
            for job in jobs.drain(..) {
                let mine: Vec<IngestOutcome> = outcomes.by_ref().take(job.events.len()).collect();
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, events = all.len(), "ingest commit failed");
            let e = Arc::new(e);
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}
