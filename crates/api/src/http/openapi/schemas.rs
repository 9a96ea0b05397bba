//! Schema-only mirrors of the domain's JSON shapes (`Room`, `Message`, …). The
//! domain stays free of documentation crates; the contract test validates real
//! responses against these, refusing fields a schema does not declare, so a
//! mirror that drifts from what the service sends fails it.

use chrono::{DateTime, Utc};
use utoipa::ToSchema;

#[derive(ToSchema)]
#[schema(example = json!({
    "id": 1, "name": "Wheat, Odesa", "description": "FOB offers", "is_active": true,
    "is_private": false, "created_by": "alice",
    "created_at": "2026-01-01T12:00:00.123Z", "updated_at": "2026-01-01T12:00:00.123Z"
}))]
pub struct Room {
    #[schema(minimum = 1, format = Int64)]
    pub id: i64,
    /// 1–100 characters after trimming.
    pub name: String,
    /// At most 1000 characters.
    #[schema(required = true)]
    pub description: Option<String>,
    /// Always true in responses: deleted rooms are not shown.
    pub is_active: bool,
    /// Only members see and use a private room.
    pub is_private: bool,
    /// The creator's user id (`null` for rooms made by the service).
    #[schema(required = true)]
    pub created_by: Option<String>,
    /// The GrainTrade item of an item conversation (absent for other rooms).
    #[schema(nullable = false)]
    pub item_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a client may post: `text` (the default) or `system` (admins and the
/// service only). Offers have their own call.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostMessageType {
    Text,
    System,
}

/// `text`, `system` (admins and the service only) or `offer`.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    Text,
    System,
    /// Carries an offer (`offer`); made by `POST /rooms/{room_id}/offers` only.
    Offer,
}

#[derive(ToSchema)]
#[schema(example = json!({
    "id": 5, "room_id": 1, "seq": 3, "user_id": "bob", "content": "210 UAH/kg?",
    "message_type": "text", "client_msg_id": "bob-1", "edited": false,
    "created_at": "2026-01-01T12:00:00.123Z", "updated_at": "2026-01-01T12:00:00.123Z",
    "reply_to": 4, "reactions": {"👍": 2}
}))]
pub struct Message {
    #[schema(minimum = 1, format = Int64)]
    pub id: i64,
    #[schema(minimum = 1, format = Int64)]
    pub room_id: i64,
    /// Position in the room: from 1, strictly increasing in commit order.
    #[schema(minimum = 1, format = Int64)]
    pub seq: i64,
    pub user_id: String,
    /// Plain text, 1–4000 characters, returned exactly as sent.
    pub content: String,
    pub message_type: MessageType,
    /// The sender's idempotency key, if it gave one.
    #[schema(required = true)]
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// True once the content was changed.
    pub edited: bool,
    /// The id of the message this one answers (`null`: none).
    #[schema(required = true, minimum = 1, format = Int64)]
    pub reply_to: Option<i64>,
    /// Reaction counts per key (`{"👍": 2}`); `{}` when nobody reacted.
    #[schema(value_type = std::collections::BTreeMap<String, u64>, example = json!({"👍": 2}))]
    pub reactions: std::collections::BTreeMap<String, u64>,
    /// Only on `message_type: "offer"`: the offer as it stands now.
    #[schema(nullable = false)]
    pub offer: Option<Offer>,
}

/// `buy` or `sell`.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

/// Tonnes, kilograms or bushels.
#[derive(ToSchema)]
pub enum Unit {
    #[serde(rename = "t")]
    Tonne,
    #[serde(rename = "kg")]
    Kilogram,
    #[serde(rename = "bu")]
    Bushel,
}

/// `open`, then exactly one of the final statuses.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    Open,
    Accepted,
    Declined,
    Countered,
    Withdrawn,
    Expired,
}

/// A structured trade proposal in a room.
#[derive(ToSchema)]
#[schema(example = json!({
    "id": 7, "room_id": 1, "message_id": 12, "status": "open", "side": "sell",
    "commodity": "wheat", "quantity": "250.5", "unit": "t", "price": "210", "currency": "UAH",
    "incoterm": "FOB", "delivery_place": "Odesa port", "delivery_from": "2026-02-01",
    "delivery_to": "2026-02-28", "note": null, "item_id": null, "from_user_id": "alice",
    "to_user_id": "bob", "parent_offer_id": null, "expires_at": "2099-01-02T12:00:00.000Z",
    "responded_by": null, "responded_at": null, "created_at": "2026-01-01T12:00:00.123Z"
}))]
pub struct Offer {
    #[schema(minimum = 1, format = Int64)]
    pub id: i64,
    #[schema(minimum = 1, format = Int64)]
    pub room_id: i64,
    /// The `offer` message that carries it.
    #[schema(minimum = 1, format = Int64)]
    pub message_id: i64,
    pub status: OfferStatus,
    pub side: Side,
    pub commodity: String,
    /// Exact decimal string (never a JSON number).
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,4})?$")]
    pub quantity: String,
    pub unit: Unit,
    /// Price per unit, exact decimal string.
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,4})?$")]
    pub price: String,
    /// ISO 4217.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(required = true)]
    pub incoterm: Option<String>,
    #[schema(required = true)]
    pub delivery_place: Option<String>,
    #[schema(required = true, format = Date)]
    pub delivery_from: Option<String>,
    #[schema(required = true, format = Date)]
    pub delivery_to: Option<String>,
    #[schema(required = true)]
    pub note: Option<String>,
    #[schema(required = true)]
    pub item_id: Option<String>,
    /// The author.
    pub from_user_id: String,
    /// Only this user may answer, when set.
    #[schema(required = true)]
    pub to_user_id: Option<String>,
    /// The offer this one counters.
    #[schema(required = true, format = Int64)]
    pub parent_offer_id: Option<i64>,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Who accepted, declined, countered or withdrew it (`null` while open or when it expired).
    #[schema(required = true)]
    pub responded_by: Option<String>,
    #[schema(required = true)]
    pub responded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A user with an open socket in a room.
