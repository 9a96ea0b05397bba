//! A socket's writer task: frames from its queue (several before one flush),
//! each room's first frame and resume replay from a queue of their own,
//! heartbeat pings, and the close frame. It keeps every room's frames in seq
//! order on the socket, however many rooms the socket is in.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use chat_domain::RoomId;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::MAX_BURST;
use super::closer::{CloseReason, Closer, codes};
use super::connection::SocketSettings;
use super::hub::{Outbound, Stage};
use super::room_map::RoomMap;
use crate::metrics::Metrics;

pub(super) type Sink = SplitSink<WebSocket, WsMessage>;

/// Time since the connection began, and when the client was last heard from.
#[derive(Clone)]
pub(super) struct Clock {
    start: Instant,
    last_heard_ms: Arc<AtomicU64>,
}

impl Clock {
    pub(super) fn new() -> Self {
        Self { start: Instant::now(), last_heard_ms: Arc::new(AtomicU64::new(0)) }
    }

    pub(super) fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_heard_ms.fetch_max(now, Ordering::AcqRel);
    }

    fn heard_since(&self, at: Instant) -> bool {
        let at_ms = at.saturating_duration_since(self.start).as_millis() as u64;
        self.last_heard_ms.load(Ordering::Acquire) >= at_ms
    }
}

/// The queues a writer reads: `live` (room frames from the hub, the socket's
/// replies, stage markers) and `replay` (a subscription's first frame and
/// resume replay, read only while that subscription is being started).
pub(super) struct Queues {
    pub live: mpsc::Receiver<Outbound>,
    /// The inbox socket's replay queue; a room socket has none (its room
    /// started before the writer, straight on the socket).
    pub replay: Option<mpsc::Receiver<Outbound>>,
    /// A room socket's room and the last seq already written to it.
    pub joined: Option<(RoomId, i64)>,
}

