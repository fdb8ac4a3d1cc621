//! Small builders for rows and common sequences (ingest, claim, record), so scenarios read as
//! the behaviour they check.

use std::collections::{BTreeMap, BTreeSet};

use hookrelay::store::*;
use hookrelay_domain::time::{now_millis, Millis};
use hookrelay_domain::*;

/// Lease length the scenarios use unless they test leases themselves.
pub const LEASE_MS: Millis = 30_000;

pub async fn tenant(store: &dyn Store, name: &str) -> Tenant {
    let now = now_millis();
    let t = Tenant {
        id: TenantId::generate(),
        name: name.to_owned(),
        quotas: Default::default(),
        retention_days: None,
        created_at: now,
        updated_at: now,
    };
    store.create_tenant(&t).await.expect("create tenant");
    t
}

pub fn api_key(tenant: &TenantId, name: &str, role: Role, server_admin: bool) -> ApiKey {
    let id = KeyId::generate();
    ApiKey {
        key_hash: format!("hash-of-{id}"),
        id,
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        role,
        server_admin,
        created_at: now_millis(),
    }
}

/// An active `http` webhook with one secret and otherwise default settings.
pub fn webhook(tenant: &TenantId, events: &[&str]) -> Webhook {
    let now = now_millis();
    let id = WebhookId::generate();
    Webhook {
        ordered: false,
        url: format!("https://receiver.example/{id}"),
        id,
        tenant_id: tenant.clone(),
        kind: WebhookKind::Http,
        description: None,
        active: true,
        events: events.iter().map(|e| e.to_string()).collect(),
        headers: BTreeMap::new(),
        rate_limit_per_sec: None,
        templates: BTreeMap::new(),
        retry_schedule: None,
        secrets: vec![StoredSecret {
            secret: "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=".into(),
            expires_at: None,
        }],
        filter: None,
        transform: None,
        target: None,
        health: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

pub async fn create_webhook(store: &dyn Store, tenant: &TenantId, events: &[&str]) -> Webhook {
    let w = webhook(tenant, events);
    store.create_webhook(&w).await.expect("create webhook");
    w
}

pub async fn create_paused_webhook(
    store: &dyn Store,
    tenant: &TenantId,
    events: &[&str],
) -> Webhook {
    let w = Webhook {
        active: false,
        ..webhook(tenant, events)
    };
    store
        .create_webhook(&w)
        .await
        .expect("create paused webhook");
    w
}

/// An event created (and so first due) at `at`.
pub fn event_at(tenant: &TenantId, event_type: &str, at: Millis) -> NewEvent {
    let id = EventId::generate();
    NewEvent {
        event: Event {
            data: format!(r#"{{"event":"{id}","type":"{event_type}"}}"#),
            id,
            tenant_id: tenant.clone(),
            event_type: event_type.to_owned(),
            source: None,
            idempotency_key: None,
            timestamp: at - 5,
            created_at: at,
        },
        only_webhook: None,
        lease: None,
        quota: Default::default(),
    }
}

/// An event due a second ago.
pub fn event(tenant: &TenantId, event_type: &str) -> NewEvent {
    event_at(tenant, event_type, now_millis() - 1_000)
}

pub fn keyed(mut e: NewEvent, key: &str) -> NewEvent {
    e.event.idempotency_key = Some(key.to_owned());
    e
}

pub fn from_source(mut e: NewEvent, source: &str) -> NewEvent {
    e.event.source = Some(source.to_owned());
    e
}

/// Ingests one event that must be accepted; returns its delivery ids.
pub async fn ingest_one(store: &dyn Store, e: &NewEvent) -> Vec<DeliveryId> {
    let mut out = store.ingest(std::slice::from_ref(e)).await.expect("ingest");
    match out.pop() {
        Some(IngestOutcome::Accepted {
            id,
            deliveries,
            delivery_ids,
        }) => {
            assert_eq!(id, e.event.id);
            assert_eq!(deliveries as usize, delivery_ids.len());
            delivery_ids
        }
        other => panic!("expected the event to be accepted, got {other:?}"),
    }
}

/// Ingests one event that must create exactly one delivery.
pub async fn ingest_single(store: &dyn Store, e: &NewEvent) -> DeliveryId {
    let mut ids = ingest_one(store, e).await;
    assert_eq!(
        ids.len(),
        1,
        "expected exactly one delivery for {}",
        e.event.event_type
    );
    ids.pop().unwrap()
}

/// Claims everything due at `now` for `owner`.
pub async fn claim_all(store: &dyn Store, owner: &str, now: Millis) -> Vec<DeliveryClaim> {
    store
        .claim_due(owner, now, now + LEASE_MS, 10_000)
        .await
        .expect("claim_due")
}

pub fn claimed_ids(claims: &[DeliveryClaim]) -> BTreeSet<DeliveryId> {
    claims.iter().map(|c| c.delivery_id.clone()).collect()
}

pub fn ids<'a>(ids: impl IntoIterator<Item = &'a DeliveryId>) -> BTreeSet<DeliveryId> {
    ids.into_iter().cloned().collect()
}

/// An attempt answered with `status` (or, with `None`, a connection error).
pub fn attempt(delivery: &DeliveryId, n: u32, status: Option<u16>, started_at: Millis) -> Attempt {
    let ok = matches!(status, Some(200..=299));
    Attempt {
        delivery_id: delivery.clone(),
        n,
        started_at,
        duration_ms: 25 + n,
        request_headers: format!(
            r#"{{"webhook-id":"{delivery}","webhook-signature":"[redacted]","x-webhook-attempt":"{n}"}}"#
        ),
        response_status: status,
        response_body: status.map(|s| format!("body of {s}")),
        error: match status {
            Some(_) if ok => None,
            Some(s) => Some(format!("HTTP {s}")),
            None => Some("connection refused".into()),
        },
        error_kind: match status {
            Some(_) if ok => None,
            Some(_) => Some("http_status".into()),
            None => Some("connect".into()),
        },
    }
}

pub fn record(owner: &str, attempt: Attempt, next: NextState) -> AttemptRecord {
    let finished_at = attempt.started_at + i64::from(attempt.duration_ms);
    AttemptRecord {
        lease_owner: owner.to_owned(),
        attempt,
        next,
        finished_at,
    }
}

/// Claims everything due now as `owner` (the given deliveries must be among it) and records
/// one attempt for each given delivery, ending in `next`. Returns the finish time.
pub async fn settle(
    store: &dyn Store,
    owner: &str,
    deliveries: &[&DeliveryId],
    next: NextState,
    started_at: Millis,
) -> Millis {
    let claims = claim_all(store, owner, now_millis() + 1).await;
    let claimed = claimed_ids(&claims);
    let mut records = Vec::new();
    for d in deliveries {
        assert!(claimed.contains(*d), "{d} was not claimable");
        let made = claims
            .iter()
            .find(|c| &c.delivery_id == *d)
            .unwrap()
            .attempts_made;
        let status = match next {
            NextState::Succeeded => Some(200),
            _ => Some(500),
        };
        records.push(record(
            owner,
            attempt(d, made + 1, status, started_at),
            next,
        ));
    }
    store
        .record_attempts(&records)
        .await
        .expect("record_attempts");
    store.release_leases(owner).await.expect("release_leases");
    records[0].finished_at
}

pub async fn delivery(store: &dyn Store, tenant: &TenantId, id: &DeliveryId) -> Delivery {
    store
        .get_delivery(tenant, id)
        .await
        .expect("get_delivery")
        .0
}

pub async fn all_deliveries(
    store: &dyn Store,
    tenant: &TenantId,
    query: DeliveryQuery,
) -> Vec<Delivery> {
    let page = PageRequest {
        limit: 1000,
        cursor: None,
    };
    let got = store
        .list_deliveries(tenant, &query, &page)
        .await
        .expect("list_deliveries");
    assert!(got.next_cursor.is_none());
    got.items
}

/// Follows `next_cursor` to the end with pages of `limit`, checking each page's size.
pub async fn collect_pages<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Page<T>>>,
{
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = fetch(PageRequest {
            limit,
            cursor: cursor.take(),
        })
        .await
        .expect("list page");
        assert!(
            page.items.len() <= limit as usize,
            "page larger than its limit"
        );
        let next = page.next_cursor.clone();
        let empty = page.items.is_empty();
        pages.push(page.items);
        match next {
            Some(c) => {
                assert!(!empty, "a page with a next_cursor must not be empty");
                cursor = Some(c);
            }
            None => return pages,
        }
        assert!(pages.len() < 1000, "pagination does not end");
    }
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(r: StoreResult<T>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(r: StoreResult<T>) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}
