//! Emitting events (one or a batch) into the immutable log, with idempotency, and reading them
//! back. An event and its deliveries are durable before the `202` is sent.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_domain::time::{now_millis, parse_rfc3339};
use hookrelay_domain::validate::is_valid_event_type;
use hookrelay_domain::{Action, EventId, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::{page, parse_json_object, time_param, JsonBody, StrictQuery};
use super::quotas::event_quota;
use super::views::{DeliveryView, EventView, ListView};
use super::AppState;
use crate::destinations::catalog::TenantSchemas;
use crate::store::{Event, EventQuery, EventQuota, IngestOutcome, NewEvent};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(list).post(emit))
        .route("/api/v1/events/batch", post(emit_batch))
        .route("/api/v1/events/{id}", get(read))
}

/// An event as a client sends it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitEvent {
    /// Dotted event type, e.g. `member.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Any JSON value; `{}` when absent. Stored and delivered byte for byte as sent.
    #[schema(value_type = Object)]
    pub data: Option<Box<RawValue>>,
    /// The client's id for idempotency: a repeat in the same tenant creates nothing new.
    pub event_id: Option<String>,
    /// RFC 3339; defaults to the time of receipt.
    pub timestamp: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub id: String,
    /// Deliveries created: one per webhook whose filters match (paused ones included).
    pub deliveries: u32,
}

#[derive(Serialize, ToSchema)]
pub struct DuplicateAnswer {
    pub id: String,
    pub duplicate: bool,
}

const MAX_EVENT_ID_LEN: usize = 255;
pub const MAX_BATCH: usize = 1000;

/// Validates one incoming event into a `NewEvent` for `tenant`; `data` must satisfy the schema
/// its type has in the tenant's catalog, if any (`422` naming each failing `data.<path>`).
fn to_new_event(
    e: EmitEvent,
    header_key: Option<&str>,
    tenant: &TenantId,
    quota: EventQuota,
    schemas: &TenantSchemas,
) -> ApiResult<NewEvent> {
    if !is_valid_event_type(&e.event_type) {
        return Err(ApiError::field(
            "type",
            "must be a dotted event type like member.created (letters, digits, _ - :)",
        ));
    }
    if e.event_type
        .starts_with(hookrelay_domain::health::OPERATIONAL_PREFIX)
    {
        // hookrelay's own operational events: a client could otherwise forge an alert.
        return Err(ApiError::field(
            "type",
            "the hookrelay. prefix is reserved for the events hookrelay emits about itself",
        ));
    }
    let key = e.event_id.as_deref().or(header_key).map(str::to_owned);
    if let Some(k) = &key {
        if k.is_empty() || k.len() > MAX_EVENT_ID_LEN {
            return Err(ApiError::field("event_id", "must be 1-255 characters"));
        }
    }
    let now = now_millis();
    let timestamp = match &e.timestamp {
        Some(raw) => parse_rfc3339(raw)
            .ok_or_else(|| ApiError::field("timestamp", "must be an RFC 3339 time"))?,
        None => now,
    };
    let data = e
        .data
        .map_or_else(|| String::from("{}"), |raw| raw.get().to_owned());
    schemas
        .validate_raw(&e.event_type, &data)
        .map_err(ApiError::Validation)?;
    Ok(NewEvent {
        event: Event {
            id: EventId::generate(),
            tenant_id: tenant.clone(),
            event_type: e.event_type,
            source: None,
            idempotency_key: key,
            data,
            timestamp,
            created_at: now,
        },
        only_webhook: None,
        lease: None,
        quota,
    })
}

fn quota_error(limit: &str, retry_after_secs: u64) -> ApiError {
    ApiError::QuotaExceeded {
        message: format!("the tenant's {limit} quota is used up"),
        retry_after_secs,
    }
}

fn idempotency_header(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII")),
    }
}

fn answer(outcome: IngestOutcome) -> Response {
    match outcome {
        IngestOutcome::Accepted { id, deliveries, .. } => (
            StatusCode::ACCEPTED,
            Json(Accepted {
                id: id.to_string(),
                deliveries,
            }),
        )
            .into_response(),
        IngestOutcome::Duplicate { id } => (
            StatusCode::OK,
            Json(DuplicateAnswer {
                id: id.to_string(),
                duplicate: true,
            }),
        )
            .into_response(),
        IngestOutcome::QuotaExceeded {
            limit,
            retry_after_secs,
        } => quota_error(limit, retry_after_secs).into_response(),
    }
}

#[utoipa::path(post, path = "/api/v1/events", tag = "events", operation_id = "events.emit", request_body = EmitEvent,
    params(("Idempotency-Key" = Option<String>, Header, description = "used when the body has no event_id")),
    responses((status = 202, body = Accepted, description = "stored with its deliveries"),
              (status = 200, body = DuplicateAnswer, description = "a repeat of an event already accepted"),
              (status = 422, description = "invalid field, or `data` fails the JSON Schema of its type in the event catalog: one `details` entry per failure, `field` = `data.<path>`")),
    security(("bearer" = [])))]
