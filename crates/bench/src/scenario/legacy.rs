//! `legacy`: the GrainTrade protocol. Each conversation is a buyer and a
//! seller of one item, each on `/ws/chat/{item}/{the other}`; a message reaches
//! the sender's own socket (its acknowledgement) and the other party's.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, Stream, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::sending::{self, Pacing};
use super::sockets::{self, Greeting};
use super::tally::Tally;
use super::{BenchError, drain_until, phase, rss_figures};
use crate::cli::LegacyArgs;
use crate::connect::Connector;
use crate::frames::{self, LegacyFrame, LegacyIncoming};
use crate::latency::Latencies;
use crate::progress::Progress;
use crate::report::Report;
use crate::target::Target;

/// Content of the message that proves both sockets of a pair are registered.
const PROBE: &str = "probe";
const PROBE_ROUNDS: usize = 20;

struct Shared {
    tally: Arc<Tally>,
    delivery: Latencies,
    ack: Latencies,
    /// Which sockets of each pair saw the probe: bit 0 the buyer's, bit 1 the seller's.
    probes: Vec<AtomicU64>,
}

const BOTH: u64 = 0b11;

struct Party {
    pair: usize,
    /// 0 for the buyer, 1 for the seller.
    role: u8,
    me: String,
    other: String,
    item: String,
    sends: bool,
}

pub async fn run(target: Target, args: &LegacyArgs) -> Result<Report, BenchError> {
    let quiet = args.target.quiet;
    let run_id = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let parties: Vec<Party> = (0..args.pairs)
        .flat_map(|pair| {
            let item = format!("bench-{run_id}-{pair}");
            let (buyer, seller) = (format!("b{run_id}-{pair}"), format!("s{run_id}-{pair}"));
            [
                Party {
                    pair,
                    role: 0,
                    me: buyer.clone(),
                    other: seller.clone(),
                    item: item.clone(),
                    sends: true,
                },
                Party { pair, role: 1, me: seller, other: buyer, item, sends: args.both_send },
            ]
        })
        .collect();
    let shared = Arc::new(Shared {
        tally: Arc::new(Tally::default()),
        delivery: Latencies::new(),
        ack: Latencies::new(),
        probes: (0..args.pairs).map(|_| AtomicU64::new(0)).collect(),
    });
    let rss_before = target.rss();
    let paths = parties
        .iter()
        .map(|p| format!("/ws/chat/{}/{}?user_id={}", p.item, p.other, p.me))
        .collect();
    let connector = Connector::new(&target, args.target.source_ips);
    let opening = Progress::steps(parties.len() as u64, "connecting", quiet);
    let open_times = Latencies::new();
    let connect_start = Instant::now();
    let stop_reading = CancellationToken::new();
    let mut readers = Vec::new();
    let windows: Vec<_> = parties.iter().map(|_| sending::window(args.window)).collect();
    let opened = sockets::open_many(
        &connector,
        paths,
        args.target.connect_concurrency,
        Greeting::None,
        &shared.tally,
        &opening,
        &open_times,
        |index, socket, _| {
            let party = &parties[index];
            let (sink, stream) = socket.split();
            readers.push(tokio::spawn(read_loop(
                stream,
                party.me.clone(),
                party.sends.then(|| windows[index].clone()),
                (party.pair, party.role),
                shared.clone(),
                stop_reading.clone(),
            )));
            sink
        },
    )
    .await;
    opening.finish();
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let mut sinks: Vec<_> = parties
        .into_iter()
        .zip(opened)
        .zip(windows)
        .filter_map(|((party, sink), window)| Some((party, sink?, window)))
        .collect();

    // The buyer's probe must reach both sockets: then both are registered and
    // the conversation's room exists, so the timed part measures only messages.
    let ready = Instant::now();
    for _ in 0..PROBE_ROUNDS {
        for (party, sink, _) in &mut sinks {
            if party.role == 0 && Tally::get(&shared.probes[party.pair]) != BOTH {
                let probe = LegacyFrame {
                    sender_id: party.me.as_str().into(),
                    receiver_id: party.other.as_str().into(),
                    item_id: party.item.as_str().into(),
                    content: PROBE.into(),
                };
                let text = serde_json::to_string(&probe).unwrap_or_default();
                let _ = sink.send(Message::Text(text.into())).await;
            }
        }
        let all_ready = || shared.probes.iter().all(|seen| Tally::get(seen) == BOTH);
        if drain_until(Duration::from_secs(2), all_ready).await {
            break;
        }
    }
    let not_ready = shared.probes.iter().filter(|seen| Tally::get(seen) != BOTH).count();
    if not_ready > 0 {
        shared
            .tally
            .error_n("conversation not ready (probe not seen by both sockets)", not_ready as u64);
    }
    let ready_secs = ready.elapsed().as_secs_f64();
    let rss_connected = target.rss();

    let senders_total = sinks.iter().filter(|(party, _, _)| party.sends).count();
    let stop_sending = CancellationToken::new();
    let mut senders = Vec::new();
    let mut idle_sinks = Vec::new();
    for (party, sink, window) in sinks {
        if !party.sends {
            idle_sinks.push(sink);
            continue;
        }
        let pacing = Pacing::new(args.rate, senders_total, senders.len(), &window);
        let size = args.size;
        let make = move |_| {
            let content = frames::stamped_content(size);
            let frame = LegacyFrame {
                sender_id: party.me.as_str().into(),
                receiver_id: party.other.as_str().into(),
                item_id: party.item.as_str().into(),
                content: content.into(),
            };
            serde_json::to_string(&frame).unwrap_or_default()
        };
        senders.push(tokio::spawn(sending::send_loop(
            sink,
            pacing,
            stop_sending.clone(),
            u64::MAX,
            shared.tally.clone(),
            make,
        )));
    }
    // Each message reaches the sender's socket and the other party's.
    let expected = || Tally::get(&shared.tally.acked) * 2;
    let (timing, sinks) = phase::run(
        || target.rss(),
        &shared.tally,
        &stop_sending,
        senders,
        Duration::from_secs_f64(args.duration),
        Duration::from_secs_f64(args.drain),
        quiet,
        expected,
    )
    .await;
    let rss_after = target.rss();
    stop_reading.cancel();
    for reader in readers {
        let _ = reader.await;
    }
    drop((sinks, idle_sinks));

    let mut report = Report::new(target.kind.name(), &target.http);
    phase::figures(&mut report, &shared.tally, &timing, expected(), &shared.delivery, &shared.ack);
    report.figure("conversations", args.pairs as f64, "pairs");
    report.figure("connect time", connect_secs, "s");
    report.figure("probe time", ready_secs, "s");
    rss_figures(
        &mut report,
        &[("before", rss_before), ("connected", rss_connected), ("after", rss_after)],
    );
    report.latency("socket open", open_times.summary());
    report.errors = shared.tally.errors();
    Ok(report)
}

