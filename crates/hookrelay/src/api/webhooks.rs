//! Outbound webhooks: CRUD, pause/resume, the `/test` action through the real delivery path,
//! message previews, secret rotation with a grace period, and per-webhook delivery statistics.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_domain::time::{now_millis, to_rfc3339};
use hookrelay_domain::validate::{check_custom_header, parse_webhook_url, FieldError};
use hookrelay_domain::{
    Action, EventFilter, EventId, PayloadFilter, RetrySchedule, SignatureScheme, SigningKey,
    TenantId, WebhookId, WebhookKind, WebhookSecret,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::{page, JsonBody, StrictQuery};
use super::views::{ListView, WebhookView};
use super::AppState;
use crate::config::Config;
use crate::delivery::attempt::record_for;
use crate::delivery::guard::check_literal;
use crate::destinations::catalog::{self, CatalogEntry};
use crate::destinations::{self, template};
use crate::store::{Event, IngestOutcome, NewEvent, StoredSecret, Webhook, WebhookQuery};
use hookrelay_domain::netpolicy::{is_local_hostname, TargetPolicy};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks", get(list).post(create))
        .route(
            "/api/v1/webhooks/{id}",
            get(read).patch(update).delete(remove),
        )
        .route("/api/v1/webhooks/{id}/test", post(test))
        .route("/api/v1/webhooks/{id}/preview", post(preview))
        .route("/api/v1/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/api/v1/webhooks/{id}/stats", get(stats))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    pub url: String,
    /// Exact types, `prefix.*` or `*`; empty or absent means all events.
    pub events: Option<Vec<String>>,
    /// `http` (default), `discord`, `slack`, `relay` (delivered to `hookrelay listen`
    /// processes connected to the server; `url` is then only the local URL they forward to,
    /// never contacted by the server), or a broker: `nats` (`nats://…`), `rabbitmq`
    /// (`amqp://…`, `amqps://…`) or `redis` (`redis://…`, `rediss://…`), with `target`.
    /// Credentials in a broker URL are sealed at rest and shown as `***`.
    pub kind: Option<String>,
    pub description: Option<String>,
    pub active: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub rate_limit_per_sec: Option<u32>,
    /// Deliver one at a time, in the order the events were accepted: one waiting for a retry
    /// holds back every later one; one that ends in the dead-letter queue lets the next go.
    /// Default `false`.
    pub ordered: Option<bool>,
    /// Message templates (`discord` and `slack` only), keyed by event type, `prefix.*` or `*`
    /// (the most specific wins; types without one get the built-in message). A text template
    /// renders the message text; one whose first non-blank character is `{` (not `{{`, `{%`,
    /// `{#`) is a JSON message (`content`/`embeds` for Discord, `text`/`blocks` for Slack) whose
    /// strings are templates. Context: `event`, `timestamp`, `eventId`, `data`.
    pub templates: Option<BTreeMap<String, String>>,
    /// Payload filter over the event envelope, beside `events`, e.g.
    /// `{"data.amount": {"$gte": 100}}`; see docs/destinations.md for the language.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// `whsec_` + base64 of 24–64 bytes; generated when absent. Only for `signature_scheme`
    /// `hmac`.
    pub secret: Option<String>,
    /// `hmac` (default: Standard Webhooks `v1`, HMAC-SHA256 with the shared `secret`) or
    /// `ed25519` (`v1a`: a key pair is generated; the answer and every read carry its
    /// `public_key`, the private key is never shown).
    pub signature_scheme: Option<String>,
    /// `http` and `relay` only: a template (the same sandboxed engine and limits as chat
    /// templates; context `event`, `timestamp`, `eventId`, `data`) whose output, which must be
    /// JSON, is the request body instead of the envelope. Signatures cover that body.
    pub transform: Option<String>,
    /// Seconds between attempts for this webhook; absent uses the server's schedule.
    pub retry_schedule_seconds: Option<Vec<u32>>,
    /// Required for broker kinds, refused for the others: `nats` `{"subject": "orders.created"}`
    /// (JetStream, acknowledged, when a stream binds the subject; `"jetstream": true` makes a
    /// subject no stream binds a failure; otherwise a core publish confirmed by a flush), `rabbitmq`
    /// `{"exchange": "...", "routing_key": "..."}` (publisher confirms; an unroutable message
    /// fails), `redis` `{"stream": "...", "maxlen": N?}` (`XADD`, optionally `MAXLEN ~ N`).
    #[schema(value_type = Option<Object>)]
    pub target: Option<Value>,
}

