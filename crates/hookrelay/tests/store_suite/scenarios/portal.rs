//! Portal links: found by their token's hash while they work, never once expired or revoked,
//! listed per tenant, revoked once.

use hookrelay::store::*;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::*;

use crate::store_suite::fixtures::*;

fn link(tenant: &TenantId, role: Role, hash: &str, expires_at: i64) -> PortalLink {
    PortalLink {
        id: PortalLinkId::generate(),
        tenant_id: tenant.clone(),
        role,
        token_hash: hash.into(),
        created_at: now_millis(),
        expires_at,
        revoked_at: None,
    }
}

pub async fn scenario_portal_links(store: &dyn Store) {
    let t = tenant(store, "portal").await.id;
    let now = now_millis();
    let live = link(&t, Role::Editor, "hash-live", now + 60_000);
    let short = link(&t, Role::Viewer, "hash-short", now + 1_000);
    store.create_portal_link(&live).await.unwrap();
    store.create_portal_link(&short).await.unwrap();
    assert!(matches!(
        store
            .create_portal_link(&link(&t, Role::Viewer, "hash-live", now + 1))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .find_portal_link_by_hash("hash-live", now)
            .await
            .unwrap(),
        Some(live.clone())
    );
    assert!(store
        .find_portal_link_by_hash("nope", now)
        .await
        .unwrap()
        .is_none());
    // Expired: not found, not listed, not revocable.
    let later = now + 2_000;
    assert!(store
        .find_portal_link_by_hash("hash-short", later)
        .await
        .unwrap()
        .is_none());
    let listed = store.list_portal_links(&t, later).await.unwrap();
    assert_eq!(listed, vec![live.clone()]);
    assert!(matches!(
        store.revoke_portal_link(&t, &short.id, later).await,
        Err(StoreError::NotFound)
    ));
    // Another tenant cannot revoke it; its own can, once.
    let other = TenantId::generate();
    assert!(matches!(
        store.revoke_portal_link(&other, &live.id, now).await,
        Err(StoreError::NotFound)
    ));
    store.revoke_portal_link(&t, &live.id, now).await.unwrap();
    assert!(store
        .find_portal_link_by_hash("hash-live", now)
        .await
        .unwrap()
        .is_none());
    assert!(store.list_portal_links(&t, later).await.unwrap().is_empty());
    assert!(matches!(
        store.revoke_portal_link(&t, &live.id, now).await,
        Err(StoreError::NotFound)
    ));
}
