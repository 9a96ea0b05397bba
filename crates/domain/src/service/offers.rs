//! Offer use cases: make one in a room, answer it (accept, decline, counter,
//! withdraw), read and list them, expire the due ones. Access is the room's
//! (as for posting a message); who may answer is the offer's own rule.

use chrono::{DateTime, Utc};

use crate::offer::{
    NewOffer, Offer, OfferAnswer, OfferId, OfferStatus, TermsInput, not_open, offer_message,
    system_message,
};
use crate::ports::{Applied, OfferChange, OfferPage};
use crate::{
    Actor, ChatService, ClientMsgId, Delivery, DomainError, Limit, Message, MessageId, MessageType,
    Posted, RoomEvent, RoomId, UserId, conversation::ItemId, timestamp,
};

/// A new offer as a client sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferInput {
    pub terms: TermsInput,
    pub expires_at: Option<String>,
    pub to_user_id: Option<String>,
    pub item_id: Option<String>,
    pub client_msg_id: Option<String>,
}

/// A counter-offer: the terms that change (at least one), maybe a new expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterInput {
    pub terms: TermsInput,
    pub expires_at: Option<String>,
}

fn offer_not_found(id: OfferId) -> DomainError {
    DomainError::NotFound(format!("offer {id} not found"))
}

/// `expires_at`: RFC 3339, strictly after `now`; kept to the millisecond, as
/// every timestamp of the service.
fn parse_expiry(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, DomainError> {
    use chrono::{DurationRound, TimeDelta};
    let at = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DomainError::validation("expires_at", "must be an RFC 3339 timestamp"))?;
    let at = at.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(at);
    if at <= now {
        return Err(DomainError::validation("expires_at", "must be in the future"));
    }
    Ok(at)
}

impl ChatService {
    /// Makes an offer in a room: a new `offer` message carrying it (201), or
    /// the original on a repeat of `client_msg_id` (200).
    pub async fn post_offer(
        &self,
        actor: &Actor,
        room_id: RoomId,
        input: OfferInput,
    ) -> Result<Posted, DomainError> {
        let now = timestamp::now();
        let terms = input.terms.parse()?;
        let expires_at =
            input.expires_at.as_deref().map(|raw| parse_expiry(raw, now)).transpose()?;
        let to_user =
            input.to_user_id.as_deref().map(|raw| parse_user("to_user_id", raw)).transpose()?;
        if to_user.as_ref() == Some(&actor.user_id) {
            return Err(DomainError::validation("to_user_id", "must not be the offer's author"));
        }
        let item_id = input.item_id.as_deref().map(ItemId::parse).transpose()?;
        let client_msg_id = input.client_msg_id.as_deref().map(ClientMsgId::parse).transpose()?;
        let room = self.get_room(actor, room_id).await?;
        // An item conversation's offers are about its item.
        let item_id = match (item_id.map(|i| i.as_str().to_owned()), room.item_id) {
            (Some(given), Some(item)) if given != item => {
                return Err(DomainError::validation(
                    "item_id",
                    format!("this room is the conversation about item {item}"),
                ));
            }
            (given, item) => given.or(item),
        };
        self.spend_message_budget(actor).await?;
        let message = offer_message(
            room_id,
            &actor.user_id,
            &terms,
            client_msg_id,
            actor.correlation_id.clone(),
            now,
        )?;
        let new = NewOffer {
            room_id,
            from_user: actor.user_id.clone(),
            to_user,
            item_id,
            parent: None,
            terms,
            expires_at,
            created_at: now,
            message,
        };
        let posted = self.offers.create(&new).await?;
        if let Posted::Created(message) = &posted {
            self.messages_stored(std::slice::from_ref(message)).await;
            if let Some(offer) = &message.offer {
                self.tell_offer(offer);
            }
        }
        Ok(posted)
    }