async fn read_loop<S>(
    mut stream: S,
    me: String,
    window: Option<Arc<Semaphore>>,
    (pair, role): (usize, u8),
    shared: Arc<Shared>,
    stop: CancellationToken,
) where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let mut delivery = shared.delivery.recorder();
    let mut ack = shared.ack.recorder();
    let tally = &shared.tally;
    loop {
        let frame = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            frame = stream.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                tally.error(&format!(
                    "socket closed by the server: {:?}",
                    close.map(|c| u16::from(c.code))
                ));
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                tally.error(&format!("socket error: {e}"));
                return;
            }
            None => {
                tally.error("socket ended");
                return;
            }
        };
        match serde_json::from_str::<LegacyIncoming>(&text) {
            Ok(LegacyIncoming::Message(message)) => {
                if message.content == PROBE {
                    shared.probes[pair].fetch_or(1 << role, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                Tally::add(&tally.delivered);
                let age = frames::age_of(&message.content);
                if let Some(age) = age {
                    delivery.record(age);
                }
                if message.sender_id == me.as_str()
                    && let Some(window) = &window
                {
                    Tally::add(&tally.acked);
                    if let Some(age) = age {
                        ack.record(age);
                    }
                    window.add_permits(1);
                }
            }
            Ok(LegacyIncoming::Error { error }) => {
                tally.error(&format!("error frame: {error}"));
                if let Some(window) = &window {
                    Tally::add(&tally.refused);
                    window.add_permits(1);
                }
            }
            Err(_) => tally.error("unparsable frame"),
        }
    }
}
