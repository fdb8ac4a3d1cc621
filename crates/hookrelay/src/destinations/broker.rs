//! Broker destinations (`nats`, `rabbitmq`, `redis`): the `Destination` trait each broker
//! implements in one file, the shared connection pool (one connection per broker URL, created
//! lazily, reconnected with backoff), the address policy applied to broker hosts, and the URL
//! rules (schemes, credentials sealed at rest and redacted wherever a URL is shown).
//!
//! The sender renders and signs a broker delivery exactly as an http one (same envelope, same
//! headers) and hands the `Message` to the webhook kind's destination; a delivery succeeds only
//! when the destination returns the broker's acknowledgement.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookrelay_domain::netpolicy::{is_local_hostname, TargetPolicy};
use hookrelay_domain::validate::FieldError;
use hookrelay_domain::{ErrorKind, WebhookKind};
use serde_json::Value;

use crate::delivery::guard::HostLookup;

/// One delivery as a broker message: the body an http webhook would be posted, and the headers
/// it would carry (`webhook-id`, `webhook-timestamp`, `webhook-signature`, `x-webhook-event`, …),
/// names in lower case, in the order they were set.
pub struct Message<'a> {
    pub delivery_id: &'a str,
    pub event_type: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Why a publish failed: the attempt's `error_kind` and `error`.
pub type Failure = (ErrorKind, String);

/// A broker as one webhook names it.
pub struct Broker<'a> {
    /// The webhook's URL as stored (credentials included): the pool's key.
    pub url: &'a url::Url,
    /// What the URL's host may resolve to, and how names are looked up.
    pub policy: &'a TargetPolicy,
    pub lookup: &'a Arc<dyn HostLookup>,
    /// The bound on one publish (connecting included): the delivery timeout.
    pub timeout: Duration,
}

impl Broker<'_> {
    /// The URL to connect with: the host checked against the address policy, and for plain-TCP
    /// schemes replaced by the checked address itself, so a name cannot resolve to another
    /// address between the check and the connection. With TLS (`amqps`, `rediss`) the name is
    /// kept for certificate verification, which a rebound address cannot pass.
    pub async fn connect_url(&self, tls: bool) -> Result<url::Url, Failure> {
        let blocked = |m: String| (ErrorKind::BlockedAddress, format!("blocked address: {m}"));
        let ip = match (host_ip(self.url), self.url.host()) {
            (Some(ip), _) => ip,
            (None, Some(url::Host::Domain(name))) => {
                if is_local_hostname(name) && !self.policy.allows(IpAddr::from([127, 0, 0, 1])) {
                    return Err(blocked(format!("{name} is this machine")));
                }
                let found = self
                    .lookup
                    .lookup(name.to_owned())
                    .await
                    .map_err(|e| (ErrorKind::Dns, format!("looking up {name}: {e}")))?;
                let Some(ip) = found.iter().copied().find(|ip| self.policy.allows(*ip)) else {
                    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
                    return Err(blocked(format!(
                        "{name} resolves only to non-public addresses ({})",
                        shown.join(", ")
                    )));
                };
                if tls {
                    return Ok(self.url.clone());
                }
                ip
            }
            (None, _) => return Err(blocked("the URL has no host".into())),
        };
        if !self.policy.allows(ip) {
            return Err(blocked(format!("{ip} is not a public address")));
        }
        let mut out = self.url.clone();
        out.set_ip_host(ip).map_err(|()| {
            (
                ErrorKind::Other,
                "the broker URL cannot take an address".into(),
            )
        })?;
        Ok(out)
    }
}

/// The address a URL's host names literally. Broker schemes are not "special" to the URL
/// parser, which then keeps `10.0.0.1` as an opaque name rather than an IPv4 host.
pub fn host_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(d) => d.parse().ok(),
    }
}

/// A message broker a webhook kind publishes to. Adding one (Kafka, SQS) is one file
/// implementing this, and a line in `Brokers::new`.
#[async_trait]
pub trait Destination: Send + Sync + 'static {
    fn kind(&self) -> WebhookKind;

    /// The URL schemes it takes (`nats`; `amqp`, `amqps`; …) and whether each means TLS.
    fn schemes(&self) -> &'static [(&'static str, bool)];

    /// Checks a webhook's `target` at save time; an error names `target.<field>`.
    fn check_target(&self, target: &Value) -> Result<(), FieldError>;

    /// Publishes `message` to `target` on `broker`, within `broker.timeout` (the caller bounds
    /// it too). `Ok` carries the broker's acknowledgement, as the attempt shows it (the stream
    /// entry id, the JetStream sequence, …): only then has the delivery succeeded.
    async fn publish(
        &self,
        broker: &Broker<'_>,
        target: &Value,
        message: &Message<'_>,
    ) -> Result<String, Failure>;
}

/// The broker destinations, by kind.
pub struct Brokers {
    all: Vec<Box<dyn Destination>>,
}