#[derive(ToSchema)]
#[schema(example = json!({"user_id": "alice", "connections": 2, "since": "2026-01-01T12:00:00.123Z"}))]
pub struct PresentUser {
    pub user_id: String,
    /// Open sockets of this user in the room, on every instance.
    #[schema(minimum = 1)]
    pub connections: u32,
    /// When the user's oldest open socket connected.
    pub since: DateTime<Utc>,
}

/// A user's open sockets of every kind, on every instance.
#[derive(ToSchema)]
#[schema(example = json!({"user_id": "alice", "online": false, "connections": 0, "last_seen": "2026-01-01T12:00:00.123Z"}))]
pub struct UserPresence {
    pub user_id: String,
    /// True while `connections` is above 0.
    pub online: bool,
    /// Open sockets: room, GrainTrade and inbox sockets, each counted once.
    #[schema(minimum = 0)]
    pub connections: u32,
    /// When a socket of the user last closed; `null` if none was seen closing.
    /// While online, the close before (or `null`).
    #[schema(required = true)]
    pub last_seen: Option<DateTime<Utc>>,
}

/// A search hit: the message and an excerpt.
#[derive(ToSchema)]
#[schema(example = json!({
    "id": 5, "room_id": 1, "seq": 3, "user_id": "bob", "content": "Wheat at 210 UAH/kg, Odesa",
    "message_type": "text", "client_msg_id": null, "edited": false,
    "created_at": "2026-01-01T12:00:00.123Z", "updated_at": "2026-01-01T12:00:00.123Z",
    "reply_to": null, "reactions": {},
    "snippet": "<mark>Wheat</mark> at 210 UAH/kg, <mark>Odesa</mark>"
}))]
pub struct SearchHit {
    #[schema(minimum = 1, format = Int64)]
    pub id: i64,
    #[schema(minimum = 1, format = Int64)]
    pub room_id: i64,
    #[schema(minimum = 1, format = Int64)]
    pub seq: i64,
    pub user_id: String,
    pub content: String,
    pub message_type: MessageType,
    #[schema(required = true)]
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub edited: bool,
    /// The id of the message this one answers (`null`: none).
    #[schema(required = true, minimum = 1, format = Int64)]
    pub reply_to: Option<i64>,
    /// Reaction counts per key; `{}` when nobody reacted.
    pub reactions: std::collections::BTreeMap<String, u64>,
    /// Only on `message_type: "offer"`: the offer as it stands now.
    #[schema(nullable = false)]
    pub offer: Option<Offer>,
    /// HTML-escaped excerpt of the content, each match in `<mark>…</mark>`.
    pub snippet: String,
}

/// A user's read marker in a room: every message up to `seq` is read.
#[derive(ToSchema)]
#[schema(example = json!({"room_id": 1, "user_id": "bob", "seq": 3, "read_at": "2026-01-01T12:00:00.123Z"}))]
pub struct ReadMarker {
    #[schema(minimum = 1, format = Int64)]
    pub room_id: i64,
    pub user_id: String,
    /// The seq read up to (0: the room was empty when it was read).
    #[schema(minimum = 0, format = Int64)]
    pub seq: i64,
    /// When the marker last moved.
    pub read_at: DateTime<Utc>,
}

/// One reader of a room.
#[derive(ToSchema)]
#[schema(example = json!({"user_id": "bob", "seq": 3, "read_at": "2026-01-01T12:00:00.123Z"}))]
pub struct Reader {
    pub user_id: String,
    #[schema(minimum = 0, format = Int64)]
    pub seq: i64,
    pub read_at: DateTime<Utc>,
}

/// One room of the caller's inbox.
#[derive(ToSchema)]
pub struct InboxEntry {
    pub room: Room,
    /// The room's newest message that is not deleted; `null` when there is none.
    #[schema(required = true)]
    pub last_message: Option<Message>,
    /// The caller's read marker (0 when it never read the room).
    #[schema(minimum = 0, format = Int64)]
    pub last_read_seq: i64,
    /// Messages after `last_read_seq`, not deleted, written by others.
    #[schema(minimum = 0, format = Int64)]
    pub unread: u64,
}

/// One user's reaction to a message.
#[derive(ToSchema)]
#[schema(example = json!({"key": "👍", "user_id": "bob", "created_at": "2026-01-01T12:00:00.123Z"}))]
pub struct Reaction {
    /// 1–32 characters, no whitespace.
    #[schema(min_length = 1, max_length = 32)]
    pub key: String,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
}

/// One text of a message: version 1 as posted, the highest its current text.
#[derive(ToSchema)]
#[schema(example = json!({"version": 1, "content": "210 UAH/kg?", "created_at": "2026-01-01T12:00:00.123Z"}))]
pub struct MessageVersion {
    #[schema(minimum = 1)]
    pub version: u32,
    pub content: String,
    /// When this text became the message's: its creation, or the edit that wrote it.
    pub created_at: DateTime<Utc>,
}
