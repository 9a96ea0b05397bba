//! Opening a scenario's sockets, many at a time, each counted on the progress
//! bar; a room socket is ready once its `joined` frame has arrived.

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
    /// The legacy protocol says nothing.
    None,
}

/// Opens every path (`concurrency` at a time) in order; a failed one is `None`
/// and counted as an error. Open times (handshake + greeting) go to `open_times`.
pub async fn open_many(
    connector: &Connector,
    paths: Vec<String>,
    concurrency: usize,
    greeting: Greeting,
    tally: &Tally,
    progress: &Progress,
    open_times: &Latencies,
) -> Vec<Option<Socket>> {
    futures_util::stream::iter(paths)
        .map(|path| async move {
            let start = Instant::now();
            let opened = tokio::time::timeout(OPEN_WAIT, async {
                let mut socket = connector.open(&path).await?;
                if greeting == Greeting::Joined {
                    wait_joined(&mut socket).await?;
                }
                Ok::<_, String>(socket)
            })
            .await
            .unwrap_or_else(|_| Err("open: timed out".to_owned()));
            progress.inc();
            match opened {
                Ok(socket) => {
                    open_times.record(start.elapsed());
                    Some(socket)
                }
                Err(e) => {
                    tally.error(&e);
                    None
                }
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

async fn wait_joined(socket: &mut Socket) -> Result<(), String> {
    while let Some(frame) = socket.next().await {
        match frame {
            Ok(Message::Text(text)) => {
                let frame: ServerFrame =
                    serde_json::from_str(&text).map_err(|e| format!("joined: bad frame: {e}"))?;
                if frame.kind == "joined" {
                    return Ok(());
                }
            }
            Ok(Message::Close(close)) => {
                return Err(format!(
                    "closed before joined: {:?}",
                    close.map(|c| u16::from(c.code))
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("joined: {e}")),
        }
    }
    Err("closed before joined".to_owned())
}
