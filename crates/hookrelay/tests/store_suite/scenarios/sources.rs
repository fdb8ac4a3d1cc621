//! Inbound sources and their requests log: CRUD, global name uniqueness, tenant isolation, log
//! entries written with their event (accepted/duplicate) or alone (rejected), listing, pruning.

use hookrelay::store::*;
use hookrelay_domain::time::{now_millis, Millis};
use hookrelay_domain::*;
use serde_json::json;

use crate::store_suite::fixtures::*;

fn source(tenant: &TenantId, name: &str) -> Source {
    let now = now_millis();
    Source {
        id: SourceId::generate(),
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        provider: "hmac".into(),
        config: json!({"header": "X-Signature", "algorithm": "sha256"}),
        secret: Some("s3cret ✓".into()),
        active: true,
        allow_unsigned: false,
        rate_limit_per_min: 100,
        created_at: now,
        updated_at: now,
    }
}

fn log_entry(src: &Source, status: InboundStatus, received_at: Millis) -> InboundRequest {
    InboundRequest {
        id: InboundRequestId::generate(),
        source_id: src.id.clone(),
        tenant_id: src.tenant_id.clone(),
        received_at,
        status,
        reason: (status != InboundStatus::Accepted).then(|| format!("{} reason", status.as_str())),
        event_id: None,
        event_type: Some("github.push".into()),
        provider_id: Some(format!("delivery-{received_at}")),
        request_id: Some("req_1".into()),
        headers: r#"{"content-type":"application/json"}"#.into(),
        body: Some("{\"a\": 1}".into()),
        body_truncated: status == InboundStatus::RateLimited,
        body_size: 8,
    }
}

async fn all_requests(
    store: &dyn Store,
    src: &Source,
    status: Option<InboundStatus>,
) -> Vec<InboundRequest> {
    let page = PageRequest {
        limit: 1000,
        cursor: None,
    };
    store
        .list_inbound_requests(
            &src.tenant_id,
            &src.id,
            &InboundRequestQuery { status },
            &page,
        )
        .await
        .expect("list_inbound_requests")
        .items
}

