//! The socket `Origin` check: browsers send `Origin` on upgrades; with
//! `CORS_ORIGINS` set only those origins, and the service's own (the built-in
//! page), may open a socket. Clients that send no `Origin` are not browsers and pass.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

use super::error::ApiError;
use crate::state::AppState;

pub fn check(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let (Some(allowed), Some(origin)) = (&state.origins, headers.get(ORIGIN)) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if allowed.iter().any(|a| a == origin) || is_same_origin(origin, host) {
        return Ok(());
    }
    // The browser shows its page nothing of a refused upgrade: the log must say why.
    tracing::warn!(
        origin,
        host,
        allowed = allowed.join(","),
        "socket refused: its origin is neither in CORS_ORIGINS nor this service's own"
    );
    Err(ApiError::Forbidden(format!(
        "origin {origin:?} may not open a socket: it is not in CORS_ORIGINS"
    )))
}

/// A page served by this service itself: the origin names the host the request
/// was sent to (a browser sets `Host` itself, so a page elsewhere cannot claim
/// it). The scheme is not compared: behind a TLS proxy the service sees plain HTTP.
fn is_same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    if host.is_empty() || !matches!(scheme, "http" | "https") {
        return false;
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let normal = |a: &str| a.strip_suffix(default_port).unwrap_or(a).to_ascii_lowercase();
    normal(authority) == normal(host)
}

#[cfg(test)]
mod tests {
    use super::is_same_origin;

    #[test]
    fn the_service_own_origin() {
        assert!(is_same_origin("http://localhost:8001", "localhost:8001"));
        assert!(is_same_origin("https://chat.example", "chat.example"));
        assert!(is_same_origin("https://chat.example", "chat.example:443"));
        assert!(is_same_origin("http://Chat.Example", "chat.example:80"));
        assert!(is_same_origin("http://[::1]:8001", "[::1]:8001"));
        assert!(!is_same_origin("http://localhost:8002", "localhost:8001"));
        assert!(!is_same_origin("https://evil.example", "chat.example"));
        assert!(!is_same_origin("http://chat.example.evil.example", "chat.example"));
        assert!(!is_same_origin("null", "chat.example"));
        assert!(!is_same_origin("http://chat.example", ""));
        assert!(!is_same_origin("ftp://chat.example", "chat.example"));
    }
}
