//! Inbound sources: CRUD (per tenant, the secret shown only at creation) and the requests log an
//! operator reads when a provider says it delivered but nothing happened. Views live here too.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_domain::time::{now_millis, to_rfc3339};
use hookrelay_domain::validate::FieldError;
use hookrelay_domain::{Action, SourceId};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::{page, JsonBody, StrictQuery};
use super::ingest::is_source_name;
use super::views::{raw_json, ListView};
use super::AppState;
use crate::config::{Config, Environment};
use crate::inbound::{Provider, ProviderConfig};
use crate::store::{InboundRequest, InboundRequestQuery, InboundStatus, Source};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sources", get(list).post(create))
        .route(
            "/api/v1/sources/{id}",
            get(read).patch(update).delete(remove),
        )
        .route("/api/v1/sources/{id}/requests", get(requests))
}

/// The contract's default: 100 requests a minute, bursts of 100.
pub const DEFAULT_RATE_LIMIT_PER_MIN: u32 = 100;
pub const MAX_RATE_LIMIT_PER_MIN: u32 = 10_000_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    /// `[a-z0-9_-]{1,64}`, unique across the server: the ingest URL is `/ingest/{name}`.
    pub name: String,
    /// `github`, `stripe`, `paypal`, `standard`, `hmac` or `none`.
    pub provider: String,
    /// The shared signing secret: required for github, stripe, hmac and standard (`whsec_…`),
    /// refused for paypal and none.
    pub secret: Option<String>,
    /// Provider settings: `{}` for github, stripe and standard; `{webhook_id}` for paypal;
    /// `{header, algorithm?, encoding?, prefix?, timestamp_header?, signed_payload?, type_path? |
    /// type_header?, id_path? | id_header?}` for hmac; `{type_path? | type_header?, id_path? |
    /// id_header?}` for none.
    #[schema(value_type = Object)]
    pub config: Option<Value>,
    /// Only for `none`: required to create or use an unsigned source when `HOOKRELAY_ENV=prod`.
    pub allow_unsigned: Option<bool>,
    /// Requests a minute this source accepts per node (bursts of the same size); default 100.
    pub rate_limit_per_min: Option<u32>,
    /// `false` pauses the source: requests are refused with `503` (and logged).
    pub active: Option<bool>,
}

/// Any field but `id`. Changing `provider` resets `config` unless it is given too;
/// `"secret": null` removes the secret (for a change to paypal or none).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSource {
    pub name: Option<String>,
    pub provider: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub secret: Option<Option<String>>,
    #[schema(value_type = Object)]
    pub config: Option<Value>,
    pub allow_unsigned: Option<bool>,
    pub rate_limit_per_min: Option<u32>,
    pub active: Option<bool>,
}

fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct SourceView {
    pub id: String,
    pub name: String,
    pub provider: String,
    /// The provider settings with defaults filled in.
    #[schema(value_type = Object)]
    pub config: Value,
    pub active: bool,
    pub allow_unsigned: bool,
    pub rate_limit_per_min: u32,
    /// Where the provider must post: `HOOKRELAY_PUBLIC_URL` (or the request's `Host`) +
    /// `/ingest/{name}`.
    pub ingest_url: String,
    pub created_at: String,
    pub updated_at: String,
    /// The secret: present only in the answer that created the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl SourceView {
    fn of(s: &Source, base_url: &str) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name.clone(),
            provider: s.provider.clone(),
            config: s.config.clone(),
            active: s.active,
            allow_unsigned: s.allow_unsigned,
            rate_limit_per_min: s.rate_limit_per_min,
            ingest_url: format!("{base_url}/ingest/{}", s.name),
            created_at: to_rfc3339(s.created_at),
            updated_at: to_rfc3339(s.updated_at),
            secret: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InboundRequestView {
    pub id: String,
    pub received_at: String,
    /// `accepted`, `duplicate`, `rejected` or `rate_limited`.
    pub status: String,
    /// Why it was rejected or rate limited.
    pub reason: Option<String>,
    /// The event it became (for a duplicate, the first copy's event).
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// The provider's id of the delivery (`X-GitHub-Delivery`, Stripe's event id, …).
    pub provider_id: Option<String>,
    /// The `X-Request-Id` hookrelay answered with.
    pub request_id: Option<String>,
    /// Selected headers (content type, user agent, the provider's signature and id headers);
    /// never credentials such as `Authorization` or cookies.
    #[schema(value_type = Object)]
    pub headers: Box<RawValue>,
    /// The raw body (first 256 KiB; 4 KiB when rate limited). Null when the body is the
    /// event's `data` verbatim.
    pub body: Option<String>,
    pub body_truncated: bool,
    pub body_size: u64,
}

impl From<&InboundRequest> for InboundRequestView {
    fn from(r: &InboundRequest) -> Self {
        Self {
            id: r.id.to_string(),
            received_at: to_rfc3339(r.received_at),
            status: r.status.as_str().to_owned(),
            reason: r.reason.clone(),
            event_id: r.event_id.as_ref().map(ToString::to_string),
            event_type: r.event_type.clone(),
            provider_id: r.provider_id.clone(),
            request_id: r.request_id.clone(),
            headers: raw_json(&r.headers),
            body: r.body.clone(),
            body_truncated: r.body_truncated,
            body_size: r.body_size,
        }
    }
}

/// The base of ingest URLs: the configured public URL, else what the caller reached us as.
fn base_url(config: &Config, headers: &HeaderMap) -> String {
    if let Some(url) = &config.public_url {
        return url.clone();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let sane_host = |h: &&str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    };
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let host = header("host")
        .filter(sane_host)
        .map(str::to_owned)
        .unwrap_or_else(|| config.listen.to_string());
    format!("{scheme}://{host}")
}

fn parse_id(raw: &str) -> ApiResult<SourceId> {
    SourceId::parse(raw).ok_or_else(|| ApiError::not_found("source"))
}

/// Checks a source as it would be stored and normalises its settings; collects every problem.
fn validate(s: &mut Source, config: &Config) -> ApiResult<()> {
    let mut errors = Vec::new();
    if !is_source_name(&s.name) {
        errors.push(FieldError::new(
            "name",
            "must be 1-64 characters of a-z, 0-9, - and _",
        ));
    }
    match ProviderConfig::parse(&s.provider, &s.config) {
        Ok(parsed) => {
            if let Err(e) = parsed.check_secret(s.secret.as_deref()) {
                errors.push(e);
            }
            s.config = parsed.to_json();
        }
        Err(mut e) => errors.append(&mut e),
    }
    let unsigned = s.provider == Provider::None.as_str();
    if s.allow_unsigned && !unsigned {
        errors.push(FieldError::new(
            "allow_unsigned",
            "only applies to provider none",
        ));
    }
    if unsigned && config.env == Environment::Prod && !s.allow_unsigned {
        errors.push(FieldError::new(
            "provider",
            "none accepts unverified requests: refused in prod unless allow_unsigned is true",
        ));
    }
    if !(1..=MAX_RATE_LIMIT_PER_MIN).contains(&s.rate_limit_per_min) {
        errors.push(FieldError::new(
            "rate_limit_per_min",
            "must be between 1 and 10000000",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

#[utoipa::path(post, path = "/api/v1/sources", tag = "sources", operation_id = "sources.create", request_body = CreateSource,
    responses((status = 201, body = SourceView, description = "the source with its `ingest_url`, and `secret` this once"),
              (status = 409, description = "a source with this name exists (names are unique across tenants)"),
              (status = 422, description = "a field is invalid")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateSource>,
) -> ApiResult<(StatusCode, Json<SourceView>)> {
    caller.require(Action::Write)?;
    let now = now_millis();
    let mut source = Source {
        id: SourceId::generate(),
        tenant_id: caller.tenant.clone(),
        name: body.name,
        provider: body.provider,
        config: body.config.unwrap_or(Value::Null),
        secret: body.secret,
        active: body.active.unwrap_or(true),
        allow_unsigned: body.allow_unsigned.unwrap_or(false),
        rate_limit_per_min: body
            .rate_limit_per_min
            .unwrap_or(DEFAULT_RATE_LIMIT_PER_MIN),
        created_at: now,
        updated_at: now,
    };
    validate(&mut source, &s.config)?;
    s.store.create_source(&source).await?;
    s.inbound.forget(&source.name);
    let mut view = SourceView::of(&source, &base_url(&s.config, &headers));
    view.secret = source.secret.clone();
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/sources", tag = "sources", operation_id = "sources.list",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<SourceView>)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult<Json<ListView<SourceView>>> {
    caller.require(Action::Read)?;
    let page = s
        .store
        .list_sources(&caller.tenant, &page(q.limit, q.cursor)?)
        .await?;
    let base = base_url(&s.config, &headers);
    Ok(Json(ListView {
        data: page
            .items
            .iter()
            .map(|x| SourceView::of(x, &base))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/sources/{id}", tag = "sources", operation_id = "sources.get",
    responses((status = 200, body = SourceView), (status = 404)), security(("bearer" = [])))]
pub async fn read(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<SourceView>> {
    caller.require(Action::Read)?;
    let source = s
        .store
        .get_source(&caller.tenant, &parse_id(&id)?)
        .await
        .map_err(missing("source"))?;
    Ok(Json(SourceView::of(
        &source,
        &base_url(&s.config, &headers),
    )))
}

#[utoipa::path(patch, path = "/api/v1/sources/{id}", tag = "sources", operation_id = "sources.update", request_body = UpdateSource,
    responses((status = 200, body = SourceView, description = "never includes the secret"),
              (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateSource>,
) -> ApiResult<Json<SourceView>> {
    caller.require(Action::Write)?;
    let mut source = s
        .store
        .get_source(&caller.tenant, &parse_id(&id)?)
        .await
        .map_err(missing("source"))?;
    let old_name = source.name.clone();
    if let Some(name) = body.name {
        source.name = name;
    }
    if let Some(provider) = body.provider {
        if provider != source.provider {
            source.config = Value::Null;
        }
        source.provider = provider;
    }
    if let Some(config) = body.config {
        source.config = config;
    }
    if let Some(secret) = body.secret {
        source.secret = secret;
    }
    if let Some(a) = body.allow_unsigned {
        source.allow_unsigned = a;
    }
    if let Some(r) = body.rate_limit_per_min {
        source.rate_limit_per_min = r;
    }
    if let Some(a) = body.active {
        source.active = a;
    }
    validate(&mut source, &s.config)?;
    source.updated_at = now_millis();
    s.store
        .update_source(&source)
        .await
        .map_err(missing("source"))?;
    s.inbound.forget(&old_name);
    s.inbound.forget(&source.name);
    Ok(Json(SourceView::of(
        &source,
        &base_url(&s.config, &headers),
    )))
}

#[utoipa::path(delete, path = "/api/v1/sources/{id}", tag = "sources", operation_id = "sources.delete",
    responses((status = 204, description = "deleted with its requests log; its events stay"), (status = 404)),
    security(("bearer" = [])))]
pub async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Action::Write)?;
    let id = parse_id(&id)?;
    let source = s
        .store
        .get_source(&caller.tenant, &id)
        .await
        .map_err(missing("source"))?;
    s.store
        .delete_source(&caller.tenant, &id)
        .await
        .map_err(missing("source"))?;
    s.inbound.forget(&source.name);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/sources/{id}/requests", tag = "sources", operation_id = "sources.list_requests",
    params(("status" = Option<String>, Query, description = "accepted, duplicate, rejected or rate_limited"),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<InboundRequestView>, description = "newest first; entries older than `HOOKRELAY_INBOUND_LOG_RETENTION_HOURS` are pruned; a page ends early (with a `next_cursor`) once it holds 4 MiB of bodies and headers"),
              (status = 404)),
    security(("bearer" = [])))]
pub async fn requests(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    StrictQuery(q): StrictQuery<RequestsQuery>,
) -> ApiResult<Json<ListView<InboundRequestView>>> {
    caller.require(Action::Read)?;
    let id = parse_id(&id)?;
    let status = q
        .status
        .as_deref()
        .map(|raw| {
            InboundStatus::parse(raw).ok_or_else(|| {
                ApiError::field(
                    "status",
                    "must be accepted, duplicate, rejected or rate_limited",
                )
            })
        })
        .transpose()?;
    s.store
        .get_source(&caller.tenant, &id)
        .await
        .map_err(missing("source"))?;
    let page = s
        .store
        .list_inbound_requests(
            &caller.tenant,
            &id,
            &InboundRequestQuery { status },
            &page(q.limit, q.cursor)?,
        )
        .await?;
    Ok(Json(ListView::of(&page)))
}