/// Any field but `id`; `null` clears an optional field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
    /// With `active: true`: cancel the deliveries held while paused instead of sending them.
    pub discard_held: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rate_limit_per_sec: Option<Option<u32>>,
    /// See the create body's `ordered`.
    pub ordered: Option<bool>,
    pub templates: Option<BTreeMap<String, String>>,
    /// `null` removes the payload filter.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Option<Value>>,
    /// Replaces the signing secret at once (use `rotate-secret` for a grace period); the
    /// webhook then signs with `hmac`.
    pub secret: Option<String>,
    /// A different scheme replaces the signing key at once with a new one of that scheme (the
    /// answer carries the new `secret` when it is `hmac`); `rotate-secret` with
    /// `signature_scheme` changes it with a grace period instead.
    pub signature_scheme: Option<String>,
    /// `null` removes the transform.
    #[serde(default, deserialize_with = "double_option")]
    pub transform: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub retry_schedule_seconds: Option<Option<Vec<u32>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    pub target: Option<Option<Value>>,
}

fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    active: Option<bool>,
    event: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A problem that does not stop the change (unless the server is strict about it).
#[derive(Serialize, ToSchema)]
pub struct Warning {
    pub field: String,
    pub message: String,
}

/// A created or updated webhook, with what looked wrong but was accepted.
#[derive(Serialize, ToSchema)]
pub struct WebhookAnswer {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// E.g. an `events` pattern that matches no type of the event catalog (with
    /// `HOOKRELAY_STRICT_EVENT_TYPES=true` that is a `422` instead).
    pub warnings: Vec<Warning>,
}

