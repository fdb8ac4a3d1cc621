//! Destinations and routing: the event catalog rows and payload filters evaluated at fan-out.

use hookrelay::store::*;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::*;
use serde_json::json;

use crate::store_suite::fixtures::*;

fn event_type(tenant: &TenantId, name: &str) -> EventType {
    let now = now_millis();
    EventType {
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        description: format!("about {name}"),
        schema: Some(
            json!({"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}}),
        ),
        example: Some(json!({"amount": 120, "note": "🎉 ünïcode"})),
        created_at: now,
        updated_at: now,
    }
}

/// Scenario D1: event types round trip, are unique per tenant, list by name, upsert keeping
/// `created_at`, delete, and stay invisible to other tenants.
pub async fn scenario_event_types(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    assert!(store.list_event_types(&a.id).await.unwrap().is_empty());

    let paid = event_type(&a.id, "order.paid");
    store.create_event_type(&paid).await.unwrap();
    assert_eq!(
        store.get_event_type(&a.id, "order.paid").await.unwrap(),
        Some(paid.clone())
    );
    assert_conflict(store.create_event_type(&paid).await);
    // The same name in another tenant is another type.
    store
        .create_event_type(&event_type(&b.id, "order.paid"))
        .await
        .unwrap();
    assert_eq!(
        store.get_event_type(&b.id, "order.refunded").await.unwrap(),
        None
    );

    let bare = EventType {
        schema: None,
        example: None,
        description: String::new(),
        ..event_type(&a.id, "audit.login")
    };
    store.create_event_type(&bare).await.unwrap();
    store
        .create_event_type(&event_type(&a.id, "member.created"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_event_types(&a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        names,
        ["audit.login", "member.created", "order.paid"],
        "by name"
    );

    // Upsert: replaces the documents, keeps created_at; inserts when missing.
    let changed = EventType {
        description: "changed".into(),
        schema: None,
        example: Some(json!({"x": 1})),
        created_at: paid.created_at + 99_999,
        updated_at: paid.updated_at + 5_000,
        ..paid.clone()
    };
    store.put_event_type(&changed).await.unwrap();
    let got = store
        .get_event_type(&a.id, "order.paid")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        EventType {
            created_at: paid.created_at,
            ..changed.clone()
        }
    );
    store
        .put_event_type(&event_type(&a.id, "hackathon.created"))
        .await
        .unwrap();
    assert!(store
        .get_event_type(&a.id, "hackathon.created")
        .await
        .unwrap()
        .is_some());

    store.delete_event_type(&a.id, "order.paid").await.unwrap();
    assert_not_found(store.delete_event_type(&a.id, "order.paid").await);
    assert_eq!(
        store.get_event_type(&a.id, "order.paid").await.unwrap(),
        None
    );
    assert!(
        store
            .get_event_type(&b.id, "order.paid")
            .await
            .unwrap()
            .is_some(),
        "b keeps its own"
    );
    assert_not_found(store.delete_event_type(&b.id, "audit.login").await);
}

/// Scenario D2: a webhook's payload filter is stored with it and decides, after its event-type
/// patterns, which events it gets; `/test`-style targeted events bypass it.
pub async fn scenario_payload_filters_at_fan_out(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let big = Webhook {
        filter: Some(json!({"data.amount": {"$gte": 100}})),
        ..webhook(&t.id, &["order.*"])
    };
    store.create_webhook(&big).await.unwrap();
    assert_eq!(
        store.get_webhook(&t.id, &big.id).await.unwrap().filter,
        big.filter
    );
    let eur = Webhook {
        filter: Some(
            json!({"$or": [{"data.currency": "EUR"}, {"event": {"$endsWith": ".refunded"}}]}),
        ),
        ..webhook(&t.id, &["*"])
    };
    store.create_webhook(&eur).await.unwrap();
    let plain = create_webhook(store, &t.id, &["order.paid"]).await;

    let with = |event_type: &str, data: serde_json::Value| {
        let mut e = event(&t.id, event_type);
        e.event.data = data.to_string();
        e
    };
    let cases = [
        (
            with("order.paid", json!({"amount": 150, "currency": "USD"})),
            vec![&big, &plain],
        ),
        (
            with("order.paid", json!({"amount": 20, "currency": "EUR"})),
            vec![&eur, &plain],
        ),
        (
            with("order.paid", json!({"amount": 100.0, "currency": "EUR"})),
            vec![&big, &eur, &plain],
        ),
        (with("order.refunded", json!({"amount": 5})), vec![&eur]),
        (with("member.created", json!({"amount": 500})), vec![]),
    ];
    for (e, expected) in &cases {
        let ids = ingest_one(store, e).await;
        let mut got: Vec<WebhookId> = Vec::new();
        for id in &ids {
            got.push(delivery(store, &t.id, id).await.webhook_id);
        }
        got.sort();
        let mut want: Vec<WebhookId> = expected.iter().map(|w| w.id.clone()).collect();
        want.sort();
        assert_eq!(got, want, "{} {}", e.event.event_type, e.event.data);
    }

    // Removing the filter lets everything of a matching type through again.
    let unfiltered = Webhook {
        filter: None,
        updated_at: now_millis(),
        ..big.clone()
    };
    store.update_webhook(&unfiltered, false).await.unwrap();
    let ids = ingest_one(store, &with("order.paid", json!({"amount": 1}))).await;
    assert_eq!(ids.len(), 2, "big (unfiltered now) and plain");

    // A targeted event (the `/test` action) reaches its webhook whatever the filter says.
    let mut targeted = with("webhook.test", json!({}));
    targeted.only_webhook = Some(eur.id.clone());
    assert_eq!(ingest_one(store, &targeted).await.len(), 1);
}
