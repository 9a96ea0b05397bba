//! A TCP proxy the tests control, to cut a server off from the service and
//! bring it back: `cut` drops every open connection and refuses new ones (a
//! server that went away); `stall` keeps connections open but holds every byte
//! (a network partition: nothing answers, nothing closes); `cut_when_sent`
//! drops a connection instead of passing on bytes it sends that hold a marker
//! (a write cut off at its commit, which the server then never makes).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub struct Proxy {
    pub port: u16,
    open: Arc<AtomicBool>,
    /// `false` while stalled: links hold what they read instead of passing it on.
    flowing: watch::Sender<bool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
    commits: Arc<Tripwire>,
}

/// Which bytes a client may not send.
#[derive(Default)]
struct Tripwire {
    /// Cut the connection instead of passing on bytes that hold this.
    marker: Mutex<Option<Vec<u8>>>,
    /// Connections cut so.
    cut_so_far: AtomicUsize,
}

impl Proxy {
    /// Forwards a new local port to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let (flowing, _) = watch::channel(true);
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let commits = Arc::new(Tripwire::default());
        let target = target.to_owned();
        let accept = {
            let (open, links, flowing) = (open.clone(), links.clone(), flowing.clone());
            let commits = commits.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::Acquire) {
                        continue; // dropped: refused
                    }
                    let target = target.clone();
                    let mut gate = flowing.subscribe();
                    let commits = commits.clone();
                    let link = tokio::spawn(async move {
                        // A stalled server accepts but never answers, not even the handshake.
                        if gate.wait_for(|flowing| *flowing).await.is_err() {
                            return;
                        }
                        let Ok(outbound) = TcpStream::connect(&target).await else { return };
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        let cut = Notify::new();
                        let upstream = Upstream { commits: &commits, cut: &cut };
                        // A cut drops both directions at once: the server sees
                        // the client go away, the client its server.
                        tokio::select! {
                            _ = async {
                                tokio::join!(
                                    forward(in_read, out_write, gate.clone(), Some(upstream)),
                                    forward(out_read, in_write, gate, None),
                                )
                            } => {}
                            () = cut.notified() => {}
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            })
        };
        Self { port, open, flowing, links, accept, commits }
    }

    /// From now on a connection whose client sends bytes holding `marker` is
    /// dropped (both ways) instead of the bytes being passed on: the server
    /// never sees them. With `b"COMMIT"` a transaction is cut off at its
    /// commit; with a value bound to a statement that commits by itself (the
    /// Postgres message batch), that statement is.
    pub fn cut_when_sent(&self, marker: &[u8]) {
        *self.commits.marker.lock().unwrap() = Some(marker.to_vec());
    }

    /// Passes every byte on again.
    pub fn stop_cutting(&self) {
        *self.commits.marker.lock().unwrap() = None;
    }

    /// Connections dropped by [`Proxy::cut_when_sent`] so far.
    pub fn connections_cut(&self) -> usize {
        self.commits.cut_so_far.load(Ordering::Acquire)
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

/// The client-to-server direction of a link, which watches for the marker.
#[derive(Clone, Copy)]
struct Upstream<'a> {
    commits: &'a Tripwire,
    /// Notified to drop the link.
    cut: &'a Notify,
}

/// Copies one direction, pausing (with the data it read held) while stalled.
async fn forward(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut gate: watch::Receiver<bool>,
    upstream: Option<Upstream<'_>>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    // The end of the previous read, so a marker split between two reads is seen.
    let mut tail: Vec<u8> = Vec::new();
    while let Ok(read) = from.read(&mut buffer).await {
        if read == 0 || gate.wait_for(|flowing| *flowing).await.is_err() {
            break;
        }
        if let Some(upstream) = upstream {
            tail.extend_from_slice(&buffer[..read]);
            let marker = upstream.commits.marker.lock().unwrap().clone();
            if let Some(marker) = marker {
                if tail.windows(marker.len()).any(|w| w == marker) {
                    upstream.commits.cut_so_far.fetch_add(1, Ordering::AcqRel);
                    upstream.cut.notify_one();
                    return;
                }
                tail.drain(..tail.len().saturating_sub(marker.len() - 1));
            } else {
                tail.clear();
            }
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
