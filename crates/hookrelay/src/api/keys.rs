//! API keys of the caller's tenant: created (plaintext shown once), listed, revoked. Admin only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hookrelay_domain::time::now_millis;
use hookrelay_domain::{Action, KeyId, Role};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::{page, JsonBody, StrictQuery};
use super::views::{KeyView, ListView};
use super::AppState;
use crate::auth::keys::{generate_api_key, hash_api_key};
use crate::store::ApiKey;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/keys", get(list).post(create))
        .route("/api/v1/keys/{id}", delete(remove))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    /// `admin`, `editor`, `viewer` or `publisher`.
    pub role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", operation_id = "keys.create", request_body = CreateKey,
    responses((status = 201, body = KeyView, description = "includes `key`, shown only this once")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateKey>,
) -> ApiResult<(StatusCode, Json<KeyView>)> {
    caller.require(Action::ManageAccess)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::field("role", "must be admin, editor, viewer or publisher"))?;
    if body.name.trim().is_empty() || body.name.len() > 128 {
        return Err(ApiError::field("name", "must be 1-128 characters"));
    }
    let plaintext = generate_api_key();
    let key = ApiKey {
        id: KeyId::generate(),
        tenant_id: caller.tenant.clone(),
        name: body.name,
        role,
        key_hash: hash_api_key(&plaintext),
        server_admin: false,
        created_at: now_millis(),
    };
    s.store.create_api_key(&key).await?;
    let mut view = KeyView::from(&key);
    view.key = Some(plaintext);
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", operation_id = "keys.list",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<KeyView>)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult<Json<ListView<KeyView>>> {
    caller.require(Action::ManageAccess)?;
    let page = s
        .store
        .list_api_keys(&caller.tenant, &page(q.limit, q.cursor)?)
        .await?;
    Ok(Json(ListView::of(&page)))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", operation_id = "keys.delete",
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Action::ManageAccess)?;
    let id = KeyId::parse(&id).ok_or_else(|| ApiError::not_found("key"))?;
    s.store
        .delete_api_key(&caller.tenant, &id)
        .await
        .map_err(missing("key"))?;
    s.keys.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}
