//! A baseline socket's writer: its queued frames, a ping every interval, and a
//! 1013 close when the socket was found too slow to drain its queue.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// As the service's default `WS_PING_INTERVAL_MS`.
pub const PING_EVERY: Duration = Duration::from_secs(20);
const TOO_SLOW: u16 = 1013;

pub async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Utf8Bytes>,
    close: CancellationToken,
) {
    let mut pings = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            biased;
            () = close.cancelled() => {
                let frame = CloseFrame { code: TOO_SLOW, reason: "too slow".into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                return;
            }
            frame = queue.recv() => match frame {
                Some(text) => Message::Text(text),
                // The reader is gone and the socket left its room.
                None => return,
            },
            _ = pings.tick() => Message::Ping(Default::default()),
        };
        if sink.send(next).await.is_err() {
            return;
        }
    }
}
