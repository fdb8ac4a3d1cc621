//! `GET /api/v1/stats`: the overview's numbers for one tenant (or one of its webhooks) — delivery
//! outcomes and emit→delivery latency per chart point, the queue now, and the webhooks in trouble.
//!
//! Everything comes from the pre-aggregated counters (`hookrelay_domain::stats`) and index-only
//! counts, so loading a week of charts never scans attempts.

use std::cmp::Reverse;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_domain::health::CircuitState;
use hookrelay_domain::stats::{StatCounts, StatsRange};
use hookrelay_domain::time::{now_millis, to_rfc3339};
use hookrelay_domain::{Action, WebhookId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::StrictQuery;
use super::AppState;
use crate::store::{PageRequest, StatsQuery, Webhook, WebhookQuery};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/stats", get(overview))
}

/// Webhooks listed under `webhooks`, most troubled first.
const LISTED_WEBHOOKS: usize = 20;
/// Webhooks read to find those in trouble (their health is on the webhook, not in the counters).
const SCANNED_WEBHOOKS: u32 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverviewParams {
    range: Option<String>,
    webhook_id: Option<String>,
}

/// Delivery outcomes in one chart point (or a whole range).
#[derive(Serialize, ToSchema)]
pub struct OutcomeCounts {
    /// Attempts finished.
    pub attempts: u64,
    /// Deliveries that succeeded.
    pub succeeded: u64,
    /// Attempts that failed and left their delivery to a retry.
    pub retried: u64,
    /// Deliveries whose retries were exhausted (into the dead-letter queue).
    pub failed: u64,
    /// Successful attempts / attempts, 0–1; null without attempts.
    pub success_rate: Option<f64>,
    /// Emit→delivery latency of the succeeded deliveries (from the delivery's creation to the
    /// answer), from a fixed histogram: interpolated within its bucket. Null when none succeeded.
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
}

