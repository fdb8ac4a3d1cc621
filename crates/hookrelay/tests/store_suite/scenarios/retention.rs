//! Retention in the store: events past their tenant's retention go with their deliveries and
//! attempts, in batches; an event with a pending delivery stays, whatever its age.

use hookrelay::store::*;
use hookrelay_domain::time::now_millis;

use crate::store_suite::fixtures::*;

const DAY: i64 = 86_400_000;

async fn prune_all(store: &dyn Store, query: PruneQuery) -> PruneReport {
    let mut total = PruneReport::default();
    loop {
        let removed = store.prune_events(&query).await.expect("prune_events");
        total += removed;
        if removed.events < u64::from(query.batch) {
            return total;
        }
    }
}

/// Scenario: background retention (per-tenant days) and `prune --older-than` (one tenant).
pub async fn scenario_retention(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let short = Tenant {
        retention_days: Some(1),
        ..tenant(store, "short").await
    };
    store.update_tenant(&short).await.unwrap();
    assert_eq!(
        store.get_tenant(&short.id).await.unwrap().retention_days,
        Some(1)
    );
    create_webhook(store, &t.id, &["a.*"]).await;
    create_webhook(store, &short.id, &["b.*"]).await;
    let now = now_millis();
    let old_done = ingest_single(store, &event_at(&t.id, "a.old", now - 40 * DAY)).await;
    let old_held = ingest_single(store, &event_at(&t.id, "a.held", now - 40 * DAY)).await;
    let old_lonely = event_at(&t.id, "z.nobody", now - 40 * DAY);
    assert!(ingest_one(store, &old_lonely).await.is_empty());
    let recent = ingest_single(store, &event_at(&t.id, "a.new", now - 10 * DAY)).await;
    let short_old = ingest_single(store, &event_at(&short.id, "b.x", now - 2 * DAY)).await;
    settle(
        store,
        "w",
        &[&old_done, &recent, &short_old],
        NextState::Succeeded,
        now - 1_000,
    )
    .await;

    // Past retention: 30 days for `t` (the default), 1 for `short`; in batches of two.
    let removed = prune_all(
        store,
        PruneQuery {
            now,
            default_days: 30,
            older_than: None,
            tenant: None,
            batch: 2,
        },
    )
    .await;
    assert_eq!(
        removed,
        PruneReport {
            events: 3,
            deliveries: 2,
            attempts: 2,
            inbound_requests: 0
        }
    );
    assert_not_found(store.get_delivery(&t.id, &old_done).await);
    assert_not_found(store.get_event(&t.id, &old_lonely.event.id).await);
    assert_not_found(store.get_delivery(&short.id, &short_old).await);
    // The pending one stays, old as it is; the recent one is within retention.
    assert_eq!(
        delivery(store, &t.id, &old_held).await.status.as_str(),
        "pending"
    );
    assert!(store.get_delivery(&t.id, &recent).await.is_ok());

    // `prune --older-than 5d --tenant t`: the recent one goes too, the pending one never.
    let removed = prune_all(
        store,
        PruneQuery {
            now,
            default_days: 30,
            older_than: Some(5 * DAY),
            tenant: Some(t.id.clone()),
            batch: 500,
        },
    )
    .await;
    assert_eq!(removed.events, 1);
    assert_not_found(store.get_delivery(&t.id, &recent).await);
    assert!(store.get_delivery(&t.id, &old_held).await.is_ok());
}
