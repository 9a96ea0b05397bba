//! `RoomRepository` on SQL.

use async_trait::async_trait;
use chat_domain::conversation::Conversation;
use chat_domain::ports::{RoomRepository, RoomVisibility};
use chat_domain::{
    ChatEvent, CorrelationId, DomainError, Limit, NewRoom, Room, RoomChanges, RoomCursor, RoomId,
    RoomName, RoomPage, UserId,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::entity::{room, room_member};
use super::errors::map_db_err;
use super::{SqlStore, outbox};

impl TryFrom<room::Model> for Room {
    type Error = DomainError;

    fn try_from(m: room::Model) -> Result<Self, DomainError> {
        Ok(Room {
            id: RoomId::new(m.id)?,
            name: m.name,
            description: m.description,
            is_active: m.is_active,
            is_private: m.is_private,
            created_by: m.created_by,
            item_id: m.item_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
            last_seq: m.last_seq,
        })
    }
}

#[async_trait]
impl RoomRepository for SqlStore {
    async fn create(&self, new: NewRoom) -> Result<Room, DomainError> {
        let txn = self.begin_write().await?;
        let created = room::ActiveModel {
            name: Set(new.name.into_string()),
            description: Set(new.description.map(|d| d.into_string())),
            is_active: Set(true),
            is_private: Set(new.is_private),
            created_by: Set(Some(new.created_by.as_str().to_owned())),
            item_id: Set(None),
            conversation_key: Set(None),
            last_seq: Set(0),
            created_at: Set(new.created_at),
            updated_at: Set(new.created_at),
            deleted_at: Set(None),
            last_activity_at: Set(Some(new.created_at)),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(map_db_err)?;
        let members = std::iter::once(new.created_by).chain(new.members).map(|user| {
            room_member::ActiveModel {
                room_id: Set(created.id),
                user_id: Set(user.into_string()),
                added_at: Set(new.created_at),
            }
        });
        room_member::Entity::insert_many(members).exec(&txn).await.map_err(map_db_err)?;
        let room = Room::try_from(created)?;
        if self.outbox {
            let event = ChatEvent::room_created(&room).with_correlation(new.correlation_id);
            outbox::enqueue(&txn, &event).await.map_err(map_db_err)?;
        }
        txn.commit().await.map_err(map_db_err)?;
        self.outbox_wrote();
        Ok(room)
    }

    async fn find_active(&self, id: RoomId) -> Result<Option<Room>, DomainError> {
        room::Entity::find_by_id(id.get())
            .filter(room::Column::IsActive.eq(true))
            .one(&self.db)
            .await
            .map_err(map_db_err)?
            .map(Room::try_from)
            .transpose()
    }

    async fn list_visible(
        &self,
        visibility: &RoomVisibility,
        item: Option<&str>,
        after: Option<RoomCursor>,
        limit: Limit,
    ) -> Result<RoomPage, DomainError> {
        let mut query = room::Entity::find().filter(room::Column::IsActive.eq(true));
        if let Some(item) = item {
            query = query.filter(room::Column::ItemId.eq(item));
        }
        if let Some(RoomCursor(after)) = after {
            query = query.filter(room::Column::Id.gt(after.get()));
        }
        if let RoomVisibility::PublicOrMemberOf(user) = visibility {
            let memberships = Query::select()
                .column(room_member::Column::RoomId)
                .from(room_member::Entity)
                .and_where(Expr::col(room_member::Column::UserId).eq(user.as_str()))
                .to_owned();
            query = query.filter(
                Condition::any()
                    .add(room::Column::IsPrivate.eq(false))
                    .add(room::Column::Id.in_subquery(memberships)),
            );
        }
        let page_size = u64::from(limit.get());
        let mut rows = query
            .order_by_asc(room::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await
            .map_err(map_db_err)?;
        let has_more = rows.len() as u64 > page_size;
        rows.truncate(page_size as usize);
        let items = rows.into_iter().map(Room::try_from).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if has_more { items.last().map(|r| RoomCursor(r.id)) } else { None };
        Ok(RoomPage { items, next_cursor })
    }

    async fn update(&self, id: RoomId, changes: RoomChanges) -> Result<Option<Room>, DomainError> {
        let mut update = room::Entity::update_many()
            .filter(room::Column::Id.eq(id.get()))
            .filter(room::Column::IsActive.eq(true));
        if let Some(name) = changes.name {
            update = update.col_expr(room::Column::Name, Expr::value(name.into_string()));
        }
        if let Some(description) = changes.description {
            update = update.col_expr(
                room::Column::Description,
                Expr::value(description.map(|d| d.into_string())),
            );
        }
        if let Some(at) = changes.updated_at {
            update = update.col_expr(room::Column::UpdatedAt, Expr::value(at));
        }
        let txn = self.begin_write().await?;
        let rows = update.exec_with_returning(&txn).await.map_err(map_db_err)?;
        txn.commit().await.map_err(map_db_err)?;
        rows.into_iter().next().map(Room::try_from).transpose()
    }

    async fn deactivate(
        &self,
        id: RoomId,
        by: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<bool, DomainError> {
        let txn = self.begin_write().await?;
        let result = room::Entity::update_many()
            .col_expr(room::Column::IsActive, Expr::value(false))
            .col_expr(room::Column::DeletedAt, Expr::value(Some(at)))
            .col_expr(room::Column::UpdatedAt, Expr::value(at))
            .filter(room::Column::Id.eq(id.get()))
            .filter(room::Column::IsActive.eq(true))
            .exec(&txn)
            .await
            .map_err(map_db_err)?;
        if result.rows_affected == 0 {
            return Ok(false);
        }
        if self.outbox {
            let event = ChatEvent::room_deleted(id, by, at).with_correlation(correlation.cloned());
            outbox::enqueue(&txn, &event).await.map_err(map_db_err)?;
        }
        txn.commit().await.map_err(map_db_err)?;
        self.outbox_wrote();
        Ok(true)
    }

    async fn find_public_by_name(&self, name: &RoomName) -> Result<Option<Room>, DomainError> {
        room::Entity::find()
            .filter(room::Column::IsActive.eq(true))
            .filter(room::Column::IsPrivate.eq(false))
            .filter(room::Column::Name.eq(name.as_str()))
            .order_by_asc(room::Column::Id)
            .one(&self.db)
            .await
            .map_err(map_db_err)?
            .map(Room::try_from)
            .transpose()
    }

    async fn find_conversation(
        &self,
        conversation: &Conversation,
    ) -> Result<Option<Room>, DomainError> {
        room::Entity::find()
            .filter(room::Column::ConversationKey.eq(conversation.key()))
            .filter(room::Column::IsActive.eq(true))
            .one(&self.db)
            .await
            .map_err(map_db_err)?
            .map(Room::try_from)
            .transpose()
    }

    async fn open_conversation(
        &self,
        conversation: &Conversation,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<(Room, bool), DomainError> {
        if let Some(room) = self.find_conversation(conversation).await? {
            return Ok((room, false));
        }
        let (a, b) = &conversation.users;
        let txn = self.begin_write().await?;
        let inserted = room::ActiveModel {
            name: Set(format!("Item {}: {a} & {b}", conversation.item.as_str())
                .chars()
                .take(100)
                .collect()),
            description: Set(None),
            is_active: Set(true),
            is_private: Set(true),
            created_by: Set(None),
            item_id: Set(Some(conversation.item.as_str().to_owned())),
            conversation_key: Set(Some(conversation.key())),
            last_seq: Set(0),
            created_at: Set(at),
            updated_at: Set(at),
            deleted_at: Set(None),
            last_activity_at: Set(Some(at)),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        let created = match inserted {
            Ok(created) => created,
            // Another first message won the race: use its room.
            Err(e)
                if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) =>
            {
                drop(txn);
                let room = self.find_conversation(conversation).await?;
                return room
                    .map(|room| (room, false))
                    .ok_or_else(|| DomainError::Internal("conversation room vanished".to_owned()));
            }
            Err(e) => return Err(map_db_err(e)),
        };
        let members = [a, b].map(|user| room_member::ActiveModel {
            room_id: Set(created.id),
            user_id: Set(user.to_string()),
            added_at: Set(at),
        });
        room_member::Entity::insert_many(members).exec(&txn).await.map_err(map_db_err)?;
        let room = Room::try_from(created)?;
        if self.outbox {
            let event = ChatEvent::room_created(&room).with_correlation(correlation.cloned());
            outbox::enqueue(&txn, &event).await.map_err(map_db_err)?;
        }
        txn.commit().await.map_err(map_db_err)?;
        self.outbox_wrote();
        Ok((room, true))
    }

    async fn add_member(
        &self,
        id: RoomId,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        if self.is_member(id, user).await? {
            return Ok(false);
        }
        let inserted = room_member::Entity::insert(room_member::ActiveModel {
            room_id: Set(id.get()),
            user_id: Set(user.to_string()),
            added_at: Set(at),
        })
        .exec(&self.db)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            // Added concurrently by someone else: the same outcome.
            Err(e)
                if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) =>
            {
                Ok(false)
            }
            Err(e) => Err(map_db_err(e)),
        }
    }

    async fn remove_member(&self, id: RoomId, user: &UserId) -> Result<bool, DomainError> {
        let result = room_member::Entity::delete_many()
            .filter(room_member::Column::RoomId.eq(id.get()))
            .filter(room_member::Column::UserId.eq(user.as_str()))
            .exec(&self.db)
            .await
            .map_err(map_db_err)?;
        Ok(result.rows_affected > 0)
    }

    async fn is_member(&self, id: RoomId, user: &UserId) -> Result<bool, DomainError> {
        let count = room_member::Entity::find()
            .filter(room_member::Column::RoomId.eq(id.get()))
            .filter(room_member::Column::UserId.eq(user.as_str()))
            .count(&self.db)
            .await
            .map_err(map_db_err)?;
        Ok(count > 0)
    }
}
