//! The socket hub of this instance: which connections are in which room, and one
//! "pump" task per room that delivers the room's events to them.
//!
//! The pump puts new messages in `seq` order with no gap before they reach any
//! socket, whichever path and order the events arrived by (this instance, Redis,
//! a full queue): a message with seq S implies that every seq below S has been
//! committed, so a jump is filled from the database. Each broadcast is
//! serialized once and the same bytes are queued to every socket; a socket whose
//! bounded queue is full is closed with 1013 instead of slowing the room.
//!
//! Presence in big rooms is coalesced: a join announced to every socket costs a
//! room of N users N frames, so N users arriving together cost N² and overflow
//! the socket queues. Above [`PresenceSettings::coalesce_above`] sockets of the
//! room here, the pump collects `user_joined`/`user_left` (from this instance and
//! from others alike) and sends one `presence` frame per interval instead.
//!
//! Inbox sockets (`/ws`) are registered by user too: events addressed to a user
//! (`room_added`, `room_removed`, `unread`) and short notices of the rooms the
//! user watches for unread counts (see `inbox.rs`) go to their notice queue.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use chat_domain::ports::{FanOut, MessageRepository, RoomRepository};
use chat_domain::{Delivery, DomainError, HistoryQuery, Limit, RoomEvent, RoomId};
use chat_infra::redis::{Held, Interests, Topic};
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::closer::{CloseReason, Closer, codes};
use super::protocol::PresenceFrame;
use super::reorder::{self, Ahead};

/// A frame queued for one socket: its room (a room frame from the hub, or a
/// socket's own reply), and for a new message its seq, so a socket can drop one
/// it already sent (resume replay overlapping the live stream). Kept to 64
/// bytes: every socket's queue holds blocks of them, 18,000 idle sockets too.
#[derive(Debug, Clone)]
pub struct Outbound {
    text: Utf8Bytes,
    /// The room id; 0 for a reply of the socket itself.
    room: i64,
    /// A new message's seq (a marker's position); 0 for none.
    seq: i64,
    /// A new message's timestamp in microseconds, for the delivery latency; 0 for none.
    created_us: i64,
    pub stage: Stage,
}

impl Outbound {
    /// A reply of the socket itself (not a room frame).
    pub fn reply(text: Utf8Bytes) -> Self {
        Self { text, room: 0, seq: 0, created_us: 0, stage: Stage::Live }
    }

    /// A frame of a room (`seq` for a new message).
    pub fn room_frame(
        room: RoomId,
        seq: Option<i64>,
        text: Utf8Bytes,
        created_at: Option<DateTime<Utc>>,
        stage: Stage,
    ) -> Self {
        let created_us = created_at.map_or(0, |at| at.timestamp_micros());
        Self { text, room: room.get(), seq: seq.unwrap_or(0), created_us, stage }
    }

    /// A marker for the writer, with no frame.
    pub fn marker(room: RoomId, stage: Stage, seq: Option<i64>) -> Self {
        Self::room_frame(room, seq, Utf8Bytes::default(), None, stage)
    }

    pub fn room(&self) -> Option<RoomId> {
        // Room ids are positive, so `new` cannot fail (nor allocate an error) here.
        (self.room > 0).then(|| RoomId::new(self.room).ok()).flatten()
    }

    pub fn seq(&self) -> Option<i64> {
        (self.seq != 0).then_some(self.seq)
    }

    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        (self.created_us != 0).then(|| DateTime::from_timestamp_micros(self.created_us)).flatten()
    }

    pub fn into_text(self) -> Utf8Bytes {
        self.text
    }
}

/// Where a frame stands in its room's stream on one socket. A subscription
/// begins (`Begin`, before the hub may queue the room's live frames), sends its
/// first frame and resume replay (`Replay`, on a queue of their own), and ends
/// the replay (`Ready`: the room's live frames held back meanwhile follow,
/// those the replay already carried dropped) or gives up (`Abort`); `End`
/// forgets the room after an unsubscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Live,
    Begin,
    Replay,
    Ready,
    Abort,
    End,
}

