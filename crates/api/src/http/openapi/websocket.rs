//! The WebSocket protocols as schemas: the frames of `GET /ws/{room_id}` and
//! `GET /ws` (the inbox socket: the same frames, with `room_id`, and its own), and of
//! the GrainTrade socket `GET /ws/chat/{item_id}/{other_user_id}`. OpenAPI cannot
//! describe a socket's traffic, so the operations point at these components.

use chrono::{DateTime, Utc};
use utoipa::ToSchema;

use super::schemas::{MessageType, PresentUser};
use crate::legacy::LegacyMessage;

/// A frame the client sends on `/ws/{room_id}` or `/ws` (a JSON text frame).
/// `room_id` names the room of a room frame: required on `/ws` (a subscribed
/// room), optional on `/ws/{room_id}` (its own room).
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Persisted, then broadcast to everyone in the room, the sender included.
    #[schema(title = "message", example = json!({"type": "message", "content": "210 UAH/kg?", "client_msg_id": "bob-1"}))]
    Message {
        /// 1–4000 characters of plain text.
        #[schema(min_length = 1, max_length = 4000)]
        content: String,
        message_type: Option<super::schemas::PostMessageType>,
        /// Idempotency key (≤ 64 characters): a repeat is answered with nothing new.
        client_msg_id: Option<String>,
        /// The id of the message this one answers: a live message of the same room
        /// (else `error` `validation_failed`).
        #[schema(minimum = 1, format = Int64)]
        reply_to: Option<i64>,
        /// Development only; with a token it must be the token's `sub`.
        user_id: Option<String>,
        #[schema(minimum = 1)]
        room_id: Option<i64>,
    },
    /// Tells the others that the sender is typing; not persisted.
    #[schema(title = "typing", example = json!({"type": "typing"}))]
    Typing {
        #[schema(minimum = 1)]
        room_id: Option<i64>,
    },
    /// Moves the sender's read marker forward to `seq` (as `POST /rooms/{room_id}/read`);
    /// the room's sockets get `read` when it moved.
    #[schema(title = "read", example = json!({"type": "read", "room_id": 1, "seq": 42}))]
    Read {
        #[schema(minimum = 0)]
        seq: i64,
        #[schema(minimum = 1)]
        room_id: Option<i64>,
    },
    /// `/ws` only: joins the room on this socket, answered with `subscribed`, then
    /// (with `since`) every message after `since`, then live ones.
    #[schema(title = "subscribe", example = json!({"type": "subscribe", "room_id": 1, "since": 40}))]
    Subscribe {
        #[schema(minimum = 1)]
        room_id: i64,
        #[schema(minimum = 0)]
        since: Option<i64>,
    },
    /// `/ws` only: leaves the room on this socket, answered with `unsubscribed`.
    #[schema(title = "unsubscribe", example = json!({"type": "unsubscribe", "room_id": 1}))]
    Unsubscribe {
        #[schema(minimum = 1)]
        room_id: i64,
    },
    /// Answered with `{"type": "pong"}`.
    #[schema(title = "ping", example = json!({"type": "ping"}))]
    Ping {},
}

