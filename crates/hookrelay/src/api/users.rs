//! Dashboard users of the caller's tenant: created with a password (stored as argon2id),
//! listed, removed (which ends their sessions). Admin only, like API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hookrelay_domain::time::now_millis;
use hookrelay_domain::validate::FieldError;
use hookrelay_domain::{Action, Role, UserId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{missing, ApiError, ApiResult};
use super::extract::{page, JsonBody, StrictQuery};
use super::views::{ListView, UserView};
use super::AppState;
use crate::auth::passwords::{check_strength, hash_password, looks_like_email};
use crate::store::User;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/{id}", delete(remove))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The login name; compared case-insensitively and unique across the server.
    pub email: String,
    /// At least 12 characters.
    pub password: String,
    /// `admin`, `editor`, `viewer` or `publisher`.
    pub role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Checks every field and reports all problems at once.
fn validate(body: &CreateUser) -> Result<(String, Role), ApiError> {
    let email = body.email.trim().to_lowercase();
    let role = Role::parse(&body.role);
    let mut errors = Vec::new();
    if !looks_like_email(&email) {
        errors.push(FieldError::new("email", "must be an email address"));
    }
    if let Err(m) = check_strength(&body.password) {
        errors.push(FieldError::new("password", m));
    }
    if role.is_none() {
        errors.push(FieldError::new(
            "role",
            "must be admin, editor, viewer or publisher",
        ));
    }
    match role {
        Some(role) if errors.is_empty() => Ok((email, role)),
        _ => Err(ApiError::Validation(errors)),
    }
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", operation_id = "users.create", request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 409, description = "the email is taken"),
        (status = 422, description = "invalid email, weak password or unknown role")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    caller.require(Action::ManageAccess)?;
    let (email, role) = validate(&body)?;
    let password = body.password;
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing task: {e}")))?
        .map_err(ApiError::Internal)?;
    let user = User {
        id: UserId::generate(),
        tenant_id: caller.tenant.clone(),
        email,
        password_hash,
        role,
        server_admin: false,
        created_at: now_millis(),
    };
    s.store.create_user(&user).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "users.list",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<UserView>)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult<Json<ListView<UserView>>> {
    caller.require(Action::ManageAccess)?;
    let page = s
        .store
        .list_users(&caller.tenant, &page(q.limit, q.cursor)?)
        .await?;
    Ok(Json(ListView::of(&page)))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", operation_id = "users.delete",
    responses((status = 204, description = "the user and all their sessions are gone"), (status = 404)),
    security(("bearer" = [])))]
pub async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Action::ManageAccess)?;
    let id = UserId::parse(&id).ok_or_else(|| ApiError::not_found("user"))?;
    s.store
        .delete_user(&caller.tenant, &id)
        .await
        .map_err(missing("user"))?;
    Ok(StatusCode::NO_CONTENT)
}
