//! Endpoint health in the store: recorded failures open a webhook's circuit, the claim skips
//! it until the cooldown ends, then leases one probe; `410` disables; re-activation clears.

use std::time::Duration;

use hookrelay::store::*;
use hookrelay_domain::health::{CircuitState, DisabledReason, HealthChange, HealthPolicy};
use hookrelay_domain::time::now_millis;

use crate::store_suite::fixtures::*;

const POLICY: HealthPolicy = HealthPolicy {
    circuit_failures: 2,
    auto_disable_after: Duration::from_secs(86_400),
    first_cooldown: hookrelay_domain::health::FIRST_COOLDOWN,
};

fn changes(t: &[HealthTransition]) -> Vec<HealthChange> {
    t.iter().map(|t| t.change).collect()
}

/// Scenario: the circuit breaker's whole cycle, and `410 Gone` auto-disable.
pub async fn scenario_circuit_breaker(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let a = create_webhook(store, &t.id, &["a.*"]).await;
    let now = now_millis();
    let d1 = ingest_single(store, &event_at(&t.id, "a.one", now - 3_000)).await;
    let d2 = ingest_single(store, &event_at(&t.id, "a.two", now - 2_000)).await;
    let d3 = ingest_single(store, &event_at(&t.id, "a.three", now - 1_000)).await;
    assert_eq!(claim_all(store, "w1", now).await.len(), 3);

    // Two failures in a row open it (the third, in flight meanwhile, changes nothing more).
    let fail = |d: &hookrelay_domain::DeliveryId| {
        record(
            "w1",
            attempt(d, 1, Some(500), now),
            NextState::RetryAt(now - 10),
        )
    };
    let opened = store
        .record_attempts_with(&[fail(&d1), fail(&d2), fail(&d3)], &POLICY)
        .await
        .unwrap();
    assert_eq!(changes(&opened), [HealthChange::Opened]);
    assert_eq!(opened[0].webhook_id, a.id);
    let h = store.get_webhook(&t.id, &a.id).await.unwrap().health;
    assert_eq!(h.state, CircuitState::Open);
    assert_eq!(h.consecutive_failures, 3);
    let open_until = h.open_until.expect("open until");
    assert!(open_until >= now + 30_000, "a 30 s cooldown");
    assert_eq!(store.queue_stats(now).await.unwrap().open_circuits, 1);

    // Held: due, but neither claimed nor "next" before the cooldown ends; the worker sleeps
    // until then. Their retries are untouched.
    assert!(claim_all(store, "w2", now).await.is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), Some(open_until));
    assert_eq!(delivery(store, &t.id, &d1).await.attempts, 1);

    // After it: one probe, and nothing else while the probe is out.
    let probe = claim_all(store, "w2", open_until + 1).await;
    assert_eq!(probe.len(), 1, "one probe");
    assert_eq!(
        store.get_webhook(&t.id, &a.id).await.unwrap().health.state,
        CircuitState::HalfOpen
    );
    assert!(claim_all(store, "w3", open_until + 2).await.is_empty());

    // The probe fails: open again, for twice as long.
    let failed_probe = store
        .record_attempts_with(
            &[record(
                "w2",
                attempt(&probe[0].delivery_id, 2, None, open_until + 1),
                NextState::RetryAt(open_until),
            )],
            &POLICY,
        )
        .await
        .unwrap();
    assert_eq!(changes(&failed_probe), [HealthChange::Reopened]);
    let h = store.get_webhook(&t.id, &a.id).await.unwrap().health;
    assert_eq!(h.state, CircuitState::Open);
    let reopen_until = h.open_until.unwrap();
    assert!(reopen_until >= open_until + 60_000, "the cooldown doubled");

    // The next probe succeeds: closed, and the rest are released.
    let probe = claim_all(store, "w2", reopen_until).await;
    assert_eq!(probe.len(), 1);
    let recovered = store
        .record_attempts_with(
            &[record(
                "w2",
                attempt(&probe[0].delivery_id, 3, Some(200), reopen_until),
                NextState::Succeeded,
            )],
            &POLICY,
        )
        .await
        .unwrap();
    assert_eq!(changes(&recovered), [HealthChange::Recovered]);
    assert!(store
        .get_webhook(&t.id, &a.id)
        .await
        .unwrap()
        .health
        .is_clear());
    assert_eq!(claim_all(store, "w4", reopen_until + 1).await.len(), 2);
    assert_eq!(store.queue_stats(now).await.unwrap().open_circuits, 0);
}

