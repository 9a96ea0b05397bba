//! A deadline on every call of the storage ports. A database that stops
//! answering without closing the connection (a network partition, a hung
//! server) would otherwise hold a request or a socket's reader until TCP gives
//! up, minutes later; with the deadline the call fails `Unavailable` and the
//! client is told to retry. The pool's acquire timeout covers only calls that
//! have no connection yet; this covers the ones caught mid-query.
//!
//! A write cut off at its `COMMIT` may still have committed: the client sees
//! `unavailable` and its retry with the same `client_msg_id` gets the original.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::away::AwayUser;
use chat_domain::conversation::Conversation;
use chat_domain::offer::{NewOffer, Offer, OfferId, OfferStatus, Transition};
use chat_domain::ports::{
    Applied, AwayNotifications, DeletedOffer, EventLog, MessageRepository, MessageSearch,
    OfferChange, OfferPage, OfferRepository, ReactionRepository, ReadState, RoomRepository,
    RoomVisibility,
};
use chat_domain::read_state::{
    InboxCursor, InboxPage, MarkedRead, ReadMarker, ReadSeq, UnreadState,
};
use chat_domain::room::RoomChanges;
use chat_domain::search::SearchFilter;
use chat_domain::{
    ChatEvent, CorrelationId, DomainError, HistoryPage, HistoryQuery, Limit, Message,
    MessageContent, MessageId, MessageVersion, NewMessage, NewRoom, Posted, Reaction,
    ReactionChange, ReactionKey, Room, RoomCursor, RoomId, RoomName, RoomPage, UserId,
};
use chrono::{DateTime, Utc};

/// `S`'s storage ports, each call bounded by `limit`.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S> Deadline<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Self { inner, limit }
    }

    async fn within<T>(
        &self,
        call: &'static str,
        work: impl Future<Output = Result<T, DomainError>>,
    ) -> Result<T, DomainError> {
        tokio::time::timeout(self.limit, work).await.unwrap_or_else(|_| {
            tracing::warn!(call, limit = ?self.limit, "the database did not answer in time");
            Err(DomainError::Unavailable("database".to_owned()))
        })
    }
}

#[async_trait]
impl<S: RoomRepository> RoomRepository for Deadline<S> {
    async fn create(&self, room: NewRoom) -> Result<Room, DomainError> {
        self.within("create room", self.inner.create(room)).await
    }

    async fn find_active(&self, id: RoomId) -> Result<Option<Room>, DomainError> {
        self.within("find room", self.inner.find_active(id)).await
    }

    async fn list_visible(
        &self,
        visibility: &RoomVisibility,
        item: Option<&str>,
        after: Option<RoomCursor>,
        limit: Limit,
    ) -> Result<RoomPage, DomainError> {
        self.within("list rooms", self.inner.list_visible(visibility, item, after, limit)).await
    }

    async fn update(&self, id: RoomId, changes: RoomChanges) -> Result<Option<Room>, DomainError> {
        self.within("update room", self.inner.update(id, changes)).await
    }

