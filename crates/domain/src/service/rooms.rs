//! Room use cases: create, list, read, rename and delete, with the rules of who may.

use crate::conversation::ItemId;
use crate::ports::RoomVisibility;
use crate::room::RoomChanges;
use crate::{
    Actor, ChatService, Delivery, DomainError, Limit, NewRoom, Room, RoomCursor, RoomDescription,
    RoomEvent, RoomId, RoomName, RoomPage, UserId, timestamp,
};

/// Raw input for a new room, as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct RoomInput {
    pub name: String,
    pub description: Option<String>,
    pub is_private: bool,
    pub members: Vec<String>,
}

/// Raw input for a partial room update. `description: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct RoomPatchInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
}

impl ChatService {
    pub async fn create_room(&self, actor: &Actor, input: RoomInput) -> Result<Room, DomainError> {
        let name = RoomName::parse(&input.name)?;
        let description = input.description.as_deref().map(RoomDescription::parse).transpose()?;
        let mut members = Vec::with_capacity(input.members.len());
        for raw in &input.members {
            let member = UserId::parse(raw).map_err(|_| {
                DomainError::validation("members", format!("invalid user id {raw:?}"))
            })?;
            if member != actor.user_id && !members.contains(&member) {
                members.push(member);
            }
        }
        let told: Vec<UserId> =
            std::iter::once(actor.user_id.clone()).chain(members.iter().cloned()).collect();
        let room = self
            .rooms
            .create(NewRoom {
                name,
                description,
                is_private: input.is_private,
                created_by: actor.user_id.clone(),
                members,
                created_at: timestamp::now(),
                correlation_id: actor.correlation_id.clone(),
            })
            .await?;
        for user in &told {
            self.tell_room_added(user, &room);
        }
        Ok(room)
    }

    /// Tells a user's inbox sockets that a room is now theirs.
    pub(crate) fn tell_room_added(&self, user: &UserId, room: &Room) {
        let event = RoomEvent::RoomAdded { room: Box::new(room.clone()) };
        self.fan_out.publish(Delivery::to_user(user.as_str(), event));
    }

    /// The active public room with this name, created (by the actor) when there
    /// is none. For development clients that address rooms by name.
    pub async fn room_by_name(&self, actor: &Actor, raw_name: &str) -> Result<Room, DomainError> {
        let name = RoomName::parse(raw_name)?;
        if let Some(room) = self.rooms.find_public_by_name(&name).await? {
            return Ok(room);
        }
        self.create_room(actor, RoomInput { name: name.into_string(), ..Default::default() }).await
    }

    pub async fn list_rooms(
        &self,
        actor: &Actor,
        item: Option<&str>,
        cursor: Option<RoomCursor>,
        limit: Limit,
    ) -> Result<RoomPage, DomainError> {
        let visibility = if actor.is_admin() {
            RoomVisibility::All
        } else {
            RoomVisibility::PublicOrMemberOf(actor.user_id.clone())
        };
        // Checked like an item anywhere else: a NUL or a 65-character id is a
        // clear 422, not a query the database refuses.
        let item = item.map(ItemId::parse).transpose()?;
        self.rooms.list_visible(&visibility, item.as_ref().map(ItemId::as_str), cursor, limit).await
    }

    /// An active room the actor may read: 404 when missing or deleted, 403 when
    /// private and the actor is neither a member nor an admin.
    pub async fn get_room(&self, actor: &Actor, id: RoomId) -> Result<Room, DomainError> {
        let room = self
            .rooms
            .find_active(id)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("room {id} not found")))?;
        if room.is_private && !actor.is_admin() && !self.rooms.is_member(id, &actor.user_id).await?
        {
            return Err(DomainError::Forbidden(format!("room {id} is private")));
        }
        Ok(room)
    }

    pub async fn update_room(
        &self,
        actor: &Actor,
        id: RoomId,
        input: RoomPatchInput,
    ) -> Result<Room, DomainError> {
        let room = self.get_room(actor, id).await?;
        ensure_room_owner(actor, &room, "change")?;
        let changes = RoomChanges {
            name: input.name.as_deref().map(RoomName::parse).transpose()?,
            description: match input.description {
                None => None,
                Some(None) => Some(None),
                Some(Some(raw)) => Some(Some(RoomDescription::parse(&raw)?)),
            },
            updated_at: Some(timestamp::now()),
        };
        if changes.is_empty() {
            return Ok(room);
        }
        self.rooms
            .update(id, changes)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("room {id} not found")))
    }

    pub async fn delete_room(&self, actor: &Actor, id: RoomId) -> Result<Room, DomainError> {
        let room = self.get_room(actor, id).await?;
        ensure_room_owner(actor, &room, "delete")?;
        let at = timestamp::now();
        if self.rooms.deactivate(id, &actor.user_id, at, actor.correlation_id.as_ref()).await? {
            self.fan_out.publish(Delivery::to_all(RoomEvent::RoomDeleted { room_id: id }));
            Ok(room)
        } else {
            Err(DomainError::NotFound(format!("room {id} not found")))
        }
    }
}

impl ChatService {
    /// Adds `member` to the room: its creator or an admin only.
    pub async fn add_member(
        &self,
        actor: &Actor,
        id: RoomId,
        member: &str,
    ) -> Result<bool, DomainError> {
        let room = self.get_room(actor, id).await?;
        ensure_room_owner(actor, &room, "change the members of")?;
        let member = UserId::parse(member)?;
        let added = self.rooms.add_member(id, &member, timestamp::now()).await?;
        if added {
            self.tell_room_added(&member, &room);
        }
        Ok(added)
    }

    /// Removes `member` from the room: its creator or an admin only.
    pub async fn remove_member(
        &self,
        actor: &Actor,
        id: RoomId,
        member: &str,
    ) -> Result<(), DomainError> {
        let room = self.get_room(actor, id).await?;
        ensure_room_owner(actor, &room, "change the members of")?;
        let member = UserId::parse(member)?;
        if self.rooms.remove_member(id, &member).await? {
            let event = RoomEvent::RoomRemoved { room_id: id };
            self.fan_out.publish(Delivery::to_user(member.as_str(), event));
            Ok(())
        } else {
            Err(DomainError::NotFound(format!("{member} is not a member of room {id}")))
        }
    }
}

fn ensure_room_owner(actor: &Actor, room: &Room, verb: &str) -> Result<(), DomainError> {
    let is_creator = room.created_by.as_deref() == Some(actor.user_id.as_str());
    if is_creator || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(format!(
            "only the room's creator or an admin may {verb} room {}",
            room.id
        )))
    }
}