/// What the hub tells an inbox socket besides frames: enough to keep its
/// user's unread counts, and the events addressed to the user.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A new message in a room the user is in; `mine` when the user wrote it.
    Message { room: RoomId, seq: i64, mine: bool },
    /// A message of the room was deleted: counts are to be read again.
    Changed(RoomId),
    /// The room was deleted.
    RoomGone(RoomId),
    /// An event addressed to this user (`room_added`, `room_removed`, `unread`).
    User(Box<RoomEvent>),
}

/// When presence is coalesced (`WS_PRESENCE_COALESCE_ABOVE`, `WS_PRESENCE_INTERVAL_MS`).
#[derive(Debug, Clone, Copy)]
pub struct PresenceSettings {
    /// Sockets of a room on this instance above which presence changes go out as
    /// `presence` frames; 0: in every room.
    pub coalesce_above: usize,
    /// How often a room with pending changes sends its `presence` frame.
    pub interval: Duration,
}

/// Floor value before the pump has read the room's last seq.
const UNKNOWN_FLOOR: i64 = -1;
const FILL_PAGE: u32 = 100;

struct Subscriber {
    tx: mpsc::Sender<Outbound>,
    closer: Closer,
    /// An inbox socket's notices: its room's deletion ends the subscription
    /// (told here) instead of closing the socket.
    notices: Option<mpsc::Sender<Notice>>,
}

/// An inbox socket as the hub knows it.
#[derive(Clone)]
struct Watcher {
    user: Arc<str>,
    notices: mpsc::Sender<Notice>,
    closer: Closer,
}

impl Watcher {
    fn tell(&self, notice: Notice) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.notices.try_send(notice) {
            tracing::info!(user = %self.user, "inbox socket too slow for its notices; closing with 1013");
            self.closer.close(codes::TOO_SLOW);
        }
    }
}

/// The inbox sockets of this instance: by user, and by the rooms they watch.
#[derive(Default)]
struct InboxIndex {
    users: HashMap<Arc<str>, Sockets>,
    watching: HashMap<RoomId, Sockets>,
}

/// Inbox sockets by connection, and this instance's hold on their channel
/// (a user's, a room's) while there is any.
#[derive(Default)]
struct Sockets {
    by_connection: HashMap<String, Watcher>,
    _held: Option<Held>,
}

/// What a room's pump works on. Events are not boxed: almost every input is
/// one, and a box would cost an allocation per delivery to save the space of
/// the rare `CatchUp`.
#[allow(clippy::large_enum_variant)]
enum PumpInput {
    Event(Delivery),
    /// Re-read the room's newest messages from storage (deliveries may be lost).
    CatchUp,
}

struct Slot {
    subscribers: HashMap<String, Subscriber>,
    /// This instance's hold on the room's channel of the bus between instances.
    _held: Option<Held>,
    events: mpsc::Sender<PumpInput>,
    /// The seq up to which messages have been broadcast to this room's sockets.
    floor: watch::Sender<i64>,
    /// Set when an event could not be queued: the pump catches up to it from storage.
    resync_to: Arc<AtomicI64>,
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    rooms: Mutex<HashMap<RoomId, Slot>>,
    inbox: Mutex<InboxIndex>,
    /// Inbox sockets open here: without any, deliveries skip the inbox index.
    inbox_sockets: AtomicUsize,
    messages: Arc<dyn MessageRepository>,
    room_store: Arc<dyn RoomRepository>,
    pump_capacity: usize,
    presence: PresenceSettings,
    shutting_down: AtomicBool,
    /// The channels of the bus between instances this hub listens to; `None`
    /// without one (every event is local).
    interests: Option<Arc<Interests>>,
}

