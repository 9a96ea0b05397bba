//! The service's own rate limits at the edge: REST requests and new sockets per
//! client address, and open sockets per user. (Messages per user are a domain
//! rule, enforced by the chat service through its `RateLimiter` port.)

mod client_address;
mod http;
mod sockets;

use std::sync::Arc;

use axum::http::{Extensions, HeaderMap};
use chat_domain::ports::RateLimiter;
use chat_infra::limits::RedisSocketCap;

pub use client_address::client_address;
pub use http::limit_requests;
pub use sockets::{SocketCounter, SocketSlot};

use crate::edge::error::ApiError;

/// The edge limits. With Redis each is shared by every instance; without it,
/// each instance counts for itself.
#[derive(Clone)]
pub struct Limits {
    /// REST requests per client address; `None`: off.
    pub requests: Option<Arc<dyn RateLimiter>>,
    /// New sockets per client address; `None`: off.
    pub connects: Option<Arc<dyn RateLimiter>>,
    /// Open sockets per user on this instance.
    pub sockets: SocketCounter,
    /// Open sockets per user on every instance (with Redis and a cap).
    pub shared_sockets: Option<Arc<RedisSocketCap>>,
    /// Read the client address from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

impl Limits {
    /// One more new socket from the caller's address, or 429.
    pub async fn check_connect(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<(), ApiError> {
        self.spend(self.connects.as_deref(), headers, extensions, "socket connect").await
    }

    /// One more REST request from the caller's address, or 429.
    pub async fn check_request(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<(), ApiError> {
        self.spend(self.requests.as_deref(), headers, extensions, "request").await
    }

    /// A token from the caller's bucket in `limiter` (none: that limit is off;
    /// no known address: nothing to count).
    async fn spend(
        &self,
        limiter: Option<&dyn RateLimiter>,
        headers: &HeaderMap,
        extensions: &Extensions,
        what: &'static str,
    ) -> Result<(), ApiError> {
        let Some(limiter) = limiter else { return Ok(()) };
        let Some(address) = client_address(headers, extensions, self.trust_forwarded_for) else {
            return Ok(());
        };
        limiter.acquire(&address.to_string()).await.map_err(|wait| {
            tracing::debug!(%address, what, "rate limit reached");
            ApiError::RateLimited(wait)
        })
    }

    /// A place for one more socket of `user`, or 429 when they hold the most
    /// allowed, here or (with Redis) on all instances together (a socket must
    /// close before another opens).
    pub async fn socket_slot(&self, user: &str) -> Result<SocketSlot, ApiError> {
        let refused = || {
            tracing::debug!(user, "open socket limit reached");
            ApiError::RateLimited(SOCKET_RETRY)
        };
        let slot = self.sockets.open(user).ok_or_else(refused)?;
        match &self.shared_sockets {
            Some(shared) => slot.shared(shared.clone()).await.ok_or_else(refused),
            None => Ok(slot),
        }
    }
}

/// What `Retry-After` says to a user at the socket limit: there is no telling
/// when one of their sockets closes.
const SOCKET_RETRY: std::time::Duration = std::time::Duration::from_secs(5);