/// A frame the server sends on `/ws/{room_id}` or `/ws` (a JSON text frame).
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// `/ws` only: the first frame.
    #[schema(title = "ready", example = json!({"type": "ready", "user_id": "alice"}))]
    Ready { user_id: String },
    /// `/ws` only: the answer to `subscribe`, with the fields of `joined`.
    #[schema(title = "subscribed", example = json!({"type": "subscribed", "room_id": 1, "user_id": "alice", "last_seq": 42, "users": []}))]
    Subscribed {
        room_id: i64,
        user_id: String,
        #[schema(minimum = 0)]
        last_seq: i64,
        users: Vec<PresentUser>,
    },
    /// `/ws` only: the answer to `unsubscribe`; no more frames of that room.
    #[schema(title = "unsubscribed", example = json!({"type": "unsubscribed", "room_id": 1}))]
    Unsubscribed { room_id: i64 },
    /// `/ws` only: the user was made a member of a room, or created one.
    #[schema(title = "room_added")]
    RoomAdded { room: super::schemas::Room },
    /// `/ws` only: the user was removed from a room, or it was deleted; its
    /// subscription, if any, has ended.
    #[schema(title = "room_removed", example = json!({"type": "room_removed", "room_id": 1}))]
    RoomRemoved { room_id: i64 },
    /// `/ws` only: the user's unread count of a room changed (subscribed or not).
    #[schema(title = "unread", example = json!({"type": "unread", "room_id": 1, "unread": 3, "last_seq": 42}))]
    Unread {
        room_id: i64,
        #[schema(minimum = 0)]
        unread: u64,
        #[schema(minimum = 0)]
        last_seq: i64,
    },
    /// A user's read marker moved ("seen").
    #[schema(title = "read", example = json!({"type": "read", "room_id": 1, "user_id": "bob", "seq": 42, "read_at": "2026-01-01T12:00:00.123Z"}))]
    Read { room_id: i64, user_id: String, seq: i64, read_at: DateTime<Utc> },
    /// The first frame: everything up to `last_seq` is history, everything after
    /// arrives live; `users` are those present now — in a room with more than
    /// `WS_PRESENCE_COALESCE_ABOVE` users at most that many, the joiner always
    /// among them (`GET /rooms/{room_id}/users` lists everyone).
    #[schema(title = "joined", example = json!({"type": "joined", "room_id": 1, "user_id": "alice", "last_seq": 42, "users": [{"user_id": "alice", "connections": 1, "since": "2026-01-01T12:00:00.123Z"}]}))]
    Joined {
        room_id: i64,
        user_id: String,
        #[schema(minimum = 0)]
        last_seq: i64,
        users: Vec<PresentUser>,
    },
    /// A new committed message (live, or replayed after `since`), in `seq` order.
    #[schema(title = "message", example = json!({"type": "message", "id": 5, "room_id": 1, "seq": 3, "user_id": "bob", "content": "210 UAH/kg?", "message_type": "text", "client_msg_id": "bob-1", "edited": false, "created_at": "2026-01-01T12:00:00.123Z", "updated_at": "2026-01-01T12:00:00.123Z", "reply_to": null, "reactions": {}}))]
    Message {
        id: i64,
        room_id: i64,
        seq: i64,
        user_id: String,
        content: String,
        message_type: MessageType,
        #[schema(required = true)]
        client_msg_id: Option<String>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        edited: bool,
        /// The id of the message this one answers (`null`: none).
        #[schema(required = true, minimum = 1, format = Int64)]
        reply_to: Option<i64>,
        /// Reaction counts per key; `{}` when nobody reacted.
        reactions: std::collections::BTreeMap<String, u64>,
        /// Only on `message_type: "offer"`: the offer as it stands now.
        #[schema(nullable = false)]
        offer: Option<super::schemas::Offer>,
    },
    /// A message was edited (all the message's fields, `edited: true`).
    #[schema(title = "message_updated")]
    MessageUpdated {
        id: i64,
        room_id: i64,
        seq: i64,
        user_id: String,
        content: String,
        message_type: MessageType,
        #[schema(required = true)]
        client_msg_id: Option<String>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        edited: bool,
        /// The id of the message this one answers (`null`: none).
        #[schema(required = true, minimum = 1, format = Int64)]
        reply_to: Option<i64>,
        /// Reaction counts per key; `{}` when nobody reacted.
        reactions: std::collections::BTreeMap<String, u64>,
        /// Only on `message_type: "offer"`: the offer as it stands now.
        #[schema(nullable = false)]
        offer: Option<super::schemas::Offer>,
    },
    /// A user added (`added: true`) or removed a reaction; `count` is the key's
    /// count on the message right after that change (0: nobody reacts with it any more).
    #[schema(title = "reaction", example = json!({"type": "reaction", "room_id": 1, "message_id": 5, "seq": 3, "key": "👍", "user_id": "bob", "added": true, "count": 2}))]
    Reaction {
        room_id: i64,
        message_id: i64,
        seq: i64,
        key: String,
        user_id: String,
        added: bool,
        #[schema(minimum = 0)]
        count: u64,
    },
    /// A message was deleted.
    #[schema(title = "message_deleted", example = json!({"type": "message_deleted", "id": 5, "room_id": 1, "seq": 3}))]
    MessageDeleted { id: i64, room_id: i64, seq: i64 },
    /// A user's first socket in the room opened (in rooms of at most
    /// `WS_PRESENCE_COALESCE_ABOVE` sockets on the instance; bigger rooms get `presence`).
    #[schema(title = "user_joined", example = json!({"type": "user_joined", "room_id": 1, "user_id": "bob", "timestamp": "2026-01-01T12:00:00.123Z"}))]
    UserJoined { room_id: i64, user_id: String, timestamp: DateTime<Utc> },
    /// A user's last socket in the room closed (in rooms of at most
    /// `WS_PRESENCE_COALESCE_ABOVE` sockets on the instance; bigger rooms get `presence`).
    #[schema(title = "user_left")]
    UserLeft { room_id: i64, user_id: String, timestamp: DateTime<Utc> },
    /// Sent instead of `user_joined`/`user_left` while the room has more than
    /// `WS_PRESENCE_COALESCE_ABOVE` sockets on the instance (0: in every room):
    /// the joins (a user's first socket opened) and departures (its last one
    /// closed) of the last `WS_PRESENCE_INTERVAL_MS`, at most one frame per
    /// interval and none when nothing changed. Each user is named once, in the
    /// list of its last change (joined then left: only in `left`; left then
    /// joined: only in `joined`), so applying the lists to the `joined` frame's
    /// `users` gives who is present. It goes to every socket of the room, the
    /// joiner's own included, and may name users the `joined` frame already
    /// listed or that the client never saw join; `timestamp` is the newest change's.
    #[schema(title = "presence", example = json!({"type": "presence", "room_id": 1, "joined": ["bob", "carol"], "left": ["dave"], "timestamp": "2026-01-01T12:00:01.123Z"}))]
    Presence {
        room_id: i64,
        /// Users whose last change in the interval was a join, in order of that change.
        joined: Vec<String>,
        /// Users whose last change in the interval was a departure, in order of that change.
        left: Vec<String>,
        timestamp: DateTime<Utc>,
    },
    /// An offer of the room was made or changed (accepted, declined, countered,
    /// withdrawn, expired): the whole offer as it is now. A counter sends two:
    /// the parent (`countered`) and the new open offer.
    #[schema(title = "offer_updated", example = json!({"type": "offer_updated", "room_id": 1, "offer": {"id": 7, "room_id": 1, "message_id": 12, "status": "accepted", "side": "sell", "commodity": "wheat", "quantity": "250.5", "unit": "t", "price": "210", "currency": "UAH", "incoterm": null, "delivery_place": null, "delivery_from": null, "delivery_to": null, "note": null, "item_id": null, "from_user_id": "alice", "to_user_id": null, "parent_offer_id": null, "expires_at": null, "responded_by": "bob", "responded_at": "2026-01-01T12:05:00.000Z", "created_at": "2026-01-01T12:00:00.123Z"}}))]
    OfferUpdated { room_id: i64, offer: super::schemas::Offer },
    /// Someone else is typing.
    #[schema(title = "typing", example = json!({"type": "typing", "room_id": 1, "user_id": "bob"}))]
    Typing { room_id: i64, user_id: String },
    /// The room was deleted; the socket is closed with 4404 next.
    #[schema(title = "room_deleted", example = json!({"type": "room_deleted", "room_id": 1}))]
    RoomDeleted { room_id: i64 },
    /// A frame was rejected; the socket stays open.
    #[schema(title = "error", example = json!({"type": "error", "code": "validation_failed", "message": "content: must not be empty", "client_msg_id": "bob-2"}))]
    Error {
        code: FrameErrorCode,
        message: String,
        /// The rejected frame's `client_msg_id`, when it had one.
        #[schema(nullable = false)]
        client_msg_id: Option<String>,
        /// With `rate_limited`: when to try again.
        #[schema(nullable = false)]
        retry_after_ms: Option<u64>,
        /// The room the rejected frame named, when it named one.
        #[schema(nullable = false)]
        room_id: Option<i64>,
    },
    /// The answer to a `ping` frame.
    #[schema(title = "pong", example = json!({"type": "pong"}))]
    Pong {},
}

