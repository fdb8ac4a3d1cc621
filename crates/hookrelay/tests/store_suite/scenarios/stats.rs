//! Delivery statistics: the counters recording attempts adds to (per webhook, minute and hour),
//! read per chart point and per webhook, the tenant's queue, and their pruning.

use hookrelay::store::*;
use hookrelay_domain::stats::{bucket_of, ROW_WIDTHS};
use hookrelay_domain::time::{now_millis, Millis};
use hookrelay_domain::*;

use crate::store_suite::fixtures::*;

const MIN: Millis = 60_000;
const HOUR: Millis = 3_600_000;

/// A record of the claimed delivery's attempt `n`, finished `latency` ms after it was created.
fn finished(
    claim: &DeliveryClaim,
    owner: &str,
    n: u32,
    ok: bool,
    latency: Millis,
    next: NextState,
) -> AttemptRecord {
    let mut a = attempt(&claim.delivery_id, n, Some(if ok { 200 } else { 500 }), 0);
    a.duration_ms = 10;
    a.started_at = claim.created_at + latency - 10;
    record(owner, a, next)
}

fn claim_of<'a>(claims: &'a [DeliveryClaim], id: &DeliveryId) -> &'a DeliveryClaim {
    claims
        .iter()
        .find(|c| &c.delivery_id == id)
        .expect("claimed")
}

/// Minute rows from `since`, summed per `step`.
fn minutes(since: Millis, step: Millis, webhook: Option<&WebhookId>) -> StatsQuery {
    StatsQuery {
        width_ms: MIN,
        since,
        step_ms: step,
        webhook: webhook.cloned(),
    }
}

