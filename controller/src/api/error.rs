//! The API's one error shape and the one place where domain errors become
//! HTTP statuses.
//!
//! Client mistakes (4xx) are logged at debug level with what was wrong;
//! internal faults (5xx) are logged once at error level with their whole
//! cause chain, and the client gets a generic message.

use std::collections::BTreeMap;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::orchestrator::OrchestratorError;
use crate::state::{IntentError, InvalidField, StateError};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code: `bad_request`, `invalid_argument`,
    /// `unauthenticated`, `forbidden`, `not_found`, `conflict`,
    /// `unsupported_media_type`, `unavailable`, `internal`.
    #[schema(example = "invalid_argument")]
    pub code: String,
    /// What went wrong, for people.
    #[schema(example = "dst: must differ from src")]
    pub message: String,
    /// Specifics: `field` names the offending request field when there is
    /// one; `reason` repeats what is wrong with it.
    #[schema(example = json!({"field": "dst", "reason": "must differ from src"}))]
    pub details: BTreeMap<String, String>,
}

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: BTreeMap<String, String>,
    internal: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    pub(crate) fn new_status(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: BTreeMap::new(),
            internal: None,
        }
    }

    /// 400: the request is malformed (bad JSON, bad query string).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new_status(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 naming a query parameter.
    pub fn bad_parameter(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::bad_request(format!("{field}: {reason}"))
            .detail("field", field)
            .detail("reason", reason)
    }

    /// 422: a field of the body is not acceptable.
    pub fn invalid(field: InvalidField) -> Self {
        Self::new_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            field.to_string(),
        )
        .detail("field", field.field)
        .detail("reason", field.reason)
    }

    /// 401: no credentials or unknown ones.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new_status(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403: the caller's role may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new_status(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new_status(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new_status(StatusCode::CONFLICT, "conflict", message)
    }

    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 503: a part the request needs is not running.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new_status(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: logged with `cause`; the client sees a generic message.
    pub fn internal(
        what: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        let mut e = Self::new_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", what);
        e.internal = Some(cause.into());
        e
    }

    /// Adds a detail.
    #[must_use]
    pub fn detail(mut self, key: &str, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = if let Some(cause) = &self.internal {
            tracing::error!(what = %self.message, cause = %chain(cause.as_ref()), "API request failed");
            ErrorBody {
                code: self.code.into(),
                message: "internal error; the controller's log has the details".into(),
                details: BTreeMap::new(),
            }
        } else {
            if self.status.is_server_error() {
                tracing::warn!(code = self.code, message = %self.message, "API request not served");
            } else {
                tracing::debug!(status = self.status.as_u16(), code = self.code, message = %self.message, "API request refused");
            }
            ErrorBody {
                code: self.code.into(),
                message: self.message,
                details: self.details,
            }
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"solyx\""),
            );
        }
        response
    }
}

impl From<InvalidField> for ApiError {
    fn from(e: InvalidField) -> Self {
        Self::invalid(e)
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        Self::not_found(e.to_string())
    }
}

impl From<IntentError> for ApiError {
    fn from(e: IntentError) -> Self {
        match e {
            IntentError::Invalid(f) => Self::invalid(f),
            IntentError::Exists(_) => Self::conflict(e.to_string()),
            IntentError::NotFound(_) => Self::not_found(e.to_string()),
            IntentError::Database { .. } | IntentError::Corrupt { .. } => {
                Self::internal("intent store failure", e)
            }
        }
    }
}

impl From<OrchestratorError> for ApiError {
    fn from(e: OrchestratorError) -> Self {
        match e {
            OrchestratorError::Invalid(f) => Self::invalid(f),
            OrchestratorError::Exists(_) => Self::conflict(e.to_string()),
            OrchestratorError::NotFound(_) => Self::not_found(e.to_string()),
            OrchestratorError::Internal(_) => Self::internal("orchestrator failure", e),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal("request task failed", e)
    }
}
