//! Who is calling, as far as the network says: the peer address, or behind a
//! trusted proxy the right-most address of `X-Forwarded-For` — the one that
//! proxy appended. (Entries left of it come from the client and can be forged.)

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::Extensions;
use axum::http::HeaderMap;

/// `None` when the request came in without a peer address (e.g. a router
/// driven in-process) and no trusted header names one.
pub fn client_address(
    headers: &HeaderMap,
    extensions: &Extensions,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(forwarded) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok())
    {
        return Some(forwarded);
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_peer(ip: &str) -> Extensions {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 4000)));
        extensions
    }

    #[test]
    fn the_forwarded_header_counts_only_when_trusted() {
        let mut headers = HeaderMap::new();
        // A client that forged the first entry; the proxy appended the real one.
        headers.insert("x-forwarded-for", "198.51.100.1, 203.0.113.7".parse().unwrap());
        let peer = with_peer("10.0.0.2");
        assert_eq!(client_address(&headers, &peer, false), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(client_address(&headers, &peer, true), Some("203.0.113.7".parse().unwrap()));
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_address(&headers, &peer, true), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(client_address(&HeaderMap::new(), &Extensions::new(), true), None);
    }
}
