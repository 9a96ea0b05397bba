//! Message use cases: post, read, page through history, edit and delete.

use crate::message::NewMessage;
use crate::ports::PendingPost;
use crate::{
    Actor, ChatService, ClientMsgId, Delivery, DomainError, HistoryPage, HistoryQuery,
    HistoryRequest, Limit, Message, MessageContent, MessageId, MessageType, Posted, Role, Room,
    RoomEvent, RoomId, timestamp,
};

/// Raw input for a new message, as a client sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageInput {
    pub content: String,
    pub message_type: Option<String>,
    pub client_msg_id: Option<String>,
    /// The id of the message this one answers.
    pub reply_to: Option<i64>,
}

/// Raw input for an edit.
#[derive(Debug, Clone, Default)]
pub struct MessageEdit {
    pub content: String,
}

impl ChatService {
    /// Stores a message and answers once it is committed (and broadcast).
    pub async fn post_message(
        &self,
        actor: &Actor,
        room_id: RoomId,
        input: MessageInput,
    ) -> Result<Posted, DomainError> {
        self.submit_message(actor, room_id, input).await?.await
    }

    /// Checks and queues a message without waiting for its commit: the returned
    /// [`PendingPost`] resolves then. A caller that submits several messages one
    /// after another gets them stored in that order (increasing seqs), so a
    /// socket may keep several in flight.
    pub async fn submit_message(
        &self,
        actor: &Actor,
        room_id: RoomId,
        input: MessageInput,
    ) -> Result<PendingPost, DomainError> {
        let message = self.new_message(actor, room_id, input)?;
        self.get_room(actor, room_id).await?;
        self.spend_message_budget(actor).await?;
        Ok(self.writer.submit(message))
    }

    /// [`Self::submit_message`] for a socket in `room`, whose access was checked
    /// when it joined. Public rooms need no look-up per message (a room deleted
    /// since is refused when the message is stored); membership of a private
    /// room is checked again, as it may have been withdrawn.
    pub async fn submit_to_joined(
        &self,
        actor: &Actor,
        room: &Room,
        input: MessageInput,
    ) -> Result<PendingPost, DomainError> {
        let message = self.new_message(actor, room.id, input)?;
        if room.is_private {
            self.get_room(actor, room.id).await?;
        }
        self.spend_message_budget(actor).await?;
        Ok(self.writer.submit(message))
    }

    /// Parses raw input into a message of the actor's, refusing what the actor may not post.
    fn new_message(
        &self,
        actor: &Actor,
        room_id: RoomId,
        input: MessageInput,
    ) -> Result<NewMessage, DomainError> {
        let content = MessageContent::parse(&input.content)?;
        let message_type =
            input.message_type.as_deref().map(MessageType::parse).transpose()?.unwrap_or_default();
        let client_msg_id = input.client_msg_id.as_deref().map(ClientMsgId::parse).transpose()?;
        let reply_to = input
            .reply_to
            .map(|raw| {
                MessageId::new(raw).map_err(|_| {
                    DomainError::validation("reply_to", "must be a positive message id")
                })
            })
            .transpose()?;
        if message_type == MessageType::Offer {
            return Err(DomainError::validation(
                "message_type",
                "offers are made with POST /rooms/{room_id}/offers",
            ));
        }
        if message_type == MessageType::System && !actor.may_post_system() {
            return Err(DomainError::Forbidden(
                "only admins and services may post system messages".to_owned(),
            ));
        }
        Ok(NewMessage {
            room_id,
            user_id: actor.user_id.clone(),
            content,
            message_type,
            client_msg_id,
            reply_to,
            created_at: timestamp::now(),
            conversation: None,
            correlation_id: actor.correlation_id.clone(),
        })
    }

    /// One token of the actor's message budget. Services posting through the
    /// broker are not limited: they are trusted, and a command refused here
    /// would only be redelivered.
    pub(crate) async fn spend_message_budget(&self, actor: &Actor) -> Result<(), DomainError> {
        if actor.has(Role::Service) {
            return Ok(());
        }
        self.message_rate
            .acquire(actor.user_id.as_str())
            .await
            .map_err(|retry_after| DomainError::RateLimited { retry_after })
    }

    /// A live message in a room the actor may read.
    pub async fn get_message(&self, actor: &Actor, id: MessageId) -> Result<Message, DomainError> {
        // Storage attaches an offer message's offer (reads by id are not cached).
        let message = self.messages.find(id).await?.ok_or_else(|| message_not_found(id))?;
        match self.get_room(actor, message.room_id).await {
            Ok(_) => Ok(message),
            // A message of a deleted room is kept in storage but is gone for clients.
            Err(DomainError::NotFound(_)) => Err(message_not_found(id)),
            Err(other) => Err(other),
        }
    }

