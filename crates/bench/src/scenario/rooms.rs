//! `throughput` and `fanout`: R rooms of U sockets, the first S of each room
//! sending; every socket counts and times every message it receives. A
//! message is acknowledged when its sender receives it back.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::sending::{self, Pacing};
use super::sockets::{self, Greeting};
use super::tally::Tally;
use super::{BenchError, phase, rss_figures};
use crate::cli::RoomLoadArgs;
use crate::connect::Connector;
use crate::frames::{self, MessageFrame, ServerFrame};
use crate::latency::Latencies;
use crate::progress::Progress;
use crate::report::Report;
use crate::target::Target;

/// What every socket task of a run shares.
struct Shared {
    tally: Arc<Tally>,
    delivery: Latencies,
    ack: Latencies,
    /// Acknowledged messages per room (what each room's sockets should all receive).
    acked_in_room: Vec<AtomicU64>,
    /// Which instance took each seat's socket (by seat id), when the service says.
    instances: Vec<OnceLock<String>>,
    /// Send → delivery where sender and receiver are on one instance, and across.
    same_instance: Latencies,
    across_instances: Latencies,
}

impl Shared {
    fn new(rooms: usize, seats: usize) -> Self {
        Self {
            tally: Arc::new(Tally::default()),
            delivery: Latencies::new(),
            ack: Latencies::new(),
            acked_in_room: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            instances: (0..seats).map(|_| OnceLock::new()).collect(),
            same_instance: Latencies::new(),
            across_instances: Latencies::new(),
        }
    }

    /// Whether seats `a` and `b` are on one instance; `None` when unknown.
    fn same_instance(&self, a: usize, b: usize) -> Option<bool> {
        let (a, b) = (self.instances.get(a)?.get()?, self.instances.get(b)?.get()?);
        Some(a == b)
    }

    /// How many instances took this run's sockets (0: the service did not say).
    fn instance_count(&self) -> usize {
        let names: std::collections::HashSet<&String> =
            self.instances.iter().filter_map(OnceLock::get).collect();
        names.len()
    }
}

/// One client socket's identity in the run.
#[derive(Clone)]
struct Seat {
    /// Unique in the run: the prefix of this socket's `client_msg_id`s.
    id: usize,
    room_index: usize,
    room: i64,
    user: String,
    sends: bool,
}

