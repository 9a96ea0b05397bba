//! `inbox`: U users, each in K of R shared rooms (every room gets the same
//! number of members), over one inbox socket (`/ws`, one `subscribe` per
//! room) per user — or, with `--over room-sockets`, the same load over one
//! `/ws/{room}` socket per user and room, for the ratio of the two. S of the
//! users send, each to its K rooms in turn, at a total rate or flat out; every
//! socket counts and times every message it receives, as in `throughput`. A
//! message is acknowledged when its sender receives it back. The server's RSS
//! is read before any socket opens and once every subscription is made.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::sending::{self, Pacing};
use super::sockets::{self, Greeting};
use super::tally::Tally;
use super::{BenchError, phase, rss_figures};
use crate::cli::{InboxArgs, Over};
use crate::connect::{Connector, Socket};
use crate::frames::{self, MessageFrame, RoomMessageFrame, ServerFrame};
use crate::latency::Latencies;
use crate::progress::Progress;
use crate::report::Report;
use crate::target::Target;

type WsSink = SplitSink<Socket, Message>;
type WsStream = SplitStream<Socket>;

/// The longest an inbox socket may take for all its `subscribed` answers.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(60);

/// The rooms (indices into `0..rooms`) of user `user`: K consecutive ones,
/// wrapping, starting at `user × K`. Over all users that lays U × K
/// subscriptions end to end around the R rooms, so every room gets
/// ⌊U×K/R⌋ or ⌈U×K/R⌉ members, and a user's K rooms are distinct when K ≤ R.
pub fn rooms_of(user: u64, per_user: u64, rooms: u64) -> Vec<usize> {
    (0..per_user).map(|j| ((user * per_user + j) % rooms.max(1)) as usize).collect()
}

/// The users who send: `senders` of `users`, spread evenly.
pub fn sending_users(senders: usize, users: u64) -> Vec<u64> {
    let senders = (senders as u64).min(users);
    (0..senders).map(|s| s * users / senders.max(1)).collect()
}

/// What every socket task of a run shares.
struct Shared {
    tally: Arc<Tally>,
    delivery: Latencies,
    ack: Latencies,
    /// Acknowledged messages per room (what each of its subscribers should receive).
    acked_in_room: Vec<AtomicU64>,
    /// Room id → room index.
    index_of: HashMap<i64, usize>,
    /// Every text frame received, of any type.
    frames: AtomicU64,
    /// `unread` frames (inbox sockets get them for the user's rooms).
    unread: AtomicU64,
}

/// One socket's identity in the run.
#[derive(Clone)]
struct Seat {
    user: String,
    /// The prefix of this user's `client_msg_id`s.
    own_prefix: String,
    /// A room socket's room (index); an inbox socket's come with each frame.
    room_index: Option<usize>,
}

/// An inbox socket once its subscriptions are answered.
struct Subscribed {
    sink: WsSink,
    /// The room indices whose `subscribe` was answered `subscribed`.
    rooms: Vec<usize>,
    took: Duration,
}

/// One user's sockets and the rooms it posts to in turn: with room sockets
/// one sink per room (`sinks[i]` is `rooms[i]`'s), with the inbox one sink.
struct Sender {
    user: u64,
    sinks: Vec<WsSink>,
    rooms: Vec<i64>,
}

