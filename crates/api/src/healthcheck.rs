//! `chat-room healthcheck`: asks the service on this host for `/health` (at the
//! `HOST` and `PORT` the settings give) and exits 0 on 200 (`ok` or `degraded`),
//! 1 otherwise. Container images use it for `HEALTHCHECK`, so they need no curl.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(3);

/// Probes `host:port` (loopback when `host` is a wildcard such as `0.0.0.0`,
/// or `localhost`).
pub fn run(host: &str, port: u16) -> bool {
    let host = host
        .parse::<IpAddr>()
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    is_healthy(SocketAddr::new(host, port))
}

/// True when `GET /health` at `address` answers 200 within a few seconds.
pub fn is_healthy(address: SocketAddr) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&address, WAIT)?;
        stream.set_read_timeout(Some(WAIT))?;
        stream.set_write_timeout(Some(WAIT))?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut status_line = [0u8; 12];
        stream.read_exact(&mut status_line)?;
        Ok(&status_line[9..12] == b"200")
    };
    probe().unwrap_or(false)
}
