//! Reaction use cases: add, remove and list a message's reactions, and read the
//! versions of an edited message. Whoever may read a message may react to it.

use crate::{
    Actor, ChatService, Delivery, DomainError, Message, MessageId, MessageVersion, Reaction,
    ReactionKey, RoomEvent, timestamp,
};

impl ChatService {
    /// Adds the actor's reaction `key` (once per user and key) and answers the
    /// message with its counts; a change is broadcast as a `reaction` frame.
    pub async fn add_reaction(
        &self,
        actor: &Actor,
        id: MessageId,
        key: &str,
    ) -> Result<Message, DomainError> {
        self.change_reaction(actor, id, key, true).await
    }

    /// Removes the actor's reaction `key`, if it had one.
    pub async fn remove_reaction(
        &self,
        actor: &Actor,
        id: MessageId,
        key: &str,
    ) -> Result<Message, DomainError> {
        self.change_reaction(actor, id, key, false).await
    }

    async fn change_reaction(
        &self,
        actor: &Actor,
        id: MessageId,
        key: &str,
        add: bool,
    ) -> Result<Message, DomainError> {
        let key = ReactionKey::parse(key)?;
        self.get_message(actor, id).await?;
        let (at, correlation) = (timestamp::now(), actor.correlation_id.as_ref());
        let change = if add {
            self.reactions.add(id, &key, &actor.user_id, at, correlation).await?
        } else {
            self.reactions.remove(id, &key, &actor.user_id, at, correlation).await?
        }
        .ok_or_else(|| DomainError::NotFound(format!("message {id} not found")))?;
        if change.changed {
            let message = &change.message;
            self.fan_out.publish(Delivery::to_all(RoomEvent::Reaction {
                room_id: message.room_id,
                message_id: message.id,
                seq: message.seq,
                key: key.as_str().to_owned(),
                user_id: actor.user_id.to_string(),
                added: add,
                count: change.count(&key),
            }));
        }
        Ok(change.message)
    }

    /// Every reaction to a message the actor may read, oldest first.
    pub async fn list_reactions(
        &self,
        actor: &Actor,
        id: MessageId,
    ) -> Result<Vec<Reaction>, DomainError> {
        self.get_message(actor, id).await?;
        self.reactions.list(id).await
    }

    /// The texts of a message the actor may read, oldest first, the current one last.
    pub async fn message_versions(
        &self,
        actor: &Actor,
        id: MessageId,
    ) -> Result<Vec<MessageVersion>, DomainError> {
        self.get_message(actor, id).await?;
        self.messages
            .versions(id)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("message {id} not found")))
    }
}
