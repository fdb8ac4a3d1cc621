//! The contract's JSON shapes for resources, built from store rows. Times become RFC 3339,
//! stored JSON is passed through untouched, and secrets never appear here.

use std::collections::BTreeMap;

use hookrelay_domain::quota::Quotas;
use hookrelay_domain::time::to_rfc3339;
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::store::{ApiKey, Attempt, Delivery, Event, Tenant, User, Webhook};

/// Stored JSON text as a raw JSON value (it was validated on the way in).
pub fn raw_json(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is JSON"))
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub quotas: Quotas,
    /// Days its events are kept (the server's `HOOKRELAY_RETENTION_DAYS` unless it sets its own).
    pub retention_days: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl TenantView {
    /// The tenant with its retention, `default_days` when it sets none.
    pub fn of(t: &Tenant, default_days: u32) -> Self {
        let mut view = Self::from(t);
        view.retention_days = t.retention_days.unwrap_or(default_days);
        view
    }
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            quotas: t.quotas.clone(),
            retention_days: t.retention_days.unwrap_or(0),
            created_at: to_rfc3339(t.created_at),
            updated_at: to_rfc3339(t.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub server_admin: bool,
    pub created_at: String,
    /// The plaintext key: present only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            role: k.role.as_str().to_owned(),
            server_admin: k.server_admin,
            created_at: to_rfc3339(k.created_at),
            key: None,
        }
    }
}

