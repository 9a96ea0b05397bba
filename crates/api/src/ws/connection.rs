//! One WebSocket connection, of either kind: a room socket (`/ws/{room_id}`, one
//! fixed subscription made at the upgrade, first frame `joined`) or an inbox
//! socket (`/ws`, rooms subscribed and left by frames, the user's own events
//! and unread counts). The reader turns client frames into use cases; the
//! writer (`writer.rs`) sends. Everything it holds is released on any way out.

use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use chat_domain::ports::PendingPost;
use chat_domain::read_state::UnreadState;
use chat_domain::{Actor, ChatService, DomainError, Limit, Posted, Room, RoomEvent, RoomId};
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, FuturesUnordered, SplitStream};
use futures_util::{FutureExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use super::closer::CloseReason;
use super::closer::{Closer, codes};
use super::hub::{self, Hub, Inbox, Notice, Outbound, Stage};
use super::inbox::{Effect, UnreadCounts};
use super::protocol::{self, ClientFrame, ErrorFrame, JoinedFrame, ReadyFrame, UnsubscribedFrame};
use super::room_map::RoomMap;
use super::writer::{self, Clock, Queues, say_goodbye};
use crate::edge::{ErrorCode, claimed_actor};
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
    /// Rooms one inbox socket may subscribe to.
    pub max_subscriptions: usize,
}

const REPLAY_PAGE: i64 = 100;

/// Replay frames queued ahead of the writer: the reader waits beyond that.
const REPLAY_QUEUE: usize = 32;

/// The most rooms of its user an inbox socket keeps unread counts for.
const WATCHED_ROOMS_AT_MOST: usize = 2_000;

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

/// Which kind of socket this is.
pub enum Mode {
    /// `/ws/{room_id}`: the room as it was authorized at the upgrade (boxed:
    /// the mode stays in the socket's task for its whole life).
    Room { authorized: Box<Room>, since: Option<i64> },
    /// `/ws`: in no room until it subscribes.
    Inbox,
}

pub struct Connection {
    /// When the caller's token expires: the socket is closed then (4401), and a
    /// frame's `user_id` must be the token's.
    pub token_expires: Option<std::time::SystemTime>,
    pub chat: ChatService,
    pub hub: Hub,
    pub actor: Actor,
    pub mode: Mode,
    pub settings: SocketSettings,
    /// This socket's place in its user's socket limit, given back when it ends.
    pub _slot: crate::limits::SocketSlot,
    pub metrics: Metrics,
}

/// A room this socket is in.
struct Joined {
    /// Held for the room's frames: dropping it leaves the room's broadcast.
    _subscription: hub::Subscription,
    room: Room,
    last_typing: Option<Instant>,
}

/// An inbox socket's registration and counts.
struct InboxState {
    registration: Inbox,
    counts: UnreadCounts,
    notices: mpsc::Sender<Notice>,
}

/// What the reader works with besides the connection's fixed parts.
struct Session {
    id: String,
    tx: mpsc::Sender<Outbound>,
    /// The replay queue; a room socket drops it once its room started, so the
    /// writer can free it.
    replay: Option<mpsc::Sender<Outbound>>,
    closer: Closer,
    rooms: RoomMap<Joined>,
    inbox: Option<Box<InboxState>>,
}

impl Session {
    /// Queues a frame or marker on the replay queue, waiting while it is full.
    async fn to_replay(&self, out: Outbound) -> Result<(), StartError> {
        match &self.replay {
            Some(replay) => replay.send(out).await.map_err(|_| StartError::Closed),
            None => Err(StartError::Closed),
        }
    }
}

/// What the first phase hands to the rest of the socket's life.
struct Started {
    notices: Option<mpsc::Receiver<Notice>>,
    replay: Option<mpsc::Receiver<Outbound>>,
    /// A room socket's room and the last seq written to it.
    joined: Option<(RoomId, i64)>,
}

/// Where a room's first frame and replay go: straight to the socket (a room
/// socket, before its writer starts) or to the replay queue (the inbox socket).
enum Dest<'a> {
    Sink(&'a mut writer::Sink),
    Queue,
}

