//! Liveness, readiness and Prometheus metrics: what load balancers and operators poll.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_domain::time::now_millis;
use serde_json::json;

use super::AppState;

/// `GET /health` when the store answers (schema of the document; the handler writes it).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct HealthView {
    /// `ok`
    pub status: String,
    /// `ok`
    pub db: String,
    /// `sqlite` or `postgres`
    pub backend: String,
    /// Pending deliveries.
    pub queue_depth: u64,
    /// How long the oldest due delivery has waited.
    pub oldest_pending_age_ms: u64,
    pub version: String,
}

/// `GET /health` when the store does not answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct HealthDegraded {
    /// `degraded`
    pub status: String,
    /// `unreachable`
    pub db: String,
    pub backend: String,
}

/// `GET /ready`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ReadyView {
    /// `ready`, `not_ready` or `shutting_down`
    pub status: String,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

#[utoipa::path(get, path = "/health", tag = "operations", operation_id = "operations.health",
    responses((status = 200, body = HealthView, description = "the store answers"),
              (status = 503, body = HealthDegraded, description = "the store is unreachable (this probe's own body, not the error body)")))]
pub async fn health(State(s): State<AppState>) -> Response {
    let now = now_millis();
    match s.store.queue_stats(now).await {
        Ok(q) => {
            set_queue_gauges(&q);
            Json(json!({
                "status": "ok", "db": "ok", "backend": s.store.backend(),
                "queue_depth": q.pending, "oldest_pending_age_ms": q.oldest_due_age_ms,
                "version": env!("CARGO_PKG_VERSION"),
            }))
            .into_response()
        }
        Err(e) => {
            crate::monitoring::store_error("api");
            tracing::warn!(error = %e, "health check: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "degraded", "db": "unreachable", "backend": s.store.backend()})))
                .into_response()
        }
    }
}

#[utoipa::path(get, path = "/ready", tag = "operations", operation_id = "operations.ready",
    responses((status = 200, body = ReadyView, description = "ready for traffic: `status` is `ready`"), (status = 503, body = ReadyView, description = "the store is unreachable (`status` is `not_ready`), or the node is shutting down (`shutting_down`); this probe's own body, not the error body")))]
pub async fn ready(State(s): State<AppState>) -> Response {
    // A draining node (SIGTERM) says so, so a load balancer stops sending it new requests.
    if s.feed.closed().is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    match s.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready"})),
        )
            .into_response(),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "operations.metrics", responses((status = 200, content_type = "text/plain", body = String, description = "Prometheus text format (`text/plain; version=0.0.4`)")))]
pub async fn metrics(State(s): State<AppState>) -> Response {
    match s.store.queue_stats(now_millis()).await {
        Ok(q) => set_queue_gauges(&q),
        Err(e) => {
            crate::monitoring::store_error("api");
            tracing::warn!(error = %e, "metrics: reading the queue's state failed");
        }
    }
    let body = s.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

fn set_queue_gauges(q: &crate::store::QueueStats) {
    use crate::monitoring::{CIRCUIT_OPEN, DLQ_SIZE, OLDEST_PENDING_AGE, QUEUE_DEPTH};
    metrics::gauge!(QUEUE_DEPTH).set(q.pending as f64);
    metrics::gauge!(OLDEST_PENDING_AGE).set(q.oldest_due_age_ms as f64 / 1000.0);
    metrics::gauge!(DLQ_SIZE).set(q.dead_letter as f64);
    metrics::gauge!(CIRCUIT_OPEN).set(q.open_circuits as f64);
}
