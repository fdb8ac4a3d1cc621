//! Ingest: fan-out to matching webhooks and idempotency keys.

use std::collections::BTreeMap;

use hookrelay::store::*;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::*;

use crate::store_suite::fixtures::*;

/// Scenario 5: One delivery per matching webhook of the event's tenant, paused ones included.
pub async fn scenario_ingest_fan_out(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let member = create_webhook(store, &a.id, &["member.created"]).await;
    let github = create_webhook(store, &a.id, &["github.*"]).await;
    let all = create_webhook(store, &a.id, &[]).await;
    let star = create_webhook(store, &a.id, &["*"]).await;
    let paused = create_paused_webhook(store, &a.id, &["github.*", "member.created"]).await;
    let foreign = create_webhook(store, &b.id, &["*"]).await;

    let at = now_millis() - 10_000;
    let batch = vec![
        event_at(&a.id, "member.created", at),
        from_source(event_at(&a.id, "github.push", at + 1), "gh-main"),
        event_at(&a.id, "github.pr.opened", at + 2),
        event_at(&a.id, "billing.invoice.paid", at + 3),
        event_at(&a.id, "github", at + 4),
        // Another tenant in the same batch: only its own webhooks count.
        event_at(&b.id, "member.created", at + 5),
    ];
    let expected: Vec<Vec<&Webhook>> = vec![
        vec![&member, &all, &star, &paused],
        vec![&github, &all, &star, &paused],
        vec![&github, &all, &star, &paused],
        vec![&all, &star],
        vec![&all, &star],
        vec![&foreign],
    ];
    let outcomes = store.ingest(&batch).await.unwrap();
    assert_eq!(
        outcomes.len(),
        batch.len(),
        "one outcome per input, in order"
    );

    let mut per_webhook: BTreeMap<WebhookId, usize> = BTreeMap::new();
    for ((ne, outcome), hooks) in batch.iter().zip(&outcomes).zip(&expected) {
        let e = &ne.event;
        let IngestOutcome::Accepted {
            id,
            deliveries,
            delivery_ids,
        } = outcome
        else {
            panic!("{} was not accepted: {outcome:?}", e.event_type);
        };
        assert_eq!(id, &e.id);
        assert_eq!(
            *deliveries as usize,
            hooks.len(),
            "deliveries for {}",
            e.event_type
        );
        assert_eq!(delivery_ids.len(), hooks.len());
        assert_eq!(
            ids(delivery_ids).len(),
            hooks.len(),
            "delivery ids are distinct"
        );

        let mut got_hooks = Vec::new();
        for id in delivery_ids {
            let (d, event, attempts) = store.get_delivery(&e.tenant_id, id).await.unwrap();
            assert_eq!(&event, e, "the stored event is the ingested one");
            assert!(attempts.is_empty());
            assert_eq!(d.tenant_id, e.tenant_id);
            assert_eq!(d.event_id, e.id);
            assert_eq!(d.event_type, e.event_type);
            assert_eq!(d.source, e.source);
            assert_eq!(d.status, DeliveryStatus::Pending);
            assert_eq!(d.attempts, 0);
            assert_eq!(
                d.next_attempt_at,
                Some(e.created_at),
                "due as soon as it is ingested"
            );
            assert_eq!(
                (
                    d.delivered_at,
                    d.failed_at,
                    d.last_response_status,
                    &d.last_error
                ),
                (None, None, None, &None)
            );
            got_hooks.push(d.webhook_id.clone());
            *per_webhook.entry(d.webhook_id).or_default() += 1;
        }
        got_hooks.sort();
        let mut want: Vec<WebhookId> = hooks.iter().map(|w| w.id.clone()).collect();
        want.sort();
        assert_eq!(got_hooks, want, "webhooks reached by {}", e.event_type);

        // The event lists exactly these deliveries.
        let (event, deliveries) = store.get_event(&e.tenant_id, &e.id).await.unwrap();
        assert_eq!(&event, e);
        assert_eq!(ids(deliveries.iter().map(|d| &d.id)), ids(delivery_ids));
    }
    let counts = |w: &Webhook| per_webhook.get(&w.id).copied().unwrap_or(0);
    assert_eq!(
        [
            counts(&member),
            counts(&github),
            counts(&all),
            counts(&star),
            counts(&paused),
            counts(&foreign)
        ],
        [1, 2, 5, 5, 3, 1]
    );

    // Tenant isolation: nothing of A is visible through B and the other way round.
    let b_deliveries = all_deliveries(store, &b.id, DeliveryQuery::default()).await;
    assert_eq!(b_deliveries.len(), 1);
    assert_eq!(b_deliveries[0].webhook_id, foreign.id);
    assert_not_found(store.get_event(&b.id, &batch[0].event.id).await);
    assert_eq!(
        all_deliveries(store, &a.id, DeliveryQuery::default())
            .await
            .len(),
        16
    );

    // An event no webhook wants is still stored, with no deliveries.
    let lonely = tenant(store, "lonely").await;
    let e = event(&lonely.id, "member.created");
    assert!(ingest_one(store, &e).await.is_empty());
    let (stored, deliveries) = store.get_event(&lonely.id, &e.event.id).await.unwrap();
    assert_eq!(stored, e.event);
    assert!(deliveries.is_empty());

    // `only_webhook` (the `/test` action) reaches that webhook alone, whatever its filter, and
    // `lease` hands the delivery to the caller: no worker can claim it during the lease.
    let now = now_millis();
    let test = NewEvent {
        only_webhook: Some(member.id.clone()),
        lease: Some(("tester".into(), now + 60_000)),
        ..event(&a.id, "webhook.test")
    };
    let id = ingest_single(store, &test).await;
    assert_eq!(delivery(store, &a.id, &id).await.webhook_id, member.id);
    let claims = claim_all(store, "worker", now + 1).await;
    assert!(
        !claimed_ids(&claims).contains(&id),
        "a leased test delivery was claimed"
    );
    let claim = store.load_claim(&id).await.unwrap().expect("load_claim");
    assert_eq!(claim.delivery_id, id);
    assert_eq!(*claim.webhook, member);
    assert_eq!(claim.event_type, "webhook.test");
    assert_eq!(claim.attempts_made, 0);
    let rec = record(
        "tester",
        attempt(&id, 1, Some(204), now),
        NextState::Succeeded,
    );
    store.record_attempts(&[rec]).await.unwrap();
    assert_eq!(
        delivery(store, &a.id, &id).await.status,
        DeliveryStatus::Succeeded
    );
    assert!(store
        .load_claim(&DeliveryId::generate())
        .await
        .unwrap()
        .is_none());
}

