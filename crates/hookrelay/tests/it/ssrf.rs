//! SSRF defence: blocked ranges are refused when a webhook is saved, and — because names can
//! change what they resolve to — again at connect time, where nothing blocked is ever contacted.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hookrelay::delivery::guard::HostLookup;
use hookrelay::delivery::Sender;
use hookrelay::store::{DeliveryClaim, StoredSecret, Webhook};
use hookrelay_domain::netpolicy::TargetPolicy;
use hookrelay_domain::{DeliveryId, EventId, TenantId, WebhookId, WebhookKind, WebhookSecret};
use serde_json::json;

use crate::support::*;

/// A resolver with a fixed table, standing in for an attacker's DNS.
struct Table(HashMap<&'static str, Vec<IpAddr>>);

impl HostLookup for Table {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let found = self.0.get(host.as_str()).cloned();
        Box::pin(async move { found.ok_or_else(|| std::io::Error::other("no such host")) })
    }
}

fn table() -> Arc<Table> {
    Arc::new(Table(HashMap::from([
        ("rebind.test", vec!["127.0.0.1".parse().unwrap()]),
        ("metadata.test", vec!["169.254.169.254".parse().unwrap()]),
        (
            "mixed.test",
            vec!["10.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
        ),
    ])))
}

/// Every spelling of a blocked target a client might try (the port is the live receiver's).
fn blocked_urls(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "017700000001",
        "0177.0.0.1",
        "127.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "0.0.0.0",
        "10.0.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "192.168.1.1",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "[fc00::1]",
        "[fd00::1]",
        "[fe80::1]",
        "[ff02::1]",
    ]
    .iter()
    .map(|h| format!("http://{h}:{port}/hook"))
    .collect()
}

#[tokio::test]
async fn blocked_targets_are_refused_at_creation() {
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.allowed_target_networks.clear()).await;
    let mut urls = blocked_urls(8080);
    urls.extend([
        "http://localhost:8080/".into(),
        "http://api.localhost/".into(),
        "http://LOCALHOST./".into(),
    ]);
    for url in urls {
        let (status, body) = server.post("/api/v1/webhooks", json!({"url": url})).await;
        assert_eq!(status, 422, "{url} must be refused: {body}");
        assert_eq!(body["error"]["details"][0]["field"], "url");
    }
    // A public address and a name are fine at creation (names are checked at connect time).
    for url in [
        "https://93.184.215.14/h",
        "https://example.com/h",
        "https://[2606:4700::1111]/h",
    ] {
        let (status, body) = server.post("/api/v1/webhooks", json!({"url": url})).await;
        assert_eq!(status, 201, "{url}: {body}");
    }
    server.stop().await;
}

fn claim(url: &str) -> DeliveryClaim {
    let now = hookrelay_domain::time::now_millis();
    DeliveryClaim {
        delivery_id: DeliveryId::generate(),
        tenant_id: TenantId::generate(),
        event_id: EventId::generate(),
        event_type: "member.created".into(),
        event_timestamp: now,
        data: "{}".into(),
        attempts_made: 0,
        created_at: now,
        webhook: std::sync::Arc::new(Webhook {
            ordered: false,
            id: WebhookId::generate(),
            tenant_id: TenantId::generate(),
            url: url.into(),
            kind: WebhookKind::Http,
            description: None,
            active: true,
            events: vec![],
            headers: Default::default(),
            rate_limit_per_sec: None,
            templates: Default::default(),
            retry_schedule: None,
            filter: None,
            transform: None,
            target: None,
            secrets: vec![StoredSecret {
                secret: WebhookSecret::generate().expose().into(),
                expires_at: None,
            }],
            health: Default::default(),
            created_at: now,
            updated_at: now,
        }),
        tenant_quotas: Default::default(),
    }
}

#[tokio::test]
async fn nothing_blocked_is_ever_connected_to() {
    let rx = Receiver::start().await;
    let port = rx.addr.port();
    let sender =
        Sender::with_lookup(Duration::from_secs(2), TargetPolicy::default(), table()).unwrap();
    let mut urls = blocked_urls(port);
    urls.extend([
        format!("http://rebind.test:{port}/hook"),
        format!("http://metadata.test:{port}/latest/meta-data"),
        format!("http://mixed.test:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ]);
    for url in &urls {
        let result = sender.send(&claim(url), 1).await;
        let (kind, message) = result
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{url} was not refused"));
        assert_eq!(
            *kind,
            hookrelay_domain::ErrorKind::BlockedAddress,
            "{url}: {message}"
        );
        assert!(message.starts_with("blocked address"), "{message}");
        assert!(result.status.is_none());
    }
    assert_eq!(rx.count(), 0, "a blocked target was contacted");
}

#[tokio::test]
async fn the_allowlist_lets_loopback_through_and_only_checked_addresses_are_used() {
    let rx = Receiver::start().await;
    let port = rx.addr.port();
    let policy = TargetPolicy::new(&["127.0.0.0/8"]).unwrap();
    let sender = Sender::with_lookup(Duration::from_secs(2), policy, table()).unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/a"),
        format!("http://2130706433:{port}/b"),
        format!("http://rebind.test:{port}/c"),
        // Resolves to a private address and to loopback: only the allowed one is used.
        format!("http://mixed.test:{port}/d"),
    ] {
        let result = sender.send(&claim(&url), 1).await;
        assert_eq!(result.status, Some(200), "{url}: {:?}", result.error);
    }
    // Still blocked: not in the allowlist.
    let result = sender
        .send(&claim(&format!("http://metadata.test:{port}/")), 1)
        .await;
    assert_eq!(
        result.error.map(|e| e.0),
        Some(hookrelay_domain::ErrorKind::BlockedAddress)
    );
    assert_eq!(rx.count(), 4);
}

#[tokio::test]
async fn a_name_that_rebinds_to_loopback_fails_the_delivery_without_retrying() {
    let rx = Receiver::start().await;
    let port = rx.addr.port();
    let server = TestServer::start_full(
        Backend::Sqlite,
        |c| c.allowed_target_networks.clear(),
        table(),
    )
    .await;
    let hook = server.webhook(json!({"url": format!("http://rebind.test:{port}/hook"), "retry_schedule_seconds": [0, 0, 0]})).await;
    assert!(hook["id"].is_string());
    let ev = server
        .emit(json!({"type": "member.created", "data": {}}))
        .await;
    let id = server
        .delivery_ids(ev["id"].as_str().unwrap())
        .await
        .remove(0);
    let d = server
        .delivery_with_status(&id, "failed", Duration::from_secs(10))
        .await;
    assert_eq!(d["attempt_count"], 1, "a blocked address is not retried");
    assert_eq!(d["attempts"][0]["error_kind"], "blocked_address");
    assert!(
        d["last_error"].as_str().unwrap().contains("non-public"),
        "{d}"
    );
    assert_eq!(rx.count(), 0);
    server.stop().await;
}
