//! `TCP_NODELAY` for the Postgres connections. sqlx 0.9.0 leaves Nagle's
//! algorithm on (upstream issue transact-rs/sqlx#4335, fixed after 0.9.0): a
//! statement larger than the socket's send buffer — a batch of messages — is
//! written in pieces, and the last piece waits for the server's delayed ACK,
//! ~40 ms per statement. Until a release carries the fix, every new connection
//! switches Nagle off on the process's sockets to the database's port.

/// Sets `TCP_NODELAY` on every TCP socket of this process connected to
/// `server_port` (the database's; nothing changes for a Unix socket).
#[cfg(target_os = "linux")]
pub(crate) fn disable_nagle(server_port: u16) {
    use std::os::fd::BorrowedFd;

    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for fd in fds.flatten().filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok()) {
        // SAFETY: the descriptor is only borrowed for the socket calls below;
        // if it was closed (or reused) meanwhile they fail or find a socket
        // that does not match, and nothing is changed.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&borrowed);
        let to_server = socket
            .peer_addr()
            .ok()
            .and_then(|peer| peer.as_socket())
            .is_some_and(|peer| peer.port() == server_port);
        if to_server
            && !socket.tcp_nodelay().unwrap_or(true)
            && let Err(e) = socket.set_tcp_nodelay(true)
        {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a database connection");
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn disable_nagle(_server_port: u16) {}