/// Scenario 6: A repeated idempotency key in a tenant creates nothing and names the first event.
pub async fn scenario_idempotency(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    create_webhook(store, &a.id, &["*"]).await;
    create_webhook(store, &b.id, &["*"]).await;

    let first = keyed(event(&a.id, "order.paid"), "order-42");
    let again = keyed(event(&a.id, "order.refunded"), "order-42");
    let plain = event(&a.id, "order.paid");
    let other = keyed(event(&a.id, "order.paid"), "order-43");
    let out = store
        .ingest(&[first.clone(), again.clone(), plain.clone(), other.clone()])
        .await
        .unwrap();
    assert!(
        matches!(&out[0], IngestOutcome::Accepted { id, deliveries: 1, .. } if id == &first.event.id),
        "{out:?}"
    );
    assert_eq!(
        out[1],
        IngestOutcome::Duplicate {
            id: first.event.id.clone()
        }
    );
    assert!(
        matches!(&out[2], IngestOutcome::Accepted { id, deliveries: 1, .. } if id == &plain.event.id),
        "{out:?}"
    );
    assert!(
        matches!(&out[3], IngestOutcome::Accepted { id, deliveries: 1, .. } if id == &other.event.id),
        "{out:?}"
    );

    // Across batches too, alone or next to new events.
    let later = keyed(event(&a.id, "order.paid"), "order-42");
    let fresh = keyed(event(&a.id, "order.paid"), "order-44");
    let out = store.ingest(&[later.clone(), fresh.clone()]).await.unwrap();
    assert_eq!(
        out[0],
        IngestOutcome::Duplicate {
            id: first.event.id.clone()
        }
    );
    assert!(matches!(&out[1], IngestOutcome::Accepted { id, .. } if id == &fresh.event.id));
    let out = store.ingest(std::slice::from_ref(&later)).await.unwrap();
    assert_eq!(
        out,
        [IngestOutcome::Duplicate {
            id: first.event.id.clone()
        }]
    );

    // The duplicates left no event and no delivery behind.
    assert_not_found(store.get_event(&a.id, &again.event.id).await);
    assert_not_found(store.get_event(&a.id, &later.event.id).await);
    let events = store
        .list_events(&a.id, &EventQuery::default(), &PageRequest::default())
        .await
        .unwrap()
        .items;
    let keys: Vec<Option<&str>> = events
        .iter()
        .rev()
        .map(|e| e.idempotency_key.as_deref())
        .collect();
    assert_eq!(
        keys,
        [Some("order-42"), None, Some("order-43"), Some("order-44")]
    );
    let (stored, _) = store.get_event(&a.id, &first.event.id).await.unwrap();
    assert_eq!(
        stored.event_type, "order.paid",
        "the first event is kept as it was"
    );
    assert_eq!(
        all_deliveries(store, &a.id, DeliveryQuery::default())
            .await
            .len(),
        4
    );

    // The same key in another tenant is a different event.
    let theirs = keyed(event(&b.id, "order.paid"), "order-42");
    let out = store.ingest(std::slice::from_ref(&theirs)).await.unwrap();
    assert!(
        matches!(&out[0], IngestOutcome::Accepted { id, deliveries: 1, .. } if id == &theirs.event.id),
        "{out:?}"
    );
    let out = store
        .ingest(std::slice::from_ref(&keyed(
            event(&b.id, "x.y"),
            "order-42",
        )))
        .await
        .unwrap();
    assert_eq!(
        out,
        [IngestOutcome::Duplicate {
            id: theirs.event.id.clone()
        }]
    );
}
