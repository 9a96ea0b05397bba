//! Opening a scenario's sockets, many at a time, each counted on the progress
//! bar; a room socket is ready once its `joined` frame has arrived, an inbox
//! socket once its `ready` frame has.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::tally::Tally;
use crate::connect::{Connector, Socket};
use crate::frames::ServerFrame;
use crate::latency::Latencies;
use crate::progress::Progress;

/// The longest a socket may take to open and say `joined`.
const OPEN_WAIT: Duration = Duration::from_secs(60);

/// What the protocol sends first on a new socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// The room protocol's `joined` frame.
    Joined,
    /// The inbox socket's `ready` frame.
    Ready,
    /// The legacy protocol says nothing.
    None,
}

/// Opens every path (`concurrency` at a time); each socket goes to `ready`
/// (with its index) the moment it is open, so its reader starts at once — a
/// socket left unread while the others open would fill its server-side queue
/// with presence frames and be closed as too slow. A failed one is `None` and
/// counted as an error. Open times (handshake + greeting) go to `open_times`.
/// `ready` is also told which instance took the socket, when the service says.
#[allow(clippy::too_many_arguments)]
pub async fn open_many<T>(
    connector: &Connector,
    paths: Vec<String>,
    concurrency: usize,
    greeting: Greeting,
    tally: &Tally,
    progress: &Progress,
    open_times: &Latencies,
    mut ready: impl FnMut(usize, Socket, Option<String>) -> T,
) -> Vec<Option<T>> {
    let mut opened: Vec<Option<T>> = paths.iter().map(|_| None).collect();
    let mut opening = futures_util::stream::iter(paths.into_iter().enumerate())
        .map(|(index, path)| async move {
            let start = Instant::now();
            let socket = tokio::time::timeout(OPEN_WAIT, async {
                let (mut socket, instance) = connector.open_tagged(&path).await?;
                match greeting {
                    Greeting::Joined => wait_for(&mut socket, "joined").await?,
                    Greeting::Ready => wait_for(&mut socket, "ready").await?,
                    Greeting::None => {}
                }
                Ok::<_, String>((socket, instance))
            })
            .await
            .unwrap_or_else(|_| Err("open: timed out".to_owned()));
            (index, start.elapsed(), socket)
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((index, took, socket)) = opening.next().await {
        progress.inc();
        match socket {
            Ok((socket, instance)) => {
                open_times.record(took);
                opened[index] = Some(ready(index, socket, instance));
            }
            Err(e) => tally.error(&e),
        }
    }
    opened
}

async fn wait_for(socket: &mut Socket, kind: &str) -> Result<(), String> {
    while let Some(frame) = socket.next().await {
        match frame {
            Ok(Message::Text(text)) => {
                let frame: ServerFrame =
                    serde_json::from_str(&text).map_err(|e| format!("{kind}: bad frame: {e}"))?;
                if frame.kind == kind {
                    return Ok(());
                }
            }
            Ok(Message::Close(close)) => {
                return Err(format!(
                    "closed before {kind}: {:?}",
                    close.map(|c| u16::from(c.code))
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("{kind}: {e}")),
        }
    }
    Err(format!("closed before {kind}"))
}
