//! The HTTP API: one module per resource, sharing the state, the extractors and the error type
//! here. `router` assembles them with the cross-cutting layers (request ids, limits, metrics).

pub mod auth;
pub mod dashboard;
pub mod deliveries;
pub mod error;
pub mod event_types;
pub mod events;
pub mod extract;
pub mod health;
pub mod ingest;
pub mod keys;
pub mod login;
pub mod me;
pub mod openapi;
pub mod portal;
pub mod quotas;
pub mod relay;
pub mod replay;
pub mod sources;
pub mod stats;
pub mod stream;
pub mod tenants;
pub mod users;
pub mod views;
pub mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

use crate::config::Config;
use crate::delivery::Sender;
use crate::ingest::Ingestor;
use crate::store::Store;
use error::{ApiError, REQUEST_ID};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ingestor: Ingestor,
    pub sender: Sender,
    pub config: Arc<Config>,
    pub keys: Arc<auth::KeyCache>,
    pub quotas: Arc<quotas::QuotaCache>,
    pub wake: Arc<Notify>,
    pub metrics: Option<PrometheusHandle>,
    /// Names this process in leases it takes itself (the `/test` action).
    pub node_id: String,
    /// Compiled event-type schemas per tenant, for validating emits.
    pub schemas: Arc<crate::destinations::catalog::SchemaCache>,
    /// Inbound sources: caches, rate limits and the requests-log writer.
    pub inbound: Arc<ingest::Gateway>,
    /// Failed dashboard logins per account and per address.
    pub login_throttle: Arc<crate::auth::sessions::LoginThrottle>,
    /// Changes as they happen, for `GET /api/v1/stream`.
    pub feed: Arc<crate::feed::ChangeFeed>,
}

/// The full API (role `api` or `all`).
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .merge(tenants::routes())
        .merge(keys::routes())
        .merge(portal::routes())
        .merge(users::routes())
        .merge(login::routes())
        .merge(me::routes())
        .merge(stream::routes())
        .merge(webhooks::routes())
        .merge(relay::routes())
        .merge(replay::routes())
        .merge(events::routes())
        .merge(event_types::routes())
        .merge(deliveries::routes())
        .merge(quotas::routes())
        .merge(stats::routes())
        .merge(sources::routes())
        .merge(ingest::routes())
        .merge(openapi::routes())
        .merge(health::routes())
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(catch_panics())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// Only health and metrics (role `worker`).
pub fn worker_router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(catch_panics())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// A handler that panics answers `500 internal` in the contract's body (with the request id,
/// the panic logged) instead of dropping the connection; the process keeps serving.
fn catch_panics(
) -> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    fn answer(panic: Box<dyn std::any::Any + Send>) -> Response {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        ApiError::Internal(format!("handler panicked: {what}")).into_response()
    }
    tower_http::catch_panic::CatchPanicLayer::custom(answer as fn(_) -> Response)
}

/// Sets the request id (reusing a sane incoming `X-Request-Id`), turns the framework's own
/// plain-text errors into the contract's body, records request metrics, and runs the request in
/// its trace span (see `telemetry`; probes are not traced).
async fn request_context(State(_state): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req_{}", ulid::Ulid::new()));
    let method = req.method().clone();
    let matched = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let span = match matched.as_deref() {
        Some(route) if is_probe(route) => tracing::Span::none(),
        route => crate::telemetry::http_server_span(&req, route, &id),
    };
    let route = matched.unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let too_big = request_too_big(&req);
    let handled = REQUEST_ID.scope(id.clone(), async move {
        match too_big {
            Some(error) => error.into_response(),
            None => normalise_error(next.run(req).await),
        }
    });
    let mut response = crate::telemetry::in_span(&span, handled).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    crate::telemetry::record_response(&span, response.status());
    let status = response.status().as_u16().to_string();
    metrics::counter!("hookrelay_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("hookrelay_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Health checks and scrapes: frequent, and not worth a trace each.
fn is_probe(route: &str) -> bool {
    matches!(route, "/health" | "/ready" | "/metrics")
}

/// Longest request target (path and query) accepted.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest total size of request header names and values accepted.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses oversized URLs and header sets before any handler parses them.
fn request_too_big(req: &Request) -> Option<ApiError> {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong(MAX_URI_BYTES));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    (header_bytes > MAX_HEADER_BYTES).then_some(ApiError::HeadersTooLarge(MAX_HEADER_BYTES))
}

fn is_sane_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Errors produced below our handlers (body limit, wrong method) arrive as plain text.
fn normalise_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed("method not allowed on this route".into())
        }
        StatusCode::NOT_FOUND => ApiError::NotFound("no such route".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::BAD_REQUEST => {
            ApiError::InvalidJson("the body must be a JSON object".into())
        }
        s if s.is_client_error() => ApiError::InvalidJson(format!("bad request ({s})")),
        _ => ApiError::Internal(format!("unhandled {status}")),
    };
    error.into_response()
}

#[cfg(test)]
mod panic_tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_error_body() {
        let app: axum::Router = axum::Router::new()
            .route("/boom", get(|| async { panic!("kaboom") as &'static str }))
            .layer(super::catch_panics());
        let resp = app
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 500);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal", "{v}");
        assert!(
            !v.to_string().contains("kaboom"),
            "the panic message is not sent: {v}"
        );
    }
}
