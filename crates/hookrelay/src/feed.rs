//! The change feed: events accepted and deliveries created or moved, as they happen, for the
//! dashboard's live stream (`GET /api/v1/stream`).
//!
//! Writers on this node (the ingest commit, the attempt recorder) publish into an in-process
//! broadcast. On PostgreSQL the nodes of a cluster also relay their changes to each other
//! through `NOTIFY`, but only while some *other* node has stream watchers: a node with
//! watchers announces itself every few seconds, and the others relay for a while after each
//! announcement. With nobody watching, publishing costs one atomic load: nothing is built.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookrelay_domain::time::{now_millis, Millis};
use hookrelay_domain::{DeliveryId, DeliveryStatus, EventId, TenantId, WebhookId};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::store::{AttemptRecord, NextState, Notice, NoticeSink, Store};

/// Batches a slow subscriber may fall behind before it is told it lagged.
const CAPACITY: usize = 1024;
/// How often a node with watchers says so, and how long the others relay after hearing it.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(5);
const RELAY_FOR_MS: Millis = 15_000;
/// `NOTIFY` payloads must stay under PostgreSQL's 8,000 bytes.
const MAX_NOTICE_BYTES: usize = 7_000;
/// Error texts are cut to this in the feed; the delivery's page has the whole text.
const MAX_ERROR_CHARS: usize = 300;

/// One change, as published and as relayed between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Event(EventChange),
    Delivery(DeliveryChange),
}

impl Change {
    pub fn tenant_id(&self) -> &TenantId {
        match self {
            Change::Event(e) => &e.tenant_id,
            Change::Delivery(d) => &d.tenant_id,
        }
    }
}

/// An event was accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventChange {
    pub tenant_id: TenantId,
    pub id: EventId,
    pub event_type: String,
    pub source: Option<String>,
    pub created_at: Millis,
    pub deliveries: u32,
}

/// A delivery was created (`created_at` set) or an attempt of it was recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryChange {
    pub tenant_id: TenantId,
    pub id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    pub webhook_id: WebhookId,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Millis>,
    pub last_response_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Option<Millis>,
    pub updated_at: Millis,
}

impl DeliveryChange {
    /// The delivery after `record` was written: its event and webhook from what was sent.
    pub fn after(
        record: &AttemptRecord,
        tenant_id: &TenantId,
        event_id: &EventId,
        event_type: &str,
        webhook_id: &WebhookId,
    ) -> Self {
        let (status, next_attempt_at) = match record.next {
            NextState::Succeeded => (DeliveryStatus::Succeeded, None),
            NextState::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            NextState::Failed => (DeliveryStatus::Failed, None),
        };
        Self {
            tenant_id: tenant_id.clone(),
            id: record.attempt.delivery_id.clone(),
            event_id: event_id.clone(),
            event_type: event_type.to_owned(),
            webhook_id: webhook_id.clone(),
            status,
            attempts: record.attempt.n,
            next_attempt_at,
            last_response_status: record.attempt.response_status,
            last_error: record.attempt.error.as_deref().map(shorten),
            created_at: None,
            updated_at: record.finished_at,
        }
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Changes published together (one commit's worth), shared by every subscriber.
pub type ChangeBatch = Arc<[Change]>;

/// Between nodes: who published, and what.
#[derive(Serialize, Deserialize)]
struct Relayed {
    node: String,
    changes: Vec<Change>,
}

pub struct ChangeFeed {
    node: String,
    tx: broadcast::Sender<ChangeBatch>,
    /// Set on a multi-node store: where relayed changes and announcements go.
    relay: Option<Arc<dyn Store>>,
    /// Until when (ms) another node is known to have watchers.
    remote_watchers_until: AtomicI64,
    /// Ends every stream at shutdown (a live stream would otherwise hold the server open).
    closed: CancellationToken,
}

impl ChangeFeed {
    /// A feed for node `node`; with `store` on PostgreSQL, changes are relayed between nodes
    /// (this node's announcements run until `shutdown`).
    pub fn start(node: &str, store: Arc<dyn Store>, shutdown: CancellationToken) -> Arc<Self> {
        let relay = (store.backend() == "postgres").then_some(store);
        let feed = Arc::new(Self {
            node: node.to_owned(),
            tx: broadcast::channel(CAPACITY).0,
            relay,
            remote_watchers_until: AtomicI64::new(0),
            closed: shutdown,
        });
        if feed.relay.is_some() {
            tokio::spawn(announce_watchers(Arc::downgrade(&feed)));
        }
        feed
    }

    /// Whether anyone could see a change published now: build changes only when this is true.
    pub fn is_watched(&self) -> bool {
        self.tx.receiver_count() > 0
            || self.remote_watchers_until.load(Ordering::Relaxed) > now_millis()
    }

    /// Publishes one commit's changes to this node's watchers and, while other nodes have
    /// watchers, to theirs.
    pub fn publish(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(changes.clone().into());
        }
        let relaying = self.remote_watchers_until.load(Ordering::Relaxed) > now_millis();
        if let (Some(store), true) = (&self.relay, relaying) {
            let (store, payloads) = (store.clone(), relay_payloads(&self.node, changes));
            // Off the writer's path: a lost notice costs a watcher one live update, no data.
            tokio::spawn(async move {
                for payload in payloads {
                    if let Err(e) = store.notify(Notice::Changes(&payload)).await {
                        tracing::debug!(error = %e, "relaying feed changes failed");
                        return;
                    }
                }
            });
        }
    }

    /// A new watcher. The first one on a node announces itself to the other nodes at once
    /// (then every few seconds), so their changes are relayed from the start.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeBatch> {
        let first = self.tx.receiver_count() == 0;
        let rx = self.tx.subscribe();
        if let (true, Some(store)) = (first, &self.relay) {
            let (store, node) = (store.clone(), self.node.clone());
            tokio::spawn(async move {
                if let Err(e) = store.notify(Notice::Watching(&node)).await {
                    tracing::debug!(error = %e, "announcing stream watchers failed");
                }
            });
        }
        rx
    }

    /// Fires at shutdown; streams end then.
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }
}