impl Hub {
    pub fn new(
        messages: Arc<dyn MessageRepository>,
        room_store: Arc<dyn RoomRepository>,
        pump_capacity: usize,
        presence: PresenceSettings,
        interests: Option<Arc<Interests>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                rooms: Mutex::new(HashMap::new()),
                inbox: Mutex::new(InboxIndex::default()),
                inbox_sockets: AtomicUsize::new(0),
                messages,
                room_store,
                pump_capacity,
                presence,
                shutting_down: AtomicBool::new(false),
                interests,
            }),
        }
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomId, Slot>> {
        // A panic while holding the lock leaves plain maps behind: still usable.
        self.inner.rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn inbox(&self) -> MutexGuard<'_, InboxIndex> {
        self.inner.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a connection to a room. Until the returned [`Subscription`] is
    /// dropped, every event of the room is queued to `tx`. An inbox socket
    /// gives its `notices`: the room's deletion is told there.
    pub fn subscribe(
        &self,
        room: RoomId,
        connection: String,
        tx: mpsc::Sender<Outbound>,
        closer: Closer,
        notices: Option<mpsc::Sender<Notice>>,
    ) -> Subscription {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            closer.close(codes::GOING_AWAY);
        }
        let mut rooms = self.rooms();
        let slot = rooms.entry(room).or_insert_with(|| self.open_slot(room));
        slot.subscribers.insert(connection.clone(), Subscriber { tx, closer, notices });
        Subscription { hub: self.clone(), room, connection, floor: slot.floor.subscribe() }
    }

    /// Registers an inbox socket of `user`: events addressed to the user and
    /// notices of the rooms it watches go to `notices` until the returned
    /// [`Inbox`] is dropped.
    pub fn open_inbox(
        &self,
        user: &str,
        connection: String,
        notices: mpsc::Sender<Notice>,
        closer: Closer,
    ) -> Inbox {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            closer.close(codes::GOING_AWAY);
        }
        let watcher = Watcher { user: Arc::from(user), notices, closer };
        let mut index = self.inbox();
        let sockets = index.users.entry(watcher.user.clone()).or_insert_with(|| Sockets {
            by_connection: HashMap::new(),
            _held: self.hold(Topic::User(watcher.user.clone())),
        });
        sockets.by_connection.insert(connection.clone(), watcher.clone());
        drop(index);
        self.inner.inbox_sockets.fetch_add(1, Ordering::AcqRel);
        Inbox { hub: self.clone(), connection, watcher, watched: HashSet::new() }
    }

    fn unsubscribe(&self, room: RoomId, connection: &str) {
        let mut rooms = self.rooms();
        if let Some(slot) = rooms.get_mut(&room) {
            slot.subscribers.remove(connection);
            if slot.subscribers.is_empty() {
                // Dropping the slot drops the pump's sender: the pump ends.
                rooms.remove(&room);
            }
        }
    }

    /// Holds a channel of the bus between instances, when there is one.
    fn hold(&self, topic: Topic) -> Option<Held> {
        self.inner.interests.as_ref().map(|interests| interests.hold(topic))
    }

    fn open_slot(&self, room: RoomId) -> Slot {
        let (events, inputs) = mpsc::channel(self.inner.pump_capacity);
        let resync_to = Arc::new(AtomicI64::new(0));
        let held = self.hold(Topic::Room(room));
        let subscribed = held.as_ref().map(Held::subscribed);
        let pump = Pump { hub: self.clone(), room, resync_to: resync_to.clone(), subscribed };
        tokio::spawn(pump.run(inputs));
        Slot {
            subscribers: HashMap::new(),
            _held: held,
            events,
            floor: watch::channel(UNKNOWN_FLOOR).0,
            resync_to,
        }
    }

    /// Closes every socket (shutdown); later connections are closed at once.
    pub fn close_all(&self, reason: CloseReason) {
        self.inner.shutting_down.store(true, Ordering::Release);
        for slot in self.rooms().values() {
            for subscriber in slot.subscribers.values() {
                subscriber.closer.close(reason);
            }
        }
        for sockets in self.inbox().users.values() {
            for watcher in sockets.by_connection.values() {
                watcher.closer.close(reason);
            }
        }
    }

    /// Queues `delivery` to the room's pump if anyone here is in the room, and
    /// tells the inbox sockets concerned.
    fn dispatch(&self, delivery: Delivery) {
        // The GrainTrade-compatible copy of a message is for the legacy hub only.
        if matches!(delivery.event, RoomEvent::ConversationMessage { .. }) {
            return;
        }
        if let Some(user) = &delivery.to_user {
            match &delivery.event {
                // The bus's copy of a message for its author's inbox sockets.
                RoomEvent::Message(message) => self.tell_author(message),
                _ => self.tell_user(user, delivery.event),
            }
            return;
        }
        if self.inner.inbox_sockets.load(Ordering::Acquire) > 0 {
            self.tell_watchers(&delivery.event);
        }
        let rooms = self.rooms();
        let Some(slot) = rooms.get(&delivery.event.room_id()) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(PumpInput::Event(delivery))) =
            slot.events.try_send(PumpInput::Event(delivery))
        {
            match delivery.event.new_message_seq() {
                Some(seq) => {
                    slot.resync_to.fetch_max(seq, Ordering::AcqRel);
                }
                None => {
                    tracing::warn!(room = %delivery.event.room_id(), "room event queue full; event dropped")
                }
            }
        }
    }

    /// Hands an event addressed to one user to that user's inbox sockets here.
    fn tell_user(&self, user: &str, event: RoomEvent) {
        if let Some(sockets) = self.inbox().users.get(user) {
            for watcher in sockets.by_connection.values() {
                watcher.tell(Notice::User(Box::new(event.clone())));
            }
        }
    }

    /// Tells the author's inbox sockets not watching the message's room of it:
    /// posting in a room puts it in the author's inbox.
    fn tell_author(&self, message: &chat_domain::Message) {
        let room = message.room_id;
        let inbox = self.inbox();
        let Some(author) = inbox.users.get(message.user_id.as_str()) else { return };
        let watchers = inbox.watching.get(&room).map(|sockets| &sockets.by_connection);
        for (connection, watcher) in &author.by_connection {
            if !watchers.is_some_and(|w| w.contains_key(connection)) {
                watcher.tell(Notice::Message { room, seq: message.seq, mine: true });
            }
        }
    }

    /// Tells the inbox sockets watching the room what changed its unread counts.
    /// A message's author learns of it even when not watching the room yet:
    /// posting in a room puts it in the author's inbox.
    fn tell_watchers(&self, event: &RoomEvent) {
        let room = event.room_id();
        let inbox = self.inbox();
        let watchers = inbox.watching.get(&room).map(|sockets| &sockets.by_connection);
        match event {
            RoomEvent::Message(message) => {
                for watcher in watchers.into_iter().flat_map(HashMap::values) {
                    let mine = *watcher.user == *message.user_id;
                    watcher.tell(Notice::Message { room, seq: message.seq, mine });
                }
                drop(inbox);
                self.tell_author(message);
            }
            RoomEvent::MessageDeleted { .. } => {
                for watcher in watchers.into_iter().flat_map(HashMap::values) {
                    watcher.tell(Notice::Changed(room));
                }
            }
            RoomEvent::RoomDeleted { .. } => {
                for watcher in watchers.into_iter().flat_map(HashMap::values) {
                    watcher.tell(Notice::RoomGone(room));
                }
            }
            _ => {}
        }
    }

    /// Queues one event to every socket of the room (but the skipped one),
    /// serialized once. Runs on the room's pump.
    fn broadcast(&self, room: RoomId, delivery: &Delivery) {
        let text: Utf8Bytes = match serde_json::to_string(&delivery.event) {
            Ok(text) => text.into(),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize room event");
                return;
            }
        };
        let seq = delivery.event.new_message_seq();
        let created_at = match &delivery.event {
            RoomEvent::Message(message) => Some(message.created_at),
            _ => None,
        };
        let room_deleted = matches!(delivery.event, RoomEvent::RoomDeleted { .. });
        let mut rooms = self.rooms();
        let Some(slot) = rooms.get_mut(&room) else {
            return;
        };
        let out = Outbound::room_frame(room, seq, text, created_at, Stage::Live);
        queue_to_all(&mut slot.subscribers, &out, delivery.skip_connection.as_deref());
        if let Some(seq) = seq {
            // Under the same lock as the subscriber list, so a new subscriber
            // reads a floor consistent with what it was sent.
            slot.floor.send_replace(seq);
        }
        if room_deleted {
            for subscriber in slot.subscribers.values() {
                match &subscriber.notices {
                    // An inbox socket stays open; its subscription ends.
                    Some(notices) => {
                        if notices.try_send(Notice::RoomGone(room)).is_err() {
                            subscriber.closer.close(codes::TOO_SLOW);
                        }
                    }
                    None => subscriber.closer.close(codes::ROOM_DELETED),
                }
            }
        }
    }

    /// Queues a coalesced `presence` frame to every socket of the room,
    /// serialized once. Runs on the room's pump.
    fn broadcast_presence(&self, room: RoomId, frame: &PresenceFrame) {
        let text: Utf8Bytes = match serde_json::to_string(frame) {
            Ok(text) => text.into(),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a presence frame");
                return;
            }
        };
        if let Some(slot) = self.rooms().get_mut(&room) {
            let out = Outbound::room_frame(room, None, text, None, Stage::Live);
            queue_to_all(&mut slot.subscribers, &out, None);
        }
    }

    /// The room's sockets on this instance.
    fn socket_count(&self, room: RoomId) -> usize {
        self.rooms().get(&room).map_or(0, |slot| slot.subscribers.len())
    }

    fn set_floor(&self, room: RoomId, seq: i64) {
        if let Some(slot) = self.rooms().get(&room) {
            slot.floor.send_replace(seq);
        }
    }

    /// Takes a room's slot out of the hub when its pump gave up, closing its
    /// sockets. A socket that joins afterwards gets a new slot and pump; left in
    /// place, the slot would keep taking sockets (reconnecting clients keep it
    /// from emptying) that its dead pump never delivers anything to.
    /// `pump` tells the slot from a newer one of the same room.
    fn retire(&self, room: RoomId, pump: &Arc<AtomicI64>, reason: CloseReason) {
        let mut rooms = self.rooms();
        if !rooms.get(&room).is_some_and(|slot| Arc::ptr_eq(&slot.resync_to, pump)) {
            return;
        }
        if let Some(slot) = rooms.remove(&room) {
            for subscriber in slot.subscribers.values() {
                subscriber.closer.close(reason);
            }
        }
    }
}

