//! The OpenAPI document, generated from the handlers' annotations and served at
//! `GET /api/v1/openapi.json`. Choices the contract leaves open are documented here.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::content::Content;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

use super::AppState;
use super::{
    dashboard, deliveries, event_types, events, health, ingest, keys, login, me, portal, quotas,
    relay, replay, sources, stats, stream, tenants, users, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "hookrelay", description = "Durable, signed webhook delivery and verified inbound ingest.

Conventions: ids are prefixed ULIDs; times are RFC 3339 UTC with milliseconds; lists answer `{data, next_cursor}` newest first (`limit` 1-1000, default 50); a page of events or inbound requests also ends, with a `next_cursor`, once it holds 4 MiB of payloads (always at least one item), so follow `next_cursor` rather than counting on `limit` items; unknown body fields and unknown query parameters are refused with `422 validation_failed`; every answer carries `X-Request-Id`.

Retry schedule: `retry_schedule_seconds` lists the pauses after each failed attempt (so N entries allow N retries, N+1 attempts in all); each pause is jittered by ±20 %; a `429`/`503` `Retry-After` (capped at 24 h) is a floor. A retry from the dead-letter queue makes one more attempt; if it fails the delivery returns to the queue.

Paused webhooks keep receiving deliveries, which wait as `pending` until resumed.

Chat destinations (`kind: discord` / `slack`): the message is rendered from the webhook's `templates` (minijinja, sandboxed: no file or network access, 100k-instruction fuel, 64 KiB output per string) with the event envelope (`event`, `timestamp`, `eventId`, `data`) as context, or from the built-in message of the event type. Discord gets `{content, embeds?, allowed_mentions}` (mentions off unless the template sets `allowed_mentions`), Slack `{text, blocks?}`; text past the service's limits is cut with `…`. A template that fails to render is an attempt with `error_kind: render` and fails the delivery at once. Discord's `429` JSON `retry_after` and an exhausted `X-RateLimit-Remaining: 0` / `X-RateLimit-Reset-After` bucket are honoured like `Retry-After`. Full guide: docs/destinations.md.

Transformations: an `http` or `relay` webhook's `transform` is one template in the same sandbox, rendered from the envelope; its output must be JSON and is the request body (signatures cover it). Checked at save time (`422` on `transform`: compile errors, unknown filters, non-JSON output for the catalog example of a subscribed type); at delivery a failure is an attempt with `error_kind: template_error` that fails the delivery at once (DLQ), since a retry would render the same thing. Preview answers `template: \"transform\"`.

Signature schemes: `signature_scheme` is `hmac` (default; `v1` with the `whsec_` secret, plus `X-Webhook-Signature`) or `ed25519` (`v1a`: the server generates the key pair, seals the `whsk_` private key and never shows it; `public_key` `whpk_…` is in every read; no `X-Webhook-Signature`, which needs a shared secret). `rotate-secret` rotates within the scheme, or into the one its body names, old and new keys signing side by side for the grace period; it answers `secret` (hmac) or `public_key` (ed25519).

Relay webhooks (`kind: relay`): deliveries go to `hookrelay listen` processes connected through `GET /api/v1/relay/{id}/connect`, which post the local receiver's answer to `POST /api/v1/relay/{id}/results`; that answer is the attempt. None connected: the attempt fails like a refused connection and is retried; connecting releases what waited. `url` is only the listener's local target, never contacted by the server. See docs/destinations.md.

Routing: beside `events` patterns, a webhook's `filter` is a JSON payload filter over the envelope (`$eq $neq $gt $gte $lt $lte $in $nin $exists $startsWith $endsWith $and $or $not`), checked at creation (`422` `filter.<path>`). Create and update answers carry `warnings`: `events` patterns that match no type of the event catalog; with `HOOKRELAY_STRICT_EVENT_TYPES=true` those are a `422` instead.

Event catalog: `GET /api/v1/event-types` lists the built-in types and the tenant's own, by name. A type with a JSON Schema makes `POST /api/v1/events` (and each batch entry) answer `422` with one `details` entry per failure, `field` = `data.<path>`. Schema changes apply at once on the node that made them and within 10 s (the key cache TTL) on others.

Inbound sources (choices the contract leaves open): source names are `[a-z0-9_-]{1,64}` and unique across tenants, since `POST /ingest/{name}` carries no tenant. `ingest_url` is `HOOKRELAY_PUBLIC_URL` + `/ingest/{name}`, or built from the request's `Host` (and `X-Forwarded-Proto`) when that is unset. Providers besides the contract's: `paypal` (RSA transmission signature; `config.webhook_id`; certificates fetched only from `HOOKRELAY_PAYPAL_CERT_HOSTS`, PayPal's API hosts by default, and cached). `hmac` settings: `header`, `algorithm` (`sha256` default, `sha1`, `sha512`), `encoding` (`hex` default, `base64`), `prefix`, `timestamp_header` (Unix seconds or milliseconds, within 5 minutes), `signed_payload` (template, default `{body}` or `{timestamp}.{body}` with a timestamp header), `type_path` or `type_header`, `id_path` or `id_header` (deduplication). `none` takes the same type and id settings, is refused in `prod` unless `allow_unsigned` is true. Event types: GitHub `github.<event>[.<action>]` with `pull_request` as `pr`; Stripe `stripe.<type>`; PayPal `paypal.<event_type in lower case>`; Standard Webhooks the body's `type`; characters an event type cannot hold become `_`. An event from a source has `source` = the source name, `event_id` = `src:<source id>:<provider id>` (the idempotency key) and `timestamp` = the time of receipt; its `data` is the body verbatim when it is JSON, GitHub's decoded `payload` field when form-encoded, else the body as a JSON string. Order of checks: unknown source `404`, paused `503`, rate limit `429` (per source: on PostgreSQL shared by every node through the database, on SQLite in the one node's memory), body size `413`, signature `401`, body shape `400`. Rejected and rate-limited requests are logged asynchronously (may be dropped under extreme load); accepted and duplicate ones in the same commit as their event. The requests log keeps `HOOKRELAY_INBOUND_LOG_RETENTION_HOURS` (default 168).

Statistics: `GET /api/v1/stats` answers from counters written with the attempts (per webhook, per minute for 2 days and per hour for 35 days), never from a scan of attempts: `retried` counts failed attempts that left their delivery to a retry, `failed` deliveries whose retries ran out (the DLQ), and latency is emit→delivery (the delivery's creation to its successful answer) from a fixed histogram, interpolated within its bucket. `queue` is counted live; each point's `pending` is the largest of the tenant's queue samples in its step (taken every `HOOKRELAY_ALERT_EVERY_MS` by the alert loop, kept 35 days). `GET /api/v1/webhooks/{id}/stats` stays the contract's summary of attempt response times over any window up to 30 days.

Dashboard: `GET /` serves the web dashboard (static files embedded in the binary, under `/dashboard/`), which uses this API with a session token from `POST /api/v1/auth/login` (or a pasted API key) kept in the tab's `sessionStorage`. Its answers carry a strict `Content-Security-Policy` (only this origin, no inline script or style, `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and `Cache-Control: no-cache` with an `ETag`; an unknown `/dashboard/…` file is a `404 not_found`. See docs/dashboard.md.

Dashboard users (choices the contract leaves open): an email is a login name, stored lower-cased and unique across the server (login names no tenant); a user belongs to the tenant of the admin who created it and has one of the four roles, exactly like an API key. Passwords: at least 12 characters, stored as argon2id. A session token is `hrs_` + 43 base62 characters, valid for `HOOKRELAY_SESSION_TTL_SECS` (12 h) or until logout, checked against the store on every request so a logout or a user's deletion takes effect on every node at once. Login failures all answer `401` with the same message; after `HOOKRELAY_LOGIN_MAX_FAILURES` (5) failures for one account, or four times as many from one client address, within `HOOKRELAY_LOGIN_LOCKOUT_SECS` (900), logins for it answer `429` with `Retry-After` (on PostgreSQL counted in the database, so across every node). The first start creates the server-admin account `HOOKRELAY_ADMIN_EMAIL` (`admin@localhost`) with `HOOKRELAY_ADMIN_PASSWORD` or a generated password printed once."),
    paths(
        tenants::create, tenants::list, tenants::read, tenants::update,
        keys::create, keys::list, keys::remove,
        portal::create, portal::list, portal::revoke,
        users::create, users::list, users::remove, login::login, login::logout, me::me,
        stream::stream,
        webhooks::create, webhooks::list, webhooks::read, webhooks::update, webhooks::remove,
        webhooks::test, webhooks::preview, webhooks::rotate_secret, webhooks::stats,
        relay::connect, relay::results,
        replay::replay_event, replay::replay_webhook,
        event_types::list, event_types::read, event_types::create, event_types::update, event_types::remove,
        events::emit, events::emit_batch, events::list, events::read,
        deliveries::list, deliveries::read, deliveries::retry,
        deliveries::list_dlq, deliveries::retry_dlq, deliveries::retry_dlq_bulk,
        quotas::read, stats::overview,
        sources::create, sources::list, sources::read, sources::update, sources::remove,
        sources::requests, ingest::ingest,
        health::health, health::ready, health::metrics,
        dashboard::index, dashboard::portal, dashboard::asset,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth, &ErrorAnswers),
    tags((name = "webhooks"), (name = "events"), (name = "event-types", description = "the event catalog"), (name = "deliveries"), (name = "dlq"), (name = "stats", description = "delivery statistics for the dashboard's overview, from per-minute counters"), (name = "sources"), (name = "tenants"), (name = "keys"), (name = "portal", description = "portal links: one tenant's dashboard for someone without an account"), (name = "users", description = "dashboard accounts"), (name = "auth", description = "dashboard sessions"), (name = "stream", description = "live changes for the dashboard"), (name = "relay", description = "`hookrelay listen`: relay webhooks' listeners"), (name = "operations"), (name = "dashboard", description = "the web dashboard served by the binary"))
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

/// Lists on every operation the error answers the shared layers can give it (authentication,
/// body and query parsing, the request-size limits, the store), in the contract's error body.
/// A handler's annotation lists its own (`409`, a specific `404` or `422`...) with what they mean
/// there; this fills in the rest and gives every `4xx`/`5xx` the `ErrorBody` schema.
struct ErrorAnswers;

/// Operations whose limits answer `429` (and what they count).
const LIMITED: &[(&str, &str)] = &[
    ("events.emit", "`quota_exceeded`: the tenant's `events_per_minute` or `events_per_day` quota is used up; `Retry-After` says when to come back"),
    ("webhooks.create", "`quota_exceeded`: the tenant has as many webhooks as its `webhooks` quota allows"),
];

/// Operations that answer without the store: no `500`/`503` from it.
const STORELESS: &[&str] = &[
    "dashboard.index",
    "dashboard.portal",
    "dashboard.asset",
    "operations.metrics",
];

/// Operations whose `503` is their own body (a probe's), not the error body.
const OWN_UNAVAILABLE: &[&str] = &["operations.health", "operations.ready"];

fn generic_error(status: &str, path: &str) -> &'static str {
    match status {
        "400" => "`invalid_json`: the body is not complete JSON, or not a JSON object",
        "401" => "`unauthorized`: no `Authorization: Bearer` token, or one that is unknown, expired or logged out",
        "403" => "`forbidden`: the token's role may not do this (tenants: only a server admin), or `X-Tenant-Id` names another tenant and the token is not a server admin's",
        "404" if path.contains('{') => "`not_found`: no such resource in the caller's tenant (another tenant's ids are not found either), or `X-Tenant-Id` names no tenant",
        "404" => "`not_found`: `X-Tenant-Id` names no tenant",
        "409" => "`conflict`: the change clashes with what is stored",
        "413" => "`payload_too_large`: the body is over `HOOKRELAY_MAX_BODY_BYTES` (1 MiB by default)",
        "414" => "`uri_too_long`: the path and query are over 8 KiB",
        "422" => "`validation_failed`: a field or query parameter is missing, of the wrong type, out of range or unknown; `details` names each one (`field`, `message`)",
        "429" => "`rate_limited` or `quota_exceeded`: over a limit; `Retry-After` says when to come back",
        "431" => "`headers_too_large`: the request headers total over 32 KiB",
        "500" => "`internal`: an unexpected failure, logged with the request id; the body holds no stack trace and no secret",
        "503" => "`unavailable`: the store is unreachable or overloaded, or this node is shutting down; retry shortly",
        _ => "an error, in the contract's error body",
    }
}

/// The error answers `op` can give besides those its handler lists.
fn shared_errors(path: &str, op: &Operation) -> Vec<(&'static str, String)> {
    let id = op.operation_id.as_deref().unwrap_or_default();
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    let has_query = op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query);
    let mut statuses = vec!["414", "431"];
    if secured {
        statuses.extend(["401", "403", "404"]);
    }
    if path.contains('{') {
        statuses.push("404");
    }
    if json_body {
        statuses.extend(["400", "413", "422"]);
    }
    if has_query {
        statuses.push("422");
    }
    if !STORELESS.contains(&id) {
        statuses.extend(["500", "503"]);
    }
    let mut out: Vec<(&'static str, String)> = statuses
        .into_iter()
        .map(|s| (s, generic_error(s, path).to_owned()))
        .collect();
    if let Some((_, why)) = LIMITED.iter().find(|(op_id, _)| *op_id == id) {
        out.push(("429", (*why).to_owned()));
    }
    out
}

impl Modify for ErrorAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error_body = || Content::new(Some(Ref::from_schema_name("ErrorBody")));
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                for (status, description) in shared_errors(path, op) {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(Response::new(description)));
                }
                let id = op.operation_id.clone().unwrap_or_default();
                for (status, answer) in op.responses.responses.iter_mut() {
                    let RefOr::T(answer) = answer else { continue };
                    if !(status.starts_with('4') || status.starts_with('5')) {
                        continue;
                    }
                    if answer.description.is_empty() {
                        answer.description = generic_error(status, path).to_owned();
                    }
                    if status == "503" && OWN_UNAVAILABLE.contains(&id.as_str()) {
                        continue;
                    }
                    if answer.content.is_empty() {
                        answer
                            .content
                            .insert("application/json".into(), error_body());
                    }
                    if status == "429" {
                        answer
                            .headers
                            .entry("Retry-After".into())
                            .or_insert_with(|| {
                                HeaderBuilder::new()
                                    .schema(
                                        ObjectBuilder::new()
                                            .schema_type(Type::Integer)
                                            .minimum(Some(1)),
                                    )
                                    .description(Some("seconds to wait before trying again"))
                                    .build()
                            });
                    }
                }
            }
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
