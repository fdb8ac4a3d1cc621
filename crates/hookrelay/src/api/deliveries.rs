//! Deliveries and the dead-letter queue: listing with filters, one delivery with its event and
//! attempts, and the retry actions (single, from the DLQ, and bulk after an outage).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_domain::{Action, DeliveryId, DeliveryStatus, EventId, WebhookId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::{page, time_param, JsonBody, StrictQuery};
use super::views::{raw_json, AttemptView, DeliveryView, DlqEntryView, ListView};
use super::AppState;
use crate::store::{DeliveryQuery, DlqQuery};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/deliveries", get(list))
        .route("/api/v1/deliveries/{id}", get(read))
        .route("/api/v1/deliveries/{id}/retry", post(retry))
        .route("/api/v1/dlq", get(list_dlq))
        .route("/api/v1/dlq/retry", post(retry_dlq_bulk))
        .route("/api/v1/dlq/{delivery_id}/retry", post(retry_dlq))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    event_type: Option<String>,
    webhook_id: Option<String>,
    source: Option<String>,
    since: Option<String>,
    until: Option<String>,
    event_id: Option<String>,
    delivery_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn parse_delivery_id(raw: &str) -> ApiResult<DeliveryId> {
    DeliveryId::parse(raw).ok_or_else(|| ApiError::not_found("delivery"))
}

/// A webhook id in a filter: a malformed one simply matches nothing.
fn webhook_filter(raw: Option<String>) -> ApiResult<Option<WebhookId>> {
    raw.map(|w| {
        WebhookId::parse(&w)
            .ok_or_else(|| ApiError::field("webhook_id", "is not a webhook id (wh_…)"))
    })
    .transpose()
}

#[utoipa::path(get, path = "/api/v1/deliveries", tag = "deliveries", operation_id = "deliveries.list",
    params(("status" = Option<String>, Query, description = "pending, succeeded, failed or cancelled"), ("event_type" = Option<String>, Query),
           ("webhook_id" = Option<String>, Query), ("source" = Option<String>, Query), ("since" = Option<String>, Query, description = "RFC 3339: created at or after"),
           ("until" = Option<String>, Query, description = "RFC 3339: created before"),
           ("event_id" = Option<String>, Query, description = "only this event's deliveries"),
           ("delivery_id" = Option<String>, Query, description = "only this delivery (a search box finds it by id)"),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<DeliveryView>), (status = 401),
              (status = 422, description = "a filter is malformed (`status`, `webhook_id`, `event_id`, `delivery_id`, `since`, `until`)")),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult<Json<ListView<DeliveryView>>> {
    caller.require(Action::Read)?;
    let status = q
        .status
        .map(|st| {
            DeliveryStatus::parse(&st).ok_or_else(|| {
                ApiError::field("status", "must be pending, succeeded, failed or cancelled")
            })
        })
        .transpose()?;
    let query = DeliveryQuery {
        status,
        event_type: q.event_type,
        webhook_id: webhook_filter(q.webhook_id)?,
        source: q.source,
        since: time_param("since", &q.since)?,
        until: time_param("until", &q.until)?,
        event_id: q
            .event_id
            .map(|e| {
                EventId::parse(&e)
                    .ok_or_else(|| ApiError::field("event_id", "is not an event id (evt_…)"))
            })
            .transpose()?,
        delivery_id: q
            .delivery_id
            .map(|d| {
                DeliveryId::parse(&d)
                    .ok_or_else(|| ApiError::field("delivery_id", "is not a delivery id (dlv_…)"))
            })
            .transpose()?,
    };
    let page = s
        .store
        .list_deliveries(&caller.tenant, &query, &page(q.limit, q.cursor)?)
        .await?;
    Ok(Json(ListView::of(&page)))
}

/// One delivery with its event and every attempt: the fields of a delivery in a list, except
/// that `attempts` is the array of attempts and the count is `attempt_count`.
#[derive(Serialize, ToSchema)]
pub struct DeliveryDetail {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub webhook_id: String,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts made so far.
    pub attempt_count: u32,
    pub attempts: Vec<AttemptView>,
    pub next_attempt_at: Option<String>,
    pub last_response_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub event: DeliveredEvent,
    /// What this delivery posts, for reproducing an attempt by hand (the dashboard's "Copy as
    /// curl"); null when its webhook was deleted, is not posted over HTTP (brokers, `relay`), or
    /// its template or transform fails to render.
    pub request: Option<SentRequest>,
}

/// The request a delivery sends (the headers differ per attempt: see `attempts[].request_headers`).
#[derive(Serialize, ToSchema)]
pub struct SentRequest {
    /// `POST`.
    pub method: String,
    /// The webhook's URL now (an edit since an attempt changes it; credentials are redacted).
    pub url: String,
    /// The body, rendered now from the event and the webhook's current transform or template:
    /// the bytes each attempt sent unless the webhook was edited since.
    pub body: String,
}

