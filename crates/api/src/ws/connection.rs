//! One WebSocket connection: join, the `joined` frame, resume replay, then a
//! reader (client frames → use cases) and a writer (queued frames, heartbeat
//! pings, the close frame). Everything it holds is released on any way out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use chat_domain::ports::PendingPost;
use chat_domain::{
    Actor, ChatService, DomainError, Limit, Posted, Room, RoomEvent, RoomId, UserId,
};
use futures_util::stream::{FuturesOrdered, SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use super::MAX_BURST;
use super::closer::{CloseReason, Closer, codes};
use super::hub::{Hub, Outbound};
use super::protocol::{self, ClientFrame, ErrorFrame, JoinedFrame};
use crate::metrics::{MessageSource, Metrics, SocketKind};

/// Socket limits and timings (from settings).
#[derive(Debug, Clone, Copy)]
pub struct SocketSettings {
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub max_frame_bytes: usize,
    pub queue_capacity: usize,
    /// How long a closing socket may take to flush its last frames and the close
    /// frame before the connection is simply dropped.
    pub close_grace: Duration,
    /// `rate_limited` answers in a row after which the socket is closed (1008); 0: never.
    pub flood_strikes: u32,
    /// Messages that may wait for their commit at once (pipelining).
    pub max_in_flight: usize,
    /// Users listed in `joined` at most (a big room's presence is coalesced, and
    /// its full list would make every join cost as much as the room is big).
    pub joined_users_at_most: usize,
}

const REPLAY_PAGE: i64 = 100;

/// The longest a closed socket keeps reading, waiting for the peer's close.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Typing frames closer together than this are dropped: a typing indicator
/// needs no more, and a flood of them would be multiplied by the room's size.
const TYPING_INTERVAL: Duration = Duration::from_millis(250);

/// What became of a message frame, for the flood guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    RateLimited,
    Other,
}

pub struct Connection {
    /// When the caller's token expires: the socket is closed then (4401), and a
    /// frame's `user_id` must be the token's.
    pub token_expires: Option<std::time::SystemTime>,
    pub chat: ChatService,
    pub hub: Hub,
    pub actor: Actor,
    pub room: RoomId,
    /// The room as it was authorized at the upgrade.
    pub authorized: Room,
    pub since: Option<i64>,
    pub settings: SocketSettings,
    /// This socket's place in its user's socket limit, given back when it ends.
    pub _slot: crate::limits::SocketSlot,
    pub metrics: Metrics,
}

type Sink = SplitSink<WebSocket, WsMessage>;

impl Connection {
    /// The socket's task. Not an `async fn` itself, and the socket is split
    /// before the task's state is built: a future keeps its arguments for its
    /// whole life, and the socket is big — 18,000 idle sockets pay for every byte.
    pub fn run(self, socket: WebSocket) -> impl std::future::Future<Output = ()> + Send {
        let id = uuid::Uuid::new_v4().to_string();
        // The actor's correlation id is the upgrade request's id.
        let request_id = self.actor.correlation_id.as_ref().map(|c| c.as_str()).unwrap_or("-");
        let span = tracing::info_span!(
            "socket",
            connection = %id,
            request_id,
            room = self.room.get(),
            user = %self.actor.user_id,
        );
        let (sink, stream) = socket.split();
        self.serve(sink, stream, id).instrument(span)
    }

