//! Replay: new deliveries of stored events to all, chosen or one webhook, by window and mode;
//! and the delivery list's search filters (`until`, `event_id`, `delivery_id`).

use hookrelay::store::*;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::*;
use serde_json::json;

use crate::store_suite::fixtures::*;

pub async fn scenario_replay_event(store: &dyn Store) {
    let t = tenant(store, "replay").await;
    let other = tenant(store, "other").await;
    let orders = create_webhook(store, &t.id, &["order.*"]).await;
    let members = create_webhook(store, &t.id, &["member.*"]).await;
    let foreign = create_webhook(store, &other.id, &["*"]).await;
    let e = event(&t.id, "order.paid");
    let first = ingest_single(store, &e).await;

    // By default: every webhook that matches now, with a new delivery id, due now.
    let created = store.replay_event(&t.id, &e.event.id, None).await.unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].webhook_id, orders.id);
    assert_ne!(created[0].id, first);
    let d = delivery(store, &t.id, &created[0].id).await;
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.event_id, e.event.id);
    assert_eq!(d.event_type, "order.paid");
    assert_eq!(d.attempts, 0);
    let due = claim_all(store, "w", now_millis() + 1).await;
    assert!(claimed_ids(&due).contains(&created[0].id));
    store.release_leases("w").await.unwrap();

    // Named webhooks get it whatever their filters; another tenant's webhook is ignored.
    let named = store
        .replay_event(
            &t.id,
            &e.event.id,
            Some(&[members.id.clone(), foreign.id.clone()]),
        )
        .await
        .unwrap();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].webhook_id, members.id);
    let (_, all) = store.get_event(&t.id, &e.event.id).await.unwrap();
    assert_eq!(all.len(), 3, "the original and two replays");

    // Another tenant's event is not found; nothing was written for it.
    assert_not_found(store.replay_event(&other.id, &e.event.id, None).await);
    assert!(all_deliveries(store, &other.id, DeliveryQuery::default())
        .await
        .is_empty());

    // The payload filter applies to a default replay as at fan-out.
    let mut big = webhook(&t.id, &["order.*"]);
    big.filter = Some(json!({"data.type": {"$eq": "order.paid"}}));
    store.create_webhook(&big).await.unwrap();
    let mut never = webhook(&t.id, &["order.*"]);
    never.filter = Some(json!({"data.type": {"$eq": "nope"}}));
    store.create_webhook(&never).await.unwrap();
    let again = store.replay_event(&t.id, &e.event.id, None).await.unwrap();
    let to: std::collections::BTreeSet<_> = again.iter().map(|c| c.webhook_id.clone()).collect();
    assert_eq!(
        to,
        [orders.id.clone(), big.id.clone()].into_iter().collect()
    );
}

