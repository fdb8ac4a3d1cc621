//! Dashboard sessions: `POST /api/v1/auth/login` trades an email and password for an expiring
//! bearer token; `POST /api/v1/auth/logout` revokes it. Repeated failures are throttled.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hookrelay_domain::time::{now_millis, to_rfc3339};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Principal};
use super::error::{ApiError, ApiResult};
use super::extract::{ClientAddr, JsonBody};
use super::AppState;
use crate::auth::passwords::{burn_verification_time, verify_password, MAX_PASSWORD_BYTES};
use crate::auth::sessions::{generate_session_token, hash_session_token};
use crate::store::{Session, User};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Use as `Authorization: Bearer <token>` until `expires_at`.
    pub token: String,
    pub expires_at: String,
}

// The login throttle. On PostgreSQL, where several nodes may serve logins, failures are counted
// in the database so a lockout holds whichever node an attempt reaches; on SQLite (one node)
// they are counted in memory (`LoginThrottle`).

fn account_key(email: &str) -> String {
    format!("account:{email}")
}

fn address_key(addr: std::net::IpAddr) -> String {
    format!("address:{addr}")
}

fn shared_throttle(s: &AppState) -> bool {
    s.store.backend() == "postgres"
}

/// `Err(retry_after)` when the account or the address is locked out now.
async fn throttle_check(
    s: &AppState,
    email: &str,
    addr: Option<std::net::IpAddr>,
) -> ApiResult<Result<(), std::time::Duration>> {
    if !shared_throttle(s) {
        return Ok(s.login_throttle.check(email, addr));
    }
    let (max, window) = (s.config.login_max_failures, s.config.login_lockout);
    let window_ms = window.as_millis() as i64;
    let now = now_millis();
    let mut checks = vec![(account_key(email), max)];
    if let Some(a) = addr {
        checks.push((address_key(a), max.saturating_mul(4)));
    }
    let mut wait = None;
    for (key, limit) in checks {
        if let Some((count, since)) = s.store.login_failures(&key, now, window_ms).await? {
            if count >= limit {
                let left =
                    std::time::Duration::from_millis((since + window_ms - now).max(0) as u64);
                wait = wait.max(Some(left));
            }
        }
    }
    Ok(wait.map_or(Ok(()), Err))
}

async fn throttle_failure(
    s: &AppState,
    email: &str,
    addr: Option<std::net::IpAddr>,
) -> ApiResult<()> {
    if !shared_throttle(s) {
        s.login_throttle.record_failure(email, addr);
        return Ok(());
    }
    let window_ms = s.config.login_lockout.as_millis() as i64;
    let account = account_key(email);
    let address = addr.map(address_key);
    let keys: Vec<&str> = std::iter::once(account.as_str())
        .chain(address.as_deref())
        .collect();
    Ok(s.store
        .add_login_failure(&keys, now_millis(), window_ms)
        .await?)
}

/// A success clears the account's count, not the address's (see `LoginThrottle`).
async fn throttle_success(s: &AppState, email: &str) -> ApiResult<()> {
    if !shared_throttle(s) {
        s.login_throttle.record_success(email);
        return Ok(());
    }
    Ok(s.store.clear_login_failures(&account_key(email)).await?)
}

/// Every failure says the same thing, so the answer never tells which accounts exist.
fn bad_credentials() -> ApiError {
    ApiError::Unauthorized("invalid email or password".into())
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "auth.login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 401, description = "invalid email or password"),
        (status = 429, description = "too many failed logins for this account or from this address; see `Retry-After`")))]
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    JsonBody(body): JsonBody<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let email = body.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 || body.password.len() > MAX_PASSWORD_BYTES {
        return Err(bad_credentials());
    }
    if let Err(wait) = throttle_check(&s, &email, addr).await? {
        return Err(ApiError::RateLimited {
            message: "too many failed logins; try again later".into(),
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let user = s.store.find_user_by_email(&email).await?;
    let password = body.password;
    let verified = tokio::task::spawn_blocking(move || match user {
        Some(user) if verify_password(&password, &user.password_hash) => Some(user),
        Some(_) => None,
        None => {
            burn_verification_time(&password);
            None
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password check task: {e}")))?;
    let Some(user) = verified else {
        throttle_failure(&s, &email, addr).await?;
        tracing::warn!(client = ?addr, "failed dashboard login");
        metrics::counter!("hookrelay_login_failures_total").increment(1);
        return Err(bad_credentials());
    };
    throttle_success(&s, &email).await?;
    let (token, session) = new_session(&user, s.config.session_ttl);
    s.store.create_session(&session).await?;
    // Expired sessions are swept here rather than by a timer: logins are rare and cheap.
    if let Err(e) = s.store.purge_expired_sessions(now_millis()).await {
        tracing::warn!(error = %e, "purging expired sessions failed");
    }
    tracing::info!(user = %user.id, "dashboard login");
    Ok(Json(LoginResponse {
        token,
        expires_at: to_rfc3339(session.expires_at),
    }))
}

fn new_session(user: &User, ttl: std::time::Duration) -> (String, Session) {
    let token = generate_session_token();
    let now = now_millis();
    let session = Session {
        token_hash: hash_session_token(&token),
        user_id: user.id.clone(),
        expires_at: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        created_at: now,
    };
    (token, session)
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "auth.logout",
    responses((status = 204, description = "the session token no longer works"),
        (status = 409, description = "the bearer token is an API key, not a session")),
    security(("bearer" = [])))]
pub async fn logout(State(s): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    match caller.principal {
        Principal::User { session, .. } => {
            match s.store.delete_session(&session).await {
                // A concurrent logout of the same session won; the outcome is the same.
                Ok(()) | Err(crate::store::StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(StatusCode::NO_CONTENT)
        }
        Principal::ApiKey(_) => Err(ApiError::Conflict(
            "an API key is not a session; revoke it with DELETE /api/v1/keys/{id}".into(),
        )),
        Principal::Portal(_) => Err(ApiError::Conflict(
            "a portal link is not a session; revoke it with DELETE /api/v1/portal-links/{id}"
                .into(),
        )),
    }
}
