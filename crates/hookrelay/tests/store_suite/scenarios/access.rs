//! Migrations, tenants and API keys.

use hookrelay::store::*;
use hookrelay_domain::quota::Quotas;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::*;

use crate::store_suite::fixtures::*;

/// Scenario 1: Running the migrations again (and again) changes nothing and loses nothing.
pub async fn scenario_migrations_are_idempotent(store: &dyn Store) {
    let t = tenant(store, "before-remigration").await;
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    store.ping().await.expect("ping");
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), t);
    let u = tenant(store, "after-remigration").await;
    assert_eq!(store.get_tenant(&u.id).await.unwrap(), u);
}

/// Scenario 2: Tenants: create, read by id and name, unique names, update, newest-first pagination.
pub async fn scenario_tenants(store: &dyn Store) {
    let now = now_millis();
    let acme = Tenant {
        id: TenantId::generate(),
        name: "acme".into(),
        quotas: Quotas {
            events_per_minute: Some(600),
            delivery_rate_per_sec: Some(10),
            ..Default::default()
        },
        retention_days: None,
        created_at: now,
        updated_at: now,
    };
    store.create_tenant(&acme).await.unwrap();
    assert_eq!(
        store.get_tenant(&acme.id).await.unwrap(),
        acme,
        "quotas and times round-trip"
    );
    assert_not_found(store.get_tenant(&TenantId::generate()).await);
    assert_eq!(
        store.get_tenant_by_name("acme").await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(store.get_tenant_by_name("ACME").await.unwrap(), None);
    assert_eq!(store.get_tenant_by_name("nobody").await.unwrap(), None);

    // The name is unique.
    let clash = Tenant {
        id: TenantId::generate(),
        ..acme.clone()
    };
    assert_conflict(store.create_tenant(&clash).await);
    assert_not_found(store.get_tenant(&clash.id).await);

    // Update: name and quotas change, the old name is free again.
    let globex = tenant(store, "globex").await;
    let renamed = Tenant {
        name: "acme-corp".into(),
        quotas: Quotas {
            webhooks: Some(5),
            ..Default::default()
        },
        updated_at: now + 1_000,
        ..acme.clone()
    };
    store.update_tenant(&renamed).await.unwrap();
    assert_eq!(store.get_tenant(&acme.id).await.unwrap(), renamed);
    assert_eq!(store.get_tenant_by_name("acme").await.unwrap(), None);
    assert_eq!(
        store.get_tenant_by_name("acme-corp").await.unwrap(),
        Some(renamed.clone())
    );
    // Renaming onto another tenant's name is a conflict and changes nothing.
    let onto_globex = Tenant {
        name: "globex".into(),
        ..renamed.clone()
    };
    assert_conflict(store.update_tenant(&onto_globex).await);
    assert_eq!(store.get_tenant(&acme.id).await.unwrap(), renamed);
    assert_not_found(
        store
            .update_tenant(&Tenant {
                id: TenantId::generate(),
                name: "ghost".into(),
                ..acme.clone()
            })
            .await,
    );

    // Pagination: newest first, `limit` respected, no cursor after the last page.
    let mut all = vec![acme.id.clone(), globex.id.clone()];
    for i in 0..3 {
        all.push(tenant(store, &format!("tenant-{i}")).await.id);
    }
    all.reverse();
    let pages = collect_pages(2, |p| async move { store.list_tenants(&p).await }).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    let listed: Vec<TenantId> = pages.into_iter().flatten().map(|t| t.id).collect();
    assert_eq!(listed, all, "newest first, each tenant once");

    // A limit that divides the count exactly ends without an extra empty page.
    let pages = collect_pages(5, |p| async move { store.list_tenants(&p).await }).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].len(), 5);
    let first = store
        .list_tenants(&PageRequest {
            limit: 1,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.next_cursor.as_deref(), Some(all[0].as_str()));
}

/// Scenario 3: API keys: lookup by hash, per-tenant listing and deletion, the server-admin flag.
pub async fn scenario_api_keys(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    assert!(
        !store.has_server_admin_key().await.unwrap(),
        "a fresh store has no server-admin key"
    );

    let a_viewer = api_key(&a.id, "viewer", Role::Viewer, false);
    store.create_api_key(&a_viewer).await.unwrap();
    assert!(
        !store.has_server_admin_key().await.unwrap(),
        "a normal key is not a server admin"
    );
    let a_admin = api_key(&a.id, "bootstrap", Role::Admin, true);
    store.create_api_key(&a_admin).await.unwrap();
    assert!(store.has_server_admin_key().await.unwrap());
    let b_pub = api_key(&b.id, "publisher", Role::Publisher, false);
    store.create_api_key(&b_pub).await.unwrap();

    assert_eq!(
        store.find_api_key_by_hash(&a_admin.key_hash).await.unwrap(),
        Some(a_admin.clone())
    );
    assert_eq!(
        store.find_api_key_by_hash(&b_pub.key_hash).await.unwrap(),
        Some(b_pub.clone())
    );
    assert_eq!(
        store.find_api_key_by_hash("hash-of-nothing").await.unwrap(),
        None
    );

    // The same hash twice is refused.
    let copy = ApiKey {
        id: KeyId::generate(),
        ..a_viewer.clone()
    };
    assert_conflict(store.create_api_key(&copy).await);

    // Listing is per tenant, newest first, paginated.
    let page = PageRequest::default();
    let listed: Vec<KeyId> = store
        .list_api_keys(&a.id, &page)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, [a_admin.id.clone(), a_viewer.id.clone()]);
    let listed = store.list_api_keys(&b.id, &page).await.unwrap();
    assert_eq!(listed.items, std::slice::from_ref(&b_pub));
    assert!(listed.next_cursor.is_none());
    let pages = collect_pages(1, |p| {
        let a = a.id.clone();
        async move { store.list_api_keys(&a, &p).await }
    })
    .await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1, 1]);

    // Deleting another tenant's key is "not found" and leaves it in place.
    assert_not_found(store.delete_api_key(&b.id, &a_viewer.id).await);
    assert!(store
        .find_api_key_by_hash(&a_viewer.key_hash)
        .await
        .unwrap()
        .is_some());
    store.delete_api_key(&a.id, &a_viewer.id).await.unwrap();
    assert_eq!(
        store
            .find_api_key_by_hash(&a_viewer.key_hash)
            .await
            .unwrap(),
        None
    );
    assert_not_found(store.delete_api_key(&a.id, &a_viewer.id).await);
    let listed = store.list_api_keys(&a.id, &page).await.unwrap().items;
    assert_eq!(listed, std::slice::from_ref(&a_admin));

    // Deleting the only server-admin key clears the flag.
    store.delete_api_key(&a.id, &a_admin.id).await.unwrap();
    assert!(!store.has_server_admin_key().await.unwrap());

    // A key must belong to an existing tenant.
    let orphan = api_key(&TenantId::generate(), "orphan", Role::Viewer, false);
    assert!(
        store.create_api_key(&orphan).await.is_err(),
        "a key of an unknown tenant was stored"
    );
}
