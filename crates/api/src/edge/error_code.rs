//! The error codes of docs/PROTOCOL.md as one enum, and the one mapping from a
//! domain error to its code, so REST answers and socket `error` frames cannot
//! drift apart.

use axum::http::StatusCode;
use chat_domain::DomainError;
use serde::Serialize;

/// Every code a client can be answered with, serialized as PROTOCOL.md spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed JSON or query parameter.
    BadRequest,
    /// 401: missing, invalid or expired token.
    Unauthorized,
    /// 403; also a frame.
    Forbidden,
    /// 404, also for unknown routes; also a frame.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 408: the request took longer than `REQUEST_TIMEOUT_SECS`.
    Timeout,
    /// 409 (REST only: the frame set has no `conflict`).
    Conflict,
    /// 413: the body is over `MAX_BODY_BYTES`.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: well-formed but invalid values; also a frame.
    ValidationFailed,
    /// 429 (with `Retry-After`); also a frame (with `retry_after_ms`).
    RateLimited,
    /// 503: a required dependency is down; also a frame.
    Unavailable,
    /// 500 (REST only: the frame set has no `internal`).
    Internal,
    /// A frame that is not JSON text (frames only).
    InvalidJson,
    /// A frame without a known `type` (frames only).
    UnknownType,
}

impl ErrorCode {
    /// The code of a failed use case, on any transport; a socket narrows it with
    /// [`ErrorCode::on_socket`].
    pub fn of(err: &DomainError) -> Self {
        match err {
            DomainError::Validation { .. } => Self::ValidationFailed,
            DomainError::NotFound(_) => Self::NotFound,
            DomainError::Forbidden(_) => Self::Forbidden,
            DomainError::Conflict(_) => Self::Conflict,
            DomainError::RateLimited { .. } => Self::RateLimited,
            DomainError::Unavailable(_) => Self::Unavailable,
            DomainError::Internal(_) => Self::Internal,
        }
    }

    /// The code as an `error` frame can carry it. PROTOCOL.md lists the frame codes
    /// and neither `conflict` nor `internal` is among them: a conflicting frame is
    /// an invalid one, and an internal fault on a socket is, for the client, a
    /// message not stored that it may send again.
    pub fn on_socket(self) -> Self {
        match self {
            Self::Conflict => Self::ValidationFailed,
            Self::Internal => Self::Unavailable,
            other => other,
        }
    }

    /// The HTTP status that goes with the code (frame-only codes are 400s).
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::InvalidJson | Self::UnknownType => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as it goes on the wire (and into metric labels).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Timeout => "timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::InvalidJson => "invalid_json",
            Self::UnknownType => "unknown_type",
        }
    }
}

impl From<ErrorCode> for &'static str {
    fn from(code: ErrorCode) -> Self {
        code.as_str()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client is told when a dependency failed: the change may or may not have
/// happened, and the idempotency key makes a retry safe.
pub fn unavailable_message(what: &str) -> String {
    format!(
        "{what} is unavailable; not done, or outcome unknown: retrying with the same client_msg_id is safe"
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The `error` frame codes PROTOCOL.md lists.
    const FRAME_CODES: [&str; 7] = [
        "invalid_json",
        "unknown_type",
        "validation_failed",
        "forbidden",
        "not_found",
        "rate_limited",
        "unavailable",
    ];

    fn every_domain_error() -> Vec<DomainError> {
        vec![
            DomainError::validation("name", "bad"),
            DomainError::NotFound("x".into()),
            DomainError::Forbidden("x".into()),
            DomainError::Conflict("x".into()),
            DomainError::RateLimited { retry_after: Duration::from_millis(5) },
            DomainError::Unavailable("database".into()),
            DomainError::Internal("bug".into()),
        ]
    }

    #[test]
    fn serializes_as_the_wire_string() {
        for code in [ErrorCode::Conflict, ErrorCode::ValidationFailed, ErrorCode::InvalidJson] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn rest_codes_match_the_domain_error_status() {
        let codes: Vec<&str> =
            every_domain_error().iter().map(|e| ErrorCode::of(e).as_str()).collect();
        assert_eq!(
            codes,
            [
                "validation_failed",
                "not_found",
                "forbidden",
                "conflict",
                "rate_limited",
                "unavailable",
                "internal"
            ]
        );
    }

    #[test]
    fn socket_codes_stay_in_the_frame_set() {
        for err in every_domain_error() {
            let code = ErrorCode::of(&err).on_socket();
            assert!(FRAME_CODES.contains(&code.as_str()), "{err:?} gives {code}");
        }
    }
}
