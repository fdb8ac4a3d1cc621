//! Tenants: created and listed by the server admin key; a tenant's own admin may read it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_domain::quota::Quotas;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::{Action, TenantId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::{page, JsonBody, StrictQuery};
use super::views::{ListView, TenantView};
use super::AppState;
use crate::store::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tenants", get(list).post(create))
        .route("/api/v1/tenants/{id}", get(read).patch(update))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Unique; lowercase letters, digits, `-` and `_`, 1–64 characters.
    pub name: String,
    #[schema(value_type = Option<Object>)]
    pub quotas: Option<Quotas>,
    /// Days its events are kept, 1–3650 (default `HOOKRELAY_RETENTION_DAYS`).
    pub retention_days: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub quotas: Option<Quotas>,
    /// Days its events are kept, 1–3650 (default `HOOKRELAY_RETENTION_DAYS`).
    pub retention_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

fn check_retention(days: u32) -> ApiResult<u32> {
    if (1..=3650).contains(&days) {
        Ok(days)
    } else {
        Err(ApiError::field("retention_days", "must be 1-3650 days"))
    }
}

fn check_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            "name",
            "must be 1-64 lowercase letters, digits, `-` or `_`",
        ))
    }
}

#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", operation_id = "tenants.create", request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 409, description = "name taken")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateTenant>,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    caller.require_server_admin()?;
    check_name(&body.name)?;
    let now = now_millis();
    let tenant = Tenant {
        id: TenantId::generate(),
        name: body.name,
        quotas: body.quotas.unwrap_or_default(),
        retention_days: body.retention_days.map(check_retention).transpose()?,
        created_at: now,
        updated_at: now,
    };
    s.store.create_tenant(&tenant).await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantView::of(&tenant, s.config.retention_days)),
    ))
}

#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", operation_id = "tenants.list",
    params(("limit" = Option<u32>, Query, description = "1-1000, default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<TenantView>)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult<Json<ListView<TenantView>>> {
    caller.require_server_admin()?;
    let page = s.store.list_tenants(&page(q.limit, q.cursor)?).await?;
    let mut list: ListView<TenantView> = ListView::of(&page);
    for (view, t) in list.data.iter_mut().zip(&page.items) {
        view.retention_days = t.retention_days.unwrap_or(s.config.retention_days);
    }
    Ok(Json(list))
}

/// The server admin reads any tenant; a tenant's own keys read only their tenant.
fn visible(caller: &Caller, raw: &str) -> ApiResult<TenantId> {
    let id = TenantId::parse(raw).ok_or_else(|| ApiError::not_found("tenant"))?;
    if caller.server_admin || (id == caller.tenant && caller.role.allows(Action::Read)) {
        Ok(id)
    } else {
        Err(ApiError::not_found("tenant"))
    }
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants", operation_id = "tenants.get",
    responses((status = 200, body = TenantView), (status = 404)), security(("bearer" = [])))]
pub async fn read(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantView>> {
    let id = visible(&caller, &id)?;
    let tenant = s.store.get_tenant(&id).await.map_err(missing("tenant"))?;
    Ok(Json(TenantView::of(&tenant, s.config.retention_days)))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{id}", tag = "tenants", operation_id = "tenants.update", request_body = UpdateTenant,
    responses((status = 200, body = TenantView), (status = 404)), security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateTenant>,
) -> ApiResult<Json<TenantView>> {
    caller.require_server_admin()?;
    let id = TenantId::parse(&id).ok_or_else(|| ApiError::not_found("tenant"))?;
    let mut tenant = s.store.get_tenant(&id).await.map_err(missing("tenant"))?;
    if let Some(name) = body.name {
        check_name(&name)?;
        tenant.name = name;
    }
    if let Some(q) = body.quotas {
        tenant.quotas = q;
    }
    if let Some(days) = body.retention_days {
        tenant.retention_days = Some(check_retention(days)?);
    }
    tenant.updated_at = now_millis();
    s.store.update_tenant(&tenant).await?;
    s.quotas.forget(&tenant.id);
    Ok(Json(TenantView::of(&tenant, s.config.retention_days)))
}
