//! `hookrelay listen`'s two routes: the listener of a `relay` webhook holds `GET …/connect` open
//! (Server-Sent Events, one per attempt to forward) and posts each local answer to `…/results`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::Router;
use futures::{Stream, StreamExt};
use hookrelay_domain::{Action, WebhookId, WebhookKind};
use serde_json::json;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::JsonBody;
use super::AppState;
use crate::delivery::relay::RelayAnswer;
use crate::store::Webhook;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/relay/{id}/connect", get(connect))
        .route("/api/v1/relay/{id}/results", post(results))
}

/// Comment lines this often keep proxies from closing an idle stream, and let the server
/// notice a listener that went away.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The caller's webhook `id`, which must be of kind `relay`.
async fn relay_webhook(s: &AppState, caller: &Caller, id: &str) -> ApiResult<Webhook> {
    let id = WebhookId::parse(id).ok_or_else(|| ApiError::not_found("webhook"))?;
    let w = s
        .store
        .get_webhook(&caller.tenant, &id)
        .await
        .map_err(missing("webhook"))?;
    if w.kind != WebhookKind::Relay {
        return Err(ApiError::Conflict(format!(
            "webhook {} is of kind {}, not relay",
            w.id,
            w.kind.as_str()
        )));
    }
    Ok(w)
}

#[utoipa::path(get, path = "/api/v1/relay/{id}/connect", tag = "relay", operation_id = "relay.connect",
    params(("id" = String, Path, description = "a webhook of kind `relay`")),
    responses((status = 200, content_type = "text/event-stream", description = "Server-Sent Events, each `data:` one JSON object, for as long as the connection stays open:\n\n\
* `event: ready` `{webhook_id, listeners, released}`, first: `listeners` counts the connections now held for this webhook on this node (they take turns), `released` the pending deliveries that waited for a retry and were made due at once;\n\
* `event: delivery` `{token, delivery_id, event_type, attempt, headers, body}`: an attempt to forward: POST `body` (the exact signed bytes) with every header of `headers` (signatures included) to the local receiver, then report its answer with `token` to `POST /api/v1/relay/{id}/results` within the delivery timeout (`HOOKRELAY_DELIVERY_TIMEOUT_MS`), or the attempt fails as a timeout;\n\
* `: keep-alive` comments every 15 s.\n\n\
Closing the connection disconnects the listener: its unanswered attempts fail at once as timeouts. Listeners are held in the memory of the node they connect to, and a relay delivery goes to a listener of the node whose worker claimed it: connect to a node that runs workers (`--role all`, the default)."),
              (status = 401, description = "`unauthorized`"), (status = 403, description = "`forbidden`: the role may not write"),
              (status = 404, description = "`not_found`: no such webhook in the tenant"),
              (status = 409, description = "`conflict`: the webhook is not of kind `relay`")),
    security(("bearer" = [])))]
pub async fn connect(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require(Action::Write)?;
    let w = relay_webhook(&s, &caller, &id).await?;
    let hub = s.sender.relay().clone();
    let subscription = hub.subscribe(w.id.as_str());
    // Subscribed first: the deliveries released now find this listener when claimed.
    let released = s.store.release_waiting(&caller.tenant, &w.id).await?;
    if released > 0 {
        s.wake.notify_one();
    }
    let ready = Event::default().event("ready").data(
        json!({"webhook_id": w.id, "listeners": hub.listeners(w.id.as_str()), "released": released})
            .to_string(),
    );
    let closed = s.feed.closed().clone();
    let deliveries = futures::stream::unfold(subscription, move |mut sub| {
        let closed = closed.clone();
        async move {
            let message = tokio::select! {
                _ = closed.cancelled() => None,
                m = sub.messages.recv() => m,
            }?;
            let data = serde_json::to_string(&message).unwrap_or_default();
            Some((Ok(Event::default().event("delivery").data(data)), sub))
        }
    });
    let events = futures::stream::once(async move { Ok(ready) }).chain(deliveries);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

#[utoipa::path(post, path = "/api/v1/relay/{id}/results", tag = "relay", operation_id = "relay.results",
    params(("id" = String, Path, description = "a webhook of kind `relay`")),
    request_body = RelayAnswer,
    responses((status = 204, description = "recorded as the attempt's outcome: `status` as its response status (2xx succeeds; anything else, or `error`, fails and is retried like an http attempt), `body` (first 4 KiB kept) as its response body, `duration_ms` as its duration"),
              (status = 400, description = "`invalid_json`"), (status = 401, description = "`unauthorized`"), (status = 403, description = "`forbidden`"),
              (status = 404, description = "`not_found`: no such webhook, or no attempt waits for this `token` (it timed out already, was answered, or is another webhook's)"),
              (status = 409, description = "`conflict`: the webhook is not of kind `relay`"),
              (status = 422, description = "`validation_failed`: a field of the wrong type, or an unknown one")),
    security(("bearer" = [])))]
pub async fn results(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(answer): JsonBody<RelayAnswer>,
) -> ApiResult<StatusCode> {
    caller.require(Action::Write)?;
    let w = relay_webhook(&s, &caller, &id).await?;
    if s.sender.relay().complete(w.id.as_str(), answer) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(
            "no attempt waits for this token (it timed out, was answered already, or belongs to another webhook)".into(),
        ))
    }
}