    async fn serve(self, mut sink: Sink, mut stream: SplitStream<WebSocket>, id: String) {
        tracing::info!("socket open");
        let _open = self.metrics.socket_opened(SocketKind::Room);
        let (tx, rx) = mpsc::channel(self.settings.queue_capacity);
        let closer = Closer::default();
        let mut subscription =
            self.hub.subscribe(self.room, id.clone(), tx.clone(), closer.clone());

        let joined = self.chat.join_room(
            &self.actor,
            self.authorized.clone(),
            &id,
            self.settings.joined_users_at_most,
        );
        // The one-off phases are boxed: the socket's task keeps only the
        // reading loop's state for its whole life, not the largest of them.
        let joined = match Box::pin(joined).await {
            Ok(joined) => joined,
            Err(e) => {
                let reason = match e {
                    DomainError::NotFound(_) => codes::ROOM_DELETED,
                    DomainError::Forbidden(_) => codes::POLICY,
                    _ => codes::INTERNAL,
                };
                say_goodbye(&mut sink, reason, self.settings.close_grace).await;
                return;
            }
        };
        // The user list is only for the `joined` frame: not kept for the socket's life.
        let chat_domain::Joined { room, users, .. } = joined;
        crate::presence::connected(&self.chat, &self.actor, &id).await;
        let started = Box::pin(self.start(&mut sink, &mut subscription, users)).await;
        if let Some(last_sent) = started {
            let clock = Clock::new();
            if let Some(expires) = self.token_expires {
                let closer = closer.clone();
                let left = expires.duration_since(std::time::SystemTime::now()).unwrap_or_default();
                tokio::spawn(async move {
                    tokio::select! {
                        () = tokio::time::sleep(left) => closer.close(codes::TOKEN_EXPIRED),
                        _ = closer.closed() => {}
                    }
                });
            }
            let writer = tokio::spawn(
                write_loop(
                    sink,
                    rx,
                    closer.clone(),
                    clock.clone(),
                    last_sent,
                    self.settings,
                    self.metrics.clone(),
                )
                .in_current_span(),
            );
            let link = Link { id: &id, tx: &tx, closer: &closer };
            self.read_loop(&mut stream, &link, &room, &clock).await;
            closer.close(codes::NORMAL);
            let _ = writer.await;
            drain(&mut stream, self.settings.close_grace.min(DRAIN_LIMIT)).await;
        }
        drop(subscription);
        crate::presence::disconnected(&self.chat, &self.actor, &id).await;
        if let Err(e) = self.chat.leave_room(&self.actor, self.room, &id).await {
            tracing::warn!(error = %e, "cannot record the socket's departure");
        }
        tracing::info!(reason = ?closer.reason(), "socket closed");
    }