/// Checks every field of a webhook as it would be stored, collecting all problems; answers the
/// warnings (event patterns that match no catalog type) when nothing is wrong.
fn validate(
    w: &Webhook,
    config: &Config,
    policy: &TargetPolicy,
    catalog: &BTreeMap<String, CatalogEntry>,
) -> ApiResult<Vec<Warning>> {
    let mut errors = Vec::new();
    if w.kind == WebhookKind::Relay {
        // Only the listener ever connects to it, from the developer's machine.
        let ok = url::Url::parse(&w.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            errors.push(FieldError::new(
                "url",
                "a relay webhook's url is the local http(s) URL `hookrelay listen` forwards to",
            ));
        }
    } else if w.kind.is_broker() {
        destinations::broker::check_webhook(w.kind, &w.url, w.target.as_ref(), policy, &mut errors);
    } else {
        check_url(w, config, policy, &mut errors);
    }
    if w.target.is_some() && !w.kind.is_broker() {
        errors.push(FieldError::new(
            "target",
            "only `nats`, `rabbitmq` and `redis` webhooks take a target",
        ));
    }
    check_fields(w, catalog, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let names: Vec<&str> = catalog.keys().map(String::as_str).collect();
    let unknown = catalog::unknown_patterns(&w.events, &names);
    if config.strict_event_types && !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    Ok(unknown
        .into_iter()
        .map(|f| Warning {
            field: f.field,
            message: f.message,
        })
        .collect())
}

/// The target URL of a webhook the server posts to: its form, the address policy, per-kind rules.
fn check_url(w: &Webhook, config: &Config, policy: &TargetPolicy, errors: &mut Vec<FieldError>) {
    match parse_webhook_url(&w.url, config.require_https) {
        Err(m) => errors.push(FieldError::new("url", m)),
        Ok(url) => {
            // Obvious cases are refused now; every resolved address is checked again at connect time.
            let local = matches!(url.host(), Some(url::Host::Domain(d)) if is_local_hostname(d));
            if local && !policy.allows(std::net::IpAddr::from([127, 0, 0, 1])) {
                errors.push(FieldError::new(
                    "url",
                    "must not point at this machine (localhost)",
                ));
            } else if check_literal(policy, &url).is_err() {
                errors.push(FieldError::new(
                    "url",
                    "must not point at a loopback, private, link-local or reserved address",
                ));
            } else if let Err(m) = destinations::check_destination_url(w.kind, &url, policy) {
                errors.push(FieldError::new("url", m));
            }
        }
    }
}

/// Every field but the URL.
fn check_fields(
    w: &Webhook,
    catalog: &BTreeMap<String, CatalogEntry>,
    errors: &mut Vec<FieldError>,
) {
    if w.events.len() > 100 {
        errors.push(FieldError::new("events", "must list at most 100 patterns"));
    } else if let Err(e) = EventFilter::parse(&w.events) {
        errors.push(e);
    }
    if w.description.as_ref().is_some_and(|d| d.len() > 1024) {
        errors.push(FieldError::new(
            "description",
            "must be at most 1024 characters",
        ));
    }
    if w.headers.len() > 32 {
        errors.push(FieldError::new("headers", "must have at most 32 entries"));
    }
    for (name, value) in &w.headers {
        if let Err(m) = check_custom_header(name, value) {
            errors.push(FieldError::new(format!("headers.{name}"), m));
        }
    }
    if let Some(r) = w.rate_limit_per_sec {
        if !(1..=10_000).contains(&r) {
            errors.push(FieldError::new(
                "rate_limit_per_sec",
                "must be between 1 and 10000",
            ));
        }
    }
    if !w.templates.is_empty() && !w.kind.is_chat() {
        errors.push(FieldError::new(
            "templates",
            "only `discord` and `slack` webhooks use templates",
        ));
    }
    if w.kind.is_chat() {
        errors.extend(destinations::check_templates(w.kind, &w.templates, |key| {
            catalog.get(key).and_then(|e| e.example.clone())
        }));
    }
    if let Some(source) = &w.transform {
        if w.kind.is_chat() || w.kind.is_broker() {
            errors.push(FieldError::new(
                "transform",
                "only `http` and `relay` webhooks take a transform (chat webhooks use `templates`)",
            ));
        } else {
            let types: Vec<(&str, Option<&Value>)> = catalog
                .values()
                .map(|e| (e.name.as_str(), e.example.as_ref()))
                .collect();
            if let Err(m) = destinations::transform::check(source, &w.events, &types) {
                errors.push(FieldError::new("transform", m));
            }
        }
    }
    if let Some(filter) = &w.filter {
        if filter.to_string().len() > 16 * 1024 {
            errors.push(FieldError::new("filter", "must be at most 16 KiB"));
        } else if let Err(e) = PayloadFilter::parse(filter) {
            errors.push(e);
        }
    }
    if let Some(delays) = &w.retry_schedule {
        if let Err(m) = RetrySchedule::new(delays.clone()) {
            errors.push(FieldError::new("retry_schedule_seconds", m));
        }
    }
}

fn parse_kind(raw: Option<&str>) -> ApiResult<WebhookKind> {
    match raw {
        None => Ok(WebhookKind::Http),
        Some(k) => WebhookKind::parse(k).ok_or_else(|| {
            ApiError::field(
                "kind",
                "must be http, discord, slack, relay, nats, rabbitmq or redis",
            )
        }),
    }
}

fn parse_scheme(raw: &str) -> ApiResult<SignatureScheme> {
    SignatureScheme::parse(raw)
        .ok_or_else(|| ApiError::field("signature_scheme", "must be hmac or ed25519"))
}

/// The webhook's first signing key: the client's `secret` (hmac only), or a fresh key of
/// `scheme`.
fn first_key(secret: Option<&str>, scheme: SignatureScheme) -> ApiResult<SigningKey> {
    match (secret, scheme) {
        (Some(raw), SignatureScheme::Hmac) => parse_secret(raw).map(SigningKey::Hmac),
        (Some(_), SignatureScheme::Ed25519) => Err(ApiError::field(
            "secret",
            "an ed25519 webhook's key pair is generated; send no secret",
        )),
        (None, scheme) => Ok(SigningKey::generate(scheme)),
    }
}

fn stored(key: &SigningKey) -> StoredSecret {
    StoredSecret {
        secret: key.expose().to_owned(),
        expires_at: None,
    }
}

fn parse_secret(raw: &str) -> ApiResult<WebhookSecret> {
    WebhookSecret::parse(raw).map_err(|m| ApiError::field("secret", m))
}

fn parse_id(raw: &str) -> ApiResult<WebhookId> {
    WebhookId::parse(raw).ok_or_else(|| ApiError::not_found("webhook"))
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "webhooks.create", request_body = CreateWebhook,
    responses((status = 201, body = WebhookAnswer, description = "includes `secret`, shown only this once, and `warnings`"),
              (status = 422, description = "a field is invalid: `url` (a `discord` webhook needs a Discord webhook URL, a `slack` one a Slack one, unless its host is an IP inside `HOOKRELAY_ALLOWED_TARGET_NETWORKS`), `templates.<key>` (does not compile, bad JSON shape), `filter.<path>`; with `HOOKRELAY_STRICT_EVENT_TYPES`, `events[i]` matching no catalog type")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookAnswer>)> {
    caller.require(Action::Write)?;
    let scheme = match body.signature_scheme.as_deref() {
        Some(raw) => parse_scheme(raw)?,
        None => SignatureScheme::Hmac,
    };
    let key = first_key(body.secret.as_deref(), scheme)?;
    let now = now_millis();
    let webhook = Webhook {
        id: WebhookId::generate(),
        tenant_id: caller.tenant.clone(),
        url: body.url,
        kind: parse_kind(body.kind.as_deref())?,
        description: body.description,
        active: body.active.unwrap_or(true),
        events: body.events.unwrap_or_default(),
        headers: body.headers.unwrap_or_default(),
        rate_limit_per_sec: body.rate_limit_per_sec,
        templates: body.templates.unwrap_or_default(),
        retry_schedule: body.retry_schedule_seconds,
        secrets: vec![stored(&key)],
        filter: body.filter,
        transform: body.transform,
        target: body.target,
        ordered: body.ordered.unwrap_or(false),
        health: Default::default(),
        created_at: now,
        updated_at: now,
    };
    let catalog = catalog::load(s.store.as_ref(), &caller.tenant).await?;
    let warnings = validate(&webhook, &s.config, s.sender.policy(), &catalog)?;
    enforce_webhook_quota(&s, &caller).await?;
    s.store.create_webhook(&webhook).await?;
    let mut view = WebhookView::from(&webhook);
    if let SigningKey::Hmac(secret) = &key {
        view.secret = Some(secret.expose().to_owned());
    }
    Ok((
        StatusCode::CREATED,
        Json(WebhookAnswer {
            webhook: view,
            warnings,
        }),
    ))
}

async fn enforce_webhook_quota(s: &AppState, caller: &Caller) -> ApiResult<()> {
    let tenant = s.store.get_tenant(&caller.tenant).await?;
    if let Some(limit) = tenant.quotas.or_defaults(&s.config.default_quotas).webhooks {
        if s.store.count_webhooks(&caller.tenant).await? >= limit {
            return Err(ApiError::QuotaExceeded {
                message: format!("the tenant may have at most {limit} webhooks"),
                retry_after_secs: 60,
            });
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "webhooks.list",
    params(("active" = Option<bool>, Query), ("event" = Option<String>, Query, description = "only webhooks whose filters match this event type"),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<WebhookView>)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult<Json<ListView<WebhookView>>> {
    caller.require(Action::Read)?;
    let query = WebhookQuery {
        active: q.active,
        event: q.event,
    };
    let page = s
        .store
        .list_webhooks(&caller.tenant, &query, &page(q.limit, q.cursor)?)
        .await?;
    Ok(Json(ListView::of(&page)))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "webhooks.get",
    responses((status = 200, body = WebhookView), (status = 404)), security(("bearer" = [])))]
pub async fn read(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    caller.require(Action::Read)?;
    let w = s
        .store
        .get_webhook(&caller.tenant, &parse_id(&id)?)
        .await
        .map_err(missing("webhook"))?;
    Ok(Json(WebhookView::from(&w)))
}

#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "webhooks.update", request_body = UpdateWebhook,
    responses((status = 200, body = WebhookAnswer, description = "the webhook and `warnings`, as for create"), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateWebhook>,
) -> ApiResult<Json<WebhookAnswer>> {
    caller.require(Action::Write)?;
    let mut w = s
        .store
        .get_webhook(&caller.tenant, &parse_id(&id)?)
        .await
        .map_err(missing("webhook"))?;
    if let Some(url) = body.url {
        // A read shows a broker URL's password as `***`: sending that back keeps the password.
        if url != destinations::broker::redact_url(&w.url) || url == w.url {
            w.url = url;
        }
    }
    if let Some(events) = body.events {
        w.events = events;
    }
    if let Some(kind) = body.kind {
        w.kind = parse_kind(Some(&kind))?;
    }
    if let Some(d) = body.description {
        w.description = d;
    }
    if let Some(active) = body.active {
        if active {
            // Re-enabling clears why it was disabled; re-activating also resets the circuit
            // (the store does the same, in the update).
            if !w.active {
                w.health = Default::default();
            }
            w.health.disabled_reason = None;
            w.health.disabled_at = None;
        }
        w.active = active;
    }
    if let Some(h) = body.headers {
        w.headers = h;
    }
    if let Some(r) = body.rate_limit_per_sec {
        w.rate_limit_per_sec = r;
    }
    if let Some(o) = body.ordered {
        w.ordered = o;
    }
    if let Some(t) = body.templates {
        w.templates = t;
    }
    if let Some(r) = body.retry_schedule_seconds {
        w.retry_schedule = r;
    }
    if let Some(f) = body.filter {
        w.filter = f;
    }
    if let Some(t) = body.transform {
        w.transform = t;
    }
    if let Some(t) = body.target {
        w.target = t;
    }
    // A new secret, or a change of scheme, replaces the keys at once.
    let scheme = match body.signature_scheme.as_deref() {
        Some(raw) => parse_scheme(raw)?,
        None if body.secret.is_some() => SignatureScheme::Hmac,
        None => w.signature_scheme(),
    };
    let mut new_secret = None;
    if body.secret.is_some() || scheme != w.signature_scheme() {
        let key = first_key(body.secret.as_deref(), scheme)?;
        if let (SigningKey::Hmac(secret), None) = (&key, &body.secret) {
            new_secret = Some(secret.expose().to_owned());
        }
        w.secrets = vec![stored(&key)];
    }
    let catalog = catalog::load(s.store.as_ref(), &caller.tenant).await?;
    let warnings = validate(&w, &s.config, s.sender.policy(), &catalog)?;
    w.updated_at = now_millis();
    let discard = body.discard_held.unwrap_or(false);
    s.store
        .update_webhook(&w, discard)
        .await
        .map_err(missing("webhook"))?;
    if w.active {
        s.wake.notify_one();
    }
    let mut view = WebhookView::from(&w);
    view.secret = new_secret;
    Ok(Json(WebhookAnswer {
        webhook: view,
        warnings,
    }))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "webhooks.delete",
    responses((status = 204, description = "deleted; its pending deliveries are cancelled"), (status = 404)),
    security(("bearer" = [])))]
pub async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Action::Write)?;
    s.store
        .delete_webhook(&caller.tenant, &parse_id(&id)?)
        .await
        .map_err(missing("webhook"))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct TestResult {
    pub delivery_id: String,
    /// The delivery's status after this attempt.
    pub status: String,
    pub response_status: Option<u16>,
    pub duration_ms: u32,
    pub error: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", operation_id = "webhooks.test",
    responses((status = 200, body = TestResult, description = "the attempt, made now through the real delivery path")),
    security(("bearer" = [])))]
pub async fn test(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TestResult>> {
    caller.require(Action::Write)?;
    let webhook = s
        .store
        .get_webhook(&caller.tenant, &parse_id(&id)?)
        .await
        .map_err(missing("webhook"))?;
    let now = now_millis();
    let owner = format!("{}-test", s.node_id);
    // The delivery is leased to us at creation, so no worker races us for it; should we die
    // mid-attempt, the lease expires and a worker delivers it.
    let lease_until = now + (s.sender.timeout() + s.config.lease_grace).as_millis() as i64;
    let event = Event {
        id: EventId::generate(),
        tenant_id: caller.tenant.clone(),
        event_type: "webhook.test".into(),
        source: None,
        idempotency_key: None,
        data: serde_json::json!({"webhook_id": webhook.id, "message": "Test event from hookrelay"})
            .to_string(),
        timestamp: now,
        created_at: now,
    };
    let outcome = s
        .ingestor
        .submit(vec![NewEvent {
            event,
            only_webhook: Some(webhook.id.clone()),
            lease: Some((owner.clone(), lease_until)),
            // Test sends do not count against event quotas.
            quota: Default::default(),
        }])
        .await?;
    let delivery_id = match outcome.into_iter().next() {
        Some(IngestOutcome::Accepted {
            mut delivery_ids, ..
        }) if !delivery_ids.is_empty() => delivery_ids.remove(0),
        _ => return Err(ApiError::Internal("test delivery was not created".into())),
    };
    let claim = s
        .store
        .load_claim(&delivery_id)
        .await?
        .ok_or_else(|| ApiError::Internal("test delivery vanished".into()))?;
    let sent = s.sender.send(&claim, 1).await;
    let record = record_for(&claim, 1, sent, &s.config.retry_schedule, &owner);
    s.store
        .record_attempts_with(std::slice::from_ref(&record), &s.config.health)
        .await?;
    if s.feed.is_watched() {
        s.feed.publish(vec![crate::feed::Change::Delivery(
            crate::feed::DeliveryChange::after(
                &record,
                &claim.tenant_id,
                &claim.event_id,
                &claim.event_type,
                &claim.webhook.id,
            ),
        )]);
    }
    if matches!(record.next, crate::store::NextState::RetryAt(_)) {
        s.wake.notify_one();
    }
    let status = match record.next {
        crate::store::NextState::Succeeded => "succeeded",
        crate::store::NextState::RetryAt(_) => "pending",
        crate::store::NextState::Failed => "failed",
    };
    Ok(Json(TestResult {
        delivery_id: delivery_id.to_string(),
        status: status.into(),
        response_status: record.attempt.response_status,
        duration_ms: record.attempt.duration_ms,
        error: record.attempt.error,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub event_type: String,
    /// The event's `data`; absent: the catalog's example of the type (or `{}`).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// Renders as if the webhook had this `kind` (unsaved edits); checked like a save.
    pub kind: Option<String>,
    /// Renders with these `templates` instead of the stored ones (unsaved edits).
    pub templates: Option<BTreeMap<String, String>>,
    /// Renders with this `transform` instead of the stored one; `null`: without one.
    #[serde(default, deserialize_with = "double_option")]
    pub transform: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewResult {
    /// `http`, `discord` or `slack`.
    pub kind: String,
    pub event_type: String,
    /// The template key used (`member.created`, `github.*`, `*`); `transform` for an http
    /// webhook's transform; null: the built-in message (or, for `http`, the envelope).
    pub template: Option<String>,
    /// Exactly the JSON body the webhook would be posted.
    #[schema(value_type = Object)]
    pub body: Value,
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/preview", tag = "webhooks", operation_id = "webhooks.preview", request_body = PreviewRequest,
    responses((status = 200, body = PreviewResult, description = "the message, rendered and not sent; with `kind`, `templates` or `transform` in the request, as the webhook would render with those unsaved edits"),
              (status = 422, description = "the template fails on this event: `templates.<key>` says why (at delivery this is an attempt failure with `error_kind` `render`), or `transform` for an http webhook's transform that fails or renders something that is not JSON (at delivery: `error_kind` `template_error`)")),
    security(("bearer" = [])))]
pub async fn preview(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PreviewRequest>,
) -> ApiResult<Json<PreviewResult>> {
    caller.require(Action::Read)?;
    let mut w = s
        .store
        .get_webhook(&caller.tenant, &parse_id(&id)?)
        .await
        .map_err(missing("webhook"))?;
    let edited = body.kind.is_some() || body.templates.is_some() || body.transform.is_some();
    if let Some(kind) = &body.kind {
        w.kind = parse_kind(Some(kind))?;
    }
    if let Some(t) = body.templates {
        w.templates = t;
    }
    if let Some(t) = body.transform {
        w.transform = t;
    }
    if edited {
        // Unsaved edits are checked as a save would check them, so a preview never shows
        // what could not be stored.
        let catalog = catalog::load(s.store.as_ref(), &caller.tenant).await?;
        let mut errors = Vec::new();
        check_fields(&w, &catalog, &mut errors);
        errors.retain(|e| e.field.starts_with("templates") || e.field.starts_with("transform"));
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
    }
    if !hookrelay_domain::validate::is_valid_event_type(&body.event_type) {
        return Err(ApiError::field(
            "event_type",
            "must be a dotted event type like member.created",
        ));
    }
    let data = match body.data {
        Some(d) => d,
        None => example_data(&s, &caller.tenant, &body.event_type).await?,
    };
    let event_id = EventId::generate();
    let timestamp = to_rfc3339(now_millis());
    let envelope = destinations::envelope(&body.event_type, &timestamp, event_id.as_str(), data);
    let (template, rendered) = if w.kind.is_chat() {
        let rendered =
            destinations::render_message(w.kind, &w.templates, &envelope).map_err(|e| {
                let field = match template::select(&w.templates, &body.event_type) {
                    Some((key, _)) => format!("templates.{key}"),
                    None => "event_type".to_owned(),
                };
                ApiError::field(field, e.to_string())
            })?;
        (rendered.template, rendered.body)
    } else if let Some(source) = &w.transform {
        let out = destinations::transform::render(source, &envelope)
            .map_err(|e| ApiError::field("transform", e.to_string()))?;
        let value = serde_json::from_str(&out)
            .map_err(|e| ApiError::Internal(format!("transform output: {e}")))?;
        (Some("transform".to_owned()), value)
    } else {
        (None, envelope)
    };
    Ok(Json(PreviewResult {
        kind: w.kind.as_str().to_owned(),
        event_type: body.event_type,
        template,
        body: rendered,
    }))
}

async fn example_data(s: &AppState, tenant: &TenantId, event_type: &str) -> ApiResult<Value> {
    Ok(catalog::get(s.store.as_ref(), tenant, event_type)
        .await?
        .and_then(|e| e.example)
        .unwrap_or_else(|| serde_json::json!({})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old key keeps signing alongside the new one (default 86400).
    pub grace_seconds: Option<u32>,
    /// The new key's scheme (default: the webhook's current one). A different one changes
    /// the scheme with the grace period: both sign side by side until it ends.
    pub signature_scheme: Option<String>,
}

/// The new signing key: `secret` for `hmac`, `public_key` for `ed25519` (its private key is
/// never shown).
#[derive(Serialize, ToSchema)]
pub struct RotatedSecret {
    pub signature_scheme: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `whpk_` + base64 of the new ed25519 public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

pub const DEFAULT_GRACE_SECS: u32 = 24 * 3600;
const MAX_GRACE_SECS: u32 = 30 * 24 * 3600;

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks", operation_id = "webhooks.rotate_secret", request_body = Option<RotateSecret>,
    responses((status = 200, body = RotatedSecret)), security(("bearer" = [])))]
pub async fn rotate_secret(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<RotatedSecret>> {
    caller.require(Action::Write)?;
    let asked: RotateSecret = if body.is_empty() {
        RotateSecret {
            grace_seconds: None,
            signature_scheme: None,
        }
    } else {
        super::extract::parse_json_object(&body)?
    };
    let grace = asked.grace_seconds.unwrap_or(DEFAULT_GRACE_SECS);
    if grace > MAX_GRACE_SECS {
        return Err(ApiError::field(
            "grace_seconds",
            "must be at most 2592000 (30 days)",
        ));
    }
    let mut w = s
        .store
        .get_webhook(&caller.tenant, &parse_id(&id)?)
        .await
        .map_err(missing("webhook"))?;
    let scheme = match asked.signature_scheme.as_deref() {
        Some(raw) => parse_scheme(raw)?,
        None => w.signature_scheme(),
    };
    let now = now_millis();
    let expires = now + i64::from(grace) * 1000;
    let fresh = SigningKey::generate(scheme);
    let mut secrets = vec![stored(&fresh)];
    for mut old in w.secrets.drain(..) {
        old.expires_at = Some(old.expires_at.map_or(expires, |e| e.min(expires)));
        if old.expires_at.is_some_and(|e| e > now) {
            secrets.push(old);
        }
    }
    w.secrets = secrets;
    w.updated_at = now;
    s.store
        .update_webhook(&w, false)
        .await
        .map_err(missing("webhook"))?;
    Ok(Json(RotatedSecret {
        signature_scheme: scheme.as_str().to_owned(),
        secret: match &fresh {
            SigningKey::Hmac(secret) => Some(secret.expose().to_owned()),
            SigningKey::Ed25519(_) => None,
        },
        public_key: fresh.public_key(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    window: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookStatsView {
    pub webhook_id: String,
    pub window: String,
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    /// Successes / attempts, 0–1; null when there were no attempts.
    pub success_rate: Option<f64>,
    pub latency_p50_ms: Option<u32>,
    pub latency_p95_ms: Option<u32>,
}

/// `30s`, `15m`, `1h`, `7d` → milliseconds (at most 30 days).
pub fn parse_window(raw: &str) -> Option<i64> {
    // The unit is the last character, not byte: a multi-byte one must not split a character.
    let unit = raw.chars().last()?;
    let num = &raw[..raw.len() - unit.len_utf8()];
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let ms = n.checked_mul(match unit {
        's' => 1000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    })?;
    (ms <= 30 * 86_400_000).then_some(ms)
}

fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/stats", tag = "webhooks", operation_id = "webhooks.stats",
    params(("window" = Option<String>, Query, description = "e.g. 15m, 1h (default), 24h, 7d")),
    responses((status = 200, body = WebhookStatsView)), security(("bearer" = [])))]
pub async fn stats(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    StrictQuery(q): StrictQuery<StatsQuery>,
) -> ApiResult<Json<WebhookStatsView>> {
    caller.require(Action::Read)?;
    let window = q.window.unwrap_or_else(|| "1h".into());
    let ms = parse_window(&window).ok_or_else(|| {
        ApiError::field("window", "must be like 15m, 1h, 24h or 7d (at most 30d)")
    })?;
    let id = parse_id(&id)?;
    s.store
        .get_webhook(&caller.tenant, &id)
        .await
        .map_err(missing("webhook"))?;
    let st = s
        .store
        .webhook_stats(&caller.tenant, &id, now_millis() - ms)
        .await?;
    Ok(Json(WebhookStatsView {
        webhook_id: id.to_string(),
        window,
        attempts: st.attempts,
        successes: st.successes,
        failures: st.failures,
        success_rate: (st.attempts > 0).then(|| st.successes as f64 / st.attempts as f64),
        latency_p50_ms: percentile(&st.durations_ms, 0.50),
        latency_p95_ms: percentile(&st.durations_ms, 0.95),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_window("1h"), Some(3_600_000));
        assert_eq!(parse_window("15m"), Some(900_000));
        assert_eq!(parse_window("0h"), None);
        assert_eq!(parse_window("1w"), None);
        assert_eq!(parse_window("31d"), None);
        assert_eq!(parse_window(""), None);
        // A multi-byte last character is refused, not a panic (schemathesis found `window=\u{80}`).
        assert_eq!(parse_window("\u{80}"), None);
        assert_eq!(parse_window("1\u{e9}"), None);
        assert_eq!(parse_window("\u{e9}h"), None);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.95), Some(95));
        assert_eq!(percentile(&[7], 0.95), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