/// Sources: round trip (secret included), unique names across tenants, update, delete, tenant
/// isolation.
pub async fn scenario_sources(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let gh = source(&a.id, "gh-main");
    store.create_source(&gh).await.unwrap();
    assert_eq!(store.get_source(&a.id, &gh.id).await.unwrap(), gh);
    assert_eq!(
        store.get_source_by_name("gh-main").await.unwrap(),
        Some(gh.clone())
    );
    assert_eq!(store.get_source_by_name("nope").await.unwrap(), None);

    // Names are unique across tenants: the ingest path has no tenant.
    assert_conflict(store.create_source(&source(&b.id, "gh-main")).await);
    let none = Source {
        provider: "none".into(),
        config: json!({}),
        secret: None,
        allow_unsigned: true,
        ..source(&b.id, "ci")
    };
    store.create_source(&none).await.unwrap();
    assert_eq!(store.get_source(&b.id, &none.id).await.unwrap(), none);

    // Tenant isolation.
    assert_not_found(store.get_source(&b.id, &gh.id).await);
    let mut foreign = gh.clone();
    foreign.tenant_id = b.id.clone();
    assert_not_found(store.update_source(&foreign).await);
    assert_not_found(store.delete_source(&b.id, &gh.id).await);

    // Update everything but the id.
    let mut changed = gh.clone();
    changed.name = "gh-renamed".into();
    changed.provider = "github".into();
    changed.config = json!({});
    changed.secret = Some("new".into());
    changed.active = false;
    changed.rate_limit_per_min = 5000;
    changed.updated_at += 10;
    store.update_source(&changed).await.unwrap();
    assert_eq!(store.get_source(&a.id, &gh.id).await.unwrap(), changed);
    assert_eq!(store.get_source_by_name("gh-main").await.unwrap(), None);
    let mut clash = changed.clone();
    clash.name = "ci".into();
    assert_conflict(store.update_source(&clash).await);

    // Lists are per tenant, newest first, paged.
    for i in 0..4 {
        store
            .create_source(&source(&a.id, &format!("extra-{i}")))
            .await
            .unwrap();
    }
    let pages = collect_pages(2, |page| {
        let id = a.id.clone();
        async move { store.list_sources(&id, &page).await }
    })
    .await;
    let listed: Vec<Source> = pages.into_iter().flatten().collect();
    assert_eq!(listed.len(), 5);
    assert!(listed.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(listed.iter().all(|s| s.tenant_id == a.id));

    store.delete_source(&a.id, &gh.id).await.unwrap();
    assert_not_found(store.get_source(&a.id, &gh.id).await);
    assert_not_found(store.delete_source(&a.id, &gh.id).await);
}

/// The requests log: entries written with their event get its outcome; alone they keep theirs;
/// listing by status and pages; pruning; a deleted source takes its log along.
pub async fn scenario_inbound_requests(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let src = source(&a.id, "gh");
    store.create_source(&src).await.unwrap();
    let other = source(&b.id, "other");
    store.create_source(&other).await.unwrap();
    create_webhook(store, &a.id, &["github.*"]).await;

    // Two copies of one delivery and a plain API event in one commit: the log entries take
    // the status and event id of their own event.
    let first = keyed(from_source(event(&a.id, "github.push"), "gh"), "src:k1");
    let again = keyed(from_source(event(&a.id, "github.push"), "gh"), "src:k1");
    let plain = event(&a.id, "member.created");
    let now = now_millis();
    let mut e1 = log_entry(&src, InboundStatus::Accepted, now);
    e1.body = None;
    let e2 = log_entry(&src, InboundStatus::Accepted, now + 1);
    let outcomes = store
        .ingest_with_requests(
            &[first.clone(), plain, again],
            &[(0, e1.clone()), (2, e2.clone())],
        )
        .await
        .unwrap();
    assert!(
        matches!(&outcomes[0], IngestOutcome::Accepted { id, deliveries: 1, .. } if *id == first.event.id)
    );
    assert!(matches!(&outcomes[2], IngestOutcome::Duplicate { id } if *id == first.event.id));

    let rejected = log_entry(&src, InboundStatus::Rejected, now + 2);
    let limited = log_entry(&src, InboundStatus::RateLimited, now + 3);
    let foreign = log_entry(&other, InboundStatus::Rejected, now + 4);
    store
        .record_inbound_requests(&[rejected.clone(), limited.clone(), foreign.clone()])
        .await
        .unwrap();
    store.record_inbound_requests(&[]).await.unwrap();

    let got = all_requests(store, &src, None).await;
    let expected = vec![
        limited.clone(),
        rejected.clone(),
        InboundRequest {
            status: InboundStatus::Duplicate,
            event_id: Some(first.event.id.clone()),
            ..e2
        },
        InboundRequest {
            status: InboundStatus::Accepted,
            event_id: Some(first.event.id.clone()),
            ..e1
        },
    ];
    assert_eq!(got, expected, "newest first, as written");
    assert_eq!(
        all_requests(store, &src, Some(InboundStatus::Rejected)).await,
        vec![rejected.clone()]
    );
    assert_eq!(
        all_requests(store, &src, Some(InboundStatus::Duplicate))
            .await
            .len(),
        1
    );
    let pages = collect_pages(3, |page| {
        let (t, s) = (a.id.clone(), src.id.clone());
        async move {
            store
                .list_inbound_requests(&t, &s, &InboundRequestQuery::default(), &page)
                .await
        }
    })
    .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);

    // Another tenant sees none of it, even with the right source id.
    let none = store
        .list_inbound_requests(
            &b.id,
            &src.id,
            &InboundRequestQuery::default(),
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(none.items.is_empty());
    assert_eq!(all_requests(store, &other, None).await, vec![foreign]);

    // Pruning removes entries received before the cut-off, whatever their source.
    assert_eq!(store.prune_inbound_requests(now + 2).await.unwrap(), 2);
    assert_eq!(
        all_requests(store, &src, None).await,
        vec![limited, rejected]
    );

    // Deleting the source deletes its log; its events stay.
    store.delete_source(&a.id, &src.id).await.unwrap();
    assert!(all_requests(store, &src, None).await.is_empty());
    assert!(store.get_event(&a.id, &first.event.id).await.is_ok());
}