/// Queues `out` to each subscriber but `skip`, dropping those that are gone and
/// closing (1013) those whose queue is full.
fn queue_to_all(subscribers: &mut HashMap<String, Subscriber>, out: &Outbound, skip: Option<&str>) {
    subscribers.retain(|connection, subscriber| {
        if skip == Some(connection.as_str()) {
            return true;
        }
        match subscriber.tx.try_send(out.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(%connection, "socket too slow; closing with 1013");
                subscriber.closer.close(codes::TOO_SLOW);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    });
}

impl FanOut for Hub {
    fn publish(&self, delivery: Delivery) {
        self.dispatch(delivery);
    }

    fn catch_up(&self) {
        for slot in self.rooms().values() {
            // A full queue means the pump is busy and will read storage anyway.
            let _ = slot.events.try_send(PumpInput::CatchUp);
        }
    }
}

/// A connection's membership of a room's broadcast; leaving is dropping it.
pub struct Subscription {
    hub: Hub,
    room: RoomId,
    connection: String,
    floor: watch::Receiver<i64>,
}

impl Subscription {
    /// The seq up to which the room's messages were broadcast before this
    /// subscription: everything above it reaches the subscriber live.
    /// `None` when the room's pump gave up (the socket is being closed).
    pub async fn floor(&mut self) -> Option<i64> {
        self.floor.wait_for(|floor| *floor != UNKNOWN_FLOOR).await.ok().map(|floor| *floor)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.room, &self.connection);
    }
}

