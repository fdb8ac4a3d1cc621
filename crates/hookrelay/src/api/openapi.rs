//! The OpenAPI document, generated from the handlers' annotations and served at
//! `GET /api/v1/openapi.json`. Choices the contract leaves open are documented here.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::AppState;
use super::{deliveries, events, health, keys, quotas, tenants, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "hookrelay", description = "Durable, signed webhook delivery and verified inbound ingest.

Conventions: ids are prefixed ULIDs; times are RFC 3339 UTC with milliseconds; lists answer `{data, next_cursor}` newest first (`limit` 1-1000, default 50); unknown body fields and unknown query parameters are refused with `422 validation_failed`; every answer carries `X-Request-Id`.

Retry schedule: `retry_schedule_seconds` lists the pauses after each failed attempt (so N entries allow N retries, N+1 attempts in all); each pause is jittered by ±20 %; a `429`/`503` `Retry-After` (capped at 24 h) is a floor. A retry from the dead-letter queue makes one more attempt; if it fails the delivery returns to the queue.

Paused webhooks keep receiving deliveries, which wait as `pending` until resumed."),
    paths(
        tenants::create, tenants::list, tenants::read, tenants::update,
        keys::create, keys::list, keys::remove,
        webhooks::create, webhooks::list, webhooks::read, webhooks::update, webhooks::remove,
        webhooks::test, webhooks::rotate_secret, webhooks::stats,
        events::emit, events::emit_batch, events::list, events::read,
        deliveries::list, deliveries::read, deliveries::retry,
        deliveries::list_dlq, deliveries::retry_dlq, deliveries::retry_dlq_bulk,
        quotas::read,
        health::health, health::ready, health::metrics,
    ),
    modifiers(&BearerAuth),
    tags((name = "webhooks"), (name = "events"), (name = "deliveries"), (name = "dlq"), (name = "tenants"), (name = "keys"), (name = "operations"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`hr_…`) or a dashboard session token"))
                    .build(),
            ),
        );
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