pub async fn scenario_delivery_stats(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let other = tenant(store, "other").await;
    let a = create_webhook(store, &t.id, &["a.*"]).await;
    let b = create_webhook(store, &t.id, &["b.*"]).await;
    let theirs = create_webhook(store, &other.id, &["a.*"]).await;

    let a1 = ingest_single(store, &event(&t.id, "a.one")).await;
    let a2 = ingest_single(store, &event(&t.id, "a.two")).await;
    let b1 = ingest_single(store, &event(&t.id, "b.one")).await;
    let o1 = ingest_single(store, &event(&other.id, "a.one")).await;
    let claims = claim_all(store, "node-1", now_millis() + 1).await;
    assert_eq!(claims.len(), 4);

    // a1 fails once (retried), a2 succeeds after 40 ms, b1 is exhausted, the other tenant's
    // succeeds: one batch.
    store
        .record_attempts(&[
            finished(
                claim_of(&claims, &a1),
                "node-1",
                1,
                false,
                20,
                NextState::RetryAt(now_millis() - 1),
            ),
            finished(
                claim_of(&claims, &a2),
                "node-1",
                1,
                true,
                40,
                NextState::Succeeded,
            ),
            finished(
                claim_of(&claims, &b1),
                "node-1",
                1,
                false,
                30,
                NextState::Failed,
            ),
            finished(
                claim_of(&claims, &o1),
                "node-1",
                1,
                true,
                5,
                NextState::Succeeded,
            ),
        ])
        .await
        .unwrap();
    // a1's retry succeeds, recorded by another node (another shard of the same rows), 700 ms
    // after the delivery was created; the counters add up across batches and nodes.
    let again = claim_all(store, "node-2", now_millis() + 1).await;
    assert_eq!(claimed_ids(&again), ids([&a1]));
    store
        .record_attempts(&[finished(
            &again[0],
            "node-2",
            2,
            true,
            700,
            NextState::Succeeded,
        )])
        .await
        .unwrap();
    // A node that lost the lease records nothing, counters included.
    store
        .record_attempts(&[finished(
            &again[0],
            "stale",
            3,
            true,
            900,
            NextState::Succeeded,
        )])
        .await
        .unwrap();

    let created = claim_of(&claims, &a1).created_at;
    let since = bucket_of(created, HOUR) - HOUR;
    let per_minute = store
        .delivery_stats(&t.id, &minutes(since, MIN, None))
        .await
        .unwrap();
    let total = per_minute
        .iter()
        .fold(stats::StatCounts::default(), |mut acc, (_, c)| {
            acc.add(c);
            acc
        });
    assert_eq!(
        (total.attempts, total.succeeded, total.retried, total.failed),
        (4, 2, 1, 1),
        "the tenant's attempts only: {per_minute:?}"
    );
    assert_eq!(total.latency.count(), 2);
    // 40 ms lands in (25, 50], 700 ms in (500, 1000].
    assert_eq!(total.latency.0[3], 1);
    assert_eq!(total.latency.0[7], 1);
    assert!(
        per_minute.windows(2).all(|w| w[0].0 < w[1].0),
        "oldest first"
    );
    assert!(per_minute.iter().all(|(at, _)| at % MIN == 0));

    // Summed into wider points; the hour rows hold the same totals.
    let hourly = store
        .delivery_stats(&t.id, &minutes(since, HOUR, None))
        .await
        .unwrap();
    assert!(hourly.iter().all(|(at, _)| at % HOUR == 0));
    let hourly_total: u64 = hourly.iter().map(|(_, c)| c.attempts).sum();
    assert_eq!(hourly_total, 4);
    let hour_rows = store
        .delivery_stats(
            &t.id,
            &StatsQuery {
                width_ms: HOUR,
                since,
                step_ms: HOUR,
                webhook: None,
            },
        )
        .await
        .unwrap();
    let from_hour_rows: u64 = hour_rows.iter().map(|(_, c)| c.succeeded).sum();
    assert_eq!(from_hour_rows, 2);

    // One webhook's points.
    let only_b = store
        .delivery_stats(&t.id, &minutes(since, MIN, Some(&b.id)))
        .await
        .unwrap();
    let b_total: Vec<(u64, u64)> = only_b.iter().map(|(_, c)| (c.attempts, c.failed)).collect();
    assert_eq!(b_total.iter().map(|x| x.0).sum::<u64>(), 1);
    assert_eq!(b_total.iter().map(|x| x.1).sum::<u64>(), 1);

    // Per webhook.
    let mut by_hook = store
        .delivery_stats_by_webhook(&t.id, MIN, since)
        .await
        .unwrap();
    by_hook.sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = vec![(a.id.clone(), (3, 2, 1, 0)), (b.id.clone(), (1, 0, 0, 1))];
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    let got: Vec<(WebhookId, (u64, u64, u64, u64))> = by_hook
        .iter()
        .map(|(id, c)| (id.clone(), (c.attempts, c.succeeded, c.retried, c.failed)))
        .collect();
    assert_eq!(got, expected);
    let theirs_rows = store
        .delivery_stats_by_webhook(&other.id, MIN, since)
        .await
        .unwrap();
    assert_eq!(theirs_rows.len(), 1);
    assert_eq!(theirs_rows[0].0, theirs.id);

    // Nothing before `since`.
    let later = store
        .delivery_stats(&t.id, &minutes(now_millis() + HOUR, MIN, None))
        .await
        .unwrap();
    assert!(later.is_empty());

    // The queue: one pending (a new event for a), b1 in the dead-letter queue.
    let q = store.tenant_queue(&t.id, None).await.unwrap();
    assert_eq!((q.pending, q.dead_letter), (0, 1));
    assert_eq!(q.oldest_pending_created_at, None);
    let waiting = ingest_single(store, &event(&t.id, "a.three")).await;
    let q = store.tenant_queue(&t.id, None).await.unwrap();
    assert_eq!((q.pending, q.dead_letter), (1, 1));
    let waiting_created = delivery(store, &t.id, &waiting).await.created_at;
    assert_eq!(q.oldest_pending_created_at, Some(waiting_created));
    let qa = store.tenant_queue(&t.id, Some(&a.id)).await.unwrap();
    assert_eq!((qa.pending, qa.dead_letter), (1, 0));
    let qb = store.tenant_queue(&t.id, Some(&b.id)).await.unwrap();
    assert_eq!((qb.pending, qb.dead_letter), (0, 1));
    let qo = store.tenant_queue(&other.id, None).await.unwrap();
    assert_eq!((qo.pending, qo.dead_letter), (0, 0));
    // Another tenant's webhook id reads as nothing.
    let cross = store.tenant_queue(&other.id, Some(&b.id)).await.unwrap();
    assert_eq!((cross.pending, cross.dead_letter), (0, 0));
}