/// An inbox socket's registration with the hub, and the rooms it watches for
/// unread counts; dropping it forgets them all.
pub struct Inbox {
    hub: Hub,
    connection: String,
    watcher: Watcher,
    watched: HashSet<RoomId>,
}

impl Inbox {
    /// Starts telling this socket of the room's new and deleted messages.
    pub fn watch(&mut self, room: RoomId) {
        if self.watched.insert(room) {
            let mut index = self.hub.inbox();
            let sockets = index.watching.entry(room).or_insert_with(|| Sockets {
                by_connection: HashMap::new(),
                _held: self.hub.hold(Topic::Room(room)),
            });
            sockets.by_connection.insert(self.connection.clone(), self.watcher.clone());
        }
    }

    pub fn unwatch(&mut self, room: RoomId) {
        if self.watched.remove(&room) {
            forget_watch(&mut self.hub.inbox(), room, &self.connection);
        }
    }

    pub fn is_watching(&self, room: RoomId) -> bool {
        self.watched.contains(&room)
    }
}

fn forget_watch(index: &mut InboxIndex, room: RoomId, connection: &str) {
    if let Some(watchers) = index.watching.get_mut(&room) {
        watchers.by_connection.remove(connection);
        if watchers.by_connection.is_empty() {
            index.watching.remove(&room);
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut index = self.hub.inbox();
        for room in self.watched.drain() {
            forget_watch(&mut index, room, &self.connection);
        }
        if let Some(sockets) = index.users.get_mut(&self.watcher.user) {
            sockets.by_connection.remove(&self.connection);
            if sockets.by_connection.is_empty() {
                index.users.remove(&self.watcher.user);
            }
        }
        self.hub.inner.inbox_sockets.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The per-room task that orders and delivers events.
struct Pump {
    hub: Hub,
    room: RoomId,
    resync_to: Arc<AtomicI64>,
    /// Turns true once the room's channel of the bus is subscribed here.
    subscribed: Option<watch::Receiver<bool>>,
}

/// How long a new room waits for its channel of the bus before reading its
/// floor anyway (Redis slow or down); it catches up once subscribed.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(1);

/// Resolves once `subscribed` turned true; never for none (or a gone sender).
async fn became_subscribed(subscribed: &mut Option<watch::Receiver<bool>>) {
    match subscribed {
        Some(receiver) => {
            if receiver.wait_for(|on| *on).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

impl Pump {
    async fn run(self, mut inputs: mpsc::Receiver<PumpInput>) {
        // The floor is read once the room's channel is subscribed: every commit
        // after the read then reaches this pump, from this instance or another.
        let mut waiting = self.subscribed.clone().filter(|on| !*on.borrow());
        if waiting.is_some()
            && tokio::time::timeout(SUBSCRIBE_WAIT, became_subscribed(&mut waiting)).await.is_ok()
        {
            waiting = None;
        }
        let Some(mut last) = self.initial_floor().await else {
            return;
        };
        self.hub.set_floor(self.room, last);
        let mut presence = PendingPresence::default();
        // Armed only while presence changes are pending: an idle room has no timer.
        let mut flush: Option<Interval> = None;
        let mut ahead = Ahead::default();
        loop {
            let input = tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => input,
                    None => return,
                },
                () = until(ahead.deadline()) => {
                    // The missing seqs did not come: they are in storage.
                    let Some(newest) = self.fill_held(&mut ahead, last).await else { return };
                    last = newest;
                    continue;
                }
                () = became_subscribed(&mut waiting) => {
                    // Subscribed late: what others committed meanwhile is in storage.
                    waiting = None;
                    PumpInput::CatchUp
                }
                () = tick(&mut flush) => {
                    match presence.take(self.room) {
                        Some(frame) => self.hub.broadcast_presence(self.room, &frame),
                        // A whole interval without changes: disarm until the next one.
                        None => flush = None,
                    }
                    continue;
                }
            };
            let delivery = match input {
                PumpInput::Event(delivery) => delivery,
                PumpInput::CatchUp => {
                    let Some(newest) = self.fill(last, None).await else { return };
                    last = self.release(&mut ahead, newest);
                    continue;
                }
            };
            match delivery.event.new_message_seq() {
                Some(seq) if seq <= last => {}
                Some(seq) if seq == last + 1 => {
                    self.hub.broadcast(self.room, &delivery);
                    last = self.release(&mut ahead, seq);
                }
                Some(seq) => {
                    // Ahead of a gap: the missing ones are most likely on their way.
                    if ahead.hold(seq, delivery, Instant::now()) {
                        let Some(newest) = self.fill_held(&mut ahead, last).await else { return };
                        last = newest;
                    }
                }
                None => {
                    if !ahead.is_empty() && reorder::refers_to_messages(&delivery.event) {
                        let Some(newest) = self.fill_held(&mut ahead, last).await else { return };
                        last = newest;
                    }
                    if !self.coalesce(&delivery.event, &mut presence, &mut flush) {
                        self.hub.broadcast(self.room, &delivery);
                    }
                }
            }
            let behind = self.resync_to.load(Ordering::Acquire);
            if behind > last {
                let Some(newest) = self.fill(last, Some(behind)).await else { return };
                last = self.release(&mut ahead, newest);
            }
        }
    }

    /// Broadcasts the held messages that now follow `last`; the new last seq.
    fn release(&self, ahead: &mut Ahead, mut last: i64) -> i64 {
        for delivery in ahead.take_run(last) {
            last = delivery.event.new_message_seq().unwrap_or(last);
            self.hub.broadcast(self.room, &delivery);
        }
        last
    }

    /// Fills from storage up to the highest held message (everything held is
    /// committed, and so is everything below it); the new last seq.
    async fn fill_held(&self, ahead: &mut Ahead, last: i64) -> Option<i64> {
        let Some(upto) = ahead.highest() else { return Some(last) };
        ahead.clear();
        self.fill(last, Some(upto.max(last))).await
    }

    /// Takes a `user_joined`/`user_left` into the pending `presence` frame when
    /// the room is big; false when `event` is to be broadcast as it is.
    fn coalesce(
        &self,
        event: &RoomEvent,
        presence: &mut PendingPresence,
        flush: &mut Option<Interval>,
    ) -> bool {
        let (user, joined, at) = match event {
            RoomEvent::UserJoined { user_id, timestamp, .. } => (user_id, true, *timestamp),
            RoomEvent::UserLeft { user_id, timestamp, .. } => (user_id, false, *timestamp),
            _ => return false,
        };
        let settings = self.hub.inner.presence;
        // While a frame is pending every change joins it, even if the room shrank
        // meanwhile: sent on its own, a change would reach clients before an older
        // one of the same user still pending, and the older one would win.
        if presence.is_empty() && self.hub.socket_count(self.room) <= settings.coalesce_above {
            return false;
        }
        // The delivery's skipped connection (the joiner) is ignored: one frame,
        // serialized once, goes to every socket.
        presence.record(user, joined, at);
        if flush.is_none() {
            let mut interval =
                tokio::time::interval_at(Instant::now() + settings.interval, settings.interval);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            *flush = Some(interval);
        }
        true
    }

    /// The room's last seq, read once the pump exists (so no later commit can
    /// slip between the read and the subscription).
    async fn initial_floor(&self) -> Option<i64> {
        for attempt in 0..5u32 {
            match self.hub.inner.room_store.find_active(self.room).await {
                Ok(Some(room)) => return Some(room.last_seq),
                Ok(None) => {
                    self.hub.retire(self.room, &self.resync_to, codes::ROOM_DELETED);
                    return None;
                }
                Err(e) => {
                    tracing::warn!(room = %self.room, error = %e, attempt, "cannot read room for its sockets");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        self.hub.retire(self.room, &self.resync_to, codes::INTERNAL);
        None
    }

    /// Broadcasts the committed messages after `after` (up to `upto`, or all)
    /// from storage and returns the seq delivered up to. On a storage failure the
    /// room's sockets are closed (1011) so their clients resume with `since=`
    /// rather than silently miss messages.
    async fn fill(&self, after: i64, upto: Option<i64>) -> Option<i64> {
        let upto_seq = upto.unwrap_or(i64::MAX);
        let mut cursor = after;
        while cursor < upto_seq {
            let page = match self.read_after(cursor).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(room = %self.room, error = %e, "cannot fill a gap; closing the room's sockets");
                    self.hub.retire(self.room, &self.resync_to, codes::INTERNAL);
                    return None;
                }
            };
            let mut done = !page.has_more || page.items.is_empty();
            for message in page.items {
                if message.seq > upto_seq {
                    done = true;
                    break;
                }
                cursor = message.seq;
                self.hub.broadcast(self.room, &Delivery::to_all(RoomEvent::Message(message)));
            }
            if done {
                break;
            }
        }
        // Every seq up to a bounded `upto` is committed; missing ones were deleted.
        Some(upto.unwrap_or(cursor).max(cursor))
    }

    async fn read_after(&self, after: i64) -> Result<chat_domain::HistoryPage, DomainError> {
        let limit = Limit::parse(i64::from(FILL_PAGE))?;
        let mut last_error = None;
        for attempt in 0..3u32 {
            match self
                .hub
                .inner
                .messages
                .history(self.room, HistoryQuery::After(after), limit)
                .await
            {
                Ok(page) => return Ok(page),
                Err(e) => {
                    last_error = Some(e);
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        Err(last_error.unwrap_or_else(|| DomainError::Internal("unreachable".to_owned())))
    }
}

/// Resolves at `deadline`; never, for none.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The next tick of an armed timer; never, for none.
async fn tick(timer: &mut Option<Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The presence changes of a room since its last `presence` frame: per user
/// only the last one counts (joined then left is left; left then joined is joined).
#[derive(Debug, Default)]
struct PendingPresence {
    /// User → (position of the user's last change, joined).
    changes: HashMap<String, (u64, bool)>,
    next: u64,
    /// The time of the newest change: the frame's timestamp.
    newest: Option<DateTime<Utc>>,
}

impl PendingPresence {
    fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn record(&mut self, user: &str, joined: bool, at: DateTime<Utc>) {
        self.next += 1;
        match self.changes.get_mut(user) {
            Some(change) => *change = (self.next, joined),
            None => {
                self.changes.insert(user.to_owned(), (self.next, joined));
            }
        }
        self.newest = Some(self.newest.map_or(at, |newest| newest.max(at)));
    }

    /// The frame of the pending changes (users in the order of their last
    /// change), or `None` when there are none; starts over empty.
    fn take(&mut self, room: RoomId) -> Option<PresenceFrame> {
        let newest = self.newest.take()?;
        let mut changes: Vec<(String, (u64, bool))> = self.changes.drain().collect();
        if changes.is_empty() {
            return None;
        }
        changes.sort_unstable_by_key(|(_, (position, _))| *position);
        let (joined, left): (Vec<_>, Vec<_>) =
            changes.into_iter().partition(|(_, (_, joined))| *joined);
        let names =
            |list: Vec<(String, (u64, bool))>| list.into_iter().map(|(user, _)| user).collect();
        Some(PresenceFrame::new(room, names(joined), names(left), newest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_767_268_800_000 + ms).unwrap()
    }

    #[test]
    fn the_last_change_of_each_user_wins() {
        let room = RoomId::new(7).unwrap();
        let mut pending = PendingPresence::default();
        assert!(pending.take(room).is_none(), "nothing pending, no frame");
        pending.record("ann", true, at(1));
        pending.record("bob", false, at(2));
        pending.record("cid", true, at(3));
        pending.record("ann", false, at(4));
        pending.record("bob", true, at(5));
        pending.record("dan", true, at(0));
        let frame = serde_json::to_value(pending.take(room).unwrap()).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({
                "type": "presence",
                "room_id": 7,
                "joined": ["cid", "bob", "dan"],
                "left": ["ann"],
                "timestamp": "2026-01-01T12:00:00.005Z",
            })
        );
        assert!(pending.is_empty());
        assert!(pending.take(room).is_none(), "a frame starts the next one over");
    }
}
