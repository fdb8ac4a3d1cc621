//! Webhooks: storage round trip, filtered lists, pausing and deletion.

use std::collections::BTreeMap;

use hookrelay::store::*;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::*;

use crate::store_suite::fixtures::*;

/// Scenario 4a: Every field survives create, read and update; other tenants cannot see or touch it.
pub async fn scenario_webhook_round_trip(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let now = now_millis();
    let full = Webhook {
        ordered: false,
        id: WebhookId::generate(),
        tenant_id: a.id.clone(),
        url: "https://crm.example/hooks?team=crm".into(),
        kind: WebhookKind::Slack,
        description: Some("CRM sync".into()),
        active: true,
        events: vec!["member.created".into(), "github.*".into()],
        headers: BTreeMap::from([
            ("X-Team".into(), "crm".into()),
            ("X-Trace".into(), "on \"yes\"".into()),
        ]),
        rate_limit_per_sec: Some(10),
        templates: BTreeMap::from([("member.created".into(), "🎉 {{ data.name }} joined".into())]),
        retry_schedule: Some(vec![0, 60, 300, 900]),
        secrets: vec![
            StoredSecret {
                secret: "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0".into(),
                expires_at: None,
            },
            StoredSecret {
                secret: "whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0".into(),
                expires_at: Some(now + 86_400_000),
            },
        ],
        filter: Some(
            serde_json::json!({"data.amount": {"$gte": 100}, "$or": [{"data.plan": "pro"}, {"data.plan": {"$exists": false}}]}),
        ),
        transform: Some(r#"{"who": {{ data.name | tojson }}}"#.into()),
        target: Some(serde_json::json!({"stream": "orders", "maxlen": 1000})),
        health: Default::default(),
        created_at: now,
        updated_at: now,
    };
    store.create_webhook(&full).await.unwrap();
    assert_eq!(store.get_webhook(&a.id, &full.id).await.unwrap(), full);
    assert_not_found(store.get_webhook(&b.id, &full.id).await);
    assert_not_found(store.get_webhook(&a.id, &WebhookId::generate()).await);

    // Every field changes, optional ones to their empty values.
    let changed = Webhook {
        url: "https://discord.example/api/webhooks/1/abc".into(),
        kind: WebhookKind::Discord,
        description: None,
        active: false,
        events: vec![],
        headers: BTreeMap::new(),
        rate_limit_per_sec: None,
        templates: BTreeMap::from([("*".into(), "{{ event }}".into())]),
        retry_schedule: None,
        // An ed25519 key is sealed and read back like a secret.
        secrets: vec![StoredSecret {
            secret: "whsk_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
            expires_at: None,
        }],
        filter: None,
        transform: None,
        target: None,
        updated_at: now + 5_000,
        ..full.clone()
    };
    store.update_webhook(&changed, false).await.unwrap();
    assert_eq!(store.get_webhook(&a.id, &full.id).await.unwrap(), changed);

    // And back: the optional values come back too.
    let restored = Webhook {
        updated_at: now + 9_000,
        ..full.clone()
    };
    store.update_webhook(&restored, false).await.unwrap();
    assert_eq!(store.get_webhook(&a.id, &full.id).await.unwrap(), restored);

    // A broker URL with credentials reads back whole (it is sealed at rest, and the plain
    // `url` column holds it redacted); listing shows the same.
    let broker = Webhook {
        url: "nats://hooks:s3cret@nats.example:4222".into(),
        kind: WebhookKind::Nats,
        target: Some(serde_json::json!({"subject": "orders.created"})),
        updated_at: now + 9_500,
        ..restored.clone()
    };
    store.update_webhook(&broker, false).await.unwrap();
    assert_eq!(store.get_webhook(&a.id, &full.id).await.unwrap(), broker);
    let listed = store
        .list_webhooks(&a.id, &WebhookQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items, vec![broker.clone()]);
    store.update_webhook(&restored, false).await.unwrap();
    assert_eq!(store.get_webhook(&a.id, &full.id).await.unwrap(), restored);

    // Another tenant can neither update nor delete it.
    let hijack = Webhook {
        tenant_id: b.id.clone(),
        url: "https://evil.example/".into(),
        ..restored.clone()
    };
    assert_not_found(store.update_webhook(&hijack, false).await);
    assert_not_found(store.delete_webhook(&b.id, &full.id).await);
    assert_eq!(store.get_webhook(&a.id, &full.id).await.unwrap(), restored);
    assert_not_found(store.update_webhook(&webhook(&a.id, &[]), false).await);

    assert_eq!(store.count_webhooks(&a.id).await.unwrap(), 1);
    assert_eq!(store.count_webhooks(&b.id).await.unwrap(), 0);
    store.delete_webhook(&a.id, &full.id).await.unwrap();
    assert_not_found(store.get_webhook(&a.id, &full.id).await);
    assert_not_found(store.delete_webhook(&a.id, &full.id).await);
    assert_eq!(store.count_webhooks(&a.id).await.unwrap(), 0);
}

/// Scenario 4b: Listing by `active` and by `event` (filters matched like ingest does), paginated.
pub async fn scenario_webhook_lists(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let other = tenant(store, "other").await;
    let member = create_webhook(store, &t.id, &["member.created"]).await;
    let github = create_webhook(store, &t.id, &["github.*"]).await;
    let all_paused = create_paused_webhook(store, &t.id, &[]).await;
    let star = create_webhook(store, &t.id, &["*"]).await;
    let push_paused = create_paused_webhook(store, &t.id, &["github.push"]).await;
    let foreign = create_webhook(store, &other.id, &["*"]).await;

    let list = |active: Option<bool>, event: Option<&str>, limit: u32| {
        let query = WebhookQuery {
            active,
            event: event.map(str::to_owned),
        };
        let tenant = t.id.clone();
        async move {
            let pages = collect_pages(limit, |p| {
                let (query, tenant) = (query.clone(), tenant.clone());
                async move { store.list_webhooks(&tenant, &query, &p).await }
            })
            .await;
            let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
            let ids: Vec<WebhookId> = pages.into_iter().flatten().map(|w| w.id).collect();
            (ids, sizes)
        }
    };
    let ids = |hooks: &[&Webhook]| hooks.iter().map(|w| w.id.clone()).collect::<Vec<_>>();

    // Newest first, whole rows.
    let (got, sizes) = list(None, None, 2).await;
    assert_eq!(
        got,
        ids(&[&push_paused, &star, &all_paused, &github, &member])
    );
    assert_eq!(sizes, [2, 2, 1]);
    let page = store
        .list_webhooks(&t.id, &WebhookQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        page.items,
        [
            push_paused.clone(),
            star.clone(),
            all_paused.clone(),
            github.clone(),
            member.clone()
        ]
    );

    assert_eq!(
        list(Some(true), None, 50).await.0,
        ids(&[&star, &github, &member])
    );
    assert_eq!(
        list(Some(false), None, 50).await.0,
        ids(&[&push_paused, &all_paused])
    );

    // `event`: exact, prefix wildcard, `*` and empty (all) filters match.
    let push = ids(&[&push_paused, &star, &all_paused, &github]);
    assert_eq!(list(None, Some("github.push"), 50).await.0, push);
    for limit in [1, 2, 3, 4] {
        let (got, sizes) = list(None, Some("github.push"), limit).await;
        assert_eq!(got, push, "event filter with limit {limit}");
        assert!(sizes.iter().all(|s| *s <= limit as usize));
        assert_eq!(
            sizes.len(),
            4_usize.div_ceil(limit as usize),
            "pages for limit {limit}: {sizes:?}"
        );
    }
    assert_eq!(
        list(Some(true), Some("github.push"), 50).await.0,
        ids(&[&star, &github])
    );
    assert_eq!(
        list(None, Some("github.pr.opened"), 50).await.0,
        ids(&[&star, &all_paused, &github])
    );
    assert_eq!(
        list(None, Some("member.created"), 50).await.0,
        ids(&[&star, &all_paused, &member])
    );
    assert_eq!(
        list(None, Some("github"), 50).await.0,
        ids(&[&star, &all_paused])
    );
    assert_eq!(
        list(Some(false), Some("member.created"), 50).await.0,
        ids(&[&all_paused])
    );

    // Tenant isolation.
    let theirs = store
        .list_webhooks(&other.id, &WebhookQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(theirs.items, [foreign]);
    assert_eq!(store.count_webhooks(&t.id).await.unwrap(), 5);
    assert_eq!(store.count_webhooks(&other.id).await.unwrap(), 1);
    assert_eq!(
        store.count_webhooks(&TenantId::generate()).await.unwrap(),
        0
    );
}

/// Scenario 10: A paused webhook holds its deliveries; resuming sends them, or with `discard_held`
/// cancels them.
pub async fn scenario_pause_resume(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let resumed = create_paused_webhook(store, &t.id, &["order.*"]).await;
    let discarded = create_paused_webhook(store, &t.id, &["order.*"]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.extend(ingest_one(store, &event(&t.id, "order.paid")).await);
    }
    assert_eq!(held.len(), 4);
    assert!(
        claim_all(store, "w1", now_millis() + 1).await.is_empty(),
        "paused webhooks are not claimed"
    );
    for id in &held {
        assert_eq!(
            delivery(store, &t.id, id).await.status,
            DeliveryStatus::Pending
        );
    }
    let of = |hook: &Webhook, all: &[Delivery]| {
        ids(all
            .iter()
            .filter(|d| d.webhook_id == hook.id)
            .map(|d| &d.id))
    };
    let all = all_deliveries(store, &t.id, DeliveryQuery::default()).await;
    let (held_resumed, held_discarded) = (of(&resumed, &all), of(&discarded, &all));

    // Resume without discarding: the held deliveries are sent.
    let on = Webhook {
        active: true,
        updated_at: now_millis(),
        ..resumed.clone()
    };
    store.update_webhook(&on, false).await.unwrap();
    let claims = claim_all(store, "w1", now_millis() + 1).await;
    assert_eq!(claimed_ids(&claims), held_resumed);

    // Resume discarding: what waited is cancelled and never claimed.
    let on = Webhook {
        active: true,
        updated_at: now_millis(),
        ..discarded.clone()
    };
    store.update_webhook(&on, true).await.unwrap();
    for id in &held_discarded {
        let d = delivery(store, &t.id, id).await;
        assert_eq!(d.status, DeliveryStatus::Cancelled);
        assert_eq!(d.next_attempt_at, None);
    }
    assert!(claim_all(store, "w2", now_millis() + 1).await.is_empty());

    // `discard_held` on a webhook that was not paused holds nothing, so cancels nothing: its
    // pending deliveries (e.g. waiting for a retry) stay in the queue.
    let live = create_webhook(store, &t.id, &["live.*"]).await;
    let waiting = ingest_single(store, &event_at(&t.id, "live.tick", now_millis() + 60_000)).await;
    store
        .update_webhook(
            &Webhook {
                updated_at: now_millis(),
                ..live.clone()
            },
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        delivery(store, &t.id, &waiting).await.status,
        DeliveryStatus::Pending
    );

    // Pausing cancels nothing either, and holds what comes next.
    let paused = Webhook {
        active: false,
        updated_at: now_millis(),
        ..live.clone()
    };
    store.update_webhook(&paused, true).await.unwrap();
    assert_eq!(
        delivery(store, &t.id, &waiting).await.status,
        DeliveryStatus::Pending
    );
    let new = ingest_single(store, &event(&t.id, "live.tick")).await;
    // Both are due by then; only the resumed webhook's expired leases come back.
    let claims = claim_all(store, "w3", now_millis() + 120_000).await;
    assert_eq!(claimed_ids(&claims), held_resumed);
    assert_eq!(
        delivery(store, &t.id, &new).await.status,
        DeliveryStatus::Pending
    );
    assert_eq!(
        store.queue_stats(now_millis()).await.unwrap().pending,
        4,
        "2 resumed (leased), 2 held"
    );
}

/// Scenario 11: Deleting a webhook cancels its pending deliveries (leased or not), keeps finished ones,
/// and leaves other webhooks' deliveries alone.
pub async fn scenario_delete_webhook_cancels(store: &dyn Store) {
    let t = tenant(store, "t").await;
    let doomed = create_webhook(store, &t.id, &["*"]).await;
    let kept = create_webhook(store, &t.id, &["kept.*"]).await;
    let succeeded = ingest_single(store, &event(&t.id, "order.paid")).await;
    settle(
        store,
        "w0",
        &[&succeeded],
        NextState::Succeeded,
        now_millis(),
    )
    .await;
    let failed = ingest_single(store, &event(&t.id, "order.paid")).await;
    settle(store, "w0", &[&failed], NextState::Failed, now_millis()).await;
    let leased = ingest_single(store, &event(&t.id, "order.paid")).await;
    let claims = claim_all(store, "w1", now_millis() + 1).await;
    assert_eq!(claimed_ids(&claims), ids([&leased]));
    let due = ingest_single(store, &event(&t.id, "order.paid")).await;
    let later = ingest_single(store, &event_at(&t.id, "order.paid", now_millis() + 60_000)).await;
    let other = ingest_one(store, &event(&t.id, "kept.item")).await;
    assert_eq!(other.len(), 2);
    let other_kept = all_deliveries(
        store,
        &t.id,
        DeliveryQuery {
            webhook_id: Some(kept.id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(other_kept.len(), 1);

    store.delete_webhook(&t.id, &doomed.id).await.unwrap();
    for id in [&leased, &due, &later] {
        let d = delivery(store, &t.id, id).await;
        assert_eq!(d.status, DeliveryStatus::Cancelled, "{id}");
        assert_eq!(d.next_attempt_at, None);
    }
    assert_eq!(
        delivery(store, &t.id, &succeeded).await.status,
        DeliveryStatus::Succeeded
    );
    assert_eq!(
        delivery(store, &t.id, &failed).await.status,
        DeliveryStatus::Failed
    );
    let (_, event, attempts) = store.get_delivery(&t.id, &succeeded).await.unwrap();
    assert_eq!(event.event_type, "order.paid");
    assert_eq!(attempts.len(), 1, "history survives the webhook");

    // The in-flight attempt finishing later does not revive its delivery.
    let rec = record(
        "w1",
        attempt(&leased, 1, Some(200), now_millis()),
        NextState::Succeeded,
    );
    store.record_attempts(&[rec]).await.unwrap();
    assert_eq!(
        delivery(store, &t.id, &leased).await.status,
        DeliveryStatus::Cancelled
    );

    // Only the other webhook's delivery is left to send.
    let claims = claim_all(store, "w2", now_millis() + 3_600_000).await;
    assert_eq!(claimed_ids(&claims), ids([&other_kept[0].id]));
    assert_eq!(store.queue_stats(now_millis()).await.unwrap().pending, 1);
}