/// Scenario: `410 Gone` disables at once; the deliveries are held, and re-activation clears
/// the reason and releases them.
pub async fn scenario_gone_disables(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let b = create_webhook(store, &t.id, &["b.*"]).await;
    let now = now_millis();
    let d1 = ingest_single(store, &event_at(&t.id, "b.one", now - 2_000)).await;
    let d2 = ingest_single(store, &event_at(&t.id, "b.two", now - 1_000)).await;
    let claims = claim_all(store, "w1", now).await;
    assert_eq!(claims.len(), 2);
    let gone = store
        .record_attempts_with(
            &[record(
                "w1",
                attempt(&d1, 1, Some(410), now),
                NextState::RetryAt(now - 10),
            )],
            &POLICY,
        )
        .await
        .unwrap();
    assert_eq!(
        changes(&gone),
        [HealthChange::Disabled(DisabledReason::Gone)]
    );
    store.release_leases("w1").await.unwrap();
    let w = store.get_webhook(&t.id, &b.id).await.unwrap();
    assert!(!w.active);
    assert_eq!(w.health.disabled_reason, Some(DisabledReason::Gone));
    assert!(w.health.disabled_at.is_some());
    assert!(claim_all(store, "w2", now).await.is_empty(), "held");
    assert_eq!(delivery(store, &t.id, &d2).await.status.as_str(), "pending");

    // Re-enabling clears the reason and releases what waited.
    let enabled = Webhook {
        active: true,
        updated_at: now,
        ..w.clone()
    };
    store.update_webhook(&enabled, false).await.unwrap();
    let w = store.get_webhook(&t.id, &b.id).await.unwrap();
    assert!(w.active);
    assert!(w.health.is_clear(), "{:?}", w.health);
    assert_eq!(claim_all(store, "w3", now).await.len(), 2);

    // An ordinary edit of an active webhook leaves its health alone.
    let a = create_webhook(store, &t.id, &["c.*"]).await;
    let dc = ingest_single(store, &event_at(&t.id, "c.one", now - 1_000)).await;
    claim_all(store, "w4", now).await;
    store
        .record_attempts_with(
            &[record(
                "w4",
                attempt(&dc, 1, Some(500), now),
                NextState::RetryAt(now),
            )],
            &POLICY,
        )
        .await
        .unwrap();
    let edited = Webhook {
        description: Some("edited".into()),
        ..store.get_webhook(&t.id, &a.id).await.unwrap()
    };
    store.update_webhook(&edited, false).await.unwrap();
    assert_eq!(
        store
            .get_webhook(&t.id, &a.id)
            .await
            .unwrap()
            .health
            .consecutive_failures,
        1
    );
}

/// Scenario: the backlog per tenant, and alerts raised once per crossing with their event.
pub async fn scenario_alert_crossings(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let quiet = tenant(store, "quiet").await;
    create_paused_webhook(store, &t.id, &["held.*"]).await;
    let ops = create_webhook(store, &t.id, &["hookrelay.*"]).await;
    let now = now_millis();
    ingest_single(store, &event_at(&t.id, "held.a", now - 5_000)).await;
    ingest_single(store, &event_at(&t.id, "held.b", now - 1_000)).await;
    let backlog = store.backlog_by_tenant(now).await.unwrap();
    assert_eq!(
        backlog,
        [TenantBacklog {
            tenant_id: t.id.clone(),
            pending: 2,
            oldest_due_age_ms: 5_000,
            alerting: false
        }],
        "only tenants with something pending"
    );
    let raise = |over: bool| AlertChange::Backlog {
        tenant: t.id.clone(),
        over,
        pending: 2,
        oldest_pending_age_seconds: 5,
        at: now,
    };
    assert!(store.set_alert(&raise(true)).await.unwrap());
    assert!(!store.set_alert(&raise(true)).await.unwrap(), "once");
    let told = store
        .list_events(
            &t.id,
            &EventQuery {
                event_type: Some("hookrelay.queue.backlog".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(told.items.len(), 1);
    let (_, deliveries) = store.get_event(&t.id, &told.items[0].id).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].webhook_id, ops.id);
    // Raised, it is listed even with nothing pending; cleared, it tells nothing.
    assert!(store.backlog_by_tenant(now).await.unwrap()[0].alerting);
    assert!(store.set_alert(&raise(false)).await.unwrap());
    assert!(store
        .backlog_by_tenant(now)
        .await
        .unwrap()
        .iter()
        .all(|b| b.tenant_id != quiet.id));
    let rate = AlertChange::FailureRate {
        tenant: t.id.clone(),
        webhook: ops.id.clone(),
        over: true,
        attempts: 10,
        failures: 6,
        window_seconds: 900,
        at: now,
    };
    assert!(store.set_alert(&rate).await.unwrap());
    assert!(!store.set_alert(&rate).await.unwrap());
    let failing = store
        .list_events(
            &t.id,
            &EventQuery {
                event_type: Some("hookrelay.webhook.failing".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(failing.items.len(), 1);
    let data: serde_json::Value = serde_json::from_str(&failing.items[0].data).unwrap();
    assert_eq!(data["failure_rate"], 0.6);
    let (_, deliveries) = store.get_event(&t.id, &failing.items[0].id).await.unwrap();
    assert!(deliveries.is_empty(), "never to the webhook it is about");
}
