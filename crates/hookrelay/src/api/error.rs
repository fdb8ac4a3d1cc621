//! The one place where failures become HTTP answers in the contract's shape:
//! `{"error": {"code", "message", "details", "request_id"}}` plus `X-Request-Id`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hookrelay_domain::validate::FieldError;
use serde_json::json;

use crate::store::StoreError;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware around each request.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| String::from("req_unknown"))
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidJson(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("the request body exceeds the size limit")]
    PayloadTooLarge,
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{message}")]
    QuotaExceeded {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("the request URL is longer than {0} bytes")]
    UriTooLong(usize),
    #[error("the request headers are larger than {0} bytes")]
    HeadersTooLarge(usize),
    #[error("{0}")]
    Unavailable(String),
    /// The message is logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::QuotaExceeded { .. } => (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"),
            Self::InvalidSignature(_) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            Self::HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The `{"error": …}` object, also used per entry by the batch endpoint.
    pub fn body(&self) -> serde_json::Value {
        let (_, code) = self.status_and_code();
        let (message, details) = match self {
            Self::Validation(fields) => {
                let message = fields
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "validation failed".into());
                let details: Vec<_> = fields
                    .iter()
                    .map(|f| json!({"field": f.field, "message": f.message}))
                    .collect();
                (message, details)
            }
            Self::Internal(_) => ("internal error".to_owned(), Vec::new()),
            other => (other.to_string(), Vec::new()),
        };
        json!({"error": {"code": code, "message": message, "details": details,
                         "request_id": current_request_id()}})
    }
}

/// What a `503` asks the client to wait: about one reconnect attempt of the store's pool.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        if let Self::Internal(detail) = &self {
            tracing::error!(request_id = %current_request_id(), error = %detail, "internal error");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        let retry_after = match &self {
            Self::RateLimited {
                retry_after_secs, ..
            }
            | Self::QuotaExceeded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            // The store or the node is briefly away (an outage, a restart, a drain).
            Self::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::from_store(&e)
    }
}

impl ApiError {
    /// A store failure as an answer: an outage (or an exhausted pool) is `503`, never `500`.
    fn from_store(e: &StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("not found".into()),
            StoreError::Conflict(m) => Self::Conflict(m.clone()),
            other => {
                crate::monitoring::store_error("api");
                if other.is_unavailable() {
                    tracing::warn!(error = %other, "the store is unavailable");
                    Self::Unavailable(
                        "the store is unavailable or overloaded; retry shortly".into(),
                    )
                } else {
                    Self::Internal(other.to_string())
                }
            }
        }
    }
}

impl From<crate::ingest::IngestError> for ApiError {
    fn from(e: crate::ingest::IngestError) -> Self {
        match e {
            crate::ingest::IngestError::Closed => Self::Unavailable("shutting down".into()),
            e @ crate::ingest::IngestError::Overloaded { .. } => Self::Unavailable(e.to_string()),
            crate::ingest::IngestError::Store(s) => Self::from_store(&s),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Maps a store `NotFound` to a 404 naming `what`; other store errors keep their meaning.
pub fn missing(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::not_found(what),
        other => other.into(),
    }
}

/// The contract's error body, as the OpenAPI document describes it (`ApiError::body` writes it).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

/// What went wrong. `request_id` equals the answer's `X-Request-Id`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorObject {
    pub code: ErrorCode,
    /// For people; never a stack trace or a secret.
    pub message: String,
    /// One entry per refused field (`validation_failed`), else empty.
    pub details: Vec<FieldDetail>,
    pub request_id: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct FieldDetail {
    /// The field's path, e.g. `url`, `events[1]`, `data.amount`.
    pub field: String,
    pub message: String,
}

/// Every `code` an error body can carry, with its status.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 400
    InvalidJson,
    /// 422
    ValidationFailed,
    /// 413
    PayloadTooLarge,
    /// 409
    Conflict,
    /// 429, with `Retry-After`
    RateLimited,
    /// 429, with `Retry-After`
    QuotaExceeded,
    /// 401 on inbound
    InvalidSignature,
    /// 405
    MethodNotAllowed,
    /// 414
    UriTooLong,
    /// 431
    HeadersTooLarge,
    /// 503
    Unavailable,
    /// 500
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant; the match makes a new variant fail to compile until it is listed.
    fn every_error() -> Vec<ApiError> {
        let all = vec![
            ApiError::Unauthorized("x".into()),
            ApiError::Forbidden("x".into()),
            ApiError::NotFound("x".into()),
            ApiError::InvalidJson("x".into()),
            ApiError::Validation(vec![FieldError::new("f", "m")]),
            ApiError::PayloadTooLarge,
            ApiError::Conflict("x".into()),
            ApiError::RateLimited {
                message: "x".into(),
                retry_after_secs: 1,
            },
            ApiError::QuotaExceeded {
                message: "x".into(),
                retry_after_secs: 1,
            },
            ApiError::InvalidSignature("x".into()),
            ApiError::MethodNotAllowed("x".into()),
            ApiError::UriTooLong(1),
            ApiError::HeadersTooLarge(1),
            ApiError::Unavailable("x".into()),
            ApiError::Internal("x".into()),
        ];
        for e in &all {
            match e {
                ApiError::Unauthorized(_)
                | ApiError::Forbidden(_)
                | ApiError::NotFound(_)
                | ApiError::InvalidJson(_)
                | ApiError::Validation(_)
                | ApiError::PayloadTooLarge
                | ApiError::Conflict(_)
                | ApiError::RateLimited { .. }
                | ApiError::QuotaExceeded { .. }
                | ApiError::InvalidSignature(_)
                | ApiError::MethodNotAllowed(_)
                | ApiError::UriTooLong(_)
                | ApiError::HeadersTooLarge(_)
                | ApiError::Unavailable(_)
                | ApiError::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_error_body_fits_the_documented_schema() {
        for e in every_error() {
            let body = e.body();
            let code: ErrorCode = serde_json::from_value(body["error"]["code"].clone())
                .unwrap_or_else(|_| panic!("{body}: its code is not in ErrorCode"));
            let documented = serde_json::to_value(code).unwrap();
            assert_eq!(documented, body["error"]["code"]);
            assert!(body["error"]["message"].is_string(), "{body}");
            assert!(body["error"]["details"].is_array(), "{body}");
            assert!(body["error"]["request_id"].is_string(), "{body}");
        }
    }
}