pub(super) async fn write_loop(
    mut sink: Sink,
    queues: Queues,
    closer: Closer,
    clock: Clock,
    settings: SocketSettings,
    metrics: Metrics,
) {
    let Queues { live: mut rx, replay: mut replay_rx, joined } = queues;
    let mut pings =
        tokio::time::interval_at(Instant::now() + settings.ping_interval, settings.ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // When the outstanding ping was sent, if one is.
    let mut awaiting_pong: Option<Instant> = None;
    let mut streams = Streams::new(settings.queue_capacity);
    if let Some((room, last_sent)) = joined {
        streams.rooms.insert(room, RoomStream { last_sent, held: None });
    }
    let mut burst = Burst::default();
    // One wait for the close, not a new one per burst: both selects below
    // leave the loop once it resolves.
    let closed = closer.closed();
    tokio::pin!(closed);
    let reason = loop {
        let pong_deadline = async {
            match awaiting_pong {
                Some(sent) => tokio::time::sleep_until(sent + settings.pong_timeout).await,
                None => std::future::pending().await,
            }
        };
        // Frames taken off the queues together go out in one write.
        burst.clear();
        let replaying = !streams.starting.is_empty();
        let next = tokio::select! {
            biased;
            reason = &mut closed => break reason,
            () = pong_deadline => {
                match awaiting_pong {
                    Some(sent) if !clock.heard_since(sent) => {
                        tracing::info!("no answer to ping; closing");
                        closer.close(codes::HEARTBEAT_TIMEOUT);
                    }
                    _ => awaiting_pong = None,
                }
                continue;
            }
            out = next_replay(&mut replay_rx), if replaying => match out {
                Some(out) => {
                    streams.take(out, &mut burst);
                    while burst.len() < MAX_BURST && !streams.starting.is_empty() {
                        let Some(Ok(out)) = replay_rx.as_mut().map(mpsc::Receiver::try_recv) else { break };
                        streams.take(out, &mut burst);
                    }
                    if burst.is_empty() {
                        continue;
                    }
                    None
                }
                // The socket's reader is gone: so is the subscription being started.
                None => break codes::NORMAL,
            },
            out = rx.recv() => match out {
                Some(out) => {
                    streams.take(out, &mut burst);
                    while burst.len() < MAX_BURST {
                        let Ok(out) = rx.try_recv() else { break };
                        streams.take(out, &mut burst);
                    }
                    if streams.overflowed {
                        tracing::info!("socket too slow while a room was starting; closing with 1013");
                        closer.close(codes::TOO_SLOW);
                    }
                    if burst.is_empty() {
                        continue;
                    }
                    None
                }
                None => break codes::NORMAL,
            },
            _ = pings.tick() => {
                if awaiting_pong.is_some_and(|sent| !clock.heard_since(sent)) {
                    continue;
                }
                awaiting_pong = Some(Instant::now());
                Some(WsMessage::Ping(Default::default()))
            }
        };
        let send = async {
            match next {
                Some(control) => sink.send(control).await,
                None => {
                    for text in &burst.texts {
                        sink.feed(WsMessage::Text(text.clone())).await?;
                    }
                    sink.flush().await
                }
            }
        };
        tokio::pin!(send);
        tokio::select! {
            biased;
            reason = &mut closed => {
                // The frames taken off the queue just before the close (often the
                // room_deleted that caused it) are finished, not dropped.
                if flushes_on_close(reason)
                    && !matches!(tokio::time::timeout(settings.close_grace, &mut send).await, Ok(Ok(())))
                {
                    return;
                }
                break reason;
            }
            sent = &mut send => if sent.is_err() { return },
        }
        for created_at in burst.created.drain(..) {
            metrics.message_delivered(created_at);
        }
    };
    // Frames queued before the close (room_deleted, the last messages before a
    // shutdown) still go out; a socket closed for not reading gets no more.
    if flushes_on_close(reason) {
        burst.clear();
        while let Ok(out) = rx.try_recv() {
            streams.take(out, &mut burst);
        }
        for text in burst.texts.drain(..) {
            if send_text(&mut sink, text, settings.close_grace).await.is_err() {
                return;
            }
        }
        for created_at in burst.created.drain(..) {
            metrics.message_delivered(created_at);
        }
    }
    say_goodbye(&mut sink, reason, settings.close_grace).await;
}

/// The next replay frame; `None` once the queue is closed or freed.
async fn next_replay(replay: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match replay {
        Some(replay) => replay.recv().await,
        None => None,
    }
}

/// Each room's stream on this socket: the last message seq written, and —
/// while the room's subscription is being started — the live frames held back.
struct Streams {
    rooms: RoomMap<RoomStream>,
    /// The rooms begun whose first frame and replay are still to be written, in
    /// the order the reader starts them (one after the other: the next may be
    /// begun on the live queue before the writer has read the last one's end).
    starting: VecDeque<RoomId>,
    /// Live frames one starting room may hold back before the socket counts as too slow.
    hold_at_most: usize,
    overflowed: bool,
}

#[derive(Default)]
struct RoomStream {
    last_sent: i64,
    held: Option<Vec<Outbound>>,
}

impl Streams {
    fn new(queue_capacity: usize) -> Self {
        Self {
            rooms: RoomMap::default(),
            starting: VecDeque::new(),
            hold_at_most: queue_capacity.max(1) * 4,
            overflowed: false,
        }
    }

    /// Takes a frame or marker off a queue: the frames to write now go to `burst`.
    fn take(&mut self, out: Outbound, burst: &mut Burst) {
        let Some(room) = out.room() else {
            burst.push(out);
            return;
        };
        match out.stage {
            Stage::Begin => {
                self.rooms.insert(room, RoomStream { last_sent: 0, held: Some(Vec::new()) });
                self.starting.push_back(room);
            }
            Stage::Replay => {
                if let Some(stream) = self.rooms.get_mut(room) {
                    if let Some(seq) = out.seq() {
                        stream.last_sent = stream.last_sent.max(seq);
                    }
                    burst.push(out);
                }
            }
            Stage::Ready => {
                self.started(room);
                let Some(stream) = self.rooms.get_mut(room) else { return };
                stream.last_sent = stream.last_sent.max(out.seq().unwrap_or(0));
                for held in stream.held.take().unwrap_or_default() {
                    stream.send_live(held, burst);
                }
            }
            Stage::Abort => {
                self.started(room);
                self.rooms.remove(room);
            }
            Stage::End => {
                self.rooms.remove(room);
            }
            // A room frame of a room this socket is no longer in is dropped.
            Stage::Live => {
                let Some(stream) = self.rooms.get_mut(room) else { return };
                match &mut stream.held {
                    Some(held) => {
                        held.push(out);
                        if held.len() > self.hold_at_most {
                            self.overflowed = true;
                        }
                    }
                    None => stream.send_live(out, burst),
                }
            }
        }
    }
}

impl Streams {
    fn started(&mut self, room: RoomId) {
        if let Some(at) = self.starting.iter().position(|r| *r == room) {
            self.starting.remove(at);
        }
    }
}

impl RoomStream {
    /// Writes a live frame, unless it is a message the socket already has.
    fn send_live(&mut self, out: Outbound, burst: &mut Burst) {
        if let Some(seq) = out.seq() {
            if seq <= self.last_sent {
                return;
            }
            self.last_sent = seq;
        }
        burst.push(out);
    }
}

/// Frames taken off a socket's queues to be written together.
#[derive(Default)]
struct Burst {
    texts: Vec<Utf8Bytes>,
    /// The timestamps of the new messages among them, for the delivery latency.
    created: Vec<chrono::DateTime<chrono::Utc>>,
}

impl Burst {
    fn push(&mut self, out: Outbound) {
        self.created.extend(out.created_at());
        self.texts.push(out.into_text());
    }

    fn len(&self) -> usize {
        self.texts.len()
    }

    fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    fn clear(&mut self) {
        self.texts.clear();
        self.created.clear();
    }
}

/// Whether a socket closed for `reason` still gets the frames queued before
/// the close: not one closed for not reading.
fn flushes_on_close(reason: CloseReason) -> bool {
    reason != codes::TOO_SLOW && reason != codes::HEARTBEAT_TIMEOUT
}

pub(super) async fn send_text(sink: &mut Sink, text: Utf8Bytes, wait: Duration) -> Result<(), ()> {
    match tokio::time::timeout(wait, sink.send(WsMessage::Text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Sends the close frame after whatever is still buffered, within the grace period.
pub(super) async fn say_goodbye(sink: &mut Sink, reason: CloseReason, grace: Duration) {
    let frame = CloseFrame { code: reason.code, reason: reason.reason.into() };
    let _ = tokio::time::timeout(grace, async {
        let _ = sink.send(WsMessage::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: i64) -> RoomId {
        RoomId::new(id).unwrap()
    }

    fn frame(room_id: i64, seq: Option<i64>, stage: Stage, text: &str) -> Outbound {
        Outbound::room_frame(room(room_id), seq, text.into(), None, stage)
    }

    fn texts(burst: &Burst) -> Vec<&str> {
        burst.texts.iter().map(|t| t.as_str()).collect()
    }

    #[test]
    fn a_queued_frame_stays_small() {
        assert!(std::mem::size_of::<Outbound>() <= 64, "{}", std::mem::size_of::<Outbound>());
    }

    #[test]
    fn live_frames_wait_for_the_replay_and_repeats_are_dropped() {
        let mut streams = Streams::new(8);
        let mut burst = Burst::default();
        streams.take(Outbound::marker(room(1), Stage::Begin, None), &mut burst);
        // Live frames arrive while the first frame and the replay are written.
        streams.take(frame(1, Some(5), Stage::Live, "m5"), &mut burst);
        streams.take(frame(1, None, Stage::Live, "typing"), &mut burst);
        streams.take(frame(1, Some(6), Stage::Live, "m6"), &mut burst);
        streams.take(Outbound::reply("pong".into()), &mut burst);
        streams.take(frame(1, None, Stage::Replay, "subscribed"), &mut burst);
        streams.take(frame(1, Some(4), Stage::Replay, "m4"), &mut burst);
        streams.take(frame(1, Some(5), Stage::Replay, "m5-replayed"), &mut burst);
        assert_eq!(texts(&burst), ["pong", "subscribed", "m4", "m5-replayed"]);
        streams.take(Outbound::marker(room(1), Stage::Ready, Some(5)), &mut burst);
        assert_eq!(texts(&burst), ["pong", "subscribed", "m4", "m5-replayed", "typing", "m6"]);
        assert!(streams.starting.is_empty());
        burst.clear();
        streams.take(frame(1, Some(6), Stage::Live, "m6-again"), &mut burst);
        streams.take(frame(1, Some(7), Stage::Live, "m7"), &mut burst);
        assert_eq!(texts(&burst), ["m7"]);
    }

    #[test]
    fn a_room_begun_before_the_last_one_ended_is_still_replayed() {
        let mut streams = Streams::new(8);
        let mut burst = Burst::default();
        // Both begins came off the live queue before the first room's end
        // came off the replay queue.
        streams.take(Outbound::marker(room(1), Stage::Begin, None), &mut burst);
        streams.take(Outbound::marker(room(2), Stage::Begin, None), &mut burst);
        streams.take(frame(2, Some(3), Stage::Live, "r2-live"), &mut burst);
        streams.take(frame(1, None, Stage::Replay, "r1-first"), &mut burst);
        streams.take(Outbound::marker(room(1), Stage::Ready, Some(0)), &mut burst);
        assert_eq!(streams.starting, [room(2)], "room 2 still reads the replay queue");
        streams.take(frame(2, None, Stage::Replay, "r2-first"), &mut burst);
        streams.take(frame(2, Some(2), Stage::Replay, "r2-replayed"), &mut burst);
        streams.take(Outbound::marker(room(2), Stage::Ready, Some(2)), &mut burst);
        assert_eq!(texts(&burst), ["r1-first", "r2-first", "r2-replayed", "r2-live"]);
        assert!(streams.starting.is_empty());
    }

    #[test]
    fn rooms_keep_their_own_positions_and_ended_rooms_are_silent() {
        let mut streams = Streams::new(8);
        let mut burst = Burst::default();
        for id in [1, 2] {
            streams.take(Outbound::marker(room(id), Stage::Begin, None), &mut burst);
            streams.take(Outbound::marker(room(id), Stage::Ready, Some(10)), &mut burst);
        }
        streams.take(frame(1, Some(11), Stage::Live, "r1m11"), &mut burst);
        streams.take(frame(2, Some(11), Stage::Live, "r2m11"), &mut burst);
        streams.take(frame(3, Some(1), Stage::Live, "not subscribed"), &mut burst);
        streams.take(Outbound::marker(room(2), Stage::End, None), &mut burst);
        streams.take(frame(2, Some(12), Stage::Live, "after the end"), &mut burst);
        assert_eq!(texts(&burst), ["r1m11", "r2m11"]);
    }

    #[test]
    fn an_aborted_start_drops_what_it_held_and_too_much_held_is_too_slow() {
        let mut streams = Streams::new(1);
        let mut burst = Burst::default();
        streams.take(Outbound::marker(room(1), Stage::Begin, None), &mut burst);
        for seq in 1..=4 {
            streams.take(frame(1, Some(seq), Stage::Live, "m"), &mut burst);
        }
        assert!(!streams.overflowed);
        streams.take(frame(1, Some(5), Stage::Live, "m"), &mut burst);
        assert!(streams.overflowed, "more than 4 x the queue held back");
        streams.take(Outbound::marker(room(1), Stage::Abort, None), &mut burst);
        streams.take(frame(1, Some(6), Stage::Live, "m6"), &mut burst);
        assert!(burst.is_empty());
        assert!(streams.starting.is_empty());
    }
}