impl Default for Brokers {
    fn default() -> Self {
        Self::new()
    }
}

impl Brokers {
    pub fn new() -> Self {
        Self {
            all: vec![
                Box::new(super::nats::Nats::default()),
                Box::new(super::rabbitmq::RabbitMq::default()),
                Box::new(super::redis::RedisStreams::default()),
            ],
        }
    }

    pub fn get(&self, kind: WebhookKind) -> Option<&dyn Destination> {
        self.all.iter().find(|d| d.kind() == kind).map(|d| &**d)
    }

    /// Publishes one delivery of a broker webhook, bounded by `broker.timeout`.
    pub async fn publish(
        &self,
        kind: WebhookKind,
        broker: &Broker<'_>,
        target: Option<&Value>,
        message: &Message<'_>,
    ) -> Result<String, Failure> {
        let Some(dest) = self.get(kind) else {
            return Err((
                ErrorKind::Other,
                format!("no broker destination for kind {}", kind.as_str()),
            ));
        };
        let Some(target) = target else {
            return Err((ErrorKind::Render, "the webhook has no target".into()));
        };
        match tokio::time::timeout(broker.timeout, dest.publish(broker, target, message)).await {
            Ok(result) => result,
            Err(_) => Err((
                ErrorKind::Timeout,
                format!(
                    "timed out waiting for the broker's acknowledgement ({} ms)",
                    broker.timeout.as_millis()
                ),
            )),
        }
    }
}

/// Checks a broker webhook's URL and target at save time (`url` and `target.*` errors).
pub fn check_webhook(
    kind: WebhookKind,
    raw_url: &str,
    target: Option<&Value>,
    policy: &TargetPolicy,
    errors: &mut Vec<FieldError>,
) {
    let Some(dest) = Brokers::new_static().get(kind) else {
        errors.push(FieldError::new("kind", "this broker kind is not available"));
        return;
    };
    let schemes: Vec<String> = dest
        .schemes()
        .iter()
        .map(|(s, _)| format!("{s}://"))
        .collect();
    let parsed = if raw_url.len() > 2048 {
        Err("must be at most 2048 characters".to_owned())
    } else {
        url::Url::parse(raw_url).map_err(|e| format!("must be an absolute URL ({e})"))
    };
    match parsed {
        Err(m) => errors.push(FieldError::new("url", m)),
        Ok(url) if !dest.schemes().iter().any(|(s, _)| *s == url.scheme()) => {
            errors.push(FieldError::new(
                "url",
                format!(
                    "a {} webhook's url must start with {}",
                    kind.as_str(),
                    schemes.join(" or ")
                ),
            ))
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            errors.push(FieldError::new("url", "must have a host"))
        }
        Ok(url) => {
            let ip = host_ip(&url);
            let local = matches!(url.host(), Some(url::Host::Domain(d)) if is_local_hostname(d));
            if local && !policy.allows(IpAddr::from([127, 0, 0, 1])) {
                errors.push(FieldError::new(
                    "url",
                    "must not point at this machine (localhost)",
                ));
            } else if ip.is_some_and(|ip| !policy.allows(ip)) {
                errors.push(FieldError::new(
                    "url",
                    "must not point at a loopback, private, link-local or reserved address",
                ));
            }
        }
    }
    match target {
        None => errors.push(FieldError::new(
            "target",
            format!("is required for a {} webhook", kind.as_str()),
        )),
        Some(t) if !t.is_object() => errors.push(FieldError::new("target", "must be an object")),
        Some(t) => {
            if let Err(e) = dest.check_target(t) {
                errors.push(e);
            }
        }
    }
}

impl Brokers {
    /// The destinations' save-time rules need no connection state: a shared empty set.
    fn new_static() -> &'static Brokers {
        static ONE: std::sync::OnceLock<Brokers> = std::sync::OnceLock::new();
        ONE.get_or_init(Brokers::new)
    }
}

/// Whether `scheme` means TLS for `kind`.
pub fn is_tls(kind: WebhookKind, scheme: &str) -> bool {
    Brokers::new_static()
        .get(kind)
        .and_then(|d| d.schemes().iter().find(|(s, _)| *s == scheme))
        .is_some_and(|(_, tls)| *tls)
}

/// A URL as it may be shown: its password replaced by `***` (`nats://user:***@host:4222`), a
/// user name alone (a token) too. Anything else is unchanged; an unparsable URL is shown as is.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(mut url) if !url.username().is_empty() => {
            let _ = url.set_username("***");
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// Whether a URL carries credentials (and is then sealed at rest).
pub fn has_credentials(raw: &str) -> bool {
    url::Url::parse(raw).is_ok_and(|u| u.password().is_some() || !u.username().is_empty())
}

