//! Who is calling: the bearer token is resolved to a tenant and a role (API keys are looked up
//! by hash, with a short-lived cache so the ingest path does not hit the store for each request).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hookrelay_domain::{Action, KeyId, Role, TenantId};

use super::error::ApiError;
use super::AppState;
use crate::auth::keys::{hash_api_key, looks_like_api_key};
use crate::store::ApiKey;

/// The authenticated caller, acting on one tenant.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub role: Role,
    pub server_admin: bool,
    pub key_id: KeyId,
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
                "only the server admin key manages tenants".into(),
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
        let asked = parts
            .headers
            .get("x-tenant-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let tenant = match asked {
            None | Some("") => key.tenant_id.clone(),
            Some(raw) if key.server_admin => {
                let id = TenantId::parse(raw).ok_or_else(|| ApiError::not_found("tenant"))?;
                state
                    .store
                    .get_tenant(&id)
                    .await
                    .map_err(super::error::missing("tenant"))?;
                id
            }
            Some(raw) if raw == key.tenant_id.as_str() => key.tenant_id.clone(),
            Some(_) => {
                return Err(ApiError::Forbidden(
                    "only the server admin key may act on another tenant".into(),
                ))
            }
        };
        Ok(Caller {
            tenant,
            role: key.role,
            server_admin: key.server_admin,
            key_id: key.id,
        })
    }
}

/// The caller must be allowed `action`; returns the caller for chaining.
pub fn allowed(caller: Caller, action: Action) -> Result<Caller, ApiError> {
    caller.require(action)?;
    Ok(caller)
}
