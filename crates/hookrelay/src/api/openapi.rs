//! The OpenAPI document, generated from the handlers' annotations and served at
//! `GET /api/v1/openapi.json`. Choices the contract leaves open are documented here.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::AppState;
use super::{deliveries, event_types, events, health, keys, quotas, tenants, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "hookrelay", description = "Durable, signed webhook delivery and verified inbound ingest.

Conventions: ids are prefixed ULIDs; times are RFC 3339 UTC with milliseconds; lists answer `{data, next_cursor}` newest first (`limit` 1-1000, default 50); unknown body fields and unknown query parameters are refused with `422 validation_failed`; every answer carries `X-Request-Id`.

Retry schedule: `retry_schedule_seconds` lists the pauses after each failed attempt (so N entries allow N retries, N+1 attempts in all); each pause is jittered by ±20 %; a `429`/`503` `Retry-After` (capped at 24 h) is a floor. A retry from the dead-letter queue makes one more attempt; if it fails the delivery returns to the queue.

Paused webhooks keep receiving deliveries, which wait as `pending` until resumed.

Chat destinations (`kind: discord` / `slack`): the message is rendered from the webhook's `templates` (minijinja, sandboxed: no file or network access, 100k-instruction fuel, 64 KiB output per string) with the event envelope (`event`, `timestamp`, `eventId`, `data`) as context, or from the built-in message of the event type. Discord gets `{content, embeds?, allowed_mentions}` (mentions off unless the template sets `allowed_mentions`), Slack `{text, blocks?}`; text past the service's limits is cut with `…`. A template that fails to render is an attempt with `error_kind: render` and fails the delivery at once. Discord's `429` JSON `retry_after` and an exhausted `X-RateLimit-Remaining: 0` / `X-RateLimit-Reset-After` bucket are honoured like `Retry-After`. Full guide: docs/destinations.md.

Routing: beside `events` patterns, a webhook's `filter` is a JSON payload filter over the envelope (`$eq $neq $gt $gte $lt $lte $in $nin $exists $startsWith $endsWith $and $or $not`), checked at creation (`422` `filter.<path>`). Create and update answers carry `warnings`: `events` patterns that match no type of the event catalog; with `HOOKRELAY_STRICT_EVENT_TYPES=true` those are a `422` instead.

Event catalog: `GET /api/v1/event-types` lists the built-in types and the tenant's own, by name. A type with a JSON Schema makes `POST /api/v1/events` (and each batch entry) answer `422` with one `details` entry per failure, `field` = `data.<path>`. Schema changes apply at once on the node that made them and within 10 s (the key cache TTL) on others."),
    paths(
        tenants::create, tenants::list, tenants::read, tenants::update,
        keys::create, keys::list, keys::remove,
        webhooks::create, webhooks::list, webhooks::read, webhooks::update, webhooks::remove,
        webhooks::test, webhooks::preview, webhooks::rotate_secret, webhooks::stats,
        event_types::list, event_types::read, event_types::create, event_types::update, event_types::remove,
        events::emit, events::emit_batch, events::list, events::read,
        deliveries::list, deliveries::read, deliveries::retry,
        deliveries::list_dlq, deliveries::retry_dlq, deliveries::retry_dlq_bulk,
        quotas::read,
        health::health, health::ready, health::metrics,
    ),
    modifiers(&BearerAuth),
    tags((name = "webhooks"), (name = "events"), (name = "event-types", description = "the event catalog"), (name = "deliveries"), (name = "dlq"), (name = "tenants"), (name = "keys"), (name = "operations"))
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
