//! Dashboard users and their sessions: unique emails, per-tenant lists, session expiry and
//! revocation, and deleting a user ending their sessions.

use hookrelay::store::*;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::*;

use crate::store_suite::fixtures::*;

fn user(tenant: &TenantId, email: &str, role: Role) -> User {
    User {
        id: UserId::generate(),
        tenant_id: tenant.clone(),
        email: email.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt-of-{email}$hash"),
        role,
        server_admin: false,
        created_at: now_millis(),
    }
}

fn session(user: &UserId, token_hash: &str, expires_at: i64) -> Session {
    Session {
        token_hash: token_hash.into(),
        user_id: user.clone(),
        expires_at,
        created_at: now_millis(),
    }
}

/// Scenario: users round-trip, emails are unique across tenants, lists and deletes are scoped.
pub async fn scenario_users(store: &dyn Store) {
    let a = tenant(store, "users-a").await;
    let b = tenant(store, "users-b").await;
    assert!(!store.has_users().await.unwrap());
    let ann = user(&a.id, "ann@example.com", Role::Admin);
    let bob = user(&a.id, "bob@example.com", Role::Viewer);
    let cat = user(&b.id, "cat@example.com", Role::Editor);
    for u in [&ann, &bob, &cat] {
        store.create_user(u).await.unwrap();
    }
    assert!(store.has_users().await.unwrap());
    assert_eq!(
        store.find_user_by_email("bob@example.com").await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(store.find_user_by_email("nobody@x").await.unwrap(), None);

    // An email is taken server-wide: login names no tenant.
    assert_conflict(
        store
            .create_user(&user(&b.id, "ann@example.com", Role::Viewer))
            .await,
    );

    let listed = store
        .list_users(&a.id, &PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(
        listed,
        [bob.clone(), ann.clone()],
        "newest first, own tenant"
    );
    let listed = store
        .list_users(&b.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items, std::slice::from_ref(&cat));

    // Another tenant cannot delete a user.
    assert_not_found(store.delete_user(&b.id, &bob.id).await);
    assert!(store
        .find_user_by_email("bob@example.com")
        .await
        .unwrap()
        .is_some());
}

/// Scenario: sessions are found only while unexpired, revoked once, swept when expired, and
/// end with their user.
pub async fn scenario_sessions(store: &dyn Store) {
    let t = tenant(store, "sessions").await;
    let ann = user(&t.id, "ann@example.com", Role::Admin);
    let bob = user(&t.id, "bob@example.com", Role::Editor);
    store.create_user(&ann).await.unwrap();
    store.create_user(&bob).await.unwrap();
    let now = now_millis();
    let live = session(&ann.id, "hash-live", now + 60_000);
    let stale = session(&ann.id, "hash-stale", now - 1);
    let bobs = session(&bob.id, "hash-bob", now + 60_000);
    for s in [&live, &stale, &bobs] {
        store.create_session(s).await.unwrap();
    }

    let (found, who) = store.find_session("hash-live", now).await.unwrap().unwrap();
    assert_eq!(found, live);
    assert_eq!(who, ann, "the session carries its user");
    assert_eq!(store.find_session("hash-stale", now).await.unwrap(), None);
    assert_eq!(store.find_session("hash-none", now).await.unwrap(), None);
    // A session stops working the moment it expires.
    assert_eq!(
        store
            .find_session("hash-live", live.expires_at)
            .await
            .unwrap(),
        None
    );

    // Logout revokes; a second logout finds nothing.
    store.delete_session("hash-live").await.unwrap();
    assert_eq!(store.find_session("hash-live", now).await.unwrap(), None);
    assert_not_found(store.delete_session("hash-live").await);

    // Only expired sessions are swept.
    assert_eq!(store.purge_expired_sessions(now).await.unwrap(), 1);
    assert!(store.find_session("hash-bob", now).await.unwrap().is_some());

    // Deleting a user ends their sessions.
    store.delete_user(&t.id, &bob.id).await.unwrap();
    assert_eq!(store.find_session("hash-bob", now).await.unwrap(), None);
    assert_eq!(
        store.find_user_by_email("bob@example.com").await.unwrap(),
        None
    );
    assert_not_found(store.delete_user(&t.id, &bob.id).await);
}

/// Failed logins are counted per key in a window that starts at the first failure; a window
/// that has passed starts again at one; clearing forgets a key; old rows are swept.
pub async fn scenario_login_failures(store: &dyn Store) {
    const WINDOW: i64 = 60_000;
    let now = now_millis();
    assert_eq!(
        store
            .login_failures("account:a@x", now, WINDOW)
            .await
            .unwrap(),
        None
    );
    for i in 0..3 {
        store
            .add_login_failure(&["account:a@x", "address:10.0.0.1"], now + i, WINDOW)
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .login_failures("account:a@x", now + 10, WINDOW)
            .await
            .unwrap(),
        Some((3, now)),
        "counted from the first failure"
    );
    assert_eq!(
        store
            .login_failures("address:10.0.0.1", now + 10, WINDOW)
            .await
            .unwrap(),
        Some((3, now))
    );
    assert_eq!(
        store
            .login_failures("account:a@x", now + WINDOW + 1, WINDOW)
            .await
            .unwrap(),
        None,
        "a passed window counts nothing"
    );
    store
        .add_login_failure(&["account:a@x"], now + WINDOW + 1, WINDOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .login_failures("account:a@x", now + WINDOW + 2, WINDOW)
            .await
            .unwrap(),
        Some((1, now + WINDOW + 1)),
        "a new window starts at one"
    );
    store.clear_login_failures("account:a@x").await.unwrap();
    assert_eq!(
        store
            .login_failures("account:a@x", now + WINDOW + 2, WINDOW)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .login_failures("address:10.0.0.1", now + 10, WINDOW)
            .await
            .unwrap()
            .is_some(),
        "clearing one key leaves the others"
    );
    store
        .purge_expired_sessions(now + 86_400_001)
        .await
        .unwrap();
    assert_eq!(
        store
            .login_failures("address:10.0.0.1", now + 10, i64::MAX / 4)
            .await
            .unwrap(),
        None
    );
}
