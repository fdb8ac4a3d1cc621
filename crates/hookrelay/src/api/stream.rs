//! `GET /api/v1/stream`: Server-Sent Events of the caller's tenant's changes (events accepted,
//! deliveries created or moved) for the dashboard, read from the change feed (`crate::feed`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use hookrelay_domain::time::to_rfc3339;
use hookrelay_domain::{Action, TenantId};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::auth::Caller;
use super::error::ApiResult;
use super::AppState;
use crate::feed::{Change, ChangeBatch};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/stream", get(stream))
}

/// Comment lines this often keep proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[utoipa::path(get, path = "/api/v1/stream", tag = "stream", operation_id = "stream.subscribe",
    responses((status = 200, content_type = "text/event-stream", description = "Server-Sent Events, each `data:` one JSON object:\n\n\
* `event: ready` `{\"tenant_id\"}`, first;\n\
* `event: event` `{id, type, source, created_at, deliveries}`: an event was accepted;\n\
* `event: delivery` `{id, event_id, event_type, webhook_id, status, attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at}`: a delivery was created (`created_at` set, `pending`, 0 attempts) or an attempt was recorded (`created_at` null); `last_error` is cut to 300 characters;\n\
* `event: lagged` `{\"missed\": N}`: the client fell behind and missed N batches of changes; refetch what is shown;\n\
* `: keep-alive` comments every 15 s.\n\n\
Only the caller's tenant's changes are sent (for a server admin, the tenant `X-Tenant-Id` names). Changes made on other nodes of a PostgreSQL cluster arrive too, relayed while anyone watches. Browsers: `EventSource` cannot send the `Authorization` header, so read the stream with `fetch`.")),
    security(("bearer" = [])))]
pub async fn stream(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require(Action::Read)?;
    let closed = s.feed.closed().clone();
    let watch = Watch::new(caller.tenant, s.feed.subscribe());
    let events = futures::stream::unfold(watch, move |mut w| {
        let closed = closed.clone();
        async move {
            let next = tokio::select! {
                _ = closed.cancelled() => None,
                item = w.next_item() => item,
            };
            next.map(|item| (Ok(item.into_event()), w))
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// What one subscriber is sent next.
#[derive(Debug, PartialEq)]
enum Item {
    Ready(TenantId),
    Change(Change),
    Lagged(u64),
}

/// One subscriber: its tenant, its place in the feed, and items decoded but not yet sent.
struct Watch {
    tenant: TenantId,
    rx: tokio::sync::broadcast::Receiver<ChangeBatch>,
    pending: VecDeque<Item>,
}

impl Watch {
    fn new(tenant: TenantId, rx: tokio::sync::broadcast::Receiver<ChangeBatch>) -> Self {
        let pending = VecDeque::from([Item::Ready(tenant.clone())]);
        Self {
            tenant,
            rx,
            pending,
        }
    }

    /// The next item for this tenant; `None` once the feed is gone.
    async fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match self.rx.recv().await {
                Ok(batch) => self.pending.extend(
                    batch
                        .iter()
                        .filter(|c| c.tenant_id() == &self.tenant)
                        .cloned()
                        .map(Item::Change),
                ),
                Err(RecvError::Lagged(missed)) => return Some(Item::Lagged(missed)),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

impl Item {
    fn into_event(self) -> Event {
        let (name, data) = match self {
            Item::Ready(tenant) => ("ready", json!({ "tenant_id": tenant })),
            Item::Lagged(missed) => ("lagged", json!({ "missed": missed })),
            Item::Change(change) => change_json(&change),
        };
        Event::default().event(name).data(data.to_string())
    }
}

/// A change as the stream shows it: its event name, and the contract's field names with
/// RFC 3339 times.
fn change_json(change: &Change) -> (&'static str, serde_json::Value) {
    match change {
        Change::Event(e) => (
            "event",
            json!({
                "id": e.id, "type": e.event_type, "source": e.source,
                "created_at": to_rfc3339(e.created_at), "deliveries": e.deliveries,
            }),
        ),
        Change::Delivery(d) => (
            "delivery",
            json!({
                "id": d.id, "event_id": d.event_id, "event_type": d.event_type,
                "webhook_id": d.webhook_id, "status": d.status.as_str(), "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at.map(to_rfc3339),
                "last_response_status": d.last_response_status, "last_error": d.last_error,
                "created_at": d.created_at.map(to_rfc3339), "updated_at": to_rfc3339(d.updated_at),
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::EventChange;
    use hookrelay_domain::EventId;
    use tokio::sync::broadcast;

    fn event_of(tenant: &TenantId) -> Change {
        Change::Event(EventChange {
            tenant_id: tenant.clone(),
            id: EventId::generate(),
            event_type: "member.created".into(),
            source: None,
            created_at: 0,
            deliveries: 1,
        })
    }

    #[tokio::test]
    async fn a_watch_sees_ready_then_only_its_tenants_changes() {
        let (tx, rx) = broadcast::channel::<ChangeBatch>(16);
        let (mine, other) = (TenantId::generate(), TenantId::generate());
        let mut w = Watch::new(mine.clone(), rx);
        let (a, b, c) = (event_of(&mine), event_of(&other), event_of(&mine));
        tx.send(vec![a.clone(), b].into()).unwrap();
        tx.send(vec![c.clone()].into()).unwrap();
        assert_eq!(w.next_item().await, Some(Item::Ready(mine)));
        assert_eq!(w.next_item().await, Some(Item::Change(a)));
        assert_eq!(w.next_item().await, Some(Item::Change(c)));
        drop(tx);
        assert_eq!(w.next_item().await, None, "the stream ends with the feed");
    }

    #[tokio::test]
    async fn a_slow_watch_is_told_how_much_it_missed() {
        let (tx, rx) = broadcast::channel::<ChangeBatch>(2);
        let tenant = TenantId::generate();
        let mut w = Watch::new(tenant.clone(), rx);
        assert_eq!(w.next_item().await, Some(Item::Ready(tenant.clone())));
        let changes: Vec<Change> = (0..5).map(|_| event_of(&tenant)).collect();
        for c in &changes {
            tx.send(vec![c.clone()].into()).unwrap();
        }
        assert_eq!(w.next_item().await, Some(Item::Lagged(3)));
        assert_eq!(w.next_item().await, Some(Item::Change(changes[3].clone())));
        assert_eq!(w.next_item().await, Some(Item::Change(changes[4].clone())));
    }
}