    /// Accepts, declines or withdraws an offer: the offer after the change.
    pub async fn answer_offer(
        &self,
        actor: &Actor,
        id: OfferId,
        answer: OfferAnswer,
    ) -> Result<Offer, DomainError> {
        if answer == OfferAnswer::Counter {
            return Err(DomainError::Internal("a counter needs its terms".to_owned()));
        }
        let offer = self.offer_in_reach(actor, id).await?;
        let change = offer.answer(&actor.user_id, answer, timestamp::now())?;
        let system = system_message(offer.room_id, &change, actor.correlation_id.clone())?;
        let changed = self.settle(self.offers.apply(&change, &system).await?)?;
        self.tell_change(&changed).await;
        Ok(changed.offer)
    }

    /// Counters an offer: the parent becomes `countered` and a new open offer
    /// (its terms copied, those given changed, addressed to the parent's
    /// author) is made; returns the new offer's message.
    pub async fn counter_offer(
        &self,
        actor: &Actor,
        id: OfferId,
        input: CounterInput,
    ) -> Result<Message, DomainError> {
        if input.terms.is_empty() && input.expires_at.is_none() {
            return Err(DomainError::validation(
                "terms",
                "a counter-offer must change at least one term",
            ));
        }
        let now = timestamp::now();
        let parent = self.offer_in_reach(actor, id).await?;
        let terms = input.terms.apply_to(&parent.terms)?;
        let expires_at = match input.expires_at.as_deref() {
            Some(raw) => Some(parse_expiry(raw, now)?),
            None => parent.expires_at,
        };
        let change = parent.answer(&actor.user_id, OfferAnswer::Counter, now)?;
        self.spend_message_budget(actor).await?;
        let system = system_message(parent.room_id, &change, actor.correlation_id.clone())?;
        let message = offer_message(
            parent.room_id,
            &actor.user_id,
            &terms,
            None,
            actor.correlation_id.clone(),
            now,
        )?;
        let new = NewOffer {
            room_id: parent.room_id,
            from_user: actor.user_id.clone(),
            to_user: Some(parse_user("to_user_id", &parent.from_user_id)?),
            item_id: parent.item_id.clone(),
            parent: Some(parent.id),
            terms,
            expires_at,
            created_at: now,
            message,
        };
        let changed = self.settle(self.offers.counter(&change, &system, &new).await?)?;
        self.tell_change(&changed).await;
        changed
            .messages
            .into_iter()
            .find(|m| m.message_type == MessageType::Offer)
            .ok_or_else(|| DomainError::Internal("a counter stored no offer message".to_owned()))
    }

    /// An offer of a room the actor may read, as it stands now.
    pub async fn get_offer(&self, actor: &Actor, id: OfferId) -> Result<Offer, DomainError> {
        Ok(self.offer_in_reach(actor, id).await?.as_seen_at(timestamp::now()))
    }

    /// A room's offers, newest first, optionally of one status.
    pub async fn list_offers(
        &self,
        actor: &Actor,
        room_id: RoomId,
        status: Option<&str>,
        cursor: Option<&str>,
        limit: Limit,
    ) -> Result<OfferPage, DomainError> {
        let status = status.map(OfferStatus::parse).transpose()?;
        let after = cursor
            .map(|raw| {
                raw.parse::<i64>().ok().and_then(|id| OfferId::new(id).ok()).ok_or_else(|| {
                    DomainError::validation("cursor", "is not a cursor this service issued")
                })
            })
            .transpose()?;
        self.get_room(actor, room_id).await?;
        let now = timestamp::now();
        let mut page = self.offers.list(room_id, status, after, limit, now).await?;
        page.items = page.items.into_iter().map(|o| o.as_seen_at(now)).collect();
        Ok(page)
    }

    /// Expires up to `limit` due offers (the background job); how many.
    pub async fn expire_offers(&self, limit: u32) -> Result<usize, DomainError> {
        let changes = self.offers.expire_due(timestamp::now(), limit).await?;
        for change in &changes {
            self.tell_change(change).await;
        }
        Ok(changes.len())
    }

