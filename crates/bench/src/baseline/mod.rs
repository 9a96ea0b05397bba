//! The baseline: a minimal server speaking the same socket protocol as the
//! service (`joined`, `message` with id and seq, `pong`, errors; the inbox
//! socket's `subscribe`; the legacy conversation sockets; rooms created by
//! POST and pages of history) with no persistence, cache or events — the floor
//! the service's figures are compared with. It uses the same stack (axum,
//! tungstenite with default buffers, bounded per-socket queues, pings) so the
//! difference is what the service adds.

mod history;
mod inbox;
mod legacy;
mod rooms;
mod socket;
mod state;
mod writer;

use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::sync::oneshot;

use state::State;

/// Worker threads of an in-process baseline (this machine has two cores).
const WORKERS: usize = 2;

/// The baseline's routes.
pub fn router() -> Router {
    Router::new()
        .route("/rooms", post(rooms::create))
        .route("/rooms/{room}/messages", get(history::page))
        .route("/ws", get(inbox::upgrade))
        .route("/ws/{room}", get(socket::upgrade))
        .route("/ws/chat/{item}/{other}", get(legacy::upgrade))
        .with_state(State::default())
}

/// Serves on `listener` until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router()).with_graceful_shutdown(stop).await
}

/// A baseline on its own runtime and threads inside this process, on a free
/// loopback port; stopped when dropped.
pub struct BaselineServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BaselineServer {
    pub fn start_in_background() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("baseline")
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("baseline".into()).spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!(error = %e, "baseline cannot listen");
                        return;
                    }
                };
                let stop = async {
                    let _ = stopped.await;
                };
                if let Err(e) = serve(listener, stop).await {
                    tracing::error!(error = %e, "baseline server failed");
                }
            });
            // Sockets still open at the end are dropped with the runtime.
            runtime.shutdown_background();
        })?;
        Ok(Self { address, stop: Some(stop), thread: Some(thread) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for BaselineServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Graceful shutdown waits for open sockets; the scenario has closed its own.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
