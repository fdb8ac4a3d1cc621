//! Portal links: a tenant admin hands someone without an account (a platform's own customer) a
//! link to this tenant's dashboard with one role; `POST/GET/DELETE /api/v1/portal-links`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hookrelay_domain::time::{now_millis, to_rfc3339};
use hookrelay_domain::{Action, PortalLinkId, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::JsonBody;
use super::AppState;
use crate::auth::keys::{hash_api_key, random_base62};
use crate::store::PortalLink;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/portal-links", get(list).post(create))
        .route("/api/v1/portal-links/{id}", delete(revoke))
}

/// Bounds of `expires_in_seconds`: a minute to thirty days.
const MIN_LIFETIME_SECS: u64 = 60;
const MAX_LIFETIME_SECS: u64 = 30 * 86_400;
const TOKEN_CHARS: usize = 43;

/// A portal token: `hrp_` + 43 base62 characters (about 256 bits), stored as its SHA-256.
pub fn generate_portal_token() -> String {
    format!("hrp_{}", random_base62(TOKEN_CHARS))
}

pub fn looks_like_portal_token(token: &str) -> bool {
    token
        .strip_prefix("hrp_")
        .is_some_and(|b| b.len() == TOKEN_CHARS && b.bytes().all(|c| c.is_ascii_alphanumeric()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePortalLink {
    /// How long the link works, 60 to 2,592,000 (30 days); default 3600.
    pub expires_in_seconds: Option<u64>,
    /// `editor` (manage webhooks, retry deliveries) or `viewer` (read only); default `viewer`.
    pub role: Option<String>,
}

/// A portal link. `url` and `token` are only in the answer that created it.
#[derive(Serialize, ToSchema)]
pub struct PortalLinkView {
    pub id: String,
    pub role: String,
    pub created_at: String,
    pub expires_at: String,
    /// `/portal#token=hrp_…`, to open on this server (prefix it with its public address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<&PortalLink> for PortalLinkView {
    fn from(l: &PortalLink) -> Self {
        Self {
            id: l.id.to_string(),
            role: l.role.as_str().to_owned(),
            created_at: to_rfc3339(l.created_at),
            expires_at: to_rfc3339(l.expires_at),
            url: None,
            token: None,
        }
    }
}

/// `{"data": [...]}`: the tenant's working links, newest first.
#[derive(Serialize, ToSchema)]
pub struct PortalLinkList {
    pub data: Vec<PortalLinkView>,
}

#[utoipa::path(post, path = "/api/v1/portal-links", tag = "portal", operation_id = "portal_links.create",
    request_body = CreatePortalLink,
    responses((status = 201, body = PortalLinkView, description = "includes `url` and `token`, shown only this once")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreatePortalLink>,
) -> ApiResult<(StatusCode, Json<PortalLinkView>)> {
    caller.require(Action::ManageAccess)?;
    let role = match body.role.as_deref() {
        None => Role::Viewer,
        Some(r) => match Role::parse(r) {
            Some(role @ (Role::Editor | Role::Viewer)) => role,
            _ => return Err(ApiError::field("role", "must be editor or viewer")),
        },
    };
    let lifetime = body.expires_in_seconds.unwrap_or(3600);
    if !(MIN_LIFETIME_SECS..=MAX_LIFETIME_SECS).contains(&lifetime) {
        return Err(ApiError::field(
            "expires_in_seconds",
            "must be between 60 and 2592000 (30 days)",
        ));
    }
    let token = generate_portal_token();
    let now = now_millis();
    let link = PortalLink {
        id: PortalLinkId::generate(),
        tenant_id: caller.tenant.clone(),
        role,
        token_hash: hash_api_key(&token),
        created_at: now,
        expires_at: now + lifetime as i64 * 1000,
        revoked_at: None,
    };
    s.store.create_portal_link(&link).await?;
    let mut view = PortalLinkView::from(&link);
    view.url = Some(format!("/portal#token={token}"));
    view.token = Some(token);
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api/v1/portal-links", tag = "portal", operation_id = "portal_links.list",
    responses((status = 200, body = PortalLinkList)), security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<PortalLinkList>> {
    caller.require(Action::ManageAccess)?;
    let links = s
        .store
        .list_portal_links(&caller.tenant, now_millis())
        .await?;
    Ok(Json(PortalLinkList {
        data: links.iter().map(PortalLinkView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/portal-links/{id}", tag = "portal", operation_id = "portal_links.delete",
    responses((status = 204, description = "the link stops working at once, on every node"), (status = 404)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Action::ManageAccess)?;
    let id = PortalLinkId::parse(&id).ok_or_else(|| ApiError::not_found("portal link"))?;
    s.store
        .revoke_portal_link(&caller.tenant, &id, now_millis())
        .await
        .map_err(missing("portal link"))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_distinct() {
        let t = generate_portal_token();
        assert!(looks_like_portal_token(&t), "{t}");
        assert_ne!(t, generate_portal_token());
        assert!(!looks_like_portal_token("hrp_short"));
        assert!(!looks_like_portal_token(&format!("hr_{}", "a".repeat(43))));
    }
}
