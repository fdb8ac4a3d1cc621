//! Who is calling: the bearer token (an API key or a dashboard session) is resolved to a tenant
//! and a role. API keys are cached briefly for the ingest path; sessions are read from the store
//! each time so that a logout takes effect on every node at once.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::{Action, KeyId, PortalLinkId, Role, TenantId, UserId};

use super::error::ApiError;
use super::AppState;
use crate::auth::keys::{hash_api_key, looks_like_api_key};
use crate::auth::sessions::{hash_session_token, looks_like_session_token};
use crate::store::ApiKey;

/// The authenticated caller, acting on one tenant.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub role: Role,
    pub server_admin: bool,
    pub principal: Principal,
}

/// The credential behind a caller.
#[derive(Clone, Debug)]
pub enum Principal {
    ApiKey(KeyId),
    /// A logged-in dashboard user; `session` is the token's hash, for logout.
    User {
        id: UserId,
        email: String,
        session: String,
    },
    /// A portal link: one tenant, its role, and only the routes `portal_may_reach` allows.
    Portal(PortalLinkId),
}

/// What a token grants, before `X-Tenant-Id` picks the tenant acted on.
struct Grant {
    home_tenant: TenantId,
    role: Role,
    server_admin: bool,
    principal: Principal,
}

impl Caller {
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if self.role.allows(action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the {} role may not do this",
                self.role.as_str()
            )))
        }
    }

    pub fn require_server_admin(&self) -> Result<(), ApiError> {
        if self.server_admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "only a server admin manages tenants".into(),
            ))
        }
    }
}

/// API keys by hash, kept for a short TTL.
pub struct KeyCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, (ApiKey, Instant)>>,
}

const KEY_CACHE_MAX: usize = 10_000;

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, hash: &str) -> Option<ApiKey> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(k, _)| k.clone())
    }

    fn put(&self, hash: String, key: ApiKey) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(hash, (key, Instant::now()));
    }

    /// Forgets a deleted key at once on this node; other nodes forget it within the TTL.
    pub fn forget(&self, id: &KeyId) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (k, _)| &k.id != id);
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized("missing `Authorization: Bearer <token>`".into())
            })?;
        let grant = resolve_token(state, token).await?;
        if matches!(grant.principal, Principal::Portal(_))
            && !portal_may_reach(&parts.method, parts.uri.path())
        {
            return Err(ApiError::Forbidden(
                "a portal link reaches only this tenant's webhooks, events, deliveries and dead letters".into(),
            ));
        }
        let asked = parts
            .headers
            .get("x-tenant-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let tenant = match asked {
            None | Some("") => grant.home_tenant.clone(),
            Some(raw) if grant.server_admin => {
                let id = TenantId::parse(raw).ok_or_else(|| ApiError::not_found("tenant"))?;
                state
                    .store
                    .get_tenant(&id)
                    .await
                    .map_err(super::error::missing("tenant"))?;
                id
            }
            Some(raw) if raw == grant.home_tenant.as_str() => grant.home_tenant.clone(),
            Some(_) => {
                return Err(ApiError::Forbidden(
                    "only a server admin may act on another tenant".into(),
                ))
            }
        };
        Ok(Caller {
            tenant,
            role: grant.role,
            server_admin: grant.server_admin,
            principal: grant.principal,
        })
    }
}

/// What a portal link may call: its tenant's webhooks, deliveries and dead letters (with what
/// their pages read: events, the catalog, the live stream, stats), never keys, users, sources,
/// tenants, quotas, other portal links or emitting events. The role still decides writes.
fn portal_may_reach(method: &axum::http::Method, path: &str) -> bool {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let read = method == axum::http::Method::GET;
    under("/api/v1/webhooks")
        || under("/api/v1/deliveries")
        || under("/api/v1/dlq")
        || (path.starts_with("/api/v1/events/") && path.ends_with("/replay"))
        || (read
            && (path == "/api/v1/me"
                || path == "/api/v1/stream"
                || under("/api/v1/events")
                || under("/api/v1/event-types")
                || under("/api/v1/stats")))
}

async fn resolve_token(state: &AppState, token: &str) -> Result<Grant, ApiError> {
    if crate::api::portal::looks_like_portal_token(token) {
        // Read from the store each time, like sessions: a revoked link stops on every node.
        let link = state
            .store
            .find_portal_link_by_hash(&hash_api_key(token), now_millis())
            .await?
            .ok_or_else(|| ApiError::Unauthorized("portal link expired or revoked".into()))?;
        return Ok(Grant {
            home_tenant: link.tenant_id,
            role: link.role,
            server_admin: false,
            principal: Principal::Portal(link.id),
        });
    }
    if looks_like_session_token(token) {
        let (session, user) = state
            .store
            .find_session(&hash_session_token(token), now_millis())
            .await?
            .ok_or_else(|| ApiError::Unauthorized("session expired or logged out".into()))?;
        return Ok(Grant {
            home_tenant: user.tenant_id,
            role: user.role,
            server_admin: user.server_admin,
            principal: Principal::User {
                id: user.id,
                email: user.email,
                session: session.token_hash,
            },
        });
    }
    if !looks_like_api_key(token) {
        return Err(ApiError::Unauthorized("invalid token".into()));
    }
    let hash = hash_api_key(token);
    let key = match state.keys.get(&hash) {
        Some(k) => k,
        None => {
            let k = state
                .store
                .find_api_key_by_hash(&hash)
                .await?
                .ok_or_else(|| ApiError::Unauthorized("invalid token".into()))?;
            state.keys.put(hash, k.clone());
            k
        }
    };
    Ok(Grant {
        home_tenant: key.tenant_id,
        role: key.role,
        server_admin: key.server_admin,
        principal: Principal::ApiKey(key.id),
    })
}

/// The caller must be allowed `action`; returns the caller for chaining.
pub fn allowed(caller: Caller, action: Action) -> Result<Caller, ApiError> {
    caller.require(action)?;
    Ok(caller)
}