pub async fn scenario_replay_webhook(store: &dyn Store) {
    let t = tenant(store, "replay-hook").await;
    let base = now_millis() - 60_000;
    let first = create_webhook(store, &t.id, &["order.*"]).await;
    let e1 = event_at(&t.id, "order.paid", base + 10);
    let e2 = event_at(&t.id, "order.paid", base + 20);
    let e3 = event_at(&t.id, "member.created", base + 30);
    let d1 = ingest_single(store, &e1).await;
    let d2 = ingest_single(store, &e2).await;
    ingest_one(store, &e3).await;
    settle(store, "w", &[&d1], NextState::Succeeded, now_millis()).await;
    settle(store, "w", &[&d2], NextState::Failed, now_millis()).await;

    // A webhook created later missed both orders (the member event it does not match).
    let late = create_webhook(store, &t.id, &["order.*"]).await;
    let late_all = || {
        let tenant = t.id.clone();
        let hook = late.id.clone();
        async move {
            all_deliveries(
                store,
                &tenant,
                DeliveryQuery {
                    webhook_id: Some(hook),
                    ..Default::default()
                },
            )
            .await
        }
    };
    let n = store
        .replay_webhook(&t.id, &late.id, base, None, ReplayMode::Missing)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(late_all().await.len(), 2);
    // Nothing is missing any more.
    let n = store
        .replay_webhook(&t.id, &late.id, base, None, ReplayMode::Missing)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // The window bounds: `until` is exclusive.
    let n = store
        .replay_webhook(&t.id, &late.id, base + 10, Some(base + 20), ReplayMode::All)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = store
        .replay_webhook(&t.id, &late.id, base + 21, None, ReplayMode::All)
        .await
        .unwrap();
    assert_eq!(n, 0, "the member event does not match");

    // `failed`: only e2, whose delivery failed; once replayed (pending) it is not taken again.
    let n = store
        .replay_webhook(&t.id, &first.id, base, None, ReplayMode::Failed)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let first_deliveries = all_deliveries(
        store,
        &t.id,
        DeliveryQuery {
            webhook_id: Some(first.id.clone()),
            event_id: Some(e2.event.id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(first_deliveries.len(), 2);
    let n = store
        .replay_webhook(&t.id, &first.id, base, None, ReplayMode::Failed)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // Another tenant's webhook, or a missing one, is not found.
    let other = tenant(store, "replay-other").await;
    assert_not_found(
        store
            .replay_webhook(&other.id, &first.id, base, None, ReplayMode::All)
            .await,
    );
    assert_not_found(
        store
            .replay_webhook(&t.id, &WebhookId::generate(), base, None, ReplayMode::All)
            .await,
    );
}

/// More events than one batch: every one is replayed once.
pub async fn scenario_replay_webhook_in_batches(store: &dyn Store) {
    let t = tenant(store, "replay-batches").await;
    let base = now_millis() - 60_000;
    let events: Vec<NewEvent> = (0..600)
        .map(|i| event_at(&t.id, "bulk.item", base + i))
        .collect();
    store.ingest(&events).await.unwrap();
    let hook = create_webhook(store, &t.id, &["bulk.*"]).await;
    let n = store
        .replay_webhook(&t.id, &hook.id, base, None, ReplayMode::Missing)
        .await
        .unwrap();
    assert_eq!(n, 600);
    let page = PageRequest {
        limit: 1000,
        cursor: None,
    };
    let got = store
        .list_deliveries(
            &t.id,
            &DeliveryQuery {
                webhook_id: Some(hook.id.clone()),
                ..Default::default()
            },
            &page,
        )
        .await
        .unwrap();
    assert_eq!(got.items.len(), 600);
    let distinct: std::collections::BTreeSet<_> = got.items.iter().map(|d| &d.event_id).collect();
    assert_eq!(distinct.len(), 600);
}

pub async fn scenario_delivery_search_filters(store: &dyn Store) {
    let t = tenant(store, "search").await;
    let base = now_millis() - 60_000;
    create_webhook(store, &t.id, &["*"]).await;
    create_webhook(store, &t.id, &["a.*"]).await;
    let a = event_at(&t.id, "a.one", base + 10);
    let b = event_at(&t.id, "b.one", base + 20);
    let a_ids = ingest_one(store, &a).await;
    let b_ids = ingest_one(store, &b).await;
    assert_eq!((a_ids.len(), b_ids.len()), (2, 1));
    let count = |q: DeliveryQuery| {
        let tenant = t.id.clone();
        async move { all_deliveries(store, &tenant, q).await.len() }
    };
    let q = DeliveryQuery::default;
    assert_eq!(
        count(DeliveryQuery {
            until: Some(base + 20),
            ..q()
        })
        .await,
        2
    );
    assert_eq!(
        count(DeliveryQuery {
            until: Some(base + 21),
            ..q()
        })
        .await,
        3
    );
    assert_eq!(
        count(DeliveryQuery {
            since: Some(base + 10),
            until: Some(base + 11),
            ..q()
        })
        .await,
        2
    );
    assert_eq!(
        count(DeliveryQuery {
            event_id: Some(a.event.id.clone()),
            ..q()
        })
        .await,
        2
    );
    let one = all_deliveries(
        store,
        &t.id,
        DeliveryQuery {
            delivery_id: Some(b_ids[0].clone()),
            ..q()
        },
    )
    .await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, b_ids[0]);
    // Another tenant's ids find nothing.
    let other = tenant(store, "search-other").await;
    assert_eq!(
        all_deliveries(
            store,
            &other.id,
            DeliveryQuery {
                delivery_id: Some(b_ids[0].clone()),
                ..q()
            }
        )
        .await
        .len(),
        0
    );
}
