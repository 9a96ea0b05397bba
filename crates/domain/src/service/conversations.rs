//! Item conversation use cases behind the GrainTrade-compatible API: send,
//! history, participants, clear, unread counts.

use crate::conversation::{Conversation, ItemId};
use crate::message::{ConversationTarget, NewMessage};
use crate::ports::RoomVisibility;
use crate::read_state::ReadSeq;
use crate::{
    Actor, ChatService, DomainError, HistoryQuery, Limit, Message, MessageContent, MessageType,
    Room, UserId, timestamp,
};

/// How many messages a conversation's history shows (the latest ones).
pub const CONVERSATION_HISTORY: i64 = 50;

impl ChatService {
    /// Stores a message from the actor to `receiver` about `item` (creating the
    /// conversation's room on the first one), broadcasts it, notifies the
    /// receiver and counts it as unread for them.
    pub async fn send_to(
        &self,
        actor: &Actor,
        receiver: &str,
        item: &str,
        content: &str,
    ) -> Result<(Conversation, Message), DomainError> {
        self.submit_to(actor, receiver, item, content).await?.await
    }

    /// [`Self::send_to`] without waiting for the commit: the message is queued
    /// when this returns (so one caller's messages keep their order), and the
    /// returned future resolves once it is stored, counted and broadcast.
    pub async fn submit_to(
        &self,
        actor: &Actor,
        receiver: &str,
        item: &str,
        content: &str,
    ) -> Result<
        impl Future<Output = Result<(Conversation, Message), DomainError>> + Send + use<>,
        DomainError,
    > {
        let receiver = UserId::parse(receiver)
            .map_err(|_| DomainError::validation("receiver_id", "must be a valid user id"))?;
        let item = ItemId::parse(item)?;
        let conversation =
            Conversation::new(item.clone(), actor.user_id.clone(), receiver.clone())?;
        let content = MessageContent::parse(content)?;
        self.spend_message_budget(actor).await?;
        let correlation = actor.correlation_id.as_ref();
        let (room, created) =
            self.rooms.open_conversation(&conversation, timestamp::now(), correlation).await?;
        if created {
            // Both parties are members of the new room: their inbox sockets hear of it.
            for user in [&actor.user_id, &receiver] {
                self.tell_room_added(user, &room);
            }
        }
        let pending = self.writer.submit(NewMessage {
            room_id: room.id,
            user_id: actor.user_id.clone(),
            content,
            message_type: MessageType::Text,
            client_msg_id: None,
            reply_to: None,
            created_at: timestamp::now(),
            conversation: Some(ConversationTarget { item, receiver }),
            correlation_id: actor.correlation_id.clone(),
        });
        // The writer counts it as unread for the receiver before it is broadcast.
        Ok(async move { Ok((conversation, pending.await?.into_message())) })
    }

    /// The latest messages between the actor and `other` about `item`, oldest first.
    pub async fn conversation_history(
        &self,
        actor: &Actor,
        item: &str,
        other: &str,
    ) -> Result<(Conversation, Vec<Message>), DomainError> {
        let conversation = match self.conversation(actor, item, other) {
            Err(_) if self.is_oneself(actor, other) => {
                // A conversation with oneself cannot exist (sending to oneself
                // is refused): it has no history.
                let me = actor.user_id.clone();
                return Ok((
                    Conversation { item: ItemId::parse(item)?, users: (me.clone(), me) },
                    Vec::new(),
                ));
            }
            other => other?,
        };
        let Some(room) = self.rooms.find_conversation(&conversation).await? else {
            return Ok((conversation, Vec::new()));
        };
        let limit = Limit::parse(CONVERSATION_HISTORY)?;
        let page = self.messages.history(room.id, HistoryQuery::Latest, limit).await?;
        Ok((conversation, page.items))
    }

    /// Deletes (softly) every message between the actor and `other` about `item`.
    pub async fn clear_conversation(
        &self,
        actor: &Actor,
        item: &str,
        other: &str,
    ) -> Result<(), DomainError> {
        let conversation = match self.conversation(actor, item, other) {
            // Nothing to clear: a conversation with oneself cannot exist.
            Err(_) if self.is_oneself(actor, other) => return ItemId::parse(item).map(|_| ()),
            other => other?,
        };
        if let Some(room) = self.rooms.find_conversation(&conversation).await? {
            self.messages.clear_room(room.id, timestamp::now()).await?;
        }
        Ok(())
    }

    /// Everyone who has sent a message about `item`.
    pub async fn item_participants(&self, item: &str) -> Result<Vec<String>, DomainError> {
        let item = ItemId::parse(item)?;
        self.messages.item_participants(item.as_str()).await
    }

    /// The actor's unread messages about `item`: the sum of the inbox's unread
    /// counts over the actor's conversation rooms of the item, so the
    /// GrainTrade counter and the inbox are the same numbers.
    pub async fn unread_count(&self, actor: &Actor, item: &str) -> Result<u64, DomainError> {
        let item = ItemId::parse(item)?;
        let mut unread = 0;
        for room in self.conversation_rooms(actor, &item).await? {
            unread += self.read_state.unread(room.id, &actor.user_id).await?.unread;
        }
        Ok(unread)
    }

    /// Marks everything about `item` read: the actor's marker in each of its
    /// conversation rooms of the item moves to the room's last seq. The old
    /// per-item counter is reset too, for the services that still read its key.
    pub async fn mark_item_read(&self, actor: &Actor, item: &str) -> Result<(), DomainError> {
        let item = ItemId::parse(item)?;
        // Clamped to each room's last seq by the store.
        let everything = ReadSeq::parse(i64::MAX)?;
        for room in self.conversation_rooms(actor, &item).await? {
            self.move_marker(actor, room.id, everything).await?;
        }
        self.unread.reset(&item, &actor.user_id).await
    }

    /// The actor's conversation rooms of `item` (private rooms of the item it
    /// is a member of), every page.
    async fn conversation_rooms(
        &self,
        actor: &Actor,
        item: &ItemId,
    ) -> Result<Vec<Room>, DomainError> {
        let visibility = RoomVisibility::PublicOrMemberOf(actor.user_id.clone());
        let limit = Limit::parse(i64::from(Limit::MAX))?;
        let mut rooms = Vec::new();
        let mut cursor = None;
        loop {
            let page =
                self.rooms.list_visible(&visibility, Some(item.as_str()), cursor, limit).await?;
            rooms.extend(page.items.into_iter().filter(|room| room.is_private));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(rooms),
            }
        }
    }

    /// Whether `other` names the actor.
    fn is_oneself(&self, actor: &Actor, other: &str) -> bool {
        UserId::parse(other).is_ok_and(|other| other == actor.user_id)
    }

    fn conversation(
        &self,
        actor: &Actor,
        item: &str,
        other: &str,
    ) -> Result<Conversation, DomainError> {
        let other = UserId::parse(other)
            .map_err(|_| DomainError::validation("other_user_id", "must be a valid user id"))?;
        Conversation::new(ItemId::parse(item)?, actor.user_id.clone(), other)
    }
}
