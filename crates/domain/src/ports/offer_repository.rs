//! Storage of offers. Every change is one transaction with its messages (the
//! offer's own, the room's `system` notice, taking the room's next seqs like
//! any message) and its outbox events; a change applies only while the offer
//! is open, so of concurrent changes exactly one wins.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::message::NewMessage;
use crate::offer::{NewOffer, Offer, OfferId, OfferStatus, Transition};
use crate::{CorrelationId, DomainError, Limit, Message, MessageId, Posted, RoomId};

/// What one change stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferChange {
    /// The offer after the change.
    pub offer: Offer,
    /// The new open offer of a counter.
    pub created: Option<Offer>,
    /// The messages stored, in seq order: the system notice, then a counter's
    /// new offer message (carrying its offer).
    pub messages: Vec<Message>,
}

/// A change applied, or refused because the offer was no longer open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Changed(Box<OfferChange>),
    /// The offer as it is now (another change won, or it expired).
    NotOpen(Box<Offer>),
}

/// A page of a room's offers, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferPage {
    pub items: Vec<Offer>,
    /// The last offer of this page, when more follow.
    pub next: Option<OfferId>,
}

/// A deleted offer message and, if it withdrew its open offer, that change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedOffer {
    pub message: Message,
    pub withdrawn: Option<OfferChange>,
}

#[async_trait]
pub trait OfferRepository: Send + Sync + 'static {
    /// Stores the offer with its message (and `offer_created`). The message
    /// comes back carrying its offer; a repeat of the message's
    /// `client_msg_id` stores nothing and returns the original.
    /// [`DomainError::NotFound`] when the room does not exist or is deleted.
    async fn create(&self, offer: &NewOffer) -> Result<Posted, DomainError>;

    async fn find(&self, id: OfferId) -> Result<Option<Offer>, DomainError>;

    /// The offers these messages carry (those that carry one).
    async fn of_messages(&self, ids: &[MessageId]) -> Result<Vec<Offer>, DomainError>;

    /// A room's offers, newest first, after `after` (a previous page's `next`);
    /// `status` as a reader sees it at `now` (past `expires_at` is expired).
    async fn list(
        &self,
        room: RoomId,
        status: Option<OfferStatus>,
        after: Option<OfferId>,
        limit: Limit,
        now: DateTime<Utc>,
    ) -> Result<OfferPage, DomainError>;

    /// Applies an answer (not a counter) with its system message.
    async fn apply(&self, change: &Transition, system: &NewMessage)
    -> Result<Applied, DomainError>;

    /// Marks the parent countered and stores `offer` (its `parent` set), with
    /// the system message, in one transaction.
    async fn counter(
        &self,
        change: &Transition,
        system: &NewMessage,
        offer: &NewOffer,
    ) -> Result<Applied, DomainError>;

    /// Deletes an offer's message and, in the same transaction, withdraws its
    /// offer if it is still open (`withdraw`: the change and its system
    /// message). `None` when the message was already gone.
    async fn delete_message(
        &self,
        message: MessageId,
        withdraw: Option<(&Transition, &NewMessage)>,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<DeletedOffer>, DomainError>;

    /// Expires up to `limit` open offers past their `expires_at` at `now`,
    /// each with its system message and `offer_expired`, in one transaction;
    /// offers another instance is expiring are skipped, not waited for.
    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OfferChange>, DomainError>;
}
