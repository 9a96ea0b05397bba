//! A sender's loop: at a fixed pace (open loop: sends on schedule whatever the
//! server does) or flat out (closed loop: at most `window` messages waiting for
//! their acknowledgement).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::tally::Tally;

pub enum Pacing {
    /// One message per period, starting after `offset` (senders are staggered).
    Every { period: Duration, offset: Duration },
    /// As fast as acknowledgements come back: each send takes a permit, each
    /// acknowledgement (or refusal) of this sender's message returns one.
    FlatOut { window: Arc<Semaphore> },
}

impl Pacing {
    /// Sender `index` of `senders` sharing `rate` messages/s (0 = flat out).
    pub fn new(rate: f64, senders: usize, index: usize, window: &Arc<Semaphore>) -> Self {
        if rate <= 0.0 {
            return Pacing::FlatOut { window: window.clone() };
        }
        let period = Duration::from_secs_f64(senders.max(1) as f64 / rate);
        let offset = period.mul_f64(index as f64 / senders.max(1) as f64);
        Pacing::Every { period, offset }
    }
}

/// A fresh window for one sender.
pub fn window(size: u32) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(size as usize))
}

/// Waits for the next send slot: the next tick, or a permit of the window.
struct Pacer {
    pacing: Pacing,
    ticks: Option<tokio::time::Interval>,
}

impl Pacer {
    fn new(pacing: Pacing) -> Self {
        let ticks = match &pacing {
            Pacing::Every { period, offset } => {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + *offset, *period);
                // A sender that falls behind does not burst to catch up: the shortfall
                // shows in the sent rate instead.
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                Some(ticks)
            }
            Pacing::FlatOut { .. } => None,
        };
        Self { pacing, ticks }
    }

    async fn ready(&mut self) {
        match (&self.pacing, self.ticks.as_mut()) {
            (Pacing::FlatOut { window }, _) => {
                if let Ok(permit) = window.acquire().await {
                    permit.forget();
                }
            }
            (Pacing::Every { .. }, Some(ticks)) => {
                ticks.tick().await;
            }
            (Pacing::Every { .. }, None) => {}
        }
    }
}

/// Sends frames made by `frame(n)` until `stop` or `max` frames; returns the
/// sink so the socket stays open for the last deliveries.
pub async fn send_loop<S>(
    mut sink: S,
    pacing: Pacing,
    stop: CancellationToken,
    max: u64,
    tally: Arc<Tally>,
    mut frame: impl FnMut(u64) -> String,
) -> S
where
    S: Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    let mut pacer = Pacer::new(pacing);
    let mut n = 0u64;
    while n < max {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = pacer.ready() => {}
        }
        n += 1;
        let text = frame(n);
        if let Err(e) = sink.send(Message::Text(text.into())).await {
            tally.error(&format!("send: {e}"));
            break;
        }
        Tally::add(&tally.sent);
    }
    sink
}

/// As `send_loop` over several sockets of one sender: `frame(n)` says which
/// sink (an index into `sinks`) frame `n` goes to; one pace and one window
/// for them all. Returns the sinks.
pub async fn send_routed<S>(
    mut sinks: Vec<S>,
    pacing: Pacing,
    stop: CancellationToken,
    max: u64,
    tally: Arc<Tally>,
    mut frame: impl FnMut(u64) -> (usize, String),
) -> Vec<S>
where
    S: Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    let mut pacer = Pacer::new(pacing);
    let mut n = 0u64;
    while n < max && !sinks.is_empty() {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = pacer.ready() => {}
        }
        n += 1;
        let (index, text) = frame(n);
        let Some(sink) = sinks.get_mut(index) else {
            tally.error("send: no such socket");
            break;
        };
        if let Err(e) = sink.send(Message::Text(text.into())).await {
            tally.error(&format!("send: {e}"));
            break;
        }
        Tally::add(&tally.sent);
    }
    sinks
}
