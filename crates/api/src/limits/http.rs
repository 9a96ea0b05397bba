//! Middleware: REST requests per client address. Health checks (orchestrators
//! poll them) and socket upgrades (limited on their own) are not counted.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Limits;

pub async fn limit_requests(
    State(limits): State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let exempt = path == "/health"
        || path.starts_with("/health/")
        || path == "/ws"
        || path.starts_with("/ws/");
    if !exempt
        && let Err(limited) = limits.check_request(request.headers(), request.extensions()).await
    {
        return limited.into_response();
    }
    next.run(request).await
}