    /// Sends `joined` and, on resume, every message after `since` up to the live
    /// stream's floor. Returns the last seq the client has, or `None` if the
    /// socket had to close.
    async fn start(
        &self,
        sink: &mut Sink,
        subscription: &mut super::hub::Subscription,
        users: Vec<chat_domain::ports::PresenceEntry>,
    ) -> Option<i64> {
        let Ok(Some(floor)) =
            tokio::time::timeout(Duration::from_secs(10), subscription.floor()).await
        else {
            say_goodbye(sink, codes::INTERNAL, self.settings.close_grace).await;
            return None;
        };
        let joined = JoinedFrame::new(self.room, self.actor.user_id.as_str(), floor, &users);
        let joined = serde_json::to_string(&joined).ok()?;
        drop(users);
        send_text(sink, joined.into(), self.settings.close_grace).await.ok()?;
        let Some(since) = self.since else {
            return Some(floor);
        };
        let mut cursor = since;
        let limit = Limit::parse(REPLAY_PAGE).ok()?;
        while cursor < floor {
            let page = match self.chat.replay(self.room, cursor, limit).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "resume replay failed");
                    say_goodbye(sink, codes::INTERNAL, self.settings.close_grace).await;
                    return None;
                }
            };
            for message in page.items.into_iter().take_while(|m| m.seq <= floor) {
                cursor = message.seq;
                let text = serde_json::to_string(&RoomEvent::Message(message)).ok()?;
                send_text(sink, text.into(), self.settings.close_grace).await.ok()?;
            }
            if !page.has_more {
                break;
            }
        }
        Some(since.max(floor))
    }

    /// Reads the client's frames until the socket closes. Up to
    /// `max_in_flight` of its messages wait for their commit at once; their
    /// outcomes are answered in the order the messages came.
    async fn read_loop(
        &self,
        stream: &mut SplitStream<WebSocket>,
        link: &Link<'_>,
        room: &Room,
        clock: &Clock,
    ) {
        let mut strikes = 0u32;
        let mut last_typing: Option<Instant> = None;
        let mut in_flight = FuturesOrdered::new();
        // One wait for the close, not a new one per frame.
        let closed = link.closer.closed();
        tokio::pin!(closed);
        loop {
            let may_read = in_flight.len() < self.settings.max_in_flight.max(1);
            let verdict = tokio::select! {
                _ = &mut closed => return,
                Some(answered) = in_flight.next(), if !in_flight.is_empty() => {
                    self.answer(link, answered)
                }
                frame = stream.next(), if may_read => match frame {
                    None => return,
                    Some(Err(e)) => {
                        if is_too_big(e) {
                            link.closer.close(codes::TOO_BIG);
                        }
                        return;
                    }
                    Some(Ok(message)) => {
                        clock.touch();
                        match message {
                            WsMessage::Text(text) => {
                                let handled = self.handle_text(text.as_str(), link, room, &mut last_typing);
                                match Box::pin(handled).await {
                                    Handled::Done(verdict) => verdict,
                                    Handled::Queued(pending) => {
                                        in_flight.push_back(pending);
                                        Verdict::Accepted
                                    }
                                }
                            }
                            WsMessage::Binary(_) => {
                                let error = ErrorFrame::new("invalid_json", "frames must be JSON text, not binary");
                                self.reply_error(link, error);
                                Verdict::Other
                            }
                            WsMessage::Close(_) => return,
                            WsMessage::Ping(_) | WsMessage::Pong(_) => Verdict::Other,
                        }
                    }
                },
            };
            match verdict {
                Verdict::Accepted => strikes = 0,
                Verdict::RateLimited => {
                    strikes += 1;
                    let limit = self.settings.flood_strikes;
                    if limit > 0 && strikes >= limit {
                        tracing::info!(strikes, "socket keeps flooding; closing");
                        link.closer.close(codes::FLOODING);
                        return;
                    }
                }
                Verdict::Other => {}
            }
        }
    }

    async fn handle_text(
        &self,
        text: &str,
        link: &Link<'_>,
        room: &Room,
        last_typing: &mut Option<Instant>,
    ) -> Handled {
        let (input, user_id) = match protocol::parse(text) {
            Err(error) => {
                self.reply_error(link, error);
                return Handled::Done(Verdict::Other);
            }
            Ok(ClientFrame::Ping) => {
                reply(link, &json!({"type": "pong"}));
                return Handled::Done(Verdict::Other);
            }
            Ok(ClientFrame::Typing) => {
                let now = Instant::now();
                if last_typing.is_none_or(|at| now.duration_since(at) >= TYPING_INTERVAL) {
                    *last_typing = Some(now);
                    self.chat.typing(&self.actor, self.room, link.id);
                }
                return Handled::Done(Verdict::Other);
            }
            Ok(ClientFrame::Message { input, user_id }) => (input, user_id),
        };
        self.metrics.message_received(MessageSource::Socket);
        let client_msg_id = input.client_msg_id.clone();
        let actor = match user_id {
            Some(raw) if self.token_expires.is_some() && raw != self.actor.user_id.as_str() => {
                let error = ErrorFrame::new("forbidden", "user_id does not match the token")
                    .with_client_msg_id(client_msg_id);
                self.reply_error(link, error);
                return Handled::Done(Verdict::Other);
            }
            Some(raw) => match UserId::parse(&raw) {
                Ok(user) => Actor::new(user, self.actor.roles.clone())
                    .with_correlation(self.actor.correlation_id.clone()),
                Err(e) => {
                    let error = ErrorFrame::from_domain(e).with_client_msg_id(client_msg_id);
                    self.reply_error(link, error);
                    return Handled::Done(Verdict::Other);
                }
            },
            None => self.actor.clone(),
        };
        match self.chat.submit_to_joined(&actor, room, input).await {
            Ok(pending) => Handled::Queued(InFlight { client_msg_id, pending: Some(pending) }),
            Err(e) => {
                let verdict = if matches!(e, DomainError::RateLimited { .. }) {
                    Verdict::RateLimited
                } else {
                    Verdict::Other
                };
                let error = ErrorFrame::from_domain(e).with_client_msg_id(client_msg_id);
                self.reply_error(link, error);
                Handled::Done(verdict)
            }
        }
    }

    /// Answers a message whose outcome is known.
    fn answer(&self, link: &Link<'_>, (client_msg_id, outcome): Answered) -> Verdict {
        match outcome {
            // The broadcast brings the message back to this socket too.
            Ok(Posted::Created(_)) => {}
            // A repeat is not broadcast again: this socket alone gets the original.
            Ok(Posted::Duplicate(original)) => reply(link, &RoomEvent::Message(original)),
            Err(e) => {
                let error = ErrorFrame::from_domain(e).with_client_msg_id(client_msg_id);
                self.reply_error(link, error);
            }
        }
        Verdict::Other
    }
}

/// What a text frame came to.
enum Handled {
    Done(Verdict),
    /// A message was queued for storage; its outcome comes later.
    Queued(InFlight),
}

/// The outcome of a message, with the `client_msg_id` to answer it under.
type Answered = (Option<String>, Result<Posted, DomainError>);

/// A message of this socket waiting for its commit.
struct InFlight {
    client_msg_id: Option<String>,
    pending: Option<PendingPost>,
}

impl std::future::Future for InFlight {
    type Output = Answered;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Answered> {
        let Some(pending) = self.pending.as_mut() else {
            return std::task::Poll::Ready((
                None,
                Err(DomainError::Internal("polled twice".into())),
            ));
        };
        let outcome = std::task::ready!(std::pin::Pin::new(pending).poll(cx));
        self.pending = None;
        std::task::Poll::Ready((self.client_msg_id.take(), outcome))
    }
}

