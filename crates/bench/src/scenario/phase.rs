//! The timed part of a message scenario, shared by the room and legacy loads:
//! senders run for the duration, then the run waits (up to the drain time) for
//! every acknowledgement and delivery, and the rates are taken over the whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::drain_until;
use super::tally::Tally;
use crate::latency::Latencies;
use crate::progress::Progress;
use crate::report::Report;

pub struct Timing {
    pub send_secs: f64,
    pub total_secs: f64,
    /// The server's RSS a tenth into the sending (at most a minute in), and
    /// at its end: their difference is the growth under steady load (soak).
    pub rss_warm: Option<u64>,
    pub rss_end: Option<u64>,
}

/// When the warm-up of a run is over, for the soak figure.
fn warm_up(duration: Duration) -> Duration {
    (duration / 10).min(Duration::from_secs(60))
}

/// Lets the senders run for `duration`, stops them, and waits for `expected()`
/// deliveries. The senders' sinks are kept (sockets open) until the caller drops them.
#[allow(clippy::too_many_arguments)]
pub async fn run<S>(
    rss: impl Fn() -> Option<u64>,
    tally: &Arc<Tally>,
    stop_sending: &tokio_util::sync::CancellationToken,
    senders: Vec<JoinHandle<S>>,
    duration: Duration,
    drain: Duration,
    quiet: bool,
    expected: impl Fn() -> u64,
) -> (Timing, Vec<S>) {
    let start = Instant::now();
    let running = Progress::timed(duration, "sending", quiet);
    let ticker = {
        let tally = tally.clone();
        running.tick_with(move || tally.line())
    };
    tokio::time::sleep(warm_up(duration)).await;
    let rss_warm = rss();
    tokio::time::sleep(duration.saturating_sub(warm_up(duration))).await;
    let rss_end = rss();
    stop_sending.cancel();
    let mut sinks = Vec::new();
    for sender in senders {
        if let Ok(sink) = sender.await {
            sinks.push(sink);
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    let settled = || {
        Tally::get(&tally.sent) == Tally::get(&tally.acked) + Tally::get(&tally.refused)
            && Tally::get(&tally.delivered) >= expected()
    };
    let drained = drain_until(drain, settled).await;
    let total_secs = start.elapsed().as_secs_f64();
    drop(ticker);
    running.finish();
    if !drained {
        let (sent, acked, refused) =
            (Tally::get(&tally.sent), Tally::get(&tally.acked), Tally::get(&tally.refused));
        let missing = sent.saturating_sub(acked + refused);
        if missing > 0 {
            tally.error_n("not acknowledged by the end of the drain", missing);
        }
        let undelivered = expected().saturating_sub(Tally::get(&tally.delivered));
        if undelivered > 0 {
            tally.error_n("not delivered by the end of the drain", undelivered);
        }
    }
    (Timing { send_secs, total_secs, rss_warm, rss_end }, sinks)
}

/// The figures every message scenario reports.
pub fn figures(
    report: &mut Report,
    tally: &Tally,
    timing: &Timing,
    expected: u64,
    delivery: &Latencies,
    ack: &Latencies,
) {
    let (sent, acked, delivered) =
        (Tally::get(&tally.sent), Tally::get(&tally.acked), Tally::get(&tally.delivered));
    report.figure("messages sent/s", sent as f64 / timing.send_secs, "msg/s");
    report.figure("messages acked/s", acked as f64 / timing.total_secs, "msg/s");
    report.figure("deliveries/s", delivered as f64 / timing.total_secs, "msg/s");
    report.figure("messages sent", sent as f64, "msg");
    report.figure("messages acked", acked as f64, "msg");
    report.figure("deliveries", delivered as f64, "msg");
    report.figure("deliveries expected", expected as f64, "msg");
    report.figure("send + drain time", timing.total_secs, "s");
    if let (Some(warm), Some(end)) = (timing.rss_warm, timing.rss_end) {
        report.figure("server RSS after warm-up", warm as f64, "KiB");
        report.figure("server RSS at the end of sending", end as f64, "KiB");
        let growth = (end as f64 - warm as f64) / warm.max(1) as f64 * 100.0;
        report.figure("server RSS growth after warm-up", growth, "%");
    }
    report.latency("send→delivery", delivery.summary());
    report.latency("send→ack", ack.summary());
}