/// Why a room could not be started on this socket.
enum StartError {
    /// The socket is closing.
    Closed,
    Domain(DomainError),
}

impl From<DomainError> for StartError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

type Recount = BoxFuture<'static, (RoomId, Result<UnreadState, DomainError>)>;

impl Connection {
    /// The socket's task. Not an `async fn` itself, and the socket is split
    /// before the task's state is built: a future keeps its arguments for its
    /// whole life, and the socket is big — 18,000 idle sockets pay for every byte.
    pub fn run(self, socket: WebSocket) -> impl std::future::Future<Output = ()> + Send {
        let id = uuid::Uuid::new_v4().to_string();
        // The actor's correlation id is the upgrade request's id.
        let request_id = self.actor.correlation_id.as_ref().map(|c| c.as_str()).unwrap_or("-");
        let room = match &self.mode {
            Mode::Room { authorized, .. } => Some(authorized.id.get()),
            Mode::Inbox => None,
        };
        let span = tracing::info_span!(
            "socket",
            connection = %id,
            request_id,
            room,
            user = %self.actor.user_id,
        );
        let (sink, stream) = socket.split();
        self.serve(sink, stream, id).instrument(span)
    }

    async fn serve(
        mut self,
        mut sink: writer::Sink,
        mut stream: SplitStream<WebSocket>,
        id: String,
    ) {
        tracing::info!("socket open");
        let kind = match self.mode {
            Mode::Room { .. } => SocketKind::Room,
            Mode::Inbox => SocketKind::Inbox,
        };
        let _open = self.metrics.socket_opened(kind);
        let (tx, live) = mpsc::channel(self.settings.queue_capacity);
        let closer = Closer::default();
        let clock = Clock::new();
        let mut session = Session {
            id,
            tx,
            replay: None,
            closer: closer.clone(),
            rooms: RoomMap::default(),
            inbox: None,
        };
        // Before the first frame goes out: a client that has it is counted online.
        Box::pin(crate::presence::connected(&self.chat, &self.actor, &session.id)).await;
        // The one-off phases are boxed, and the mode is moved straight into
        // its phase: the socket's task keeps only the reading loop's state for
        // its whole life, not the largest of them.
        let mode = std::mem::replace(&mut self.mode, Mode::Inbox);
        match Box::pin(self.start(&mut session, &mut sink, mode)).await {
            Ok(started) => {
                let queues = Queues { live, replay: started.replay, joined: started.joined };
                let writer = tokio::spawn(
                    writer::write_loop(
                        sink,
                        queues,
                        closer.clone(),
                        clock.clone(),
                        self.settings,
                        self.metrics.clone(),
                    )
                    .in_current_span(),
                );
                if let Some(expires) = self.token_expires {
                    let closer = closer.clone();
                    let left =
                        expires.duration_since(std::time::SystemTime::now()).unwrap_or_default();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = tokio::time::sleep(left) => closer.close(codes::TOKEN_EXPIRED),
                            _ = closer.closed() => {}
                        }
                    });
                }
                self.read_loop(&mut stream, &mut session, started.notices, &clock).await;
                closer.close(codes::NORMAL);
                let _ = writer.await;
                drain(&mut stream, self.settings.close_grace.min(DRAIN_LIMIT)).await;
            }
            Err(reason) => {
                closer.close(reason);
                say_goodbye(&mut sink, reason, self.settings.close_grace).await;
            }
        }
        Box::pin(self.finish(session)).await;
        tracing::info!(reason = ?closer.reason(), "socket closed");
    }

    /// The socket's first phase: a room socket joins its room, writing
    /// `joined` and the resume replay straight to the socket before its
    /// writer exists (so it needs no replay queue); an inbox socket registers.
    async fn start(
        &self,
        session: &mut Session,
        sink: &mut writer::Sink,
        mode: Mode,
    ) -> Result<Started, CloseReason> {
        match mode {
            Mode::Room { authorized, since } => {
                let room = authorized.id;
                let last_sent = self
                    .start_room(session, Dest::Sink(sink), *authorized, since, false)
                    .await
                    .map_err(|e| match e {
                        StartError::Domain(DomainError::NotFound(_)) => codes::ROOM_DELETED,
                        StartError::Domain(DomainError::Forbidden(_)) => codes::POLICY,
                        StartError::Domain(_) | StartError::Closed => codes::INTERNAL,
                    })?;
                Ok(Started { notices: None, replay: None, joined: Some((room, last_sent)) })
            }
            Mode::Inbox => {
                let (replay_tx, replay) = mpsc::channel(REPLAY_QUEUE);
                session.replay = Some(replay_tx);
                let notices = self.start_inbox(session).await;
                Ok(Started { notices: Some(notices), replay: Some(replay), joined: None })
            }
        }
    }

    /// The socket's last phase: the user's socket and its rooms' presence forgotten.
    async fn finish(&self, session: Session) {
        let rooms: Vec<RoomId> = session.rooms.rooms().collect();
        let id = session.id.clone();
        drop(session);
        // Before the rooms' `user_left`: a client that has it sees the socket gone.
        crate::presence::disconnected(&self.chat, &self.actor, &id).await;
        for room in rooms {
            self.leave(&id, room).await;
        }
    }

    /// Registers an inbox socket, sends `ready` and reads its user's unread
    /// counts. Each page's rooms are watched once read: a message committed in
    /// between shows up as a gap in the seqs and is counted by a recount.
    async fn start_inbox(&self, session: &mut Session) -> mpsc::Receiver<Notice> {
        let (notices, notices_rx) = mpsc::channel(self.settings.queue_capacity);
        let registration = self.hub.open_inbox(
            self.actor.user_id.as_str(),
            session.id.clone(),
            notices.clone(),
            session.closer.clone(),
        );
        let mut state = InboxState { registration, counts: UnreadCounts::default(), notices };
        reply(session, &ReadyFrame::new(self.actor.user_id.as_str()));
        let mut cursor = None;
        while state.counts.len() < WATCHED_ROOMS_AT_MOST {
            let page = match Limit::parse(i64::from(Limit::MAX)) {
                Ok(limit) => self.chat.my_rooms(&self.actor, limit, cursor).await,
                Err(e) => Err(e),
            };
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the user's rooms for unread counts");
                    break;
                }
            };
            for entry in page.items {
                state.registration.watch(entry.room.id);
                state.counts.load(UnreadState {
                    room_id: entry.room.id,
                    last_read_seq: entry.last_read_seq,
                    unread: entry.unread,
                    last_seq: entry.room.last_seq,
                });
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        session.inbox = Some(Box::new(state));
        notices_rx
    }

    /// Joins a room on this socket: the hub subscription, presence, the first
    /// frame (`joined`, or `subscribed` on the inbox socket) and, with `since`,
    /// every message after it up to the live stream's floor; returns the last
    /// seq the client has. On the replay queue the writer is told where the
    /// room's stream begins (`Begin`, before the hub may queue a frame of it)
    /// and where its replay ends (`Ready` / `Abort`).
    async fn start_room(
        &self,
        session: &mut Session,
        mut dest: Dest<'_>,
        authorized: Room,
        since: Option<i64>,
        subscribed: bool,
    ) -> Result<i64, StartError> {
        let room = authorized.id;
        let queued = matches!(dest, Dest::Queue);
        if queued {
            let begin = Outbound::marker(room, Stage::Begin, None);
            session.tx.send(begin).await.map_err(|_| StartError::Closed)?;
        }
        let notices = session.inbox.as_ref().map(|inbox| inbox.notices.clone());
        let mut subscription = self.hub.subscribe(
            room,
            session.id.clone(),
            session.tx.clone(),
            session.closer.clone(),
            notices,
        );
        let joined = self.chat.join_room(
            &self.actor,
            authorized,
            &session.id,
            self.settings.joined_users_at_most,
        );
        let joined = match joined.await {
            Ok(joined) => joined,
            Err(e) => {
                drop(subscription);
                if queued {
                    let _ = session.to_replay(Outbound::marker(room, Stage::Abort, None)).await;
                }
                return Err(e.into());
            }
        };
        // The user list is only for the first frame: not kept for the socket's life.
        let chat_domain::Joined { room: joined_room, users, .. } = joined;
        let replayed = self
            .replay(session, &mut dest, &mut subscription, room, users, since, subscribed)
            .await;
        match replayed {
            Ok(last_sent) => {
                if queued {
                    let ready = Outbound::marker(room, Stage::Ready, Some(last_sent));
                    session.to_replay(ready).await?;
                }
                let joined =
                    Joined { _subscription: subscription, room: joined_room, last_typing: None };
                session.rooms.insert(room, joined);
                Ok(last_sent)
            }
            Err(e) => {
                drop(subscription);
                if queued {
                    let _ = session.to_replay(Outbound::marker(room, Stage::Abort, None)).await;
                }
                self.leave(&session.id, room).await;
                Err(e)
            }
        }
    }

    /// Sends a room's first frame and its resume replay to `dest`; returns the
    /// last seq the client has.
    #[allow(clippy::too_many_arguments)]
    async fn replay(
        &self,
        session: &Session,
        dest: &mut Dest<'_>,
        subscription: &mut hub::Subscription,
        room: RoomId,
        users: Vec<chat_domain::ports::PresenceEntry>,
        since: Option<i64>,
        subscribed: bool,
    ) -> Result<i64, StartError> {
        let unavailable =
            || StartError::Domain(DomainError::Unavailable("the room's stream".into()));
        let Ok(Some(floor)) =
            tokio::time::timeout(Duration::from_secs(10), subscription.floor()).await
        else {
            return Err(unavailable());
        };
        let first = JoinedFrame::new(room, self.actor.user_id.as_str(), floor, &users);
        let first = if subscribed { first.subscribed() } else { first };
        let first = serde_json::to_string(&first).map_err(|_| unavailable())?;
        drop(users);
        let grace = self.settings.close_grace;
        self.put(session, dest, room, None, first, grace).await?;
        let Some(since) = since else {
            return Ok(floor);
        };
        let mut cursor = since;
        let limit = Limit::parse(REPLAY_PAGE)?;
        while cursor < floor {
            let page = self.chat.replay(room, cursor, limit).await.inspect_err(|e| {
                tracing::warn!(error = %e, "resume replay failed");
            })?;
            for message in page.items.into_iter().take_while(|m| m.seq <= floor) {
                cursor = message.seq;
                let seq = message.seq;
                let text = serde_json::to_string(&RoomEvent::Message(message))
                    .map_err(|_| unavailable())?;
                self.put(session, dest, room, Some(seq), text, grace).await?;
            }
            if !page.has_more {
                break;
            }
        }
        Ok(since.max(floor))
    }

    /// One frame of a room's start, to where it goes.
    async fn put(
        &self,
        session: &Session,
        dest: &mut Dest<'_>,
        room: RoomId,
        seq: Option<i64>,
        text: String,
        grace: Duration,
    ) -> Result<(), StartError> {
        match dest {
            Dest::Sink(sink) => {
                writer::send_text(sink, text.into(), grace).await.map_err(|()| StartError::Closed)
            }
            Dest::Queue => {
                let out = Outbound::room_frame(room, seq, text.into(), None, Stage::Replay);
                session.to_replay(out).await
            }
        }
    }

    /// Records the socket's departure from a room (presence).
    async fn leave(&self, connection: &str, room: RoomId) {
        if let Err(e) = self.chat.leave_room(&self.actor, room, connection).await {
            tracing::warn!(error = %e, "cannot record the socket's departure");
        }
    }

    /// Leaves a room the socket is in: no more of its frames, then presence.
    async fn end_room(&self, session: &mut Session, room: RoomId) -> bool {
        let Some(joined) = session.rooms.remove(room) else {
            return false;
        };
        drop(joined);
        // After the hub stopped queueing the room's frames: the writer forgets it.
        let _ = session.tx.send(Outbound::marker(room, Stage::End, None)).await;
        self.leave(&session.id, room).await;
        true
    }

    /// Reads the client's frames until the socket closes. Up to
    /// `max_in_flight` of its messages wait for their commit at once; their
    /// outcomes are answered in the order the messages came. An inbox socket
    /// also takes the hub's notices and its recounts of unread counts.
    async fn read_loop(
        &self,
        stream: &mut SplitStream<WebSocket>,
        session: &mut Session,
        notices: Option<mpsc::Receiver<Notice>>,
        clock: &Clock,
    ) {
        let mut strikes = 0u32;
        let mut in_flight = FuturesOrdered::new();
        // Only an inbox socket recounts: a room socket does not allocate the set.
        let mut recounts: Option<FuturesUnordered<Recount>> = None;
        // A room socket has no notice queue (none is allocated for it: 18,000
        // idle sockets would pay for its first block).
        let mut notices = notices;
        // One wait for the close, not a new one per frame.
        let closer = session.closer.clone();
        let closed = closer.closed();
        tokio::pin!(closed);
        loop {
            let may_read = in_flight.len() < self.settings.max_in_flight.max(1);
            let verdict = tokio::select! {
                _ = &mut closed => return,
                Some(answered) = in_flight.next(), if !in_flight.is_empty() => {
                    self.answer(session, answered)
                }
                Some(notice) = next_notice(&mut notices) => {
                    let effects = Box::pin(self.on_notice(session, notice)).await;
                    self.apply(session, effects, &mut recounts);
                    Verdict::Other
                }
                Some((room, counted)) = next_recount(&mut recounts) => {
                    let effects = Box::pin(self.on_recount(session, room, counted)).await;
                    self.apply(session, effects, &mut recounts);
                    Verdict::Other
                }
                frame = stream.next(), if may_read => match frame {
                    None => return,
                    Some(Err(e)) => {
                        if is_too_big(e) {
                            session.closer.close(codes::TOO_BIG);
                        }
                        return;
                    }
                    Some(Ok(message)) => {
                        clock.touch();
                        match message {
                            WsMessage::Text(text) => {
                                let handled = self.handle_text(text.as_str(), session);
                                match Box::pin(handled).await {
                                    Handled::Done(verdict) => verdict,
                                    Handled::Queued(pending) => {
                                        in_flight.push_back(pending);
                                        Verdict::Accepted
                                    }
                                }
                            }
                            WsMessage::Binary(_) => {
                                let error = ErrorFrame::new(ErrorCode::InvalidJson, "frames must be JSON text, not binary");
                                self.reply_error(session, error);
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
                        session.closer.close(codes::FLOODING);
                        return;
                    }
                }
                Verdict::Other => {}
            }
        }
    }

    async fn handle_text(&self, text: &str, session: &mut Session) -> Handled {
        let frame = match protocol::parse(text) {
            Ok(frame) => frame,
            Err(error) => {
                self.reply_error(session, error);
                return Handled::Done(Verdict::Other);
            }
        };
        let named = frame.room_id();
        match frame {
            ClientFrame::Ping => reply(session, &json!({"type": "pong"})),
            ClientFrame::Subscribe { room_id, since } => {
                Box::pin(self.subscribe(session, room_id, since)).await;
            }
            ClientFrame::Unsubscribe { room_id } => {
                if session.inbox.is_none() {
                    self.reply_error(session, only_on_inbox("unsubscribe"));
                } else {
                    self.end_room(session, room_id).await;
                    reply(session, &UnsubscribedFrame::new(room_id));
                }
            }
            ClientFrame::Typing { room_id } => match self.target(session, room_id, None) {
                Ok(room) => {
                    let now = Instant::now();
                    if let Some(joined) = session.rooms.get_mut(room)
                        && joined
                            .last_typing
                            .is_none_or(|at| now.duration_since(at) >= TYPING_INTERVAL)
                    {
                        joined.last_typing = Some(now);
                        self.chat.typing(&self.actor, room, &session.id);
                    }
                }
                Err(error) => self.reply_error(session, error),
            },
            ClientFrame::Read { seq, room_id } => match self.target(session, room_id, None) {
                Ok(room) => {
                    if let Err(e) = self.chat.mark_read(&self.actor, room, seq).await {
                        self.reply_error(session, ErrorFrame::from_domain(e).with_room(named));
                    }
                }
                Err(error) => self.reply_error(session, error),
            },
            ClientFrame::Message { input, user_id, room_id } => {
                return self.post(session, input, user_id, room_id).await;
            }
        }
        Handled::Done(Verdict::Other)
    }

    /// A `message` frame: validated and queued for storage.
    async fn post(
        &self,
        session: &Session,
        input: chat_domain::MessageInput,
        user_id: Option<String>,
        named: Option<RoomId>,
    ) -> Handled {
        self.metrics.message_received(MessageSource::Socket);
        let client_msg_id = input.client_msg_id.clone();
        let room = match self.target(session, named, client_msg_id.clone()) {
            Ok(room) => room,
            Err(error) => {
                self.reply_error(session, error);
                return Handled::Done(Verdict::Other);
            }
        };
        let actor = match self.author(user_id) {
            Ok(actor) => actor,
            Err(error) => {
                let error = error.with_client_msg_id(client_msg_id).with_room(named);
                self.reply_error(session, error);
                return Handled::Done(Verdict::Other);
            }
        };
        let Some(joined) = session.rooms.get(room) else {
            return Handled::Done(Verdict::Other);
        };
        match self.chat.submit_to_joined(&actor, &joined.room, input).await {
            Ok(pending) => {
                Handled::Queued(InFlight { client_msg_id, room: named, pending: Some(pending) })
            }
            Err(e) => {
                let verdict = if matches!(e, DomainError::RateLimited { .. }) {
                    Verdict::RateLimited
                } else {
                    Verdict::Other
                };
                let error =
                    ErrorFrame::from_domain(e).with_client_msg_id(client_msg_id).with_room(named);
                self.reply_error(session, error);
                Handled::Done(verdict)
            }
        }
    }

    /// The room a room frame is for: the socket's own room, or on the inbox
    /// socket the subscribed room it names.
    fn target(
        &self,
        session: &Session,
        named: Option<RoomId>,
        client_msg_id: Option<String>,
    ) -> Result<RoomId, ErrorFrame> {
        let error = |code: ErrorCode, message: String| {
            Err(ErrorFrame::new(code, message)
                .with_client_msg_id(client_msg_id.clone())
                .with_room(named))
        };
        if session.inbox.is_none() {
            let own = session.rooms.rooms().next();
            return match (named, own) {
                (Some(named), Some(own)) if named != own => error(
                    ErrorCode::Forbidden,
                    format!("this socket is for room {own}, not room {named}"),
                ),
                (_, Some(own)) => Ok(own),
                (_, None) => {
                    error(ErrorCode::Unavailable, "the socket is not in its room".to_owned())
                }
            };
        }
        match named {
            None => {
                error(ErrorCode::ValidationFailed, "room_id: is required on this socket".to_owned())
            }
            Some(room) if session.rooms.contains(room) => Ok(room),
            Some(room) => error(ErrorCode::Forbidden, format!("not subscribed to room {room}")),
        }
    }

    /// Who a message frame is from: the socket's user, or — authentication off —
    /// the frame's `user_id`; with a token, a different `user_id` is refused.
    fn author(&self, user_id: Option<String>) -> Result<Actor, ErrorFrame> {
        let from_token = self.token_expires.is_some();
        claimed_actor(&self.actor, from_token, "user_id", user_id.as_deref())
            .map_err(ErrorFrame::from_domain)
    }

    /// An inbox socket's `subscribe`.
    async fn subscribe(&self, session: &mut Session, room: RoomId, since: Option<i64>) {
        let refuse =
            |code: ErrorCode, message: String| ErrorFrame::new(code, message).with_room(Some(room));
        if session.inbox.is_none() {
            self.reply_error(session, only_on_inbox("subscribe"));
            return;
        }
        if session.rooms.contains(room) {
            let error =
                refuse(ErrorCode::ValidationFailed, format!("already subscribed to room {room}"));
            self.reply_error(session, error);
            return;
        }
        if session.rooms.len() >= self.settings.max_subscriptions {
            let limit = self.settings.max_subscriptions;
            let error =
                refuse(ErrorCode::ValidationFailed, format!("at most {limit} rooms per socket"));
            self.reply_error(session, error);
            return;
        }
        let authorized = match self.chat.authorize_socket(&self.actor, room).await {
            Ok(authorized) => authorized,
            Err(e) => {
                self.reply_error(session, ErrorFrame::from_domain(e).with_room(Some(room)));
                return;
            }
        };
        match Box::pin(self.start_room(session, Dest::Queue, authorized, since, true)).await {
            Ok(_) | Err(StartError::Closed) => {}
            Err(StartError::Domain(e)) => {
                self.reply_error(session, ErrorFrame::from_domain(e).with_room(Some(room)));
            }
        }
    }

    /// What an inbox socket does with one of the hub's notices.
    async fn on_notice(&self, session: &mut Session, notice: Notice) -> Vec<Effect> {
        let Some(inbox) = session.inbox.as_mut() else { return Vec::new() };
        match notice {
            Notice::Message { room, seq, mine } => {
                let known = inbox.counts.knows(room);
                let effect = inbox.counts.message(room, seq, mine);
                if !known && inbox.counts.knows(room) {
                    inbox.registration.watch(room);
                }
                effect.into_iter().collect()
            }
            Notice::Changed(room) => inbox.counts.changed(room).into_iter().collect(),
            Notice::RoomGone(room) => {
                self.room_removed(session, room).await;
                Vec::new()
            }
            Notice::User(event) => match *event {
                RoomEvent::RoomAdded { room } => {
                    let id = room.id;
                    inbox.registration.watch(id);
                    let effects = inbox.counts.add(id).into_iter().collect();
                    reply(session, &RoomEvent::RoomAdded { room });
                    effects
                }
                RoomEvent::RoomRemoved { room_id } => {
                    self.room_removed(session, room_id).await;
                    Vec::new()
                }
                RoomEvent::Unread { room_id, unread, last_seq } => {
                    inbox.counts.reported(room_id, unread, last_seq).into_iter().collect()
                }
                other => {
                    reply(session, &other);
                    Vec::new()
                }
            },
        }
    }

    /// The user is out of a room (removed, or the room is gone): its
    /// subscription ends and the client is told once.
    async fn room_removed(&self, session: &mut Session, room: RoomId) {
        let subscribed = self.end_room(session, room).await;
        let Some(inbox) = session.inbox.as_mut() else { return };
        let counted = inbox.counts.knows(room);
        inbox.counts.remove(room);
        inbox.registration.unwatch(room);
        if subscribed || counted {
            reply(session, &RoomEvent::RoomRemoved { room_id: room });
        }
    }

    async fn on_recount(
        &self,
        session: &mut Session,
        room: RoomId,
        counted: Result<UnreadState, DomainError>,
    ) -> Vec<Effect> {
        match counted {
            Ok(state) => match session.inbox.as_mut() {
                Some(inbox) => inbox.counts.recounted(state),
                None => Vec::new(),
            },
            Err(DomainError::NotFound(_) | DomainError::Forbidden(_)) => {
                self.room_removed(session, room).await;
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(error = %e, %room, "cannot read an unread count");
                if let Some(inbox) = session.inbox.as_mut() {
                    inbox.counts.recount_failed(room);
                }
                Vec::new()
            }
        }
    }

    /// Carries out what the unread counts asked for.
    fn apply(
        &self,
        session: &Session,
        effects: Vec<Effect>,
        recounts: &mut Option<FuturesUnordered<Recount>>,
    ) {
        for effect in effects {
            match effect {
                Effect::Send { room, unread, last_seq } => {
                    reply(session, &RoomEvent::Unread { room_id: room, unread, last_seq });
                }
                Effect::Recount(room) => {
                    let chat = self.chat.clone();
                    let actor = self.actor.clone();
                    let recount = async move { (room, chat.unread_state(&actor, room).await) };
                    recounts.get_or_insert_with(FuturesUnordered::new).push(recount.boxed());
                }
            }
        }
    }

    /// Answers a message whose outcome is known.
    fn answer(&self, session: &Session, answered: Answered) -> Verdict {
        let Answered { client_msg_id, room, outcome } = answered;
        match outcome {
            // The broadcast brings the message back to this socket too.
            Ok(Posted::Created(_)) => {}
            // A repeat is not broadcast again: this socket alone gets the original.
            Ok(Posted::Duplicate(original)) => reply(session, &RoomEvent::Message(original)),
            Err(e) => {
                let error =
                    ErrorFrame::from_domain(e).with_client_msg_id(client_msg_id).with_room(room);
                self.reply_error(session, error);
            }
        }
        Verdict::Other
    }

    /// Answers a rejected frame, counting it by its code.
    fn reply_error(&self, session: &Session, error: ErrorFrame) {
        self.metrics.error("socket", error.code);
        reply(session, &error);
    }
}

fn only_on_inbox(frame: &str) -> ErrorFrame {
    ErrorFrame::new(ErrorCode::UnknownType, format!("{frame:?} is a frame of the inbox socket /ws"))
}

/// What a text frame came to.
enum Handled {
    Done(Verdict),
    /// A message was queued for storage; its outcome comes later.
    Queued(InFlight),
}

/// The outcome of a message, with what to answer it under.
struct Answered {
    client_msg_id: Option<String>,
    room: Option<RoomId>,
    outcome: Result<Posted, DomainError>,
}

/// A message of this socket waiting for its commit.
struct InFlight {
    client_msg_id: Option<String>,
    room: Option<RoomId>,
    pending: Option<PendingPost>,
}

impl std::future::Future for InFlight {
    type Output = Answered;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Answered> {
        let room = self.room;
        let Some(pending) = self.pending.as_mut() else {
            return std::task::Poll::Ready(Answered {
                client_msg_id: None,
                room,
                outcome: Err(DomainError::Internal("polled twice".into())),
            });
        };
        let outcome = std::task::ready!(std::pin::Pin::new(pending).poll(cx));
        self.pending = None;
        let client_msg_id = self.client_msg_id.take();
        std::task::Poll::Ready(Answered { client_msg_id, room, outcome })
    }
}

/// The next recount of an inbox socket's unread counts; never, while none runs.
async fn next_recount(
    recounts: &mut Option<FuturesUnordered<Recount>>,
) -> Option<(RoomId, Result<UnreadState, DomainError>)> {
    match recounts {
        Some(recounts) if !recounts.is_empty() => recounts.next().await,
        _ => std::future::pending().await,
    }
}

/// The next notice of an inbox socket; never, for a room socket.
async fn next_notice(notices: &mut Option<mpsc::Receiver<Notice>>) -> Option<Notice> {
    match notices {
        Some(notices) => notices.recv().await,
        None => std::future::pending().await,
    }
}

/// Queues a direct reply to this socket; a socket whose queue is full is too slow.
fn reply(session: &Session, frame: &impl serde::Serialize) {
    let Ok(text) = serde_json::to_string(frame) else {
        return;
    };
    if let Err(mpsc::error::TrySendError::Full(_)) =
        session.tx.try_send(Outbound::reply(text.into()))
    {
        session.closer.close(codes::TOO_SLOW);
    }
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

fn is_too_big(error: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    matches!(error.into_inner().downcast::<WsError>().map(|e| *e), Ok(WsError::Capacity(_)))
}
