//! Reads: event, delivery and DLQ lists, queue state and webhook statistics.

use hookrelay::store::*;
use hookrelay_domain::time::{now_millis, Millis};
use hookrelay_domain::*;

use crate::store_suite::fixtures::*;

/// An event whose client timestamp is its ingest time, so time filters do not depend on which
/// of the two they use.
fn event_at_exactly(
    tenant: &TenantId,
    event_type: &str,
    at: Millis,
    source: Option<&str>,
) -> NewEvent {
    let mut e = event_at(tenant, event_type, at);
    e.event.timestamp = at;
    e.event.source = source.map(str::to_owned);
    e
}

/// Scenario 13a: `list_events`: type, source and time filters, newest first, paginated, per tenant.
pub async fn scenario_event_lists(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let other = tenant(store, "other").await;
    let base = now_millis() - 100_000;
    let specs = [
        ("member.created", None),
        ("github.push", Some("gh-main")),
        ("github.push", Some("gh-other")),
        ("member.created", Some("gh-main")),
        ("github.push", Some("gh-main")),
        ("order.paid", None),
    ];
    let events: Vec<NewEvent> = specs
        .iter()
        .enumerate()
        .map(|(i, (ty, src))| event_at_exactly(&t.id, ty, base + 10 * i as i64, *src))
        .collect();
    store.ingest(&events).await.unwrap();
    store
        .ingest(&[event_at_exactly(
            &other.id,
            "github.push",
            base + 15,
            Some("gh-main"),
        )])
        .await
        .unwrap();

    let list = |query: EventQuery, limit: u32| {
        let tenant = t.id.clone();
        async move {
            let pages = collect_pages(limit, |p| {
                let (query, tenant) = (query.clone(), tenant.clone());
                async move { store.list_events(&tenant, &query, &p).await }
            })
            .await;
            let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
            (pages.into_iter().flatten().collect::<Vec<Event>>(), sizes)
        }
    };
    let pick = |idx: &[usize]| {
        idx.iter()
            .map(|&i| events[i].event.clone())
            .collect::<Vec<_>>()
    };
    let q = EventQuery::default;

    let (all, sizes) = list(q(), 2).await;
    assert_eq!(all, pick(&[5, 4, 3, 2, 1, 0]), "whole events, newest first");
    assert_eq!(sizes, [2, 2, 2]);
    let (_, sizes) = list(q(), 4).await;
    assert_eq!(sizes, [4, 2]);

    let by_type = EventQuery {
        event_type: Some("github.push".into()),
        ..q()
    };
    assert_eq!(list(by_type.clone(), 50).await.0, pick(&[4, 2, 1]));
    assert_eq!(
        list(by_type.clone(), 2).await,
        (pick(&[4, 2, 1]), vec![2, 1])
    );
    assert_eq!(
        list(
            EventQuery {
                event_type: Some("github.*".into()),
                ..q()
            },
            50
        )
        .await
        .0,
        pick(&[]),
        "type is exact"
    );
    assert_eq!(
        list(
            EventQuery {
                source: Some("gh-main".into()),
                ..q()
            },
            50
        )
        .await
        .0,
        pick(&[4, 3, 1])
    );
    assert_eq!(
        list(
            EventQuery {
                source: Some("gh-main".into()),
                ..by_type.clone()
            },
            50
        )
        .await
        .0,
        pick(&[4, 1])
    );
    assert_eq!(
        list(
            EventQuery {
                since: Some(base + 20),
                ..q()
            },
            50
        )
        .await
        .0,
        pick(&[5, 4, 3, 2]),
        "since is inclusive"
    );
    assert_eq!(
        list(
            EventQuery {
                until: Some(base + 20),
                ..q()
            },
            50
        )
        .await
        .0,
        pick(&[1, 0]),
        "until is exclusive"
    );
    let window = EventQuery {
        since: Some(base + 10),
        until: Some(base + 40),
        ..q()
    };
    assert_eq!(list(window.clone(), 50).await.0, pick(&[3, 2, 1]));
    assert_eq!(
        list(
            EventQuery {
                event_type: Some("github.push".into()),
                ..window
            },
            1
        )
        .await
        .0,
        pick(&[2, 1])
    );

    let theirs = store
        .list_events(&other.id, &q(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 1);
    assert_eq!(theirs.items[0].tenant_id, other.id);
    assert_not_found(store.get_event(&other.id, &events[0].event.id).await);
    assert_not_found(store.get_event(&t.id, &EventId::generate()).await);
}

/// Scenario 13b: `list_deliveries` and `list_dlq` filters; `get_delivery` with its event and attempts.
pub async fn scenario_delivery_lists(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let other = tenant(store, "other").await;
    let orders = create_webhook(store, &t.id, &["order.*"]).await;
    let everything = create_webhook(store, &t.id, &["*"]).await;
    create_webhook(store, &other.id, &["*"]).await;
    let base = now_millis() - 100_000;
    let events = [
        event_at_exactly(&t.id, "order.paid", base, Some("shop")),
        event_at_exactly(&t.id, "member.created", base + 10, None),
        event_at_exactly(&t.id, "order.refunded", base + 20, Some("shop")),
        event_at_exactly(&t.id, "order.paid", base + 30, None),
    ];
    store.ingest(&events).await.unwrap();
    store
        .ingest(&[event_at_exactly(
            &other.id,
            "order.paid",
            base,
            Some("shop"),
        )])
        .await
        .unwrap();
    let all = all_deliveries(store, &t.id, DeliveryQuery::default()).await;
    assert_eq!(all.len(), 7);
    let find = |e: usize, hook: &Webhook| {
        all.iter()
            .find(|d| d.event_id == events[e].event.id && d.webhook_id == hook.id)
            .unwrap_or_else(|| panic!("no delivery of event {e} to {}", hook.id))
            .id
            .clone()
    };
    let paid_ok = find(0, &orders);
    let paid_failed = find(0, &everything);
    let refund_failed = find(2, &orders);
    let retried = find(3, &orders);
    settle(store, "w", &[&paid_ok], NextState::Succeeded, now_millis()).await;
    settle(
        store,
        "w",
        &[&paid_failed, &refund_failed],
        NextState::Failed,
        now_millis(),
    )
    .await;

    // Newest first, paginated.
    let mut newest_first: Vec<DeliveryId> = all.iter().map(|d| d.id.clone()).collect();
    newest_first.sort();
    newest_first.reverse();
    let listed: Vec<DeliveryId> = all.iter().map(|d| d.id.clone()).collect();
    assert_eq!(listed, newest_first);
    let pages = collect_pages(3, |p| {
        let tenant = t.id.clone();
        async move {
            store
                .list_deliveries(&tenant, &DeliveryQuery::default(), &p)
                .await
        }
    })
    .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let paged: Vec<DeliveryId> = pages.into_iter().flatten().map(|d| d.id).collect();
    assert_eq!(paged, newest_first);

    let count = |q: DeliveryQuery| {
        let tenant = t.id.clone();
        async move { all_deliveries(store, &tenant, q).await.len() }
    };
    let q = DeliveryQuery::default;
    assert_eq!(
        count(DeliveryQuery {
            status: Some(DeliveryStatus::Pending),
            ..q()
        })
        .await,
        4
    );
    assert_eq!(
        count(DeliveryQuery {
            status: Some(DeliveryStatus::Succeeded),
            ..q()
        })
        .await,
        1
    );
    assert_eq!(
        count(DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            ..q()
        })
        .await,
        2
    );
    assert_eq!(
        count(DeliveryQuery {
            status: Some(DeliveryStatus::Cancelled),
            ..q()
        })
        .await,
        0
    );
    assert_eq!(
        count(DeliveryQuery {
            event_type: Some("order.paid".into()),
            ..q()
        })
        .await,
        4
    );
    assert_eq!(
        count(DeliveryQuery {
            event_type: Some("order.*".into()),
            ..q()
        })
        .await,
        0
    );
    assert_eq!(
        count(DeliveryQuery {
            webhook_id: Some(orders.id.clone()),
            ..q()
        })
        .await,
        3
    );
    assert_eq!(
        count(DeliveryQuery {
            webhook_id: Some(everything.id.clone()),
            ..q()
        })
        .await,
        4
    );
    assert_eq!(
        count(DeliveryQuery {
            source: Some("shop".into()),
            ..q()
        })
        .await,
        4
    );
    assert_eq!(
        count(DeliveryQuery {
            since: Some(base + 20),
            ..q()
        })
        .await,
        4
    );
    assert_eq!(
        count(DeliveryQuery {
            since: Some(base + 21),
            ..q()
        })
        .await,
        2
    );
    let failed_everything = all_deliveries(
        store,
        &t.id,
        DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            webhook_id: Some(everything.id.clone()),
            ..q()
        },
    )
    .await;
    assert_eq!(
        failed_everything
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&paid_failed)
    );
    assert_eq!(all_deliveries(store, &other.id, q()).await.len(), 1);

    // The dead-letter queue.
    let dlq = |query: DlqQuery, limit: u32| {
        let tenant = t.id.clone();
        async move {
            let pages = collect_pages(limit, |p| {
                let (query, tenant) = (query.clone(), tenant.clone());
                async move { store.list_dlq(&tenant, &query, &p).await }
            })
            .await;
            pages
                .into_iter()
                .flatten()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    let mut both = vec![paid_failed.clone(), refund_failed.clone()];
    both.sort();
    both.reverse();
    assert_eq!(dlq(DlqQuery::default(), 50).await, both);
    assert_eq!(dlq(DlqQuery::default(), 1).await, both);
    assert_eq!(
        dlq(
            DlqQuery {
                webhook_id: Some(orders.id.clone()),
                ..Default::default()
            },
            50
        )
        .await,
        std::slice::from_ref(&refund_failed)
    );
    assert_eq!(
        dlq(
            DlqQuery {
                event_type: Some("order.paid".into()),
                ..Default::default()
            },
            50
        )
        .await,
        std::slice::from_ref(&paid_failed)
    );
    let none = DlqQuery {
        webhook_id: Some(orders.id.clone()),
        event_type: Some("order.paid".into()),
    };
    assert!(dlq(none, 50).await.is_empty());
    let theirs = store
        .list_dlq(&other.id, &DlqQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert!(theirs.items.is_empty());

    // get_delivery: the delivery, its event and its attempts in order.
    for next in [
        NextState::RetryAt(now_millis()),
        NextState::RetryAt(now_millis()),
        NextState::Succeeded,
    ] {
        settle(store, "w", &[&retried], next, now_millis()).await;
    }
    let (d, event, attempts) = store.get_delivery(&t.id, &retried).await.unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Succeeded, 3));
    assert_eq!(event, events[3].event);
    assert_eq!(attempts.iter().map(|a| a.n).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(attempts.iter().all(|a| a.delivery_id == retried));
    assert_eq!(
        attempts
            .iter()
            .map(|a| a.response_status)
            .collect::<Vec<_>>(),
        [Some(500), Some(500), Some(200)]
    );
    assert_not_found(store.get_delivery(&other.id, &retried).await);
    assert_not_found(store.get_delivery(&t.id, &DeliveryId::generate()).await);
}

/// Scenario 13c: Queue state: `queue_stats`, `next_due_at` and `release_leases`.
pub async fn scenario_queue_state(store: &dyn Store) {
    let now = now_millis();
    assert_eq!(store.queue_stats(now).await.unwrap(), QueueStats::default());
    assert_eq!(store.next_due_at().await.unwrap(), None);

    let t = tenant(store, "t").await;
    create_webhook(store, &t.id, &["order.*"]).await;
    create_paused_webhook(store, &t.id, &["held.*"]).await;

    // Held deliveries count as pending but are never "next".
    ingest_single(store, &event_at(&t.id, "held.item", now - 5_000)).await;
    assert_eq!(store.queue_stats(now).await.unwrap().pending, 1);
    assert_eq!(
        store.next_due_at().await.unwrap(),
        None,
        "a paused webhook's delivery is not due"
    );

    let a = ingest_single(store, &event_at(&t.id, "order.a", now - 30_000)).await;
    let b = ingest_single(store, &event_at(&t.id, "order.b", now - 10_000)).await;
    let c = ingest_single(store, &event_at(&t.id, "order.c", now + 60_000)).await;
    assert_eq!(
        store.queue_stats(now).await.unwrap(),
        QueueStats {
            pending: 4,
            oldest_due_age_ms: 30_000,
            dead_letter: 0,
            open_circuits: 0,
        }
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(now - 30_000));

    // Leased deliveries stay pending but are not "next".
    let first = store.claim_due("w1", now, now + LEASE_MS, 1).await.unwrap();
    assert_eq!(claimed_ids(&first), ids([&a]));
    assert_eq!(store.next_due_at().await.unwrap(), Some(now - 10_000));
    let second = store
        .claim_due("w1", now, now + LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(claimed_ids(&second), ids([&b]));
    assert_eq!(store.next_due_at().await.unwrap(), Some(now + 60_000));
    assert_eq!(store.queue_stats(now).await.unwrap().pending, 4);

    // Releasing gives the leases back at once, only the owner's.
    assert_eq!(store.release_leases("w2").await.unwrap(), 0);
    assert_eq!(store.release_leases("w1").await.unwrap(), 2);
    assert_eq!(store.next_due_at().await.unwrap(), Some(now - 30_000));
    let taken = store
        .claim_due("w2", now + 1, now + LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed_ids(&taken),
        ids([&a, &b]),
        "claimable before the old lease would have ended"
    );

    // Finished deliveries are not released (nor counted).
    let rec = record("w2", attempt(&a, 1, Some(200), now), NextState::Succeeded);
    store.record_attempts(&[rec]).await.unwrap();
    assert_eq!(store.release_leases("w2").await.unwrap(), 1);
    assert_eq!(
        store.queue_stats(now).await.unwrap(),
        QueueStats {
            pending: 3,
            oldest_due_age_ms: 10_000,
            dead_letter: 0,
            open_circuits: 0,
        }
    );
    assert_eq!(
        store.queue_stats(now - 20_000).await.unwrap(),
        QueueStats {
            pending: 3,
            oldest_due_age_ms: 0,
            dead_letter: 0,
            open_circuits: 0,
        }
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(now - 10_000));

    // A delivery that failed for good leaves the queue for the dead-letter count.
    let last = store
        .claim_due("w3", now, now + LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(claimed_ids(&last), ids([&b]));
    let rec = record("w3", attempt(&b, 1, Some(500), now), NextState::Failed);
    store.record_attempts(&[rec]).await.unwrap();
    assert_eq!(
        store.queue_stats(now).await.unwrap(),
        QueueStats {
            pending: 2,
            // The paused webhook's held delivery is now the oldest due one.
            oldest_due_age_ms: 5_000,
            dead_letter: 1,
            open_circuits: 0,
        }
    );
    let _ = c;
}

/// Scenario 14: `webhook_stats` counts the attempts of one webhook in a time window.
pub async fn scenario_webhook_stats(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let other = tenant(store, "other").await;
    let hook = create_webhook(store, &t.id, &["h.*"]).await;
    let neighbour = create_webhook(store, &t.id, &["n.*"]).await;
    let now = now_millis();
    const MIN: Millis = 60_000;
    // (status, minutes ago, duration ms)
    let attempts: [(Option<u16>, Millis, u32); 7] = [
        (Some(200), 120, 999), // outside the window
        (Some(200), 30, 30),
        (Some(204), 20, 10),
        (Some(299), 10, 20),
        (Some(500), 5, 50),
        (None, 1, 40),      // timeout
        (Some(302), 2, 60), // redirects are not followed: a failure
    ];
    let mut ds = Vec::new();
    for _ in &attempts {
        ds.push(ingest_single(store, &event(&t.id, "h.tick")).await);
    }
    let theirs = ingest_single(store, &event(&t.id, "n.tick")).await;
    let claims = claim_all(store, "w", now_millis() + 1).await;
    assert_eq!(claims.len(), attempts.len() + 1);
    let mut records: Vec<AttemptRecord> = ds
        .iter()
        .zip(attempts)
        .map(|(d, (status, ago, duration))| {
            let mut a = attempt(d, 1, status, now - ago * MIN);
            a.duration_ms = duration;
            let next = if a.error_kind.is_none() {
                NextState::Succeeded
            } else {
                NextState::RetryAt(now + MIN)
            };
            record("w", a, next)
        })
        .collect();
    records.push(record(
        "w",
        attempt(&theirs, 1, Some(200), now - MIN),
        NextState::Succeeded,
    ));
    store.record_attempts(&records).await.unwrap();

    let stats = store
        .webhook_stats(&t.id, &hook.id, now - 60 * MIN)
        .await
        .unwrap();
    assert_eq!((stats.attempts, stats.successes, stats.failures), (6, 3, 3));
    assert_eq!(
        stats.durations_ms,
        [10, 20, 30, 40, 50, 60],
        "window durations, ascending"
    );
    let all = store.webhook_stats(&t.id, &hook.id, 0).await.unwrap();
    assert_eq!((all.attempts, all.successes, all.failures), (7, 4, 3));
    assert_eq!(all.durations_ms.last(), Some(&999));
    let edge = store
        .webhook_stats(&t.id, &hook.id, now - 10 * MIN)
        .await
        .unwrap();
    assert_eq!(
        (edge.attempts, edge.successes, edge.failures),
        (4, 1, 3),
        "the window start is inclusive"
    );
    let recent = store.webhook_stats(&t.id, &hook.id, now).await.unwrap();
    assert_eq!(recent, WebhookStats::default());

    let n = store
        .webhook_stats(&t.id, &neighbour.id, now - 60 * MIN)
        .await
        .unwrap();
    assert_eq!((n.attempts, n.successes, n.failures), (1, 1, 0));
    assert_eq!(
        store.webhook_stats(&other.id, &hook.id, 0).await.unwrap(),
        WebhookStats::default(),
        "other tenant"
    );
}

/// Scenario 13e: a page of large events ends at `PAGE_BYTE_BUDGET` of data, before `limit`,
/// and following the cursors still yields every event exactly once, newest first.
pub async fn scenario_event_pages_are_byte_budgeted(store: &dyn Store) {
    let t = tenant(store, "t").await;
    // Just over a quarter of the budget each: four fill a page, the fifth starts the next.
    let filler = "x".repeat(PAGE_BYTE_BUDGET / 4 + 1);
    let base = now_millis() - 100_000;
    let events: Vec<NewEvent> = (0..6)
        .map(|i| {
            let mut e = event_at(&t.id, "bulk.export", base + i);
            e.event.data = format!(r#"{{"blob":"{filler}"}}"#);
            e
        })
        .collect();
    store.ingest(&events).await.unwrap();

    let pages = collect_pages(1000, |p| {
        let tenant = t.id.clone();
        async move { store.list_events(&tenant, &EventQuery::default(), &p).await }
    })
    .await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [4, 2],
        "the budget, not the limit, ends the first page"
    );
    let listed: Vec<EventId> = pages.into_iter().flatten().map(|e| e.id).collect();
    let expected: Vec<EventId> = events.iter().rev().map(|e| e.event.id.clone()).collect();
    assert_eq!(listed, expected, "every event once, newest first");

    // A single event larger than the budget still comes back, alone on its page.
    let huge = format!(r#"{{"blob":"{}"}}"#, "y".repeat(PAGE_BYTE_BUDGET + 10));
    let mut big = event_at(&t.id, "bulk.export", base + 10);
    big.event.data = huge.clone();
    store.ingest(std::slice::from_ref(&big)).await.unwrap();
    let first = store
        .list_events(
            &t.id,
            &EventQuery::default(),
            &PageRequest {
                limit: 1000,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].data, huge);
    assert!(first.next_cursor.is_some());
}