/// A dashboard user. The password hash never leaves the store.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub role: String,
    pub tenant_id: String,
    pub server_admin: bool,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            role: u.role.as_str().to_owned(),
            tenant_id: u.tenant_id.to_string(),
            server_admin: u.server_admin,
            created_at: to_rfc3339(u.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CircuitView {
    /// `closed`, `open` (no attempt until `open_until`) or `half_open` (one probe may go).
    pub state: String,
    pub consecutive_failures: u32,
    pub open_until: Option<String>,
}

impl CircuitView {
    pub fn of(h: &hookrelay_domain::health::Health, now: i64) -> Self {
        let state = h.state_at(now);
        Self {
            state: state.as_str().to_owned(),
            consecutive_failures: h.consecutive_failures,
            open_until: match state {
                hookrelay_domain::health::CircuitState::Open => h.open_until.map(to_rfc3339),
                _ => None,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    /// The endpoint, or a broker kind's broker (`nats://`, `amqp://`/`amqps://`,
    /// `redis://`/`rediss://`) with any password shown as `***`.
    pub url: String,
    pub events: Vec<String>,
    /// `http`, `discord`, `slack`, `relay`, `nats`, `rabbitmq` or `redis`.
    pub kind: String,
    pub description: Option<String>,
    pub active: bool,
    pub headers: BTreeMap<String, String>,
    pub rate_limit_per_sec: Option<u32>,
    /// Deliveries go one at a time, in the order their events were accepted.
    pub ordered: bool,
    pub templates: BTreeMap<String, String>,
    /// Seconds between attempts; null means the server's global schedule.
    pub retry_schedule_seconds: Option<Vec<u32>>,
    /// Payload filter over the event envelope; null lets every event of a matching type through.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// The body template of an `http` or `relay` webhook (JSON out); null sends the envelope.
    pub transform: Option<String>,
    /// Broker kinds: where on the broker deliveries go (`nats` `{subject, jetstream?}`, `rabbitmq`
    /// `{exchange, routing_key}`, `redis` `{stream, maxlen?}`); null for the other kinds.
    #[schema(value_type = Option<Object>)]
    pub target: Option<serde_json::Value>,
    /// `hmac` (Standard Webhooks `v1`) or `ed25519` (`v1a`).
    pub signature_scheme: String,
    /// `whpk_` + base64 of the ed25519 public key receivers verify `v1a` signatures with; null
    /// for `hmac`.
    pub public_key: Option<String>,
    /// The circuit breaker: consecutive failed attempts open it; see "Endpoint health".
    pub circuit: CircuitView,
    /// Why hookrelay disabled the webhook by itself: `gone` (the receiver answered 410) or
    /// `failing` (every attempt failed for `HOOKRELAY_AUTO_DISABLE_AFTER`); null otherwise.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The `hmac` signing secret: present only at creation (and when a change generated one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id.to_string(),
            // Credentials in a broker URL are never shown (`nats://user:***@host:4222`).
            url: crate::destinations::broker::redact_url(&w.url),
            events: w.events.clone(),
            kind: w.kind.as_str().to_owned(),
            description: w.description.clone(),
            active: w.active,
            headers: w.headers.clone(),
            rate_limit_per_sec: w.rate_limit_per_sec,
            ordered: w.ordered,
            templates: w.templates.clone(),
            retry_schedule_seconds: w.retry_schedule.clone(),
            filter: w.filter.clone(),
            transform: w.transform.clone(),
            target: w.target.clone(),
            signature_scheme: w.signature_scheme().as_str().to_owned(),
            public_key: w.public_key(),
            circuit: CircuitView::of(&w.health, hookrelay_domain::time::now_millis()),
            disabled_reason: w.health.disabled_reason.map(|r| r.as_str().to_owned()),
            disabled_at: w.health.disabled_at.map(to_rfc3339),
            created_at: to_rfc3339(w.created_at),
            updated_at: to_rfc3339(w.updated_at),
            secret: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub source: Option<String>,
    /// The client's `event_id` / `Idempotency-Key`, if it sent one.
    pub event_id: Option<String>,
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryView>>,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id.to_string(),
            event_type: e.event_type.clone(),
            source: e.source.clone(),
            event_id: e.idempotency_key.clone(),
            timestamp: to_rfc3339(e.timestamp),
            data: raw_json(&e.data),
            created_at: to_rfc3339(e.created_at),
            deliveries: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub webhook_id: String,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_response_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type.clone(),
            webhook_id: d.webhook_id.to_string(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(to_rfc3339),
            last_response_status: d.last_response_status,
            last_error: d.last_error.clone(),
            created_at: to_rfc3339(d.created_at),
            delivered_at: d.delivered_at.map(to_rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    pub n: u32,
    pub started_at: String,
    pub duration_ms: u32,
    /// The headers we sent, with signatures redacted.
    #[schema(value_type = Object)]
    pub request_headers: Box<RawValue>,
    pub response_status: Option<u16>,
    /// The first 4 KiB of the response body.
    pub response_body: Option<String>,
    pub error: Option<String>,
    /// `http_status`, `timeout`, `connect`, `tls`, `dns`, `blocked_address`, `render`,
    /// `template_error`, `broker` (a broker refused or did not acknowledge), `other`.
    pub error_kind: Option<String>,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        Self {
            n: a.n,
            started_at: to_rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            request_headers: raw_json(&a.request_headers),
            response_status: a.response_status,
            response_body: a.response_body.clone(),
            error: a.error.clone(),
            error_kind: a.error_kind.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DlqEntryView {
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_response_status: Option<u16>,
    pub failed_at: Option<String>,
}

impl From<&Delivery> for DlqEntryView {
    fn from(d: &Delivery) -> Self {
        Self {
            delivery_id: d.id.to_string(),
            webhook_id: d.webhook_id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type.clone(),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            last_response_status: d.last_response_status,
            failed_at: d.failed_at.map(to_rfc3339),
        }
    }
}

/// `{"data": [...], "next_cursor": ...}`.
#[derive(Serialize, ToSchema)]
pub struct ListView<T: Serialize> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: Serialize> ListView<T> {
    pub fn of<R>(page: &crate::store::Page<R>) -> Self
    where
        for<'a> T: From<&'a R>,
    {
        Self {
            data: page.items.iter().map(T::from).collect(),
            next_cursor: page.next_cursor.clone(),
        }
    }
}