pub async fn emit(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<EmitEvent>,
) -> ApiResult<Response> {
    caller.require(Action::Publish)?;
    let quota = event_quota(&s, &caller.tenant).await?;
    let schemas = s
        .schemas
        .for_tenant(s.store.as_ref(), &caller.tenant)
        .await?;
    let new = to_new_event(
        body,
        idempotency_header(&headers)?,
        &caller.tenant,
        quota,
        &schemas,
    )?;
    let outcome = s.ingestor.submit(vec![new]).await?;
    let first = outcome
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("no ingest outcome".into()))?;
    if let IngestOutcome::Accepted { id, .. } | IngestOutcome::Duplicate { id } = &first {
        // Finds the event's delivery attempts (spans of their own) from the request's trace.
        crate::telemetry::annotate_current("hookrelay.event_id", id);
    }
    Ok(answer(first))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitBatch {
    /// Up to 1000 events, each shaped like `POST /api/v1/events`.
    #[schema(value_type = Vec<EmitEvent>)]
    pub events: Vec<Box<RawValue>>,
}

/// The answer to a batch: one result per input, in order.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<BatchResult>,
}

/// An input's fate: accepted (or a duplicate of an accepted event), or refused with the error
/// it would have had alone (`validation_failed`, `invalid_json`, `quota_exceeded`...).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchResult {
    Accepted {
        id: String,
        deliveries: u32,
        duplicate: bool,
    },
    Refused {
        #[schema(value_type = super::error::ErrorObject)]
        error: serde_json::Value,
    },
}

impl BatchResult {
    fn refused(error: &ApiError) -> Self {
        let mut body = error.body();
        Self::Refused {
            error: body["error"].take(),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/events/batch", tag = "events", operation_id = "events.emit_batch", request_body = EmitBatch,
    responses((status = 202, body = BatchAnswer, description = "per input, in order, `{id, deliveries, duplicate}` or `{error}`; a refused input does not stop the others"),
              (status = 422, description = "`validation_failed`: `events` is empty or holds more than 1000 entries, or the body has a field besides `events`")),
    security(("bearer" = [])))]
pub async fn emit_batch(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<EmitBatch>,
) -> ApiResult<Response> {
    caller.require(Action::Publish)?;
    if body.events.is_empty() || body.events.len() > MAX_BATCH {
        return Err(ApiError::field("events", "must hold 1 to 1000 events"));
    }
    let quota = event_quota(&s, &caller.tenant).await?;
    let schemas = s
        .schemas
        .for_tenant(s.store.as_ref(), &caller.tenant)
        .await?;
    // Validate each entry; refused ones get their error in place, the rest go in one commit.
    let mut results: Vec<Option<BatchResult>> = Vec::with_capacity(body.events.len());
    let mut accepted = Vec::with_capacity(body.events.len());
    for (i, raw) in body.events.into_iter().enumerate() {
        let parsed = parse_json_object::<EmitEvent>(raw.get().as_bytes()).map_err(|e| match e {
            ApiError::InvalidJson(_) => {
                ApiError::InvalidJson("each event must be a JSON object".into())
            }
            other => other,
        });
        match parsed.and_then(|e| to_new_event(e, None, &caller.tenant, quota, &schemas)) {
            Ok(new) => {
                results.push(None);
                accepted.push((i, new));
            }
            Err(err) => results.push(Some(BatchResult::refused(&err))),
        }
    }
    let (slots, events): (Vec<usize>, Vec<NewEvent>) = accepted.into_iter().unzip();
    if !events.is_empty() {
        let outcomes = s.ingestor.submit(events).await?;
        for (slot, outcome) in slots.into_iter().zip(outcomes) {
            results[slot] = Some(match outcome {
                IngestOutcome::Accepted { id, deliveries, .. } => BatchResult::Accepted {
                    id: id.to_string(),
                    deliveries,
                    duplicate: false,
                },
                IngestOutcome::Duplicate { id } => BatchResult::Accepted {
                    id: id.to_string(),
                    deliveries: 0,
                    duplicate: true,
                },
                IngestOutcome::QuotaExceeded {
                    limit,
                    retry_after_secs,
                } => BatchResult::refused(&quota_error(limit, retry_after_secs)),
            });
        }
    }
    // Refused inputs were filled above, the others by their outcome (one per submitted event).
    let results = results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| BatchResult::refused(&ApiError::Internal("no outcome".into())))
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(BatchAnswer { results })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    source: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events", operation_id = "events.list",
    params(("type" = Option<String>, Query), ("source" = Option<String>, Query), ("since" = Option<String>, Query, description = "RFC 3339"),
           ("until" = Option<String>, Query, description = "RFC 3339"), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<EventView>, description = "newest first; at most `limit` events, fewer (with a `next_cursor`) once the page holds 4 MiB of `data`")), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult<Json<ListView<EventView>>> {
    caller.require(Action::Read)?;
    let query = EventQuery {
        event_type: q.event_type,
        source: q.source,
        since: time_param("since", &q.since)?,
        until: time_param("until", &q.until)?,
    };
    let page = s
        .store
        .list_events(&caller.tenant, &query, &page(q.limit, q.cursor)?)
        .await?;
    Ok(Json(ListView::of(&page)))
}

#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events", operation_id = "events.get",
    responses((status = 200, body = EventView, description = "the event with its deliveries"), (status = 404)),
    security(("bearer" = [])))]
pub async fn read(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<EventView>> {
    caller.require(Action::Read)?;
    let id = EventId::parse(&id).ok_or_else(|| ApiError::not_found("event"))?;
    let (event, deliveries) = s
        .store
        .get_event(&caller.tenant, &id)
        .await
        .map_err(missing("event"))?;
    let mut view = EventView::from(&event);
    view.deliveries = Some(deliveries.iter().map(DeliveryView::from).collect());
    Ok(Json(view))
}