pub async fn run(target: Target, args: &InboxArgs) -> Result<Report, BenchError> {
    if args.rooms_per_user > args.rooms {
        return Err(BenchError::Setup(format!(
            "--rooms-per-user {} is more than --rooms {}: a user cannot be in a room twice",
            args.rooms_per_user, args.rooms
        )));
    }
    let quiet = args.target.quiet;
    let mut rooms = Vec::with_capacity(args.rooms as usize);
    let creating = Progress::steps(args.rooms, "creating rooms", quiet);
    for r in 0..args.rooms {
        rooms.push(target.create_room(&format!("inbox {r}"), None).await?);
        creating.inc();
    }
    creating.finish();
    let shared = Arc::new(Shared {
        tally: Arc::new(Tally::default()),
        delivery: Latencies::new(),
        ack: Latencies::new(),
        acked_in_room: rooms.iter().map(|_| AtomicU64::new(0)).collect(),
        index_of: rooms.iter().enumerate().map(|(i, id)| (*id, i)).collect(),
        frames: AtomicU64::new(0),
        unread: AtomicU64::new(0),
    });
    let user_rooms: Vec<Vec<usize>> =
        (0..args.users).map(|u| rooms_of(u, args.rooms_per_user, args.rooms)).collect();
    let senders = sending_users(args.senders, args.users);
    let mut windows: HashMap<u64, Arc<Semaphore>> =
        senders.iter().map(|u| (*u, sending::window(args.window))).collect();
    let seat = |user: u64, room_index: Option<usize>| Seat {
        user: format!("i{user}"),
        own_prefix: format!("{user}-"),
        room_index,
    };

    let rss_before = target.rss();
    let connector = Connector::new(&target, args.target.source_ips);
    let open_times = Latencies::new();
    let subscribe_times = Latencies::new();
    let stop_reading = CancellationToken::new();
    let mut readers = Vec::new();
    let connect_start = Instant::now();
    // Per room, the sockets that receive its messages; per user, its sinks
    // and the rooms it posts to.
    let mut members = vec![0u64; rooms.len()];
    let mut sinks_of: Vec<Sender> =
        (0..args.users).map(|user| Sender { user, sinks: Vec::new(), rooms: Vec::new() }).collect();
    let sockets_connected;
    match args.over {
        Over::Inbox => {
            let paths = (0..args.users).map(|u| format!("/ws?user_id=i{u}")).collect();
            let opening = Progress::steps(args.users, "connecting", quiet);
            let gate = Arc::new(Semaphore::new(args.target.connect_concurrency.max(1)));
            let answers = sockets::open_many(
                &connector,
                paths,
                args.target.connect_concurrency,
                Greeting::Ready,
                &shared.tally,
                &opening,
                &open_times,
                |index, socket, _| {
                    let user = index as u64;
                    let (done, answer) = oneshot::channel();
                    let subscribe: Vec<(usize, i64)> =
                        user_rooms[index].iter().map(|r| (*r, rooms[*r])).collect();
                    readers.push(tokio::spawn(inbox_session(
                        socket,
                        seat(user, None),
                        subscribe,
                        windows.get(&user).cloned(),
                        shared.clone(),
                        gate.clone(),
                        stop_reading.clone(),
                        done,
                    )));
                    answer
                },
            )
            .await;
            opening.finish();
            let mut connected = 0;
            for (user, answer) in answers.into_iter().enumerate() {
                let Some(answer) = answer else { continue };
                // A dropped answer: the socket failed while subscribing (counted there).
                let Ok(subscribed) = answer.await else { continue };
                connected += 1;
                subscribe_times.record(subscribed.took);
                for room in &subscribed.rooms {
                    members[*room] += 1;
                }
                // One sink posts to every subscribed room.
                sinks_of[user].sinks.push(subscribed.sink);
                sinks_of[user].rooms = subscribed.rooms.iter().map(|r| rooms[*r]).collect();
            }
            sockets_connected = connected;
        }
        Over::RoomSockets => {
            let seats: Vec<(u64, usize)> = user_rooms
                .iter()
                .enumerate()
                .flat_map(|(u, rs)| rs.iter().map(move |r| (u as u64, *r)))
                .collect();
            let paths =
                seats.iter().map(|(u, r)| format!("/ws/{}?user_id=i{u}", rooms[*r])).collect();
            let opening = Progress::steps(seats.len() as u64, "connecting", quiet);
            let sinks = sockets::open_many(
                &connector,
                paths,
                args.target.connect_concurrency,
                Greeting::Joined,
                &shared.tally,
                &opening,
                &open_times,
                |index, socket, _| {
                    let (user, room) = seats[index];
                    let (sink, stream) = socket.split();
                    readers.push(tokio::spawn(read_loop(
                        stream,
                        seat(user, Some(room)),
                        windows.get(&user).cloned(),
                        shared.clone(),
                        stop_reading.clone(),
                    )));
                    sink
                },
            )
            .await;
            opening.finish();
            let mut connected = 0;
            for ((user, room), sink) in seats.into_iter().zip(sinks) {
                let Some(sink) = sink else { continue };
                connected += 1;
                members[room] += 1;
                // One sink per room, in the same order as the rooms.
                sinks_of[user as usize].sinks.push(sink);
                sinks_of[user as usize].rooms.push(rooms[room]);
            }
            sockets_connected = connected;
        }
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let rss_subscribed = target.rss();
    let subscriptions: u64 = members.iter().sum();

    let stop_sending = CancellationToken::new();
    let mut sending = Vec::new();
    let mut idle_sinks = Vec::new();
    let mut ready: Vec<Sender> = Vec::new();
    for sender in sinks_of {
        if !windows.contains_key(&sender.user) || sender.rooms.is_empty() {
            idle_sinks.extend(sender.sinks);
            continue;
        }
        ready.push(sender);
    }
    let total_senders = ready.len();
    for (position, sender) in ready.into_iter().enumerate() {
        let Some(window) = windows.remove(&sender.user) else { continue };
        let pacing = Pacing::new(args.rate, total_senders, position, &window);
        let (size, user, rooms, over) = (args.size, sender.user, sender.rooms, args.over);
        // Message n goes to the sender's room n mod K: over the inbox socket
        // with that room's id, or over that room's own socket.
        let make = move |n: u64| {
            let turn = (n as usize).wrapping_sub(1) % rooms.len().max(1);
            let content = frames::stamped_content(size);
            let id = format!("{user}-{n}");
            let message = MessageFrame::new(&content, &id);
            match (over, rooms.get(turn)) {
                (Over::Inbox, Some(room_id)) => {
                    let frame = RoomMessageFrame { room_id: *room_id, message };
                    (0, serde_json::to_string(&frame).unwrap_or_default())
                }
                _ => (turn, serde_json::to_string(&message).unwrap_or_default()),
            }
        };
        sending.push(tokio::spawn(sending::send_routed(
            sender.sinks,
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
            .zip(&members)
            .map(|(acked, sockets)| Tally::get(acked) * sockets)
            .sum()
    };
    let (timing, sinks) = phase::run(
        || target.rss(),
        &shared.tally,
        &stop_sending,
        sending,
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
    report.figure("frames received", Tally::get(&shared.frames) as f64, "frames");
    report.figure("unread frames received", Tally::get(&shared.unread) as f64, "frames");
    report.figure("sending users", total_senders as f64, "users");
    report.figure("sockets connected", sockets_connected as f64, "sockets");
    report.figure("subscriptions", subscriptions as f64, "rooms");
    report.figure("connect + subscribe time", connect_secs, "s");
    rss_figures(
        &mut report,
        &[("before", rss_before), ("subscribed", rss_subscribed), ("after", rss_after)],
    );
    if let (Some(before), Some(subscribed)) = (rss_before, rss_subscribed) {
        let grown = subscribed.saturating_sub(before) as f64;
        if subscriptions > 0 {
            report.figure("server RSS per subscription", grown / subscriptions as f64, "KiB");
        }
        if sockets_connected > 0 {
            report.figure("server RSS per socket", grown / sockets_connected as f64, "KiB");
        }
    }
    report.latency("socket open", open_times.summary());
    if args.over == Over::Inbox {
        report.latency("subscribe (all K rooms)", subscribe_times.summary());
    }
    report.errors = shared.tally.errors();
    Ok(report)
}

/// An inbox socket: subscribes to its rooms (`gate` bounds how many sockets
/// subscribe at once), hands its sink back through `done`, then reads.
#[allow(clippy::too_many_arguments)]
async fn inbox_session(
    socket: Socket,
    seat: Seat,
    rooms: Vec<(usize, i64)>,
    window: Option<Arc<Semaphore>>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    stop: CancellationToken,
    done: oneshot::Sender<Subscribed>,
) {
    let (mut sink, mut stream) = socket.split();
    let start = Instant::now();
    let subscribed = {
        let _permit = gate.acquire().await.ok();
        tokio::time::timeout(SUBSCRIBE_WAIT, subscribe_all(&mut sink, &mut stream, &rooms, &shared))
            .await
            .unwrap_or_else(|_| Err("subscribe: timed out".to_owned()))
    };
    match subscribed {
        Ok(subscribed) => {
            let answer = Subscribed { sink, rooms: subscribed, took: start.elapsed() };
            if done.send(answer).is_err() {
                return;
            }
        }
        Err(e) => {
            shared.tally.error(&e);
            return;
        }
    }
    read_loop(stream, seat, window, shared, stop).await;
}

/// Sends every `subscribe` at once and waits for each answer; the room
/// indices answered `subscribed` (a refusal is counted as an error).
async fn subscribe_all(
    sink: &mut WsSink,
    stream: &mut WsStream,
    rooms: &[(usize, i64)],
    shared: &Shared,
) -> Result<Vec<usize>, String> {
    for (_, room) in rooms {
        sink.feed(Message::Text(frames::subscribe_frame(*room).into()))
            .await
            .map_err(|e| format!("subscribe: send: {e}"))?;
    }
    sink.flush().await.map_err(|e| format!("subscribe: send: {e}"))?;
    let mut pending: HashMap<i64, usize> = rooms.iter().map(|(index, id)| (*id, *index)).collect();
    let mut subscribed = Vec::with_capacity(rooms.len());
    while !pending.is_empty() {
        let text = match stream.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                let code = close.map(|c| u16::from(c.code));
                return Err(format!("closed while subscribing: {code:?}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("subscribe: {e}")),
            None => return Err("socket ended while subscribing".to_owned()),
        };
        Tally::add(&shared.frames);
        let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) else {
            shared.tally.error("unparsable frame");
            continue;
        };
        match frame.kind.as_ref() {
            "subscribed" => {
                if let Some(index) = frame.room_id.and_then(|id| pending.remove(&id)) {
                    subscribed.push(index);
                }
            }
            "error" => {
                let code = frame.code.as_deref().unwrap_or("?");
                shared.tally.error(&format!("subscribe refused: {code}"));
                if let Some(id) = frame.room_id {
                    pending.remove(&id);
                }
            }
            "unread" => Tally::add(&shared.unread),
            _ => {}
        }
    }
    Ok(subscribed)
}

/// Counts and times every message this socket receives until `stop`.
async fn read_loop(
    mut stream: WsStream,
    seat: Seat,
    window: Option<Arc<Semaphore>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
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
        Tally::add(&shared.frames);
        let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) else {
            tally.error("unparsable frame");
            continue;
        };
        let own = || frame.user_id.as_deref() == Some(seat.user.as_str()) && own_id(&frame, &seat);
        match frame.kind.as_ref() {
            "message" => {
                Tally::add(&tally.delivered);
                let age = frame.content.as_deref().and_then(frames::age_of);
                if let Some(age) = age {
                    delivery.record(age);
                }
                if own()
                    && let Some(window) = &window
                {
                    let room = frame
                        .room_id
                        .and_then(|id| shared.index_of.get(&id).copied())
                        .or(seat.room_index);
                    Tally::add(&tally.acked);
                    if let Some(room) = room.and_then(|r| shared.acked_in_room.get(r)) {
                        Tally::add(room);
                    }
                    if let Some(age) = age {
                        ack.record(age);
                    }
                    window.add_permits(1);
                }
            }
            "unread" => Tally::add(&shared.unread),
            "error" => {
                let code = frame.code.as_deref().unwrap_or("?");
                tally.error(&format!("error frame: {code}"));
                if own_id(&frame, &seat)
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

/// Whether the frame names one of this user's `client_msg_id`s.
fn own_id(frame: &ServerFrame, seat: &Seat) -> bool {
    frame.client_msg_id.as_deref().is_some_and(|id| id.starts_with(&seat.own_prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_room_gets_the_same_members_and_a_user_distinct_rooms() {
        let (users, per_user, rooms) = (1000, 20, 1000);
        let mut members = vec![0u64; rooms as usize];
        for user in 0..users {
            let mine = rooms_of(user, per_user, rooms);
            let mut distinct = mine.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), per_user as usize);
            for room in mine {
                members[room] += 1;
            }
        }
        assert!(members.iter().all(|m| *m == users * per_user / rooms), "{members:?}");
        // Not a divisor: the counts differ by one at most.
        let mut members = vec![0u64; 7];
        for user in 0..10 {
            for room in rooms_of(user, 3, 7) {
                members[room] += 1;
            }
        }
        let (min, max) = (members.iter().min(), members.iter().max());
        assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1), "{members:?}");
    }

    #[test]
    fn senders_are_spread_over_the_users() {
        assert_eq!(sending_users(4, 20), vec![0, 5, 10, 15]);
        assert_eq!(sending_users(30, 3), vec![0, 1, 2]);
        assert!(sending_users(0, 3).is_empty());
    }
}