pub async fn run(target: Target, args: &RoomLoadArgs) -> Result<Report, BenchError> {
    let load = &args.load;
    let quiet = args.target.quiet;
    let rss_before = target.rss();
    let mut rooms = Vec::with_capacity(args.rooms);
    for r in 0..args.rooms {
        rooms.push(target.create_room(&format!("bench {r}"), None).await?);
    }
    let shared = Arc::new(Shared::new(rooms.len(), rooms.len() * args.sockets));
    let users = load.users.unwrap_or(args.sockets).max(1);
    let seats: Vec<Seat> = rooms
        .iter()
        .enumerate()
        .flat_map(|(room_index, room)| {
            (0..args.sockets).map(move |u| Seat {
                id: room_index * args.sockets + u,
                room_index,
                room: *room,
                user: format!("r{room_index}u{}", u % users),
                sends: u < load.senders,
            })
        })
        .collect();
    let paths = seats.iter().map(|s| format!("/ws/{}?user_id={}", s.room, s.user)).collect();
    let connector = Connector::new(&target, args.target.source_ips);
    let opening = Progress::steps(seats.len() as u64, "connecting", quiet);
    let open_times = Latencies::new();
    let windows: Vec<Arc<Semaphore>> = seats.iter().map(|_| sending::window(load.window)).collect();
    let stop_reading = CancellationToken::new();
    let mut readers = Vec::new();
    let connect_start = Instant::now();
    let sinks = sockets::open_many(
        &connector,
        paths,
        args.target.connect_concurrency,
        Greeting::Joined,
        &shared.tally,
        &opening,
        &open_times,
        |index, socket, instance| {
            let seat = seats[index].clone();
            if let Some(instance) = instance {
                let _ = shared.instances[seat.id].set(instance);
            }
            let window = seat.sends.then(|| windows[index].clone());
            let (sink, stream) = socket.split();
            readers.push(tokio::spawn(read_loop(
                stream,
                seat,
                window,
                shared.clone(),
                stop_reading.clone(),
            )));
            sink
        },
    )
    .await;
    opening.finish();
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let rss_connected = target.rss();
    let mut connected_in_room = vec![0u64; rooms.len()];
    for (seat, sink) in seats.iter().zip(&sinks) {
        if sink.is_some() {
            connected_in_room[seat.room_index] += 1;
        }
    }
    let total_senders =
        seats.iter().zip(&sinks).filter(|(seat, sink)| seat.sends && sink.is_some()).count();

    let stop_sending = CancellationToken::new();
    let mut senders = Vec::new();
    let mut idle_sinks = Vec::new();
    for ((seat, sink), window) in seats.into_iter().zip(sinks).zip(windows) {
        let Some(sink) = sink else { continue };
        if !seat.sends {
            idle_sinks.push(sink);
            continue;
        }
        let pacing = Pacing::new(load.rate, total_senders, senders.len(), &window);
        let size = load.size;
        let seat_id = seat.id;
        let make = move |n: u64| {
            let content = frames::stamped_content(size);
            let id = format!("{seat_id}-{n}");
            serde_json::to_string(&MessageFrame::new(&content, &id)).unwrap_or_default()
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
    let expected = || -> u64 {
        shared
            .acked_in_room
            .iter()
            .zip(&connected_in_room)
            .map(|(acked, sockets)| Tally::get(acked) * sockets)
            .sum()
    };
    let (timing, sinks) = phase::run(
        || target.rss(),
        &shared.tally,
        &stop_sending,
        senders,
        Duration::from_secs_f64(load.duration),
        Duration::from_secs_f64(load.drain),
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
    report.figure("sockets connected", connected_in_room.iter().sum::<u64>() as f64, "sockets");
    report.figure("connect time", connect_secs, "s");
    rss_figures(
        &mut report,
        &[("before", rss_before), ("connected", rss_connected), ("after", rss_after)],
    );
    report.latency("socket open", open_times.summary());
    let instances = shared.instance_count();
    if instances > 1 {
        // Rooms spread over several instances (behind a balancer): what the hop
        // between instances adds, measured in the same run.
        report.figure("instances", instances as f64, "instances");
        report.latency("send→delivery, same instance", shared.same_instance.summary());
        report.latency("send→delivery, across instances", shared.across_instances.summary());
    }
    report.errors = shared.tally.errors();
    Ok(report)
}

/// Counts and times every message this socket receives until `stop`.
async fn read_loop<S>(
    mut stream: S,
    seat: Seat,
    window: Option<Arc<Semaphore>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let mut delivery = shared.delivery.recorder();
    let mut ack = shared.ack.recorder();
    let mut same = shared.same_instance.recorder();
    let mut across = shared.across_instances.recorder();
    let tally = &shared.tally;
    let own_prefix = format!("{}-", seat.id);
    loop {
        let frame = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            frame = stream.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                let code = close.map(|c| u16::from(c.code));
                tally.error(&format!("socket closed by the server: {code:?}"));
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
        let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) else {
            tally.error("unparsable frame");
            continue;
        };
        match frame.kind.as_ref() {
            "message" => {
                Tally::add(&tally.delivered);
                let age = frame.content.as_deref().and_then(frames::age_of);
                if let Some(age) = age {
                    delivery.record(age);
                    // The sender's seat is the prefix of the `client_msg_id`.
                    let sender = frame
                        .client_msg_id
                        .as_deref()
                        .and_then(|id| id.split('-').next())
                        .and_then(|id| id.parse::<usize>().ok());
                    match sender.and_then(|sender| shared.same_instance(sender, seat.id)) {
                        Some(true) => same.record(age),
                        Some(false) => across.record(age),
                        None => {}
                    }
                }
                let own = frame.user_id.as_deref() == Some(seat.user.as_str())
                    && frame.client_msg_id.as_deref().is_some_and(|id| id.starts_with(&own_prefix));
                if own && let Some(window) = &window {
                    Tally::add(&tally.acked);
                    Tally::add(&shared.acked_in_room[seat.room_index]);
                    if let Some(age) = age {
                        ack.record(age);
                    }
                    window.add_permits(1);
                }
            }
            "error" => {
                let code = frame.code.as_deref().unwrap_or("?");
                tally.error(&format!("error frame: {code}"));
                if frame.client_msg_id.as_deref().is_some_and(|id| id.starts_with(&own_prefix))
                    && let Some(window) = &window
                {
                    Tally::add(&tally.refused);
                    window.add_permits(1);
                }
            }
            _ => {}
        }
    }
}

/// Sockets that fill a room for `history --seed`.
const SEEDERS: usize = 10;
/// Messages each seeder keeps in flight.
const SEED_WINDOW: u32 = 16;
/// How long seeding may wait for its last acknowledgements.
const SEED_DRAIN: Duration = Duration::from_secs(60);

/// What filling a room took.
pub struct Seeded {
    pub acked: u64,
    pub secs: f64,
    pub errors: std::collections::BTreeMap<String, u64>,
}

/// Fills `room` with `count` messages over sockets, several senders flat out.
pub async fn seed(
    target: &Target,
    room: i64,
    count: u64,
    size: usize,
    source_ips: u8,
    quiet: bool,
) -> Seeded {
    let shared = Arc::new(Shared::new(1, 0));
    let connector = Connector::new(target, source_ips);
    let stop_reading = CancellationToken::new();
    let never = CancellationToken::new();
    let start = Instant::now();
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    for s in 0..SEEDERS {
        let share = count / SEEDERS as u64 + u64::from((s as u64) < count % SEEDERS as u64);
        let user = format!("seed{s}");
        let socket = match connector.open(&format!("/ws/{room}?user_id={user}")).await {
            Ok(socket) => socket,
            Err(e) => {
                shared.tally.error(&e);
                continue;
            }
        };
        let window = sending::window(SEED_WINDOW);
        let (sink, stream) = socket.split();
        let make = move |n: u64| {
            let content = frames::stamped_content(size);
            let id = format!("{s}-{n}");
            serde_json::to_string(&MessageFrame::new(&content, &id)).unwrap_or_default()
        };
        senders.push(tokio::spawn(sending::send_loop(
            sink,
            Pacing::FlatOut { window: window.clone() },
            never.clone(),
            share,
            shared.tally.clone(),
            make,
        )));
        let seat = Seat { id: s, room_index: 0, room, user, sends: true };
        readers.push(tokio::spawn(read_loop(
            stream,
            seat,
            Some(window),
            shared.clone(),
            stop_reading.clone(),
        )));
    }
    let progress = Progress::steps(count, "seeding", quiet);
    let ticker = {
        let shared = shared.clone();
        progress.tick_steps(move || (Tally::get(&shared.tally.acked), shared.tally.line()))
    };
    let mut sinks = Vec::new();
    for sender in senders {
        if let Ok(sink) = sender.await {
            sinks.push(sink);
        }
    }
    let tally = &shared.tally;
    super::drain_until(SEED_DRAIN, || {
        Tally::get(&tally.sent) == Tally::get(&tally.acked) + Tally::get(&tally.refused)
    })
    .await;
    let secs = start.elapsed().as_secs_f64();
    drop(ticker);
    progress.finish();
    stop_reading.cancel();
    for reader in readers {
        let _ = reader.await;
    }
    drop(sinks);
    Seeded { acked: Tally::get(&tally.acked), secs, errors: tally.errors() }
}
