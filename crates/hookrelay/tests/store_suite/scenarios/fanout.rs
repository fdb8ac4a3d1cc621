//! The fan-out index: ingest keeps each tenant's decoded webhooks between commits, so these
//! scenarios change webhooks between ingests and check every change is seen at once.

use std::collections::BTreeSet;
use std::time::Duration;

use hookrelay::store::*;
use hookrelay_domain::health::{CircuitState, HealthPolicy};
use hookrelay_domain::time::now_millis;
use hookrelay_domain::*;

use crate::store_suite::fixtures::*;

/// The webhooks one accepted event went to.
async fn targets(store: &dyn Store, e: &NewEvent) -> BTreeSet<WebhookId> {
    let mut out = BTreeSet::new();
    for id in ingest_one(store, e).await {
        out.insert(delivery(store, &e.event.tenant_id, &id).await.webhook_id);
    }
    out
}

async fn circuit(store: &dyn Store, tenant: &TenantId, hook: &WebhookId) -> CircuitState {
    store.get_webhook(tenant, hook).await.unwrap().health.state
}

fn set(hooks: &[&Webhook]) -> BTreeSet<WebhookId> {
    hooks.iter().map(|w| w.id.clone()).collect()
}

/// Scenario: fan-out after each kind of change (a webhook created, its event types changed,
/// paused, resumed, deleted; the tenant's quotas changed) matches the stored webhooks, not a
/// cached copy; event types are matched per type (several types, wildcards).
pub async fn scenario_fan_out_index(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let orders = create_webhook(store, &t.id, &["order.*"]).await;
    assert_eq!(
        targets(store, &event(&t.id, "order.created")).await,
        set(&[&orders])
    );
    assert!(targets(store, &event(&t.id, "member.created"))
        .await
        .is_empty());

    // Created: the next emit sees it.
    let all = create_webhook(store, &t.id, &["*"]).await;
    assert_eq!(
        targets(store, &event(&t.id, "order.created")).await,
        set(&[&orders, &all])
    );
    assert_eq!(
        targets(store, &event(&t.id, "member.created")).await,
        set(&[&all])
    );

    // Its event types changed.
    let mut members = orders.clone();
    members.events = vec!["member.*".into()];
    members.updated_at += 1;
    store.update_webhook(&members, false).await.unwrap();
    assert_eq!(
        targets(store, &event(&t.id, "order.created")).await,
        set(&[&all])
    );
    assert_eq!(
        targets(store, &event(&t.id, "member.created")).await,
        set(&[&members, &all])
    );

    // Paused webhooks still get deliveries (held for them); deleted ones none.
    let mut paused = all.clone();
    paused.active = false;
    store.update_webhook(&paused, false).await.unwrap();
    assert_eq!(
        targets(store, &event(&t.id, "member.created")).await,
        set(&[&members, &all])
    );
    store.delete_webhook(&t.id, &all.id).await.unwrap();
    assert_eq!(
        targets(store, &event(&t.id, "member.created")).await,
        set(&[&members])
    );

    // A changed quota reaches the offer's predicate (leasing reads the cached quotas).
    let mut limited = store.get_tenant(&t.id).await.unwrap();
    limited.quotas.events_per_day = Some(1_000_000);
    limited.updated_at += 1;
    store.update_tenant(&limited).await.unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let accepts = |_: &Webhook, q: &hookrelay_domain::quota::Quotas| {
        seen.lock().unwrap().push(q.clone());
        true
    };
    let now = now_millis();
    let offer = LeaseOffer {
        owner: "node-a",
        lease_until: now + LEASE_MS,
        max: 10,
        accepts: &accepts,
    };
    let batch = store
        .ingest_leasing(&[event(&t.id, "member.created")], &[], Some(&offer))
        .await
        .unwrap();
    assert_eq!(batch.leased.len(), 1);
    assert_eq!(batch.leased[0].tenant_quotas, limited.quotas);
    assert_eq!(seen.lock().unwrap().as_slice(), &[limited.quotas.clone()]);
}

/// Scenario: a webhook whose circuit opens after the cache was filled still gets its
/// deliveries, but ingest no longer leases them to itself (the claim path's probe decides);
/// once it is closed again ingest leases as before. Health changes are read live.
pub async fn scenario_fan_out_reads_health_live(store: &dyn Store) {
    const POLICY: HealthPolicy = HealthPolicy {
        circuit_failures: 1,
        auto_disable_after: Duration::from_secs(86_400),
        first_cooldown: hookrelay_domain::health::FIRST_COOLDOWN,
    };
    let t = tenant(store, "t").await;
    let hook = create_webhook(store, &t.id, &["a.*"]).await;
    let accepts = |_: &Webhook, _: &hookrelay_domain::quota::Quotas| true;
    let now = now_millis();
    let offer = LeaseOffer {
        owner: "node-a",
        lease_until: now + LEASE_MS,
        max: 10,
        accepts: &accepts,
    };
    let leased = |events: Vec<NewEvent>| {
        let offer = &offer;
        async move {
            store
                .ingest_leasing(&events, &[], Some(offer))
                .await
                .unwrap()
        }
    };
    let first = leased(vec![event(&t.id, "a.one")]).await;
    assert_eq!(
        first.leased.len(),
        1,
        "a healthy webhook is leased at ingest"
    );

    let opened = store
        .record_attempts_with(
            &[record(
                "node-a",
                attempt(&first.leased[0].delivery_id, 1, Some(500), now),
                NextState::RetryAt(now - 10),
            )],
            &POLICY,
        )
        .await
        .unwrap();
    assert_eq!(opened.len(), 1, "the failure opened the circuit");
    assert_eq!(circuit(store, &t.id, &hook.id).await, CircuitState::Open);
    let held = leased(vec![event(&t.id, "a.two")]).await;
    assert_eq!(held.created.len(), 1, "the delivery is still made");
    assert!(held.leased.is_empty(), "but not sent past the open circuit");

    // The webhook re-activated by hand closes it: leased again.
    let mut reset = store.get_webhook(&t.id, &hook.id).await.unwrap();
    reset.active = false;
    store.update_webhook(&reset, false).await.unwrap();
    reset.active = true;
    store.update_webhook(&reset, false).await.unwrap();
    assert_eq!(circuit(store, &t.id, &hook.id).await, CircuitState::Closed);
    let again = leased(vec![event(&t.id, "a.three")]).await;
    assert_eq!(again.leased.len(), 1);
}

/// Scenario (two stores on one database, as two nodes): a change made through one is seen by
/// the other's next ingest, although the other had the tenant's webhooks cached.
pub async fn scenario_fan_out_sees_other_nodes(a: &dyn Store, b: &dyn Store) {
    let t = tenant(a, "t").await;
    let hook = create_webhook(a, &t.id, &["order.*"]).await;
    assert_eq!(targets(a, &event(&t.id, "order.paid")).await, set(&[&hook]));

    let mut changed = hook.clone();
    changed.events = vec!["member.*".into()];
    changed.updated_at += 1;
    b.update_webhook(&changed, false).await.unwrap();
    assert!(
        targets(a, &event(&t.id, "order.paid")).await.is_empty(),
        "node a saw node b's change"
    );
    let added = create_webhook(b, &t.id, &["order.*"]).await;
    assert_eq!(
        targets(a, &event(&t.id, "order.paid")).await,
        set(&[&added])
    );
    b.delete_webhook(&t.id, &added.id).await.unwrap();
    assert!(targets(a, &event(&t.id, "order.paid")).await.is_empty());
}