/// Why a client frame was rejected.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FrameErrorCode {
    /// Not valid JSON.
    InvalidJson,
    /// Not an object with a known `type`.
    UnknownType,
    /// A field is missing or invalid; the message names it.
    ValidationFailed,
    /// The caller may not do this (e.g. `system` messages, a `user_id` that is not the token's).
    Forbidden,
    /// The room is gone.
    NotFound,
    /// Too many frames; retry after `retry_after_ms`.
    RateLimited,
    /// A dependency is down: not persisted, or outcome unknown; sending it again with the
    /// same `client_msg_id` is safe (never a duplicate).
    Unavailable,
}

/// A frame the client sends on the GrainTrade socket `/ws/chat/{item_id}/{other_user_id}`.
#[derive(ToSchema)]
#[schema(example = json!({"sender_id": "buyer1", "receiver_id": "seller7", "item_id": "77", "content": "Is the price final?"}))]
pub struct LegacyClientFrame {
    pub sender_id: String,
    pub receiver_id: String,
    /// A string or a number.
    pub item_id: String,
    pub content: String,
}

/// A frame the server sends on the GrainTrade socket: a stored message, or an error.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum LegacyServerFrame {
    Message(LegacyMessage),
    Error(LegacyError),
}

/// A rejected frame on the GrainTrade socket; the socket stays open.
#[derive(ToSchema)]
#[schema(example = json!({"error": "Invalid message format"}))]
pub struct LegacyError {
    /// `Invalid message format`, `Cannot send message to yourself.`, or another reason.
    pub error: String,
}