impl NoticeSink for ChangeFeed {
    fn watcher_seen(&self, node: &str) {
        if node != self.node {
            self.remote_watchers_until
                .store(now_millis() + RELAY_FOR_MS, Ordering::Relaxed);
        }
    }

    fn changes_received(&self, payload: &str) {
        let Ok(relayed) = serde_json::from_str::<Relayed>(payload) else {
            tracing::debug!("ignoring a malformed feed notice");
            return;
        };
        if relayed.node != self.node && self.tx.receiver_count() > 0 {
            let _ = self.tx.send(relayed.changes.into());
        }
    }
}

/// Splits `changes` into `NOTIFY` payloads under the size limit (a change that alone is too
/// big is dropped: it can only be an absurdly long event type).
fn relay_payloads(node: &str, changes: Vec<Change>) -> Vec<String> {
    let encode = |changes: Vec<Change>| {
        serde_json::to_string(&Relayed {
            node: node.to_owned(),
            changes,
        })
        .unwrap_or_default()
    };
    let mut payloads = Vec::new();
    let mut current: Vec<Change> = Vec::new();
    let mut size = 0;
    for change in changes {
        let len = serde_json::to_string(&change).map_or(usize::MAX, |s| s.len() + 1);
        if len > MAX_NOTICE_BYTES - node.len() - 40 {
            continue;
        }
        if size + len > MAX_NOTICE_BYTES - node.len() - 40 {
            payloads.push(encode(std::mem::take(&mut current)));
            size = 0;
        }
        size += len;
        current.push(change);
    }
    if !current.is_empty() {
        payloads.push(encode(current));
    }
    payloads
}

/// While this node has stream watchers, tells the other nodes every few seconds.
async fn announce_watchers(feed: std::sync::Weak<ChangeFeed>) {
    loop {
        let Some(f) = feed.upgrade() else { return };
        if f.closed.is_cancelled() {
            return;
        }
        if f.tx.receiver_count() > 0 {
            if let Some(store) = &f.relay {
                if let Err(e) = store.notify(Notice::Watching(&f.node)).await {
                    tracing::debug!(error = %e, "announcing stream watchers failed");
                }
            }
        }
        let closed = f.closed.clone();
        drop(f);
        tokio::select! {
            _ = closed.cancelled() => return,
            _ = tokio::time::sleep(ANNOUNCE_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery_change(error: Option<String>) -> Change {
        Change::Delivery(DeliveryChange {
            tenant_id: TenantId::generate(),
            id: DeliveryId::generate(),
            event_id: EventId::generate(),
            event_type: "member.created".into(),
            webhook_id: WebhookId::generate(),
            status: DeliveryStatus::Failed,
            attempts: 3,
            next_attempt_at: None,
            last_response_status: Some(500),
            last_error: error,
            created_at: None,
            updated_at: 1,
        })
    }

    #[test]
    fn relay_payloads_fit_a_notify_and_keep_every_change_in_order() {
        let changes: Vec<Change> = (0..200)
            .map(|i| delivery_change(Some(format!("error {i}"))))
            .collect();
        let payloads = relay_payloads("node-a", changes.clone());
        assert!(payloads.len() > 1, "200 changes need several notices");
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() < 8000, "{} bytes", p.len());
            let r: Relayed = serde_json::from_str(p).unwrap();
            assert_eq!(r.node, "node-a");
            back.extend(r.changes);
        }
        assert_eq!(back, changes);
    }

    #[test]
    fn long_errors_are_shortened_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(short.ends_with('…'));
        assert_eq!(shorten("brief"), "brief");
    }
}
