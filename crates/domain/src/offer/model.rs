//! The Offer entity, the input that creates one, and the rules of who may
//! change it: accept, decline and counter are the counterparty's (anyone in
//! the room but the author; only `to_user_id` when set), withdraw the author's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::status::{OfferAnswer, OfferStatus, Outcome, Transition};
use super::terms::OfferTerms;
use crate::message::{MessageContent, MessageType, NewMessage};
use crate::{CorrelationId, DomainError, MessageId, RoomId, UserId};

/// An offer id: a positive 64-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OfferId(i64);

impl OfferId {
    pub fn new(raw: i64) -> Result<Self, DomainError> {
        if raw > 0 {
            Ok(Self(raw))
        } else {
            Err(DomainError::validation("offer_id", "must be a positive integer"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for OfferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A structured trade proposal in a room, carried by its own message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub room_id: RoomId,
    pub message_id: MessageId,
    pub status: OfferStatus,
    #[serde(flatten)]
    pub terms: OfferTerms,
    pub item_id: Option<String>,
    pub from_user_id: String,
    pub to_user_id: Option<String>,
    pub parent_offer_id: Option<OfferId>,
    #[serde(with = "optional_millis")]
    pub expires_at: Option<DateTime<Utc>>,
    pub responded_by: Option<String>,
    #[serde(with = "optional_millis")]
    pub responded_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub created_at: DateTime<Utc>,
}

impl Offer {
    /// Whether it is open at `now`: stored open and not past `expires_at`.
    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        self.status == OfferStatus::Open && !self.is_due(now)
    }

    /// Open in storage but past its `expires_at`: the expiry job has yet to
    /// record it, and readers are already shown `expired`.
    fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == OfferStatus::Open && self.expires_at.is_some_and(|at| at <= now)
    }

    /// The offer as a reader at `now` sees it.
    pub fn as_seen_at(mut self, now: DateTime<Utc>) -> Self {
        if self.is_due(now) {
            self.status = OfferStatus::Expired;
        }
        self
    }

    /// The change `who` asks for, if the rules allow it: 403 when `who` may not
    /// give this answer, 409 (naming the current status) when it is not open.
    pub fn answer(
        &self,
        who: &UserId,
        answer: OfferAnswer,
        now: DateTime<Utc>,
    ) -> Result<Transition, DomainError> {
        let is_author = self.from_user_id == who.as_str();
        if answer.by_counterparty() {
            if is_author {
                return Err(DomainError::Forbidden(format!(
                    "the author of offer {} cannot {} it",
                    self.id,
                    verb(answer)
                )));
            }
            if let Some(to) = &self.to_user_id
                && to != who.as_str()
            {
                return Err(DomainError::Forbidden(format!(
                    "offer {} is addressed to {to}: only they may {} it",
                    self.id,
                    verb(answer)
                )));
            }
        } else if !is_author {
            return Err(DomainError::Forbidden(format!(
                "only the author of offer {} may withdraw it",
                self.id
            )));
        }
        self.check_open(now)?;
        Ok(Transition::new(self.id, answer.outcome(), Some(who.clone()), now))
    }

    /// Deleting the offer's message withdraws the offer if it is open; the
    /// caller checked that `who` may delete the message (its author, the room's
    /// creator, a moderator).
    pub fn withdraw_by_deletion(&self, who: &UserId, now: DateTime<Utc>) -> Option<Transition> {
        self.is_open_at(now)
            .then(|| Transition::new(self.id, Outcome::Withdrawn, Some(who.clone()), now))
    }

    /// The expiry of an open offer past its `expires_at`; `None` otherwise.
    pub fn expire(&self, now: DateTime<Utc>) -> Option<Transition> {
        self.is_due(now).then(|| Transition::new(self.id, Outcome::Expired, None, now))
    }

    /// 409 `conflict` naming the status, unless open at `now`.
    pub fn check_open(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.is_open_at(now) {
            return Ok(());
        }
        Err(not_open(self.id, self.clone().as_seen_at(now).status))
    }

    /// This offer after `transition` (what storage wrote).
    pub fn after(mut self, transition: &Transition) -> Self {
        self.status = transition.outcome().into();
        self.responded_by = transition.by().map(|u| u.to_string());
        self.responded_at = Some(transition.at());
        self
    }
}

/// The 409 of a change to an offer that is no longer open.
pub fn not_open(id: OfferId, status: OfferStatus) -> DomainError {
    DomainError::Conflict(format!("offer {id} is {}, no longer open", status.as_str()))
}

fn verb(answer: OfferAnswer) -> &'static str {
    match answer {
        OfferAnswer::Accept => "accept",
        OfferAnswer::Decline => "decline",
        OfferAnswer::Counter => "counter",
        OfferAnswer::Withdraw => "withdraw",
    }
}

/// A validated offer about to be stored with its message; storage assigns the
/// ids and links the two.
#[derive(Debug, Clone)]
pub struct NewOffer {
    pub room_id: RoomId,
    pub from_user: UserId,
    pub to_user: Option<UserId>,
    pub item_id: Option<String>,
    pub parent: Option<OfferId>,
    pub terms: OfferTerms,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The `offer` message that carries it (content: the terms' summary).
    pub message: NewMessage,
}

impl NewOffer {
    /// The offer as stored with ids `id` and `message_id`.
    pub fn stored(&self, id: OfferId, message_id: MessageId) -> Offer {
        Offer {
            id,
            room_id: self.room_id,
            message_id,
            status: OfferStatus::Open,
            terms: self.terms.clone(),
            item_id: self.item_id.clone(),
            from_user_id: self.from_user.to_string(),
            to_user_id: self.to_user.as_ref().map(|u| u.to_string()),
            parent_offer_id: self.parent,
            expires_at: self.expires_at,
            responded_by: None,
            responded_at: None,
            created_at: self.created_at,
        }
    }
}

/// The message of a new offer: type `offer`, its terms summarised.
pub fn offer_message(
    room_id: RoomId,
    from: &UserId,
    terms: &OfferTerms,
    client_msg_id: Option<crate::ClientMsgId>,
    correlation_id: Option<CorrelationId>,
    at: DateTime<Utc>,
) -> Result<NewMessage, DomainError> {
    Ok(NewMessage {
        room_id,
        user_id: from.clone(),
        content: MessageContent::parse(&terms.summary())?,
        message_type: MessageType::Offer,
        client_msg_id,
        created_at: at,
        conversation: None,
        correlation_id,
        reply_to: None,
    })
}

/// Who signs the system message of an expiry.
pub const EXPIRY_AUTHOR: &str = "system";

/// The short `system` message that tells the room of `transition`:
/// "seller7 accepted the offer", "the offer expired". Signed by whoever
/// answered (the service for expiry).
pub fn system_message(
    room_id: RoomId,
    transition: &Transition,
    correlation_id: Option<CorrelationId>,
) -> Result<NewMessage, DomainError> {
    let (user_id, text) = match transition.by() {
        Some(by) => (by.clone(), format!("{by} {} the offer", transition.outcome().verb())),
        None => (UserId::parse(EXPIRY_AUTHOR)?, "the offer expired".to_owned()),
    };
    Ok(NewMessage {
        room_id,
        user_id,
        content: MessageContent::parse(&text)?,
        message_type: MessageType::System,
        client_msg_id: None,
        created_at: transition.at(),
        conversation: None,
        correlation_id,
        reply_to: None,
    })
}

/// Serde helper: an optional RFC 3339 timestamp with milliseconds, `null` when absent.
mod optional_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => crate::timestamp::rfc3339_millis::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let raw = Option::<String>::deserialize(d)?;
        raw.map(|raw| {
            DateTime::parse_from_rfc3339(&raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