pub async fn scenario_delivery_stats_pruning(store: &dyn Store) {
    let t = tenant(store, "t").await;
    create_webhook(store, &t.id, &["p.*"]).await;
    let old = ingest_single(store, &event(&t.id, "p.old")).await;
    let claims = claim_all(store, "w", now_millis() + 1).await;
    let now = now_millis();
    // Recorded as if it finished three days ago: its minute row is past the minute retention
    // (2 days), its hour row within the hour retention (35 days).
    let mut r = finished(
        claim_of(&claims, &old),
        "w",
        1,
        true,
        10,
        NextState::Succeeded,
    );
    r.finished_at = now - 3 * 24 * HOUR;
    store.record_attempts(&[r]).await.unwrap();
    let read = |width: Millis| StatsQuery {
        width_ms: width,
        since: 0,
        step_ms: width,
        webhook: None,
    };
    assert_eq!(
        store.delivery_stats(&t.id, &read(MIN)).await.unwrap().len(),
        1
    );
    assert_eq!(
        store
            .delivery_stats(&t.id, &read(HOUR))
            .await
            .unwrap()
            .len(),
        1
    );

    let removed = store.prune_delivery_stats(now, 10).await.unwrap();
    assert_eq!(removed, 1, "only the minute row");
    assert!(store
        .delivery_stats(&t.id, &read(MIN))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .delivery_stats(&t.id, &read(HOUR))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.prune_delivery_stats(now, 10).await.unwrap(), 0);
    // A month and more later the hour row goes too.
    let (_, hour_keep) = ROW_WIDTHS[1];
    assert_eq!(
        store
            .prune_delivery_stats(now + hour_keep, 10)
            .await
            .unwrap(),
        1
    );
    assert!(store
        .delivery_stats(&t.id, &read(HOUR))
        .await
        .unwrap()
        .is_empty());
}

pub async fn scenario_queue_samples(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let other = tenant(store, "other").await;
    let m = bucket_of(now_millis(), HOUR) - 2 * HOUR;
    store
        .record_queue_samples(m, &[(t.id.clone(), 5), (other.id.clone(), 100)])
        .await
        .unwrap();
    // A later sample of the same minute replaces it; the next minute has its own.
    store
        .record_queue_samples(m, &[(t.id.clone(), 7)])
        .await
        .unwrap();
    store
        .record_queue_samples(m + MIN, &[(t.id.clone(), 3)])
        .await
        .unwrap();
    store
        .record_queue_samples(m + 20 * MIN, &[(t.id.clone(), 9)])
        .await
        .unwrap();
    store.record_queue_samples(m, &[]).await.unwrap();

    let per_minute = store.queue_samples(&t.id, m, MIN).await.unwrap();
    assert_eq!(per_minute, vec![(m, 7), (m + MIN, 3), (m + 20 * MIN, 9)]);
    // Wider points take the largest sample of the step.
    let per_ten = store.queue_samples(&t.id, m, 10 * MIN).await.unwrap();
    assert_eq!(per_ten, vec![(m, 7), (m + 20 * MIN, 9)]);
    assert_eq!(
        store
            .queue_samples(&t.id, m + MIN, MIN)
            .await
            .unwrap()
            .len(),
        2,
        "from `since`"
    );
    assert_eq!(
        store.queue_samples(&other.id, 0, HOUR).await.unwrap(),
        vec![(m, 100)]
    );

    // Kept 35 days.
    assert_eq!(
        store.prune_delivery_stats(now_millis(), 10).await.unwrap(),
        0
    );
    let later = now_millis() + hookrelay_domain::stats::QUEUE_SAMPLE_RETENTION_MS;
    assert_eq!(store.prune_delivery_stats(later, 10).await.unwrap(), 4);
    assert!(store.queue_samples(&t.id, 0, MIN).await.unwrap().is_empty());
}
