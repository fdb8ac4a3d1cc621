//! Tenant quotas: the effective limits (the tenant's own, else the operator's defaults), a
//! short-lived cache of them for the emit path, and `GET /api/v1/quotas/{tenant_id}`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_domain::quota::Quotas;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::{Action, TenantId};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::AppState;
use crate::store::EventQuota;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/quotas/{tenant_id}", get(read))
}

/// Effective quotas per tenant, cached for a few seconds per node (a PATCH on this node
/// forgets at once; other nodes within the TTL).
pub struct QuotaCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, (Quotas, Instant)>>,
}

impl QuotaCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn forget(&self, tenant: &TenantId) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant.as_str());
    }
}

/// The tenant's limits with the operator's defaults filled in.
pub async fn effective(s: &AppState, tenant: &TenantId) -> ApiResult<Quotas> {
    if let Some((q, at)) = s
        .quotas
        .entries
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(tenant.as_str())
    {
        if at.elapsed() < s.quotas.ttl {
            return Ok(q.clone());
        }
    }
    let t = s
        .store
        .get_tenant(tenant)
        .await
        .map_err(missing("tenant"))?;
    let q = t.quotas.or_defaults(&s.config.default_quotas);
    let mut entries = s.quotas.entries.write().unwrap_or_else(|p| p.into_inner());
    if entries.len() > 10_000 {
        entries.clear();
    }
    entries.insert(tenant.to_string(), (q.clone(), Instant::now()));
    Ok(q)
}

/// The event limits the ingest transaction enforces for `tenant`.
pub async fn event_quota(s: &AppState, tenant: &TenantId) -> ApiResult<EventQuota> {
    let q = effective(s, tenant).await?;
    Ok(EventQuota {
        per_minute: q.events_per_minute,
        per_day: q.events_per_day,
    })
}

#[derive(Serialize, ToSchema)]
pub struct QuotaUsage {
    /// Events accepted in the current minute (UTC, aligned to the minute).
    pub events_per_minute: u64,
    /// Events accepted today (UTC day).
    pub events_per_day: u64,
    pub webhooks: u64,
}

#[derive(Serialize, ToSchema)]
pub struct QuotaView {
    pub tenant_id: String,
    /// Effective limits: the tenant's own, else `HOOKRELAY_DEFAULT_QUOTAS`; absent = unlimited.
    #[schema(value_type = Object)]
    pub limits: Quotas,
    pub usage: QuotaUsage,
}

#[utoipa::path(get, path = "/api/v1/quotas/{tenant_id}", tag = "tenants", operation_id = "quotas.get",
    responses((status = 200, body = QuotaView), (status = 404)), security(("bearer" = [])))]
pub async fn read(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<QuotaView>> {
    let id = TenantId::parse(&id).ok_or_else(|| ApiError::not_found("tenant"))?;
    if !(caller.server_admin || (id == caller.tenant && caller.role.allows(Action::Read))) {
        return Err(ApiError::not_found("tenant"));
    }
    s.quotas.forget(&id);
    let limits = effective(&s, &id).await?;
    let usage = s.store.event_usage(&id, now_millis()).await?;
    let webhooks = s.store.count_webhooks(&id).await?;
    Ok(Json(QuotaView {
        tenant_id: id.to_string(),
        limits,
        usage: QuotaUsage {
            events_per_minute: usage.this_minute,
            events_per_day: usage.today,
            webhooks,
        },
    }))
}
