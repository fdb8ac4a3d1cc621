//! `GET /api/v1/me`: who the bearer token is and what it may do, so a client (the dashboard)
//! can show the signed-in person and offer only the actions their role allows.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Caller, Principal};
use super::error::{missing, ApiResult};
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/me", get(me))
}

#[derive(Serialize, ToSchema)]
pub struct MeView {
    /// The tenant acted on (for a server admin, the one `X-Tenant-Id` names).
    pub tenant_id: String,
    pub tenant_name: String,
    /// `admin`, `editor`, `viewer` or `publisher`.
    pub role: String,
    pub server_admin: bool,
    pub principal: PrincipalView,
}

/// The credential: an API key, or a dashboard user's session.
#[derive(Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrincipalView {
    ApiKey {
        id: String,
    },
    User {
        id: String,
        email: String,
    },
    /// A portal link (`/api/v1/portal-links`), until its `expires_at`.
    Portal {
        id: String,
    },
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth", operation_id = "auth.me",
    responses((status = 200, body = MeView), (status = 401)),
    security(("bearer" = [])))]
pub async fn me(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<MeView>> {
    let tenant = s
        .store
        .get_tenant(&caller.tenant)
        .await
        .map_err(missing("tenant"))?;
    let principal = match caller.principal {
        Principal::ApiKey(id) => PrincipalView::ApiKey { id: id.to_string() },
        Principal::User { id, email, .. } => PrincipalView::User {
            id: id.to_string(),
            email,
        },
        Principal::Portal(id) => PrincipalView::Portal { id: id.to_string() },
    };
    Ok(Json(MeView {
        tenant_id: tenant.id.to_string(),
        tenant_name: tenant.name,
        role: caller.role.as_str().to_owned(),
        server_admin: caller.server_admin,
        principal,
    }))
}