/// A string field of `target`, required and non-empty (at most 255 bytes), without control
/// characters or spaces.
pub fn target_str<'a>(target: &'a Value, field: &str) -> Result<&'a str, FieldError> {
    let name = format!("target.{field}");
    match target.get(field) {
        None | Some(Value::Null) => Err(FieldError::new(name, "is required")),
        Some(Value::String(s)) if s.is_empty() => Err(FieldError::new(name, "must not be empty")),
        Some(Value::String(s)) if s.len() > 255 => {
            Err(FieldError::new(name, "must be at most 255 bytes"))
        }
        Some(Value::String(s)) if s.chars().any(|c| c.is_control() || c.is_whitespace()) => Err(
            FieldError::new(name, "must not contain spaces or control characters"),
        ),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(FieldError::new(name, "must be a string")),
    }
}

/// Refuses fields of `target` other than `known`.
pub fn only_fields(target: &Value, known: &[&str]) -> Result<(), FieldError> {
    match target
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        Some(k) => Err(FieldError::new(
            format!("target.{k}"),
            format!("unknown field (expected {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The shortest and longest waits before connecting again to a broker that could not be
/// reached: attempts in between fail at once with the last error instead of each opening a
/// connection of its own.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

struct Slot<C> {
    conn: Option<C>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<Failure>,
}

/// One connection per broker URL, shared by every webhook naming it: made on first use,
/// dropped with `invalidate` when it broke, and made again no sooner than the backoff allows.
pub struct Pool<C> {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot<C>>>>>,
}

impl<C> Default for Pool<C> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<C: Clone> Pool<C> {
    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Slot<C>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Slot {
                    conn: None,
                    failures: 0,
                    retry_at: None,
                    last_error: None,
                }))
            })
            .clone()
    }

    /// The connection for `key`, made with `connect` when there is none (one at a time: other
    /// publishes to the same broker wait for it rather than connecting too).
    pub async fn get<F, Fut>(&self, key: &str, connect: F) -> Result<C, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, Failure>>,
    {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        if let Some(conn) = &slot.conn {
            return Ok(conn.clone());
        }
        if let (Some(at), Some((kind, message))) = (slot.retry_at, &slot.last_error) {
            let now = Instant::now();
            if at > now {
                return Err((
                    *kind,
                    format!(
                        "{message} (reconnecting in {} ms)",
                        (at - now).as_millis().max(1)
                    ),
                ));
            }
        }
        match connect().await {
            Ok(conn) => {
                slot.conn = Some(conn.clone());
                slot.failures = 0;
                slot.retry_at = None;
                slot.last_error = None;
                Ok(conn)
            }
            Err(e) => {
                slot.failures = slot.failures.saturating_add(1);
                let wait = BACKOFF_MIN
                    .saturating_mul(1 << slot.failures.min(16).saturating_sub(1))
                    .min(BACKOFF_MAX);
                slot.retry_at = Some(Instant::now() + wait);
                slot.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Drops the connection for `key` (it broke); the next publish connects again.
    pub async fn invalidate(&self, key: &str) {
        let slot = self.slot(key);
        slot.lock().await.conn = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("nats://user:pa55@host:4222"),
            "nats://user:***@host:4222"
        );
        assert_eq!(
            redact_url("redis://:secret@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(redact_url("nats://token@host"), "nats://***@host");
        assert_eq!(redact_url("amqp://host/vh"), "amqp://host/vh");
        assert!(has_credentials("amqp://guest:guest@127.0.0.1:5672/%2f"));
        assert!(!has_credentials("amqp://127.0.0.1:5672"));
    }

    #[test]
    fn target_fields() {
        let t = serde_json::json!({"stream": "orders", "x": 1});
        assert_eq!(target_str(&t, "stream").unwrap(), "orders");
        assert_eq!(target_str(&t, "nope").unwrap_err().field, "target.nope");
        assert_eq!(
            target_str(&serde_json::json!({"s": "a b"}), "s")
                .unwrap_err()
                .message,
            "must not contain spaces or control characters"
        );
        assert_eq!(only_fields(&t, &["stream"]).unwrap_err().field, "target.x");
    }

    #[tokio::test]
    async fn pool_connects_once_and_backs_off_after_a_failure() {
        let pool: Pool<u32> = Pool::default();
        let err = pool
            .get("k", || async {
                Err((ErrorKind::Connect, "refused".into()))
            })
            .await
            .unwrap_err();
        assert_eq!(err.1, "refused");
        // Within the backoff, no new connection is tried.
        let err = pool
            .get("k", || async { panic!("connected during the backoff") })
            .await
            .unwrap_err();
        assert!(err.1.starts_with("refused (reconnecting in"), "{}", err.1);
        tokio::time::sleep(BACKOFF_MIN + Duration::from_millis(20)).await;
        assert_eq!(pool.get("k", || async { Ok(7) }).await.unwrap(), 7);
        assert_eq!(
            pool.get("k", || async { panic!("connected twice") })
                .await
                .unwrap(),
            7
        );
        pool.invalidate("k").await;
        assert_eq!(pool.get("k", || async { Ok(8) }).await.unwrap(), 8);
    }
}
