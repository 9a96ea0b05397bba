//! The one error type of the domain. Each variant names the HTTP status the api
//! layer maps it to, so the mapping stays obvious at both ends.

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// A value failed validation; `field` names the offending input. → 422
    #[error("{field}: {reason}")]
    Validation { field: &'static str, reason: String },
    /// The entity does not exist or is deleted. → 404
    #[error("{0}")]
    NotFound(String),
    /// The actor is not allowed to do this. → 403
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state. → 409
    #[error("{0}")]
    Conflict(String),
    /// The actor used up its budget (e.g. messages per user); nothing was
    /// written. → 429 with `Retry-After`, or the `rate_limited` frame.
    #[error("too many requests: retry in {} ms", retry_after.as_millis())]
    RateLimited { retry_after: Duration },
    /// A storage dependency is unreachable: not done, or (a write cut off at its
    /// commit) its outcome is unknown; a retry with the same idempotency key is safe. → 503
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected storage failure; details are logged, not shown. → 500
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn validation(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Validation { field, reason: reason.into() }
    }
}
