//! A TCP proxy the tests control, to cut a server off from the service and
//! bring it back: `cut` drops every open connection and refuses new ones (a
//! server that went away); `stall` keeps connections open but holds every byte
//! (a network partition: nothing answers, nothing closes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub port: u16,
    open: Arc<AtomicBool>,
    /// `false` while stalled: links hold what they read instead of passing it on.
    flowing: watch::Sender<bool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Forwards a new local port to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let (flowing, _) = watch::channel(true);
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let target = target.to_owned();
        let accept = {
            let (open, links, flowing) = (open.clone(), links.clone(), flowing.clone());
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::Acquire) {
                        continue; // dropped: refused
                    }
                    let target = target.clone();
                    let mut gate = flowing.subscribe();
                    let link = tokio::spawn(async move {
                        // A stalled server accepts but never answers, not even the handshake.
                        if gate.wait_for(|flowing| *flowing).await.is_err() {
                            return;
                        }
                        let Ok(outbound) = TcpStream::connect(&target).await else { return };
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        tokio::join!(
                            forward(in_read, out_write, gate.clone()),
                            forward(out_read, in_write, gate),
                        );
                    });
                    links.lock().unwrap().push(link);
                }
            })
        };
        Self { port, open, flowing, links, accept }
    }

    /// Drops every forwarded connection and refuses new ones.
    pub async fn cut(&self) {
        self.open.store(false, Ordering::Release);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Holds every byte in both directions on every connection, old and new,
    /// without closing any: the peers see silence.
    pub fn stall(&self) {
        self.flowing.send_replace(false);
    }

    /// Lets connections be made and bytes flow again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::Release);
        self.flowing.send_replace(true);
    }
}

/// Copies one direction, pausing (with the data it read held) while stalled.
async fn forward(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut gate: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    while let Ok(read) = from.read(&mut buffer).await {
        if read == 0 || gate.wait_for(|flowing| *flowing).await.is_err() {
            break;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}
