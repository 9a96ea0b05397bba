//! The HTTP error type and the single place that renders every error response
//! in PROTOCOL.md's shape: `{"error": {"code", "message", "request_id"}}`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chat_domain::DomainError;
use serde_json::json;

pub use super::ErrorCode;
use super::error_code::unavailable_message;

/// Every way a request can fail. Each variant's status is in its doc.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_request`: malformed JSON or query parameter.
    #[error("{0}")]
    BadRequest(String),
    /// 401 `unauthorized`, with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `forbidden`.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not_found`, also for unknown routes.
    #[error("{0}")]
    NotFound(String),
    /// 413 `payload_too_large`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415 `unsupported_media_type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422 `validation_failed`; the message names the field.
    #[error("{0}")]
    Validation(String),
    /// 429 `rate_limited`, with `Retry-After` (whole seconds, at least 1).
    #[error("too many requests; retry in {} ms", .0.as_millis())]
    RateLimited(std::time::Duration),
    /// A failed use case, with the code [`ErrorCode::of`] gives it (and that
    /// code's status): the one mapping REST shares with the sockets.
    #[error("{message}")]
    Domain { code: ErrorCode, message: String },
}

/// What an error response says; carried from `IntoResponse` to the renderer,
/// which adds the request id.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::Validation(_) => ErrorCode::ValidationFailed,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Domain { code, .. } => *code,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        let code = ErrorCode::of(&err);
        let message = match err {
            // The wait goes into `Retry-After`, which the variant carries.
            DomainError::RateLimited { retry_after } => return Self::RateLimited(retry_after),
            DomainError::Unavailable(what) => unavailable_message(&what),
            DomainError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        Self::Domain { code, message }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::Validation(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType(
                "expected a request body with `Content-Type: application/json`".to_owned(),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge("request body is too large".to_owned())
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = code.status();
        let mut response = status.into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::RateLimited(wait) = &self {
            let seconds = wait.as_millis().div_ceil(1000).max(1);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds as u64));
        }
        response.extensions_mut().insert(ErrorInfo { code, message: self.to_string() });
        response
    }
}

/// The code of an error response, left on it by the renderer for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct RenderedCode(pub ErrorCode);

/// The fallback for unknown routes.
pub async fn route_not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!("no route for {} {}", request.method(), request.uri().path()))
}

/// Marks a 4xx/5xx response whose body is already the one PROTOCOL.md documents for
/// it (the health report's 503), so [`render_errors`] leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct DocumentedBody;

/// Middleware: gives every 4xx/5xx response PROTOCOL.md's JSON error body with the
/// request id, whether it came from a handler ([`ErrorInfo`]) or from axum and
/// tower layers (404, 405, 408, 413 …), keeping their headers.
pub async fn render_errors(State(()): State<()>, request: Request, next: Next) -> Response {
    let request_id =
        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<DocumentedBody>().is_some()
    {
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let info = parts.extensions.remove::<ErrorInfo>().unwrap_or_else(|| fallback_info(status));
    let body =
        json!({"error": {"code": info.code, "message": info.message, "request_id": request_id}});
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.extensions.insert(RenderedCode(info.code));
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

fn fallback_info(status: StatusCode) -> ErrorInfo {
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => (ErrorCode::BadRequest, "bad request"),
        StatusCode::UNAUTHORIZED => (ErrorCode::Unauthorized, "authentication required"),
        StatusCode::FORBIDDEN => (ErrorCode::Forbidden, "forbidden"),
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "not found"),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "method not allowed"),
        StatusCode::REQUEST_TIMEOUT => (ErrorCode::Timeout, "the request took too long"),
        StatusCode::CONFLICT => (ErrorCode::Conflict, "conflict"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ErrorCode::UnsupportedMediaType, "unsupported media type")
        }
        StatusCode::UNPROCESSABLE_ENTITY => (ErrorCode::ValidationFailed, "validation failed"),
        StatusCode::TOO_MANY_REQUESTS => (ErrorCode::RateLimited, "too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => (ErrorCode::Unavailable, "service unavailable"),
        s if s.is_server_error() => (ErrorCode::Internal, "internal error"),
        _ => (ErrorCode::BadRequest, "bad request"),
    };
    ErrorInfo { code, message: message.to_owned() }
}