    pub async fn list_messages(
        &self,
        actor: &Actor,
        room_id: RoomId,
        query: HistoryQuery,
        limit: Limit,
    ) -> Result<HistoryPage, DomainError> {
        self.get_room(actor, room_id).await?;
        let mut page = self.messages.history(room_id, query, limit).await?;
        // A cached page may hold an older state of its offers.
        self.attach_offers(&mut page.items).await?;
        Ok(page)
    }

    /// A page of history as a client asked for it, both bounds included.
    pub async fn read_history(
        &self,
        actor: &Actor,
        room_id: RoomId,
        request: HistoryRequest,
        limit: Limit,
    ) -> Result<HistoryPage, DomainError> {
        let (after, before) = match request {
            HistoryRequest::Page(query) => {
                return self.list_messages(actor, room_id, query, limit).await;
            }
            HistoryRequest::Between { after, before } => (after, before),
        };
        self.get_room(actor, room_id).await?;
        if before <= after.saturating_add(1) {
            return Ok(HistoryPage { items: Vec::new(), has_more: false });
        }
        // The page after `after`, cut at `before`; whether more lie between its
        // end and `before` takes one more look only when the page was full.
        let page = self.messages.history(room_id, HistoryQuery::After(after), limit).await?;
        let read = page.items.len();
        let mut items: Vec<Message> =
            page.items.into_iter().take_while(|m| m.seq < before).collect();
        self.attach_offers(&mut items).await?;
        let has_more = if items.len() < read || !page.has_more {
            false
        } else {
            let last = items.last().map_or(after, |m| m.seq);
            let one = Limit::parse(1)?;
            let next = self.messages.history(room_id, HistoryQuery::After(last), one).await?;
            next.items.first().is_some_and(|m| m.seq < before)
        };
        Ok(HistoryPage { items, has_more })
    }

    /// Only the author may edit.
    pub async fn edit_message(
        &self,
        actor: &Actor,
        id: MessageId,
        edit: MessageEdit,
    ) -> Result<Message, DomainError> {
        let content = MessageContent::parse(&edit.content)?;
        let message = self.get_message(actor, id).await?;
        if message.user_id != actor.user_id.as_str() {
            return Err(DomainError::Forbidden("only the author may edit a message".to_owned()));
        }
        if message.message_type == MessageType::Offer {
            return Err(DomainError::Conflict(
                "an offer's message cannot be edited: counter or withdraw the offer".to_owned(),
            ));
        }
        let edited = self
            .messages
            .edit(id, content, timestamp::now(), actor.correlation_id.as_ref())
            .await?
            .ok_or_else(|| message_not_found(id))?;
        self.fan_out.publish(Delivery::to_all(RoomEvent::MessageUpdated(edited.clone())));
        Ok(edited)
    }

    /// The author, the room's creator, moderators and admins may delete.
    pub async fn delete_message(
        &self,
        actor: &Actor,
        id: MessageId,
    ) -> Result<Message, DomainError> {
        let message = self.get_message(actor, id).await?;
        let is_author = message.user_id == actor.user_id.as_str();
        let allowed = is_author
            || actor.may_moderate()
            || actor.has(Role::Service)
            || self.is_room_creator(actor, message.room_id).await?;
        if !allowed {
            return Err(DomainError::Forbidden(
                "only the author, the room's creator, a moderator or an admin may delete a message"
                    .to_owned(),
            ));
        }
        if message.message_type == MessageType::Offer {
            return if self.delete_offer_message(actor, &message).await? {
                Ok(message)
            } else {
                Err(message_not_found(id))
            };
        }
        let deleted =
            self.messages.delete(id, timestamp::now(), actor.correlation_id.as_ref()).await?;
        if deleted.is_some() {
            self.fan_out.publish(Delivery::to_all(RoomEvent::MessageDeleted {
                id: message.id,
                room_id: message.room_id,
                seq: message.seq,
            }));
            Ok(message)
        } else {
            Err(message_not_found(id))
        }
    }

    async fn is_room_creator(&self, actor: &Actor, room_id: RoomId) -> Result<bool, DomainError> {
        let room = self.rooms.find_active(room_id).await?;
        Ok(room.is_some_and(|r| r.created_by.as_deref() == Some(actor.user_id.as_str())))
    }
}

fn message_not_found(id: MessageId) -> DomainError {
    DomainError::NotFound(format!("message {id} not found"))
}
