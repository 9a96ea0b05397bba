//! Opening client sockets: a TCP connection from one of several loopback source
//! addresses (each has its own ephemeral-port range, so one client can hold
//! more sockets than one address allows), then the WebSocket handshake.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::target::Target;

pub type Socket = WebSocketStream<TcpStream>;

/// Client read buffer: frames here are small, and thousands of sockets with
/// tungstenite's default 128 KiB would make the client the memory hog.
const READ_BUFFER: usize = 8 * 1024;
const WRITE_BUFFER: usize = 8 * 1024;

/// The service's answer header naming the instance that took a socket.
const INSTANCE_HEADER: &str = "x-instance-id";

#[derive(Clone)]
pub struct Connector {
    ws: String,
    address: SocketAddr,
    sources: Arc<Vec<Ipv4Addr>>,
    next: Arc<AtomicUsize>,
}

impl Connector {
    /// Sources 127.0.0.1 … 127.0.0.N when the target is on loopback; else the
    /// system's choice.
    pub fn new(target: &Target, source_ips: u8) -> Self {
        Self {
            ws: target.ws.clone(),
            address: target.address,
            sources: Arc::new(sources_for(target.address.ip(), source_ips)),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Opens `ws://target{path_and_query}`.
    pub async fn open(&self, path_and_query: &str) -> Result<Socket, String> {
        self.open_tagged(path_and_query).await.map(|(socket, _)| socket)
    }

    /// Opens `ws://target{path_and_query}` and tells which instance of the
    /// service took it (its `x-instance-id` answer header, behind a balancer too).
    pub async fn open_tagged(
        &self,
        path_and_query: &str,
    ) -> Result<(Socket, Option<String>), String> {
        let stream = self.tcp().await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let url = format!("{}{path_and_query}", self.ws);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(WRITE_BUFFER);
        let (socket, response) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
        let instance = response
            .headers()
            .get(INSTANCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((socket, instance))
    }

    async fn tcp(&self) -> std::io::Result<TcpStream> {
        let socket = match self.address {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if !self.sources.is_empty() {
            let source =
                self.sources[self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len()];
            socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
        }
        socket.connect(self.address).await
    }
}

/// The source addresses to rotate over; none (let the kernel pick) unless the
/// target is an IPv4 loopback address and more than one is asked for.
pub fn sources_for(target: IpAddr, count: u8) -> Vec<Ipv4Addr> {
    match target {
        IpAddr::V4(ip) if ip.is_loopback() && count > 1 => {
            (1..=count).map(|last| Ipv4Addr::new(127, 0, 0, last)).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_rotate_over_loopback_sources() {
        let sources = sources_for(IpAddr::V4(Ipv4Addr::LOCALHOST), 3);
        assert_eq!(
            sources,
            vec![
                Ipv4Addr::new(127, 0, 0, 1),
                Ipv4Addr::new(127, 0, 0, 2),
                Ipv4Addr::new(127, 0, 0, 3)
            ]
        );
        assert!(sources_for(IpAddr::V4(Ipv4Addr::LOCALHOST), 1).is_empty());
        assert!(sources_for(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 8).is_empty());
    }
}
