//! `connections`: opens N idle room sockets (from several loopback source
//! addresses), holds them while the server's heartbeat pings come and go, and
//! reports the server's memory per socket.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::sockets::{self, Greeting};
use super::tally::Tally;
use super::{BenchError, rss_figures};
use crate::cli::ConnectionsArgs;
use crate::connect::{Connector, Socket};
use crate::latency::Latencies;
use crate::progress::Progress;
use crate::report::Report;
use crate::server_memory;
use crate::target::Target;

/// Time given to the server to release closed sockets before its RSS is read again.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Idle {
    tally: Tally,
    pings: AtomicU64,
    frames: AtomicU64,
    closed: AtomicU64,
}

pub async fn run(target: Target, args: &ConnectionsArgs) -> Result<Report, BenchError> {
    let quiet = args.target.quiet;
    let per_room = args.per_room.max(1);
    let room_count = args.sockets.div_ceil(per_room);
    let mut rooms = Vec::with_capacity(room_count);
    for r in 0..room_count {
        rooms.push(target.create_room(&format!("idle {r}"), None).await?);
    }
    let paths: Vec<String> =
        (0..args.sockets).map(|i| format!("/ws/{}?user_id=c{i}", rooms[i / per_room])).collect();
    let idle = Arc::new(Idle::default());
    let own_before = server_memory::rss_kib(std::process::id());
    let rss_before = target.rss();
    let connector = Connector::new(&target, args.target.source_ips);
    let opening = Progress::steps(paths.len() as u64, "connecting", quiet);
    let open_times = Latencies::new();
    let stop = CancellationToken::new();
    let start = Instant::now();
    let readers: Vec<_> = sockets::open_many(
        &connector,
        paths,
        args.target.connect_concurrency,
        Greeting::Joined,
        &idle.tally,
        &opening,
        &open_times,
        |_, socket, _| tokio::spawn(hold(socket, idle.clone(), stop.clone())),
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    opening.finish();
    let connect_secs = start.elapsed().as_secs_f64();
    let connected = readers.len() as u64;
    let rss_connected = target.rss();
    let own_connected = server_memory::rss_kib(std::process::id());
    let holding = Progress::timed(Duration::from_secs_f64(args.hold), "holding", quiet);
    let ticker = {
        let idle = idle.clone();
        holding.tick_with(move || {
            format!(
                "open {} pings {} closed {}",
                connected - Tally::get(&idle.closed),
                Tally::get(&idle.pings),
                Tally::get(&idle.closed)
            )
        })
    };
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    drop(ticker);
    holding.finish();
    let rss_held = target.rss();
    stop.cancel();
    for reader in readers {
        let _ = reader.await;
    }
    tokio::time::sleep(SETTLE).await;
    let rss_closed = target.rss();

    let mut report = Report::new(target.kind.name(), &target.http);
    report.figure("sockets requested", args.sockets as f64, "sockets");
    report.figure("sockets connected", connected as f64, "sockets");
    report.figure("connect rate", connected as f64 / connect_secs, "sockets/s");
    report.figure("closed by the server while held", Tally::get(&idle.closed) as f64, "sockets");
    report.figure("server pings received", Tally::get(&idle.pings) as f64, "pings");
    report.figure("other frames received", Tally::get(&idle.frames) as f64, "frames");
    rss_figures(
        &mut report,
        &[
            ("before", rss_before),
            ("connected", rss_connected),
            ("held", rss_held),
            ("after close", rss_closed),
        ],
    );
    if let (Some(before), Some(held)) = (rss_before, rss_held)
        && connected > 0
    {
        report.figure(
            "server RSS per socket",
            held.saturating_sub(before) as f64 / connected as f64,
            "KiB",
        );
    }
    if let (Some(before), Some(after)) = (own_before, own_connected)
        && connected > 0
    {
        report.figure(
            "bench RSS per socket",
            after.saturating_sub(before) as f64 / connected as f64,
            "KiB",
        );
    }
    report.latency("socket open", open_times.summary());
    report.errors = idle.tally.errors();
    Ok(report)
}

/// Reads (and so answers pings) until `stop`; a close before that is counted.
async fn hold(mut socket: Socket, idle: Arc<Idle>, stop: CancellationToken) {
    loop {
        let frame = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            frame = socket.next() => frame,
        };
        match frame {
            Some(Ok(Message::Ping(_))) => Tally::add(&idle.pings),
            Some(Ok(Message::Close(close))) => {
                Tally::add(&idle.closed);
                idle.tally.error(&format!(
                    "closed by the server: {:?}",
                    close.map(|c| u16::from(c.code))
                ));
                return;
            }
            Some(Ok(_)) => Tally::add(&idle.frames),
            Some(Err(e)) => {
                Tally::add(&idle.closed);
                idle.tally.error(&format!("socket error: {e}"));
                return;
            }
            None => {
                Tally::add(&idle.closed);
                idle.tally.error("socket ended");
                return;
            }
        }
    }
}