/// The description of `GET /ws/{room_id}`.
pub const ROOM_SOCKET: &str = "Upgrades to a WebSocket of the room (`ws://HOST:8001/ws/{room_id}`). Every frame is a JSON \
text frame with a `type`.

Before the upgrade the room and the caller are checked and failures are plain HTTP errors: unknown or deleted room → 404, \
bad or missing token (authentication required) → 401, a private room the caller is not in, or an `Origin` that is \
neither in `CORS_ORIGINS` nor the service's own (the host the upgrade was sent to) → 403, a negative `since` → 400. In development a `room_id` that is not a number names a room, created \
on first use.

**Client → server** (schema `ClientFrame`): `message` (persisted, then broadcast to everyone in the room, the sender \
included), `typing` (to the others, not persisted), `ping` (answered with `pong`). A client need not wait for one \
message before sending the next: up to `WS_MAX_IN_FLIGHT` (default 16) of a socket's messages wait for their commit \
at once, they are stored in the order sent (increasing `seq`), and their outcomes (the broadcast, a repeat's original, \
an `error` with the `client_msg_id`) come in that order; the socket's next frames are read as soon as one is answered.

**Server → client** (schema `ServerFrame`): `joined` first, then `message`, `message_updated`, `message_deleted`, \
`reaction`, `user_joined`, `user_left` (or `presence`, below), `typing`, `room_deleted`, `pong`, and `error` when a frame was \
rejected (codes `invalid_json`, `unknown_type`, `validation_failed`, `forbidden`, `rate_limited` with \
`retry_after_ms`, `unavailable`: not done, or outcome unknown — retrying with the same `client_msg_id` is safe) — the \
socket stays open.