    /// Puts the current offer on every `offer` message of `messages`.
    pub(crate) async fn attach_offers(&self, messages: &mut [Message]) -> Result<(), DomainError> {
        let ids: Vec<MessageId> = messages
            .iter()
            .filter(|m| m.message_type == MessageType::Offer)
            .map(|m| m.id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let now = timestamp::now();
        let offers = self.offers.of_messages(&ids).await?;
        for message in messages.iter_mut().filter(|m| m.message_type == MessageType::Offer) {
            message.offer = offers
                .iter()
                .find(|o| o.message_id == message.id)
                .map(|o| Box::new(o.clone().as_seen_at(now)));
        }
        Ok(())
    }

    /// Deletes an offer's message (the caller checked the actor may), which
    /// withdraws its offer if still open, in one transaction.
    pub(crate) async fn delete_offer_message(
        &self,
        actor: &Actor,
        message: &Message,
    ) -> Result<bool, DomainError> {
        let now = timestamp::now();
        let offer = self.offers.of_messages(&[message.id]).await?.into_iter().next();
        let change = offer.as_ref().and_then(|o| o.withdraw_by_deletion(&actor.user_id, now));
        let system = match (&offer, &change) {
            (Some(offer), Some(change)) => {
                Some(system_message(offer.room_id, change, actor.correlation_id.clone())?)
            }
            _ => None,
        };
        let withdraw = change.as_ref().zip(system.as_ref());
        let Some(deleted) = self
            .offers
            .delete_message(message.id, withdraw, now, actor.correlation_id.as_ref())
            .await?
        else {
            return Ok(false);
        };
        self.messages.changed_elsewhere(message.room_id).await;
        self.fan_out.publish(Delivery::to_all(RoomEvent::MessageDeleted {
            id: deleted.message.id,
            room_id: deleted.message.room_id,
            seq: deleted.message.seq,
        }));
        if let Some(change) = &deleted.withdrawn {
            self.tell_change(change).await;
        }
        Ok(true)
    }

    /// The offer, if its room is one the actor may read (404 otherwise, as for
    /// a message of a deleted room).
    async fn offer_in_reach(&self, actor: &Actor, id: OfferId) -> Result<Offer, DomainError> {
        let offer = self.offers.find(id).await?.ok_or_else(|| offer_not_found(id))?;
        match self.get_room(actor, offer.room_id).await {
            Ok(_) => Ok(offer),
            Err(DomainError::NotFound(_)) => Err(offer_not_found(id)),
            Err(other) => Err(other),
        }
    }

    /// A change that lost to another (or to expiry) is a 409 naming the status.
    fn settle(&self, applied: Applied) -> Result<OfferChange, DomainError> {
        match applied {
            Applied::Changed(change) => Ok(*change),
            Applied::NotOpen(now) => {
                let seen = now.as_seen_at(timestamp::now());
                Err(not_open(seen.id, seen.status))
            }
        }
    }

    /// After a change committed: the cache forgets the room, then the room's
    /// sockets are told of the messages and of the offers.
    async fn tell_change(&self, change: &OfferChange) {
        self.messages_stored(&change.messages).await;
        self.tell_offer(&change.offer);
        if let Some(created) = &change.created {
            self.tell_offer(created);
        }
    }

    async fn messages_stored(&self, messages: &[Message]) {
        // Not `appended`: that follows the room's batches in commit order, and
        // a batch committed just before this change may not have reached the
        // cache yet; adding these would show a page with its seqs missing.
        let mut rooms: Vec<RoomId> = messages.iter().map(|m| m.room_id).collect();
        rooms.sort_unstable();
        rooms.dedup();
        for room in rooms {
            self.messages.changed_elsewhere(room).await;
        }
        for message in messages {
            self.fan_out.publish(Delivery::to_all(RoomEvent::Message(message.clone())));
        }
    }

    fn tell_offer(&self, offer: &Offer) {
        self.fan_out.publish(Delivery::to_all(RoomEvent::OfferUpdated {
            room_id: offer.room_id,
            offer: Box::new(offer.clone()),
        }));
    }
}

fn parse_user(field: &'static str, raw: &str) -> Result<UserId, DomainError> {
    UserId::parse(raw).map_err(|e| match e {
        DomainError::Validation { reason, .. } => DomainError::validation(field, reason),
        other => other,
    })
}