/// What the reader needs to answer on this socket.
struct Link<'a> {
    id: &'a str,
    tx: &'a mpsc::Sender<Outbound>,
    closer: &'a Closer,
}

impl Connection {
    /// Answers a rejected frame, counting it by its code.
    fn reply_error(&self, link: &Link<'_>, error: ErrorFrame) {
        self.metrics.error("socket", error.code);
        reply(link, &error);
    }
}

/// Queues a direct reply to this socket; a socket whose queue is full is too slow.
fn reply(link: &Link<'_>, frame: &impl serde::Serialize) {
    let Ok(text) = serde_json::to_string(frame) else {
        return;
    };
    if let Err(mpsc::error::TrySendError::Full(_)) =
        link.tx.try_send(Outbound { seq: None, text: text.into(), created_at: None })
    {
        link.closer.close(codes::TOO_SLOW);
    }
}

/// Time since the connection began, and when the client was last heard from.
#[derive(Clone)]
struct Clock {
    start: Instant,
    last_heard_ms: Arc<AtomicU64>,
}

impl Clock {
    fn new() -> Self {
        Self { start: Instant::now(), last_heard_ms: Arc::new(AtomicU64::new(0)) }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_heard_ms.fetch_max(now, Ordering::AcqRel);
    }

    fn heard_since(&self, at: Instant) -> bool {
        let at_ms = at.saturating_duration_since(self.start).as_millis() as u64;
        self.last_heard_ms.load(Ordering::Acquire) >= at_ms
    }
}

async fn write_loop(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Outbound>,
    closer: Closer,
    clock: Clock,
    mut last_sent: i64,
    settings: SocketSettings,
    metrics: Metrics,
) {
    let mut pings =
        tokio::time::interval_at(Instant::now() + settings.ping_interval, settings.ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // When the outstanding ping was sent, if one is.
    let mut awaiting_pong: Option<Instant> = None;
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
        // Frames taken off the queue together go out in one write.
        burst.clear();
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
            out = rx.recv() => match out {
                Some(out) => {
                    burst.take(out, &mut last_sent);
                    while burst.len() < MAX_BURST {
                        let Ok(out) = rx.try_recv() else { break };
                        burst.take(out, &mut last_sent);
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
        while let Ok(out) = rx.try_recv() {
            if out.seq.is_some_and(|seq| seq <= last_sent) {
                continue;
            }
            if send_text(&mut sink, out.text, settings.close_grace).await.is_err() {
                return;
            }
            if let Some(created_at) = out.created_at {
                metrics.message_delivered(created_at);
            }
        }
    }
    say_goodbye(&mut sink, reason, settings.close_grace).await;
}

/// Frames taken off a socket's queue to be written together.
#[derive(Default)]
struct Burst {
    texts: Vec<Utf8Bytes>,
    /// The timestamps of the new messages among them, for the delivery latency.
    created: Vec<chrono::DateTime<chrono::Utc>>,
}

impl Burst {
    /// Adds a frame, unless it is a message the socket already has.
    fn take(&mut self, out: Outbound, last_sent: &mut i64) {
        if let Some(seq) = out.seq {
            if seq <= *last_sent {
                return;
            }
            *last_sent = seq;
        }
        self.texts.push(out.text);
        self.created.extend(out.created_at);
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

/// After the server's close frame, reads (and drops) what the peer still sends
/// until it answers the close. Closing a TCP connection with unread data makes
/// the kernel reset it, and the peer might then lose the close frame itself —
/// a flooder would never learn why it was cut off.
async fn drain(stream: &mut SplitStream<WebSocket>, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        while let Some(Ok(frame)) = stream.next().await {
            if matches!(frame, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn send_text(sink: &mut Sink, text: Utf8Bytes, wait: Duration) -> Result<(), ()> {
    match tokio::time::timeout(wait, sink.send(WsMessage::Text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Sends the close frame after whatever is still buffered, within the grace period.
async fn say_goodbye(sink: &mut Sink, reason: CloseReason, grace: Duration) {
    let frame = CloseFrame { code: reason.code, reason: reason.reason.into() };
    let _ = tokio::time::timeout(grace, async {
        let _ = sink.send(WsMessage::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
    .await;
}

fn is_too_big(error: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    matches!(error.into_inner().downcast::<WsError>().map(|e| *e), Ok(WsError::Capacity(_)))
}
