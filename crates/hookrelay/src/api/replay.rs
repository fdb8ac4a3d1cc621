//! Replay: new deliveries of stored events — one event to all or chosen webhooks, or one
//! webhook's window of events (what it missed, what failed, or everything) after an outage.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hookrelay_domain::time::now_millis;
use hookrelay_domain::validate::FieldError;
use hookrelay_domain::{Action, EventId, WebhookId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::{parse_json_object, time_param, JsonBody};
use super::AppState;
use crate::feed::{Change, DeliveryChange};
use crate::store::ReplayMode;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events/{id}/replay", post(replay_event))
        .route("/api/v1/webhooks/{id}/replay", post(replay_webhook))
}

/// Most webhooks one event replay may name.
const MAX_WEBHOOK_IDS: usize = 1000;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReplayEvent {
    /// Webhooks to deliver to, whatever their filters. Absent: every webhook whose filters
    /// match the event now.
    pub webhook_ids: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    /// New deliveries created, each with a new delivery id.
    pub deliveries: u64,
    pub delivery_ids: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/events/{id}/replay", tag = "events", operation_id = "events.replay", request_body = ReplayEvent,
    description = "New deliveries of the stored event, due now, each with a new delivery id. A webhook named in `webhook_ids` gets the event whatever its filters; every id must be a webhook of the tenant (`422` on `webhook_ids[i]` otherwise). An empty body replays to every webhook whose filters match the event now.",
    responses((status = 202, body = Replayed), (status = 401), (status = 403, description = "the role may not write"),
              (status = 404, description = "no such event"), (status = 422, description = "a `webhook_ids` entry is malformed or not a webhook of the tenant")),
    security(("bearer" = [])))]
pub async fn replay_event(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    caller.require(Action::Write)?;
    let event_id = EventId::parse(&id).ok_or_else(|| ApiError::not_found("event"))?;
    // The body is optional: none (or only whitespace) replays to the matching webhooks.
    let body: ReplayEvent = if raw.iter().all(u8::is_ascii_whitespace) {
        ReplayEvent::default()
    } else {
        parse_json_object(&raw)?
    };
    let webhooks = match body.webhook_ids {
        None => None,
        Some(raw) => Some(checked_webhooks(&s, &caller, raw).await?),
    };
    let (event, _) = s
        .store
        .get_event(&caller.tenant, &event_id)
        .await
        .map_err(missing("event"))?;
    let created = s
        .store
        .replay_event(&caller.tenant, &event_id, webhooks.as_deref())
        .await
        .map_err(missing("event"))?;
    if !created.is_empty() {
        s.wake.notify_one();
    }
    if s.feed.is_watched() && !created.is_empty() {
        let now = now_millis();
        s.feed.publish(
            created
                .iter()
                .map(|c| {
                    Change::Delivery(DeliveryChange {
                        tenant_id: caller.tenant.clone(),
                        id: c.id.clone(),
                        event_id: event.id.clone(),
                        event_type: event.event_type.clone(),
                        webhook_id: c.webhook_id.clone(),
                        status: hookrelay_domain::DeliveryStatus::Pending,
                        attempts: 0,
                        next_attempt_at: Some(now),
                        last_response_status: None,
                        last_error: None,
                        created_at: Some(now),
                        updated_at: now,
                    })
                })
                .collect(),
        );
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Replayed {
            deliveries: created.len() as u64,
            delivery_ids: created.into_iter().map(|c| c.id.into_string()).collect(),
        }),
    ))
}

/// Every named webhook must parse and be the tenant's: a typo must not silently replay to
/// fewer webhooks than asked.
async fn checked_webhooks(
    s: &AppState,
    caller: &Caller,
    raw: Vec<String>,
) -> ApiResult<Vec<WebhookId>> {
    if raw.len() > MAX_WEBHOOK_IDS {
        return Err(ApiError::field(
            "webhook_ids",
            "may name at most 1000 webhooks",
        ));
    }
    let mut ids = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let field = format!("webhook_ids[{i}]");
        match WebhookId::parse(r) {
            None => errors.push(FieldError::new(field, "is not a webhook id (wh_…)")),
            Some(id) => match s.store.get_webhook(&caller.tenant, &id).await {
                Ok(_) => ids.push(id),
                Err(crate::store::StoreError::NotFound) => {
                    errors.push(FieldError::new(field, "no such webhook"))
                }
                Err(e) => return Err(e.into()),
            },
        }
    }
    if errors.is_empty() {
        ids.dedup();
        Ok(ids)
    } else {
        Err(ApiError::Validation(errors))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayWebhook {
    /// RFC 3339: events accepted at or after this time.
    pub since: String,
    /// RFC 3339: events accepted before this time (default: now).
    pub until: Option<String>,
    /// `missing` (default): events of the window it matches now but never had a delivery of;
    /// `failed`: those whose delivery to it failed and none has since succeeded or is pending;
    /// `all`: every event of the window it matches now.
    pub mode: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    pub queued: u64,
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/replay", tag = "webhooks", operation_id = "webhooks.replay", request_body = ReplayWebhook,
    description = "Re-delivers to this webhook the events of the window that it matches now (event-type patterns and payload filter), as new deliveries due now. Large windows are written in batches of 256 events, each committed on its own: workers start on the first while later ones are written.",
    responses((status = 202, body = Queued), (status = 401), (status = 403, description = "the role may not write"),
              (status = 404, description = "no such webhook"), (status = 422, description = "`since`/`until` not RFC 3339 or `until` before `since`; `mode` unknown")),
    security(("bearer" = [])))]
pub async fn replay_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReplayWebhook>,
) -> ApiResult<(StatusCode, Json<Queued>)> {
    caller.require(Action::Write)?;
    let webhook = WebhookId::parse(&id).ok_or_else(|| ApiError::not_found("webhook"))?;
    let since = time_param("since", &Some(body.since))?.unwrap_or_default();
    let until = time_param("until", &body.until)?;
    if until.is_some_and(|u| u < since) {
        return Err(ApiError::field("until", "must not be before since"));
    }
    let mode = match body.mode.as_deref() {
        None => ReplayMode::default(),
        Some(raw) => ReplayMode::parse(raw)
            .ok_or_else(|| ApiError::field("mode", "must be missing, failed or all"))?,
    };
    let queued = s
        .store
        .replay_webhook(&caller.tenant, &webhook, since, until, mode)
        .await
        .map_err(missing("webhook"))?;
    if queued > 0 {
        s.wake.notify_one();
    }
    Ok((StatusCode::ACCEPTED, Json(Queued { queued })))
}
