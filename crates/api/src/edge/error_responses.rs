//! The error body of docs/PROTOCOL.md as a schema, and one reusable response per error
//! status, so every operation's error responses name the same body.

use utoipa::{ToResponse, ToSchema};

/// Every error response: `{"error": {"code", "message", "request_id"}}`.
#[derive(ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "room 42 not found", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What went wrong, for people; for `validation_failed` it names the field.
    pub message: String,
    /// The request's `x-request-id` (the caller's, or one the service made up).
    pub request_id: String,
}

/// The error codes, one per status (docs/PROTOCOL.md "Conventions").
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed JSON or query parameter.
    BadRequest,
    /// 401: missing, invalid or expired token.
    Unauthorized,
    /// 403
    Forbidden,
    /// 404, also for unknown routes.
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 408: the request took longer than `REQUEST_TIMEOUT_SECS`.
    Timeout,
    /// 409
    Conflict,
    /// 413: the body is over `MAX_BODY_BYTES`.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: well-formed but invalid values.
    ValidationFailed,
    /// 429 (with `Retry-After`).
    RateLimited,
    /// 503: a required dependency is down; not done, or outcome unknown: retrying with the same `client_msg_id` is safe.
    Unavailable,
    /// 500: no detail leaks; it is logged.
    Internal,
}

/// Malformed JSON or a bad query parameter (`bad_request`).
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "bad_request", "message": "Failed to parse the request body as JSON: expected value at line 1 column 1", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct BadRequest(pub ErrorBody);

/// No valid token (`unauthorized`); only with `AUTH_MODE=required`.
#[derive(ToResponse)]
#[response(
    example = json!({"error": {"code": "unauthorized", "message": "the token is invalid or expired", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}),
    headers(("www-authenticate" = String, description = "Always `Bearer`."))
)]
pub struct Unauthorized(pub ErrorBody);

/// The caller may not do this (`forbidden`): not the author, creator or an admin,
/// not a member of a private room, or a `user_id` that is not the token's.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "forbidden", "message": "only the room's creator or an admin may change it", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct Forbidden(pub ErrorBody);

/// Unknown or deleted (`not_found`).
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "not_found", "message": "room 42 not found", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct NotFound(pub ErrorBody);

/// The request conflicts with the current state (`conflict`): an offer no
/// longer open (the message names its status), an offer's message edited.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "conflict", "message": "offer 7 is accepted, no longer open", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct Conflict(pub ErrorBody);

/// The body is larger than `MAX_BODY_BYTES` (`payload_too_large`).
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "payload_too_large", "message": "request body is too large", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct PayloadTooLarge(pub ErrorBody);

/// The body is not sent as `Content-Type: application/json` (`unsupported_media_type`).
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "unsupported_media_type", "message": "expected a request body with `Content-Type: application/json`", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct UnsupportedMediaType(pub ErrorBody);

/// Well-formed but invalid values (`validation_failed`); the message names the field.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "validation_failed", "message": "name: must be 1-100 characters after trimming", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct ValidationFailed(pub ErrorBody);

/// The request took longer than `REQUEST_TIMEOUT_SECS` (`timeout`).
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "timeout", "message": "the request took too long", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct Timeout(pub ErrorBody);

/// Over a rate limit (`rate_limited`): messages per user, requests or new
/// sockets per client address, or open sockets per user.
#[derive(ToResponse)]
#[response(
    example = json!({"error": {"code": "rate_limited", "message": "too many requests; retry in 1500 ms", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}),
    headers(("retry-after" = String, description = "Whole seconds to wait before retrying."))
)]
pub struct RateLimited(pub ErrorBody);

/// A required dependency is down (`unavailable`): not done, or outcome unknown; retrying
/// with the same `client_msg_id` is safe and never duplicates.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "unavailable", "message": "database is unavailable; not done, or outcome unknown: retrying with the same client_msg_id is safe", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct Unavailable(pub ErrorBody);

/// An unexpected failure (`internal`); the detail is logged, never sent.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "internal", "message": "internal error", "request_id": "3f1c6a2e-9b0d-4f4e-8a57-2d1f0c9e7b11"}}))]
pub struct Internal(pub ErrorBody);