/// The request of `delivery` to its webhook as it is now, or None (see `DeliveryDetail::request`).
async fn sent_request(
    s: &AppState,
    tenant: &hookrelay_domain::TenantId,
    delivery: &crate::store::Delivery,
    event: &crate::store::Event,
) -> ApiResult<Option<SentRequest>> {
    let webhook = match s.store.get_webhook(tenant, &delivery.webhook_id).await {
        Ok(w) => w,
        Err(crate::store::StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if webhook.kind.is_broker() || webhook.kind == hookrelay_domain::WebhookKind::Relay {
        return Ok(None);
    }
    let url = crate::destinations::broker::redact_url(&webhook.url);
    let claim = crate::store::DeliveryClaim {
        delivery_id: delivery.id.clone(),
        tenant_id: tenant.clone(),
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        event_timestamp: event.timestamp,
        data: event.data.as_str().into(),
        attempts_made: 0,
        created_at: delivery.created_at,
        webhook: std::sync::Arc::new(webhook),
        tenant_quotas: Default::default(),
    };
    // A render failure is already each attempt's recorded error; there is no request to show.
    Ok(crate::delivery::Sender::body(&claim)
        .ok()
        .map(|body| SentRequest {
            method: "POST".into(),
            url,
            body: String::from_utf8_lossy(&body).into_owned(),
        }))
}

/// The event a delivery carries.
#[derive(Serialize, ToSchema)]
pub struct DeliveredEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub data: Box<serde_json::value::RawValue>,
}

#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "deliveries", operation_id = "deliveries.get",
    responses((status = 200, body = DeliveryDetail, description = "the delivery with `event` and `attempts` (an array of attempts replaces the count, which is `attempt_count`)"), (status = 404, description = "`not_found`: no such delivery")),
    security(("bearer" = [])))]
pub async fn read(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryDetail>> {
    caller.require(Action::Read)?;
    let (delivery, event, attempts) = s
        .store
        .get_delivery(&caller.tenant, &parse_delivery_id(&id)?)
        .await
        .map_err(missing("delivery"))?;
    let request = sent_request(&s, &caller.tenant, &delivery, &event).await?;
    // Every field of the list view, so a new one there does not go missing here.
    let DeliveryView {
        id,
        event_id,
        event_type,
        webhook_id,
        status,
        attempts: attempt_count,
        next_attempt_at,
        last_response_status,
        last_error,
        created_at,
        delivered_at,
    } = DeliveryView::from(&delivery);
    Ok(Json(DeliveryDetail {
        id,
        event_id,
        event_type,
        webhook_id,
        status,
        attempt_count,
        attempts: attempts.iter().map(AttemptView::from).collect(),
        next_attempt_at,
        last_response_status,
        last_error,
        created_at,
        delivered_at,
        event: DeliveredEvent {
            id: event.id.to_string(),
            event_type: event.event_type,
            timestamp: hookrelay_domain::time::to_rfc3339(event.timestamp),
            data: raw_json(&event.data),
        },
        request,
    }))
}

/// A retry was queued.
#[derive(Serialize, ToSchema)]
pub struct RetryQueued {
    pub delivery_id: String,
    /// `pending`.
    pub status: String,
}

fn retry_queued(id: DeliveryId) -> (StatusCode, Json<RetryQueued>) {
    (
        StatusCode::ACCEPTED,
        Json(RetryQueued {
            delivery_id: id.to_string(),
            status: "pending".into(),
        }),
    )
}

#[utoipa::path(post, path = "/api/v1/deliveries/{id}/retry", tag = "deliveries", operation_id = "deliveries.retry",
    responses((status = 202, body = RetryQueued, description = "a new attempt is queued now, whatever the status"), (status = 404, description = "`not_found`: no such delivery"),
              (status = 409, description = "the delivery's webhook was deleted")),
    security(("bearer" = [])))]
pub async fn retry(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RetryQueued>)> {
    caller.require(Action::Write)?;
    let id = parse_delivery_id(&id)?;
    s.store
        .retry_delivery(&caller.tenant, &id)
        .await
        .map_err(missing("delivery"))?;
    s.wake.notify_one();
    Ok(retry_queued(id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqQueryParams {
    webhook_id: Option<String>,
    event_type: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/dlq", tag = "dlq", operation_id = "dlq.list",
    params(("webhook_id" = Option<String>, Query), ("event_type" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<DlqEntryView>)), security(("bearer" = [])))]
pub async fn list_dlq(
    State(s): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<DlqQueryParams>,
) -> ApiResult<Json<ListView<DlqEntryView>>> {
    caller.require(Action::Read)?;
    let query = DlqQuery {
        webhook_id: webhook_filter(q.webhook_id)?,
        event_type: q.event_type,
    };
    let page = s
        .store
        .list_dlq(&caller.tenant, &query, &page(q.limit, q.cursor)?)
        .await?;
    Ok(Json(ListView::of(&page)))
}

#[utoipa::path(post, path = "/api/v1/dlq/{delivery_id}/retry", tag = "dlq", operation_id = "dlq.retry",
    responses((status = 202, body = RetryQueued, description = "back to pending, attempted now"), (status = 404, description = "`not_found`: no such failed delivery")),
    security(("bearer" = [])))]
pub async fn retry_dlq(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RetryQueued>)> {
    caller.require(Action::Write)?;
    let id = parse_delivery_id(&id)?;
    s.store
        .retry_dlq_delivery(&caller.tenant, &id)
        .await
        .map_err(missing("failed delivery"))?;
    s.wake.notify_one();
    Ok(retry_queued(id))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRetry {
    pub webhook_id: Option<String>,
    /// RFC 3339: only deliveries that failed at or after this time.
    pub since: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    pub queued: u64,
}

#[utoipa::path(post, path = "/api/v1/dlq/retry", tag = "dlq", operation_id = "dlq.retry_bulk", request_body = BulkRetry,
    responses((status = 202, body = Queued)), security(("bearer" = [])))]
pub async fn retry_dlq_bulk(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<BulkRetry>,
) -> ApiResult<(StatusCode, Json<Queued>)> {
    caller.require(Action::Write)?;
    let webhook = webhook_filter(body.webhook_id)?;
    let since = time_param("since", &body.since)?;
    let queued = s
        .store
        .retry_dlq_bulk(&caller.tenant, webhook.as_ref(), since)
        .await?;
    if queued > 0 {
        s.wake.notify_one();
    }
    Ok((StatusCode::ACCEPTED, Json(Queued { queued })))
}