    async fn deactivate(
        &self,
        id: RoomId,
        by: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<bool, DomainError> {
        self.within("delete room", self.inner.deactivate(id, by, at, correlation)).await
    }

    async fn find_public_by_name(&self, name: &RoomName) -> Result<Option<Room>, DomainError> {
        self.within("find room by name", self.inner.find_public_by_name(name)).await
    }

    async fn find_conversation(
        &self,
        conversation: &Conversation,
    ) -> Result<Option<Room>, DomainError> {
        self.within("find conversation", self.inner.find_conversation(conversation)).await
    }

    async fn open_conversation(
        &self,
        conversation: &Conversation,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<(Room, bool), DomainError> {
        self.within(
            "open conversation",
            self.inner.open_conversation(conversation, at, correlation),
        )
        .await
    }

    async fn add_member(
        &self,
        id: RoomId,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        self.within("add member", self.inner.add_member(id, user, at)).await
    }

    async fn remove_member(&self, id: RoomId, user: &UserId) -> Result<bool, DomainError> {
        self.within("remove member", self.inner.remove_member(id, user)).await
    }

    async fn is_member(&self, id: RoomId, user: &UserId) -> Result<bool, DomainError> {
        self.within("check member", self.inner.is_member(id, user)).await
    }
}

#[async_trait]
impl<S: MessageRepository> MessageRepository for Deadline<S> {
    async fn append_batch(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<Result<Posted, DomainError>>, DomainError> {
        self.within("append messages", self.inner.append_batch(batch)).await
    }

    async fn appended(&self, outcomes: &[Result<Posted, DomainError>]) {
        self.inner.appended(outcomes).await
    }

    async fn changed_elsewhere(&self, room: RoomId) {
        self.inner.changed_elsewhere(room).await
    }

    async fn find(&self, id: MessageId) -> Result<Option<Message>, DomainError> {
        self.within("find message", self.inner.find(id)).await
    }

    async fn history(
        &self,
        room: RoomId,
        query: HistoryQuery,
        limit: Limit,
    ) -> Result<HistoryPage, DomainError> {
        self.within("read history", self.inner.history(room, query, limit)).await
    }

    async fn edit(
        &self,
        id: MessageId,
        content: MessageContent,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError> {
        self.within("edit message", self.inner.edit(id, content, at, correlation)).await
    }

    async fn versions(&self, id: MessageId) -> Result<Option<Vec<MessageVersion>>, DomainError> {
        self.within("message versions", self.inner.versions(id)).await
    }

    async fn item_participants(&self, item: &str) -> Result<Vec<String>, DomainError> {
        self.within("item participants", self.inner.item_participants(item)).await
    }

    async fn clear_room(&self, room: RoomId, at: DateTime<Utc>) -> Result<u64, DomainError> {
        self.within("clear room", self.inner.clear_room(room, at)).await
    }

    async fn delete(
        &self,
        id: MessageId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError> {
        self.within("delete message", self.inner.delete(id, at, correlation)).await
    }
}

#[async_trait]
impl<S: ReactionRepository> ReactionRepository for Deadline<S> {
    async fn add(
        &self,
        id: MessageId,
        key: &ReactionKey,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReactionChange>, DomainError> {
        self.within("add reaction", self.inner.add(id, key, user, at, correlation)).await
    }

    async fn remove(
        &self,
        id: MessageId,
        key: &ReactionKey,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReactionChange>, DomainError> {
        self.within("remove reaction", self.inner.remove(id, key, user, at, correlation)).await
    }

    async fn list(&self, id: MessageId) -> Result<Vec<Reaction>, DomainError> {
        self.within("list reactions", self.inner.list(id)).await
    }
}

#[async_trait]
impl<S: MessageSearch> MessageSearch for Deadline<S> {
    async fn search(
        &self,
        filter: &SearchFilter,
        visibility: &RoomVisibility,
    ) -> Result<Vec<Message>, DomainError> {
        self.within("search", self.inner.search(filter, visibility)).await
    }
}

#[async_trait]
impl<S: EventLog> EventLog for Deadline<S> {
    async fn record(&self, event: ChatEvent) -> Result<(), DomainError> {
        self.within("record event", self.inner.record(event)).await
    }
}

#[async_trait]
impl<S: ReadState> ReadState for Deadline<S> {
    async fn mark_read(
        &self,
        room: RoomId,
        user: &UserId,
        seq: ReadSeq,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<MarkedRead, DomainError> {
        self.within("mark read", self.inner.mark_read(room, user, seq, at, correlation)).await
    }

    async fn reads(&self, room: RoomId) -> Result<Vec<ReadMarker>, DomainError> {
        self.within("room reads", self.inner.reads(room)).await
    }

    async fn unread(&self, room: RoomId, user: &UserId) -> Result<UnreadState, DomainError> {
        self.within("unread count", self.inner.unread(room, user)).await
    }

    async fn inbox(
        &self,
        user: &UserId,
        after: Option<InboxCursor>,
        limit: Limit,
    ) -> Result<InboxPage, DomainError> {
        self.within("inbox", self.inner.inbox(user, after, limit)).await
    }
}

#[async_trait]
impl<S: AwayNotifications> AwayNotifications for Deadline<S> {
    async fn due(
        &self,
        active_since: DateTime<Utc>,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AwayUser>, DomainError> {
        self.within("users away", self.inner.due(active_since, cutoff, limit)).await
    }

    async fn notify(&self, users: &[AwayUser], at: DateTime<Utc>) -> Result<usize, DomainError> {
        self.within("notify users away", self.inner.notify(users, at)).await
    }

    async fn forget(&self, room: RoomId, user: &UserId) -> Result<(), DomainError> {
        self.within("forget notification", self.inner.forget(room, user)).await
    }
}

#[async_trait]
impl<S: OfferRepository> OfferRepository for Deadline<S> {
    async fn create(&self, offer: &NewOffer) -> Result<Posted, DomainError> {
        self.within("create offer", self.inner.create(offer)).await
    }

    async fn find(&self, id: OfferId) -> Result<Option<Offer>, DomainError> {
        self.within("find offer", self.inner.find(id)).await
    }

    async fn of_messages(&self, ids: &[MessageId]) -> Result<Vec<Offer>, DomainError> {
        self.within("offers of messages", self.inner.of_messages(ids)).await
    }

    async fn list(
        &self,
        room: RoomId,
        status: Option<OfferStatus>,
        after: Option<OfferId>,
        limit: Limit,
        now: DateTime<Utc>,
    ) -> Result<OfferPage, DomainError> {
        self.within("list offers", self.inner.list(room, status, after, limit, now)).await
    }

    async fn apply(
        &self,
        change: &Transition,
        system: &NewMessage,
    ) -> Result<Applied, DomainError> {
        self.within("answer offer", self.inner.apply(change, system)).await
    }

    async fn counter(
        &self,
        change: &Transition,
        system: &NewMessage,
        offer: &NewOffer,
    ) -> Result<Applied, DomainError> {
        self.within("counter offer", self.inner.counter(change, system, offer)).await
    }

    async fn delete_message(
        &self,
        message: MessageId,
        withdraw: Option<(&Transition, &NewMessage)>,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<DeletedOffer>, DomainError> {
        self.within(
            "delete offer message",
            self.inner.delete_message(message, withdraw, at, correlation),
        )
        .await
    }

    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OfferChange>, DomainError> {
        self.within("expire offers", self.inner.expire_due(now, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Silent;

    #[async_trait]
    impl EventLog for Silent {
        async fn record(&self, _event: ChatEvent) -> Result<(), DomainError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_call_that_never_answers_is_unavailable_at_the_deadline() {
        let bounded = Deadline::new(Silent, Duration::from_millis(50));
        let user = UserId::parse("u").unwrap();
        let event =
            ChatEvent::user_joined(RoomId::new(1).unwrap(), &user, chat_domain::timestamp::now());
        let started = std::time::Instant::now();
        let result = bounded.record(event).await;
        assert_eq!(result, Err(DomainError::Unavailable("database".to_owned())));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
