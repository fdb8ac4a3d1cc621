//! The delivery queue: claims and leases, recording attempts, retries and concurrency.

use std::collections::BTreeSet;

use hookrelay::store::*;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::*;

use crate::store_suite::fixtures::*;

/// Scenario 7: `claim_due` leases due deliveries of active webhooks, oldest first, with what sending needs.
pub async fn scenario_claims(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let hook = Webhook {
        headers: [("X-Team".to_owned(), "crm".to_owned())].into(),
        retry_schedule: Some(vec![1, 2]),
        secrets: vec![
            StoredSecret {
                secret: "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0".into(),
                expires_at: None,
            },
            StoredSecret {
                secret: "whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0".into(),
                expires_at: Some(now_millis() + 1_000),
            },
        ],
        ..webhook(&t.id, &["*"])
    };
    store.create_webhook(&hook).await.unwrap();
    let paused = create_paused_webhook(store, &t.id, &["*"]).await;

    let now = now_millis();
    // Ingested newest first, so claim order cannot come from insertion order.
    let mut events = Vec::new();
    for age in [8_000, 9_000, 10_000] {
        events.push(event_at(&t.id, "order.paid", now - age));
    }
    let future = event_at(&t.id, "order.paid", now + 3_600_000);
    let mut due = Vec::new();
    for e in &events {
        let ids = ingest_one(store, e).await;
        assert_eq!(ids.len(), 2);
        due.push(ids);
    }
    ingest_one(store, &future).await;
    let all = all_deliveries(store, &t.id, DeliveryQuery::default()).await;
    let of_hook = |event: &NewEvent| {
        all.iter()
            .find(|d| d.event_id == event.event.id && d.webhook_id == hook.id)
            .map(|d| d.id.clone())
            .unwrap()
    };
    let oldest_first: Vec<DeliveryId> = events.iter().rev().map(of_hook).collect();
    let future_id = of_hook(&future);

    // `limit` is respected and the oldest due go first.
    let first = store.claim_due("w1", now, now + LEASE_MS, 2).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|c| c.delivery_id.clone())
            .collect::<Vec<_>>(),
        oldest_first[..2]
    );
    let rest = store
        .claim_due("w1", now, now + LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed_ids(&rest),
        ids([&oldest_first[2]]),
        "paused and future deliveries are not claimed"
    );

    // A claim carries the event and the whole webhook.
    for c in first.iter().chain(&rest) {
        let e = &events
            .iter()
            .find(|e| e.event.id == c.event_id)
            .unwrap()
            .event;
        assert_eq!(c.tenant_id, t.id);
        assert_eq!(c.event_type, e.event_type);
        assert_eq!(c.event_timestamp, e.timestamp);
        assert_eq!(&*c.data, e.data.as_str());
        assert_eq!(c.attempts_made, 0);
        assert_eq!(*c.webhook, hook);
    }

    // Leased: nobody else gets them until the lease ends.
    assert!(store
        .claim_due("w2", now + 1_000, now + 1_000 + LEASE_MS, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due("w2", now + LEASE_MS - 1, now + 2 * LEASE_MS, 10)
        .await
        .unwrap()
        .is_empty());
    // After it, they are claimable again (the first worker presumably died).
    let again = store
        .claim_due("w2", now + LEASE_MS, now + 4_000_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed_ids(&again), ids(&oldest_first));
    assert!(store
        .claim_due("w3", now + 2 * LEASE_MS, now + 3 * LEASE_MS, 10)
        .await
        .unwrap()
        .is_empty());

    // Not yet due: only once its time comes, and never the paused webhook's.
    let at_due = store
        .claim_due("w3", now + 3_600_000, now + 3_600_000 + LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(claimed_ids(&at_due), ids([&future_id]));
    let late = store
        .claim_due("w4", now + 100_000_000, now + 100_000_000 + LEASE_MS, 100)
        .await
        .unwrap();
    assert_eq!(
        claimed_ids(&late),
        ids(oldest_first.iter().chain([&future_id])),
        "expired leases, never paused ones"
    );
    assert!(late.iter().all(|c| c.webhook.id == hook.id));
    assert!(
        store.load_claim(&due[0][0]).await.unwrap().is_some(),
        "load_claim reads any delivery"
    );
    let held = all.iter().filter(|d| d.webhook_id == paused.id).count();
    assert_eq!(held, 4);
}

/// Scenario 8: `record_attempts` stores the attempt and moves the delivery, but only for its lease owner.
pub async fn scenario_record_attempts(store: &dyn Store) {
    let t = tenant(store, "t").await;
    create_webhook(store, &t.id, &["*"]).await;
    let mut ds = Vec::new();
    for _ in 0..4 {
        ds.push(ingest_single(store, &event(&t.id, "order.paid")).await);
    }
    let now = now_millis();
    let claims = store
        .claim_due("w1", now, now + LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(claimed_ids(&claims), ids(&ds));
    let [ok, retry, fail, stolen] = [&ds[0], &ds[1], &ds[2], &ds[3]];

    let ok_attempt = attempt(ok, 1, Some(200), now + 10);
    let retry_attempt = attempt(retry, 1, Some(503), now + 10);
    let fail_attempt = attempt(fail, 1, None, now + 10);
    let retry_at = now + 5_000;
    let records = [
        record("w1", ok_attempt.clone(), NextState::Succeeded),
        record("w1", retry_attempt.clone(), NextState::RetryAt(retry_at)),
        record("w1", fail_attempt.clone(), NextState::Failed),
        // Its lease is w1's: this late record of a lost lease must change nothing.
        record(
            "w-other",
            attempt(stolen, 1, Some(500), now + 10),
            NextState::Failed,
        ),
    ];
    store.record_attempts(&records).await.unwrap();

    let (d, _, attempts) = store.get_delivery(&t.id, ok).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.delivered_at, Some(records[0].finished_at));
    assert_eq!((d.next_attempt_at, d.failed_at), (None, None));
    assert_eq!(d.last_response_status, Some(200));
    assert_eq!(d.last_error, None);
    assert_eq!(
        attempts,
        [ok_attempt],
        "headers, status, body and timing stored as given"
    );

    let (d, _, attempts) = store.get_delivery(&t.id, retry).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.next_attempt_at, Some(retry_at));
    assert_eq!(d.last_response_status, Some(503));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(d.delivered_at, None);
    assert_eq!(attempts, [retry_attempt]);

    let (d, _, attempts) = store.get_delivery(&t.id, fail).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.failed_at, Some(records[2].finished_at));
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(d.last_response_status, None);
    assert_eq!(d.last_error.as_deref(), Some("connection refused"));
    assert_eq!(attempts, [fail_attempt]);
    let dlq = store
        .list_dlq(&t.id, &DlqQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(dlq.items, [d]);

    // The stale record left no trace: same state, no attempt, still w1's lease.
    let (d, _, attempts) = store.get_delivery(&t.id, stolen).await.unwrap();
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at),
        (DeliveryStatus::Pending, 0, Some(d.created_at))
    );
    assert!(
        attempts.is_empty(),
        "an attempt was stored for a lease its recorder did not hold"
    );

    // The retry's lease was cleared: another worker takes it when due (w1's lease is still on).
    assert!(store
        .claim_due("w2", retry_at - 1, retry_at + LEASE_MS, 10)
        .await
        .unwrap()
        .is_empty());
    let claims = store
        .claim_due("w2", retry_at, retry_at + LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(claimed_ids(&claims), ids([retry]));
    assert_eq!(claims[0].attempts_made, 1);
    let second = attempt(retry, 2, Some(200), retry_at + 10);
    store
        .record_attempts(&[record("w2", second.clone(), NextState::Succeeded)])
        .await
        .unwrap();
    let (d, _, attempts) = store.get_delivery(&t.id, retry).await.unwrap();
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at),
        (DeliveryStatus::Succeeded, 2, None)
    );
    assert_eq!(attempts.iter().map(|a| a.n).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(attempts[1], second);

    // The rightful owner's record of the stolen-looking delivery is kept in full.
    let mine = attempt(stolen, 1, Some(201), now + 20);
    store
        .record_attempts(&[record("w1", mine.clone(), NextState::Succeeded)])
        .await
        .unwrap();
    let (d, _, attempts) = store.get_delivery(&t.id, stolen).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(d.last_response_status, Some(201));
    assert_eq!(attempts, [mine]);
    assert!(store
        .claim_due("w3", now + 100_000_000, now + 100_000_000 + LEASE_MS, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Scenario 9: Manual retries: any delivery, DLQ ones only, and in bulk; not once the webhook is gone.
pub async fn scenario_retry_paths(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let hook = create_webhook(store, &a.id, &["order.*"]).await;
    let gone = create_webhook(store, &a.id, &["gone.*"]).await;
    create_webhook(store, &b.id, &["*"]).await;

    let succeeded = ingest_single(store, &event(&a.id, "order.paid")).await;
    settle(
        store,
        "w",
        &[&succeeded],
        NextState::Succeeded,
        now_millis(),
    )
    .await;
    let failed = ingest_single(store, &event(&a.id, "order.paid")).await;
    settle(store, "w", &[&failed], NextState::Failed, now_millis()).await;

    // retry_delivery: whatever the status, pending and due now.
    let before = now_millis();
    store.retry_delivery(&a.id, &succeeded).await.unwrap();
    let d = delivery(store, &a.id, &succeeded).await;
    assert_eq!(d.status, DeliveryStatus::Pending);
    let due = d.next_attempt_at.expect("due");
    assert!(due >= before && due <= now_millis(), "due now, not {due}");
    assert_eq!(d.attempts, 1, "manual retries count on");
    let claims = claim_all(store, "w", now_millis() + 1).await;
    assert_eq!(claimed_ids(&claims), ids([&succeeded]));
    assert_eq!(claims[0].attempts_made, 1);
    store
        .record_attempts(&[record(
            "w",
            attempt(&succeeded, 2, Some(200), now_millis()),
            NextState::Succeeded,
        )])
        .await
        .unwrap();
    // ...and a failed one leaves the dead-letter queue.
    let failed_too = ingest_single(store, &event(&a.id, "order.paid")).await;
    settle(store, "w", &[&failed_too], NextState::Failed, now_millis()).await;
    store.retry_delivery(&a.id, &failed_too).await.unwrap();
    let d = delivery(store, &a.id, &failed_too).await;
    assert_eq!((d.status, d.failed_at), (DeliveryStatus::Pending, None));
    assert!(d.next_attempt_at.unwrap() <= now_millis());
    let dlq_now = store
        .list_dlq(&a.id, &DlqQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(dlq_now.items.iter().map(|d| &d.id)), ids([&failed]));
    let claims = claim_all(store, "w", now_millis() + 1).await;
    assert_eq!(claimed_ids(&claims), ids([&failed_too]));
    let rec = record(
        "w",
        attempt(&failed_too, 2, Some(200), now_millis()),
        NextState::Succeeded,
    );
    store.record_attempts(&[rec]).await.unwrap();

    assert_not_found(store.retry_delivery(&b.id, &succeeded).await);
    assert_not_found(store.retry_delivery(&a.id, &DeliveryId::generate()).await);

    // retry_dlq_delivery: only failed ones.
    assert_not_found(store.retry_dlq_delivery(&a.id, &succeeded).await);
    assert_eq!(
        delivery(store, &a.id, &succeeded).await.status,
        DeliveryStatus::Succeeded
    );
    let pending = ingest_single(store, &event_at(&a.id, "order.paid", now_millis() + 60_000)).await;
    assert_not_found(store.retry_dlq_delivery(&a.id, &pending).await);
    assert!(
        delivery(store, &a.id, &pending)
            .await
            .next_attempt_at
            .unwrap()
            > now_millis()
    );
    assert_not_found(store.retry_dlq_delivery(&b.id, &failed).await);
    store.retry_dlq_delivery(&a.id, &failed).await.unwrap();
    let d = delivery(store, &a.id, &failed).await;
    assert_eq!((d.status, d.failed_at), (DeliveryStatus::Pending, None));
    assert!(d.next_attempt_at.unwrap() <= now_millis());
    assert!(store
        .list_dlq(&a.id, &DlqQuery::default(), &PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    let claims = claim_all(store, "w", now_millis() + 1).await;
    assert_eq!(claimed_ids(&claims), ids([&failed]));
    store.release_leases("w").await.unwrap();

    // Bulk: by webhook and by failure time, never another tenant's, never a deleted webhook's.
    let t0 = now_millis();
    let f_old = ingest_single(store, &event(&a.id, "order.paid")).await;
    let f_old_at = settle(
        store,
        "w",
        &[&f_old, &failed],
        NextState::Failed,
        t0 - 60_000,
    )
    .await;
    let f_new = ingest_single(store, &event(&a.id, "order.paid")).await;
    let f_new_at = settle(store, "w", &[&f_new], NextState::Failed, t0).await;
    assert!(f_old_at < f_new_at);
    let f_gone = ingest_single(store, &event(&a.id, "gone.thing")).await;
    settle(store, "w", &[&f_gone], NextState::Failed, t0).await;
    let f_b = ingest_single(store, &event(&b.id, "order.paid")).await;
    let f_b_at = settle(store, "w", &[&f_b], NextState::Failed, t0).await;
    let dlq = |tenant: TenantId| async move {
        let page = store
            .list_dlq(&tenant, &DlqQuery::default(), &PageRequest::default())
            .await
            .unwrap();
        ids(page.items.iter().map(|d| &d.id))
    };
    assert_eq!(
        dlq(a.id.clone()).await,
        ids([&f_old, &failed, &f_new, &f_gone])
    );

    assert_eq!(
        store
            .retry_dlq_bulk(&a.id, Some(&hook.id), Some(f_new_at))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        delivery(store, &a.id, &f_new).await.status,
        DeliveryStatus::Pending
    );
    assert_eq!(dlq(a.id.clone()).await, ids([&f_old, &failed, &f_gone]));
    assert_eq!(
        store
            .retry_dlq_bulk(&a.id, Some(&WebhookId::generate()), None)
            .await
            .unwrap(),
        0
    );

    // A deleted webhook's failures stay put: a retry could never be sent.
    store.delete_webhook(&a.id, &gone.id).await.unwrap();
    assert_conflict(store.retry_dlq_delivery(&a.id, &f_gone).await);
    assert_conflict(store.retry_delivery(&a.id, &f_gone).await);
    assert_eq!(store.retry_dlq_bulk(&a.id, None, None).await.unwrap(), 2);
    assert_eq!(dlq(a.id.clone()).await, ids([&f_gone]));
    assert_eq!(
        delivery(store, &a.id, &f_gone).await.status,
        DeliveryStatus::Failed
    );
    assert_eq!(
        dlq(b.id.clone()).await,
        ids([&f_b]),
        "another tenant's DLQ is untouched"
    );
    assert_eq!(store.retry_dlq_bulk(&a.id, None, None).await.unwrap(), 0);

    // Everything retried is due now.
    let claims = claim_all(store, "w", now_millis() + 1).await;
    assert_eq!(claimed_ids(&claims), ids([&f_old, &failed, &f_new]));
    assert_eq!(
        store
            .retry_dlq_bulk(&b.id, None, Some(f_b_at + 1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .retry_dlq_bulk(&b.id, None, Some(f_b_at))
            .await
            .unwrap(),
        1
    );
}

/// Scenario 12: Concurrent claimers over one queue never get the same delivery twice.
pub async fn scenario_concurrent_claims(store: &dyn Store) {
    const DELIVERIES: usize = 200;
    const WORKERS: usize = 8;
    let t = tenant(store, "t").await;
    create_webhook(store, &t.id, &["*"]).await;
    let batch: Vec<NewEvent> = (0..DELIVERIES).map(|_| event(&t.id, "load.tick")).collect();
    let outcomes = store.ingest(&batch).await.unwrap();
    assert_eq!(outcomes.len(), DELIVERIES);

    let now = now_millis();
    let workers = (0..WORKERS).map(|w| async move {
        let owner = format!("worker-{w}");
        let mut got = Vec::new();
        loop {
            let claims = store
                .claim_due(&owner, now, now + LEASE_MS, 7)
                .await
                .expect("claim_due");
            if claims.is_empty() {
                return (owner, got);
            }
            assert!(claims.len() <= 7);
            got.extend(claims.into_iter().map(|c| c.delivery_id));
            tokio::task::yield_now().await;
        }
    });
    let results = futures::future::join_all(workers).await;

    let mut seen = BTreeSet::new();
    for (owner, got) in &results {
        for id in got {
            assert!(
                seen.insert(id.clone()),
                "{id} was claimed twice (second time by {owner})"
            );
        }
    }
    assert_eq!(
        seen.len(),
        DELIVERIES,
        "every delivery claimed exactly once"
    );
    let busy = results.iter().filter(|(_, got)| !got.is_empty()).count();
    // Otherwise the claims did not interleave and this proved nothing.
    assert!(busy >= 2, "only {busy} of {WORKERS} workers got deliveries");
    assert!(claim_all(store, "late", now + 1).await.is_empty());
}

/// Scenario 7b: under a `LeaseOffer`, ingest leases at most `max` new deliveries to the offer's
/// owner, only of active webhooks the predicate accepts and never of an event that carries its
/// own lease; the leased ones come back as complete claims and are not claimable until the
/// lease expires, while the rest wait in the queue as without an offer.
pub async fn scenario_ingest_leasing(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let plain = create_webhook(store, &t.id, &["order.*"]).await;
    let metered = Webhook {
        rate_limit_per_sec: Some(5),
        ..webhook(&t.id, &["order.*"])
    };
    store.create_webhook(&metered).await.unwrap();
    let paused = create_paused_webhook(store, &t.id, &["order.*"]).await;

    let now = now_millis();
    let lease_until = now + LEASE_MS;
    let accepts = |w: &Webhook, _: &hookrelay_domain::quota::Quotas| w.rate_limit_per_sec.is_none();
    let offer = LeaseOffer {
        owner: "node-a",
        lease_until,
        max: 2,
        accepts: &accepts,
    };
    let mut own_lease = event(&t.id, "order.paid");
    own_lease.lease = Some(("node-a-test".into(), lease_until));
    own_lease.only_webhook = Some(plain.id.clone());
    let events = vec![
        event(&t.id, "order.paid"),
        event(&t.id, "order.shipped"),
        event(&t.id, "order.refunded"),
        own_lease.clone(),
    ];
    let batch = store
        .ingest_leasing(&events, &[], Some(&offer))
        .await
        .unwrap();
    let created: usize = batch
        .outcomes
        .iter()
        .map(|o| match o {
            IngestOutcome::Accepted { deliveries, .. } => *deliveries as usize,
            other => panic!("expected accepted, got {other:?}"),
        })
        .sum();
    assert_eq!(
        created,
        3 * 3 + 1,
        "fan-out is the same with or without an offer"
    );

    // At most `max`, only the accepted (unmetered, active) webhook, complete claims.
    assert_eq!(batch.leased.len(), 2);
    for (claim, e) in batch.leased.iter().zip(&events) {
        assert_eq!(*claim.webhook, plain, "the whole webhook, secrets included");
        assert_eq!(claim.event_id, e.event.id, "in event order");
        assert_eq!(claim.event_type, e.event.event_type);
        assert_eq!(claim.event_timestamp, e.event.timestamp);
        assert_eq!(&*claim.data, e.event.data.as_str());
        assert_eq!(claim.attempts_made, 0);
        assert_eq!(claim.tenant_id, t.id);
        assert_eq!(claim.tenant_quotas, t.quotas);
    }
    let leased = claimed_ids(&batch.leased);

    // Leased deliveries are not claimable while the lease holds; everything else is, except
    // the paused webhook's and the one the event leased for itself.
    let claimed = claim_all(store, "node-b", now).await;
    let claimed_set = claimed_ids(&claimed);
    assert!(leased.is_disjoint(&claimed_set), "leased ones are taken");
    assert_eq!(
        claimed.len(),
        3 * 3 - 2 - 3,
        "unleased deliveries of active webhooks"
    );
    assert!(claimed.iter().all(|c| c.webhook.id != paused.id));
    let own: Vec<DeliveryId> = match &batch.outcomes[3] {
        IngestOutcome::Accepted { delivery_ids, .. } => delivery_ids.clone(),
        _ => unreachable!(),
    };
    assert!(
        !claimed_set.contains(&own[0]),
        "the event's own lease holds"
    );
    assert!(
        !leased.contains(&own[0]),
        "an event with its own lease is not offered"
    );

    // Recording as the offer's owner works like any claim: the lease is ours.
    let first = &batch.leased[0];
    store
        .record_attempts(&[record(
            "node-a",
            attempt(&first.delivery_id, 1, Some(200), now),
            NextState::Succeeded,
        )])
        .await
        .unwrap();
    assert_eq!(
        delivery(store, &t.id, &first.delivery_id).await.status,
        DeliveryStatus::Succeeded
    );

    // Once the lease expires the other leased delivery is claimable again (a crashed node).
    let later = claim_all(store, "node-b", lease_until + 1).await;
    let later_ids = claimed_ids(&later);
    assert!(later_ids.contains(&batch.leased[1].delivery_id));
    assert!(
        !later_ids.contains(&first.delivery_id),
        "recorded, not pending"
    );

    // No offer, no leases.
    let plain_batch = store
        .ingest_leasing(&[event(&t.id, "order.paid")], &[], None)
        .await
        .unwrap();
    assert!(plain_batch.leased.is_empty());
}

/// Scenario 7c: batches of any size, past the largest multi-row statement, go through ingest,
/// claim and record whole: every event and delivery stored once, every claim complete, every
/// attempt written (multi-row statements are split into power-of-two chunks).
pub async fn scenario_large_batches(store: &dyn Store) {
    const EVENTS: usize = 337;
    let t = tenant(store, "t").await;
    create_webhook(store, &t.id, &["bulk.*"]).await;
    create_webhook(store, &t.id, &["*"]).await;
    let batch: Vec<NewEvent> = (0..EVENTS).map(|_| event(&t.id, "bulk.item")).collect();
    let outcomes = store.ingest(&batch).await.unwrap();
    let delivery_ids: BTreeSet<DeliveryId> = outcomes
        .iter()
        .flat_map(|o| match o {
            IngestOutcome::Accepted { delivery_ids, .. } => delivery_ids.clone(),
            other => panic!("expected accepted, got {other:?}"),
        })
        .collect();
    assert_eq!(delivery_ids.len(), 2 * EVENTS);

    let now = now_millis();
    let claims = claim_all(store, "w", now).await;
    assert_eq!(claimed_ids(&claims), delivery_ids, "one claim per delivery");
    for c in &claims {
        let e = batch.iter().find(|e| e.event.id == c.event_id).unwrap();
        assert_eq!(&*c.data, e.event.data.as_str());
    }
    let records: Vec<AttemptRecord> = claims
        .iter()
        .map(|c| {
            record(
                "w",
                attempt(&c.delivery_id, 1, Some(200), now),
                NextState::Succeeded,
            )
        })
        .collect();
    store.record_attempts(&records).await.unwrap();
    let done = all_deliveries(
        store,
        &t.id,
        DeliveryQuery {
            status: Some(DeliveryStatus::Succeeded),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(done.len(), 2 * EVENTS, "every attempt recorded");
    let some = claims.last().unwrap();
    let (d, _, attempts) = store.get_delivery(&t.id, &some.delivery_id).await.unwrap();
    assert_eq!((d.attempts, attempts.len()), (1, 1));
}

/// `release_waiting` (a relay listener connected) makes only that webhook's deliveries that
/// wait for a later retry due now; others, and finished ones, keep their state.
pub async fn scenario_release_waiting(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let other_tenant = tenant(store, "u").await;
    let relay = create_webhook(store, &t.id, &["*"]).await;
    let other = create_webhook(store, &t.id, &["*"]).await;
    let e1 = event(&t.id, "a.b");
    let created = ingest_one(store, &e1).await;
    let (waiting, elsewhere) = {
        let all = all_deliveries(store, &t.id, DeliveryQuery::default()).await;
        let of = |w: &WebhookId| all.iter().find(|d| &d.webhook_id == w).unwrap().id.clone();
        (of(&relay.id), of(&other.id))
    };
    assert_eq!(created.len(), 2);
    let later = now_millis() + 3_600_000;
    settle(
        store,
        "w",
        &[&waiting, &elsewhere],
        NextState::RetryAt(later),
        now_millis(),
    )
    .await;
    let done_event = event(&t.id, "a.c");
    ingest_one(store, &done_event).await;
    let done = all_deliveries(store, &t.id, DeliveryQuery::default())
        .await
        .into_iter()
        .find(|d| d.event_id == done_event.event.id && d.webhook_id == relay.id)
        .unwrap()
        .id;
    let before = now_millis();
    settle(store, "w", &[&done], NextState::Succeeded, before).await;

    // Another tenant's call changes nothing.
    assert_eq!(
        store
            .release_waiting(&other_tenant.id, &relay.id)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.release_waiting(&t.id, &relay.id).await.unwrap(), 1);
    let released = delivery(store, &t.id, &waiting).await;
    assert_eq!(released.status, DeliveryStatus::Pending);
    assert!(released.next_attempt_at.unwrap() <= now_millis());
    assert_eq!(
        delivery(store, &t.id, &elsewhere).await.next_attempt_at,
        Some(later)
    );
    assert_eq!(
        delivery(store, &t.id, &done).await.status,
        DeliveryStatus::Succeeded
    );
    let claims = claim_all(store, "w2", now_millis() + 1).await;
    let claimed = claimed_ids(&claims);
    assert!(
        claimed.contains(&waiting) && !claimed.contains(&elsewhere),
        "{claimed:?}"
    );
    // Nothing waits any more.
    store.release_leases("w2").await.unwrap();
    assert_eq!(store.release_waiting(&t.id, &relay.id).await.unwrap(), 0);
}

/// An ordered webhook's deliveries are claimed one at a time, oldest first: the head holds the
/// rest back while leased or waiting for a retry; dead-lettered or delivered, it lets the next go.
pub async fn scenario_ordered_claims(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let hook = Webhook {
        ordered: true,
        ..webhook(&t.id, &["*"])
    };
    store.create_webhook(&hook).await.unwrap();
    assert!(store.get_webhook(&t.id, &hook.id).await.unwrap().ordered);
    let now = now_millis();
    // Ingested newest first: the order must come from acceptance time, not insertion.
    let mut by_age = Vec::new();
    for age in [1_000, 2_000, 3_000] {
        by_age.push(ingest_single(store, &event_at(&t.id, "order.paid", now - age)).await);
    }
    let [d2, d1, d0] = [by_age[0].clone(), by_age[1].clone(), by_age[2].clone()];

    let first = claim_all(store, "w1", now).await;
    assert_eq!(
        claimed_ids(&first),
        ids([&d0]),
        "only the oldest is claimable"
    );
    assert!(
        claim_all(store, "w2", now).await.is_empty(),
        "nothing else while the head is leased"
    );

    let retry_at = now + 60_000;
    store
        .record_attempts(&[record(
            "w1",
            attempt(&d0, 1, Some(500), now),
            NextState::RetryAt(retry_at),
        )])
        .await
        .unwrap();
    assert!(
        claim_all(store, "w1", now + 1).await.is_empty(),
        "a head waiting for its retry holds back every later delivery"
    );

    let again = claim_all(store, "w1", retry_at + 1).await;
    assert_eq!(claimed_ids(&again), ids([&d0]), "the head goes again first");
    store
        .record_attempts(&[record(
            "w1",
            attempt(&d0, 2, Some(500), retry_at + 1),
            NextState::Failed,
        )])
        .await
        .unwrap();
    let next = claim_all(store, "w1", retry_at + 2).await;
    assert_eq!(
        claimed_ids(&next),
        ids([&d1]),
        "a dead-lettered head lets the next go"
    );
    store
        .record_attempts(&[record(
            "w1",
            attempt(&d1, 1, Some(200), retry_at + 2),
            NextState::Succeeded,
        )])
        .await
        .unwrap();
    let last = claim_all(store, "w1", retry_at + 3).await;
    assert_eq!(claimed_ids(&last), ids([&d2]));
}

/// Scenario: a backlog the claim cannot send (an open circuit's), due before everyone else's and
/// longer than one claim's walk in due order, holds back neither the other webhooks' deliveries,
/// nor an ordered webhook's head, nor the idle worker's next wakeup; the cap per webhook holds
/// across the claim's two passes, and the held webhook gets its one probe once the circuit ends.
pub async fn scenario_claims_past_a_held_backlog(store: &dyn Store) {
    use hookrelay_domain::health::HealthPolicy;
    let t = tenant(store, "t").await;
    let dead = create_webhook(store, &t.id, &["dead.*"]).await;
    let live = create_webhook(store, &t.id, &["live.*"]).await;
    let seq = Webhook {
        ordered: true,
        ..webhook(&t.id, &["seq.*"])
    };
    store.create_webhook(&seq).await.unwrap();
    let now = now_millis();

    // Two failures open `dead`'s circuit; their retries are due just before `now`.
    let failing = [
        ingest_single(store, &event_at(&t.id, "dead.x", now - 400_000)).await,
        ingest_single(store, &event_at(&t.id, "dead.x", now - 399_000)).await,
    ];
    assert_eq!(claim_all(store, "w0", now).await.len(), 2);
    let policy = HealthPolicy {
        circuit_failures: 2,
        ..HealthPolicy::default()
    };
    let fails: Vec<AttemptRecord> = failing
        .iter()
        .map(|d| {
            record(
                "w0",
                attempt(d, 1, Some(500), now),
                NextState::RetryAt(now - 10),
            )
        })
        .collect();
    store.record_attempts_with(&fails, &policy).await.unwrap();
    let open_until = store
        .get_webhook(&t.id, &dead.id)
        .await
        .unwrap()
        .health
        .open_until
        .expect("the circuit is open");
    assert!(open_until > now + 10_000);

    // Due first: one of `live`'s, then a backlog of `dead` longer than the due window, then the
    // rest of `live` and the ordered webhook's two.
    let live_first = ingest_single(store, &event_at(&t.id, "live.x", now - 300_000)).await;
    let backlog: Vec<NewEvent> = (0..1_124)
        .map(|i| event_at(&t.id, "dead.x", now - 200_000 + i))
        .collect();
    for chunk in backlog.chunks(200) {
        store.ingest(chunk).await.unwrap();
    }
    let live_later = [
        ingest_single(store, &event_at(&t.id, "live.x", now - 100_000)).await,
        ingest_single(store, &event_at(&t.id, "live.x", now - 99_000)).await,
    ];
    let seq_head = ingest_single(store, &event_at(&t.id, "seq.x", now - 98_000)).await;
    let seq_next = ingest_single(store, &event_at(&t.id, "seq.x", now - 97_000)).await;

    // At most two per webhook: `live` had its share in the walk's window, so the pass beyond it
    // adds only the ordered head.
    let capped = ClaimExclusions {
        max_per_webhook: Some(2),
        ..ClaimExclusions::default()
    };
    let first = store
        .claim_due_excluding("w1", now, now + LEASE_MS, 10, &capped)
        .await
        .unwrap();
    assert_eq!(claimed_ids(&first), ids([&live_first, &seq_head]));
    let second = store
        .claim_due_excluding("w2", now, now + LEASE_MS, 10, &capped)
        .await
        .unwrap();
    assert_eq!(
        claimed_ids(&second),
        ids(&live_later),
        "the deliveries behind the held backlog"
    );
    assert!(second.iter().all(|c| c.webhook.id == live.id));
    assert!(
        claim_all(store, "w3", now).await.is_empty(),
        "nothing of the open circuit, nothing behind the ordered head"
    );

    // Idle: the next wakeup is `live`'s next delivery, not a held one nor the one behind the
    // ordered head; with none, the circuit's end.
    assert_eq!(store.next_due_at().await.unwrap(), Some(open_until));
    let soon = ingest_single(store, &event_at(&t.id, "live.x", now + 5_000)).await;
    assert_eq!(store.next_due_at().await.unwrap(), Some(now + 5_000));
    let _ = (seq_next, soon);

    // The circuit's end: one probe, the oldest of the backlog.
    let after = claim_all(store, "w4", open_until + 1).await;
    let probes: Vec<&DeliveryClaim> = after.iter().filter(|c| c.webhook.id == dead.id).collect();
    assert_eq!(probes.len(), 1, "one probe");
    assert_eq!(probes[0].event_id, backlog[0].event.id);
}