impl From<&StatCounts> for OutcomeCounts {
    fn from(c: &StatCounts) -> Self {
        Self {
            attempts: c.attempts,
            succeeded: c.succeeded,
            retried: c.retried,
            failed: c.failed,
            success_rate: (c.attempts > 0).then(|| c.success_rate()),
            latency_p50_ms: c.latency.quantile(0.50),
            latency_p95_ms: c.latency.quantile(0.95),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct StatsPoint {
    /// The start of the point's step.
    pub at: String,
    #[serde(flatten)]
    pub counts: OutcomeCounts,
    /// The tenant's pending deliveries in the step (the largest of its samples, taken every few
    /// seconds by the alert loop; 0 when nothing waited); null for one webhook's stats.
    pub pending: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct QueueView {
    /// Deliveries pending now (due, or waiting for a retry or a paused webhook).
    pub pending: u64,
    /// How long the oldest pending delivery has existed, in seconds; 0 with none.
    pub oldest_pending_age_seconds: u64,
    /// Deliveries in the dead-letter queue now.
    pub dead_letter: u64,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookHealthView {
    pub webhook_id: String,
    pub url: String,
    pub description: Option<String>,
    pub kind: String,
    /// `disabled` (hookrelay disabled it: see `disabled_reason`), `paused`, `circuit_open`,
    /// `half_open`, `failing` (its failure rate over the range is at least
    /// `HOOKRELAY_ALERT_FAILURE_RATE`) or `healthy`.
    pub health: String,
    pub disabled_reason: Option<String>,
    #[serde(flatten)]
    pub counts: OutcomeCounts,
}

#[derive(Serialize, ToSchema)]
pub struct StatsView {
    pub range: String,
    pub step_seconds: u64,
    /// The first point's start.
    pub since: String,
    pub until: String,
    pub webhook_id: Option<String>,
    /// Every step of the range, oldest first (steps without deliveries are zeros).
    pub points: Vec<StatsPoint>,
    pub totals: OutcomeCounts,
    pub queue: QueueView,
    /// The tenant's webhooks in trouble first (disabled, circuit open, failing; then by failed
    /// attempts), at most 20; empty for one webhook's stats.
    pub webhooks: Vec<WebhookHealthView>,
}

#[utoipa::path(get, path = "/api/v1/stats", tag = "stats", operation_id = "stats.overview",
    params(("range" = Option<String>, Query, description = "`1h` (default; a point per minute), `24h` (per 10 minutes) or `7d` (per hour)"),
           ("webhook_id" = Option<String>, Query, description = "only this webhook's deliveries (its page's charts); `webhooks` is then empty")),
    responses((status = 200, body = StatsView),
              (status = 404, description = "`webhook_id` names no webhook of this tenant")),
    security(("bearer" = [])))]
pub async fn overview(
    State(s): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<OverviewParams>,
) -> ApiResult<Json<StatsView>> {
    caller.require(Action::Read)?;
    let range = match q.range.as_deref() {
        None => StatsRange::Hour,
        Some(raw) => StatsRange::parse(raw)
            .ok_or_else(|| ApiError::field("range", "must be 1h, 24h or 7d"))?,
    };
    let webhook = match &q.webhook_id {
        None => None,
        Some(raw) => {
            let id = WebhookId::parse(raw).ok_or_else(|| ApiError::not_found("webhook"))?;
            s.store
                .get_webhook(&caller.tenant, &id)
                .await
                .map_err(missing("webhook"))?;
            Some(id)
        }
    };
    let now = now_millis();
    let starts = range.points(now);
    let since = starts.first().copied().unwrap_or(now);
    let rows = s
        .store
        .delivery_stats(
            &caller.tenant,
            &StatsQuery {
                width_ms: range.row_width_ms(),
                since,
                step_ms: range.step_ms(),
                webhook: webhook.clone(),
            },
        )
        .await?;
    let samples = match webhook {
        Some(_) => None,
        None => Some(
            s.store
                .queue_samples(&caller.tenant, since, range.step_ms())
                .await?,
        ),
    };
    let mut totals = StatCounts::default();
    let mut rows = rows.into_iter().peekable();
    let mut samples = samples.map(|v| v.into_iter().peekable());
    let points = starts
        .iter()
        .map(|&at| {
            let mut counts = StatCounts::default();
            while let Some((_, c)) = rows.next_if(|(p, _)| *p <= at) {
                counts.add(&c);
            }
            totals.add(&counts);
            let pending = samples.as_mut().map(|it| {
                let mut most = 0;
                while let Some((_, n)) = it.next_if(|(p, _)| *p <= at) {
                    most = most.max(n);
                }
                most
            });
            StatsPoint {
                at: to_rfc3339(at),
                counts: OutcomeCounts::from(&counts),
                pending,
            }
        })
        .collect();
    let queue = s
        .store
        .tenant_queue(&caller.tenant, webhook.as_ref())
        .await?;
    let webhooks = match webhook {
        Some(_) => Vec::new(),
        None => troubled_webhooks(&s, &caller, range, since, now).await?,
    };
    Ok(Json(StatsView {
        range: range.name().to_owned(),
        step_seconds: (range.step_ms() / 1000) as u64,
        since: to_rfc3339(since),
        until: to_rfc3339(now),
        webhook_id: q.webhook_id,
        points,
        totals: OutcomeCounts::from(&totals),
        queue: QueueView {
            pending: queue.pending,
            oldest_pending_age_seconds: queue
                .oldest_pending_created_at
                .map_or(0, |at| ((now - at).max(0) / 1000) as u64),
            dead_letter: queue.dead_letter,
        },
        webhooks,
    }))
}

/// How bad a webhook looks, worst first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Trouble {
    Disabled,
    CircuitOpen,
    HalfOpen,
    Failing,
    Paused,
    Healthy,
}

impl Trouble {
    fn of(w: &Webhook, c: &StatCounts, failure_rate: f64, now: i64) -> Self {
        if w.health.disabled_reason.is_some() {
            return Self::Disabled;
        }
        match w.health.state_at(now) {
            CircuitState::Open => return Self::CircuitOpen,
            CircuitState::HalfOpen => return Self::HalfOpen,
            CircuitState::Closed => {}
        }
        let failures = c.retried + c.failed;
        if failures > 0 && failures as f64 >= failure_rate * c.attempts as f64 {
            Self::Failing
        } else if !w.active {
            Self::Paused
        } else {
            Self::Healthy
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::CircuitOpen => "circuit_open",
            Self::HalfOpen => "half_open",
            Self::Failing => "failing",
            Self::Paused => "paused",
            Self::Healthy => "healthy",
        }
    }
}

async fn troubled_webhooks(
    s: &AppState,
    caller: &Caller,
    range: StatsRange,
    since: i64,
    now: i64,
) -> ApiResult<Vec<WebhookHealthView>> {
    let counts: std::collections::HashMap<WebhookId, StatCounts> = s
        .store
        .delivery_stats_by_webhook(&caller.tenant, range.row_width_ms(), since)
        .await?
        .into_iter()
        .collect();
    let hooks = s
        .store
        .list_webhooks(
            &caller.tenant,
            &WebhookQuery::default(),
            &PageRequest {
                limit: SCANNED_WEBHOOKS,
                cursor: None,
            },
        )
        .await?
        .items;
    let failure_rate = s.config.alerts.failure_rate;
    let mut rows: Vec<(Trouble, StatCounts, Webhook)> = hooks
        .into_iter()
        .map(|w| {
            let c = counts.get(&w.id).copied().unwrap_or_default();
            (Trouble::of(&w, &c, failure_rate, now), c, w)
        })
        .collect();
    rows.sort_by_key(|(t, c, w)| {
        (
            *t,
            Reverse(c.retried + c.failed),
            Reverse(c.attempts),
            w.id.to_string(),
        )
    });
    Ok(rows
        .into_iter()
        .take(LISTED_WEBHOOKS)
        .map(|(trouble, c, w)| WebhookHealthView {
            webhook_id: w.id.to_string(),
            url: crate::destinations::broker::redact_url(&w.url),
            description: w.description.clone(),
            kind: w.kind.as_str().to_owned(),
            health: trouble.name().to_owned(),
            disabled_reason: w.health.disabled_reason.map(|r| r.as_str().to_owned()),
            counts: OutcomeCounts::from(&c),
        })
        .collect())
}