**Presence in big rooms**: while a room has more than `WS_PRESENCE_COALESCE_ABOVE` sockets (default 50; 0: every \
room) on the instance serving the socket, joins and departures are not sent one by one but as one `presence` frame \
per `WS_PRESENCE_INTERVAL_MS` (default 1000): `{\"type\": \"presence\", \"room_id\", \"joined\": [user ids], \
\"left\": [user ids], \"timestamp\"}`, each user once, in the list of its last change in the interval; no frame when \
nothing changed. In a room with more users than that, `joined` lists at most `WS_PRESENCE_COALESCE_ABOVE` of them (at \
least the joiner), so joining costs the same in a room of any size; `GET /rooms/{room_id}/users` lists everyone.

**Guarantees**: a message is broadcast only after it is committed; every socket receives every message once, in `seq` \
order, on every instance. With `since=N` every message with seq > N is replayed first, then the live ones, with no gap \
and no duplicate.

**Close codes**: 1000 normal, 1001 server shutdown, 1009 frame over `WS_MAX_FRAME_BYTES`, 1011 internal error \
(reconnect with `since`), 1013 the client did not read fast enough, 4401 the token expired, 4404 room deleted, 4408 no \
answer to the server's ping within `WS_PONG_TIMEOUT_MS`.";

/// The description of `GET /ws`.
pub const INBOX_SOCKET: &str = "Upgrades to the caller's inbox WebSocket (`ws://HOST:8001/ws`): one socket for any \
number of rooms. Identity and `Origin` are checked as for `/ws/{room_id}` (401 / 403 before the upgrade). The first \
frame is `{\"type\": \"ready\", \"user_id\"}`; the socket is in no room until it subscribes.

**Client → server** (schema `ClientFrame`): `subscribe` `{room_id, since?}` → `subscribed` (the fields of `joined`), \
then with `since` every message after it, then live ones, with the same gap-free guarantee as `/ws/{room_id}`; an \
unknown or deleted room → `error` `not_found`, a private room the caller is not in → `error` `forbidden`, already \
subscribed or more than `WS_MAX_SUBSCRIPTIONS` (default 500) rooms → `error` `validation_failed`; the socket stays \
open. `unsubscribe` `{room_id}` → `unsubscribed`. `message`, `typing` and `read` carry `room_id` (a subscribed \
room, else `error` `forbidden`). `ping` → `pong`.

**Server → client** (schema `ServerFrame`): every room frame of `/ws/{room_id}`, each with its `room_id`, for the \
subscribed rooms only; a deleted room's `room_deleted` is followed by `room_removed` and ends that subscription \
(the socket stays open). The user's own events, for all the user's rooms (created, member of, posted in), \
subscribed or not: `room_added` `{room}`, `room_removed` `{room_id}` (removed from the room, or it was deleted), \
and `unread` `{room_id, unread, last_seq}` whenever the user's unread count of a room changes (a new message of \
someone else, a deletion, a read on another device). Errors carry the `room_id` of the frame they answer.

**Close codes**: as `/ws/{room_id}`, except that a deleted room does not close the socket.";

/// The description of `GET /ws/chat/{item_id}/{other_user_id}`.
pub const CONVERSATION_SOCKET: &str = "The GrainTrade frontend's socket for the conversation about an item with another \
user. Send `LegacyClientFrame` (`sender_id`, `receiver_id`, `item_id`, `content`); the stored message \
(`LegacyMessage`) goes to every socket on the same path and to every socket of the other party the server knows (from \
`?user_id=`, a token, or a frame it sent), on every instance. A frame with missing keys is answered with \
`{\"error\": \"Invalid message format\"}`, one to oneself with `{\"error\": \"Cannot send message to yourself.\"}`; \
the socket stays open. Every message also puts `{\"type\": \"new_message\", \"to_username\", \"message_text\", \
\"item_id\"}` on the durable queue `message.events` for the notifications service.";
