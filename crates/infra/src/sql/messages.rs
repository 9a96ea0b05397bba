//! `MessageRepository` on SQL, including the per-room `seq` allocation.
//!
//! A post takes the next seq by incrementing `rooms.last_seq` inside its
//! transaction. That row lock is held until commit, so writers to one room commit
//! one after another in seq order: no duplicate, and no gap a reader could see (a
//! rolled-back post gives its seq back). Writers to different rooms never wait on
//! each other.

use async_trait::async_trait;
use chat_domain::ports::MessageRepository;
use chat_domain::{
    ChatEvent, CorrelationId, DomainError, HistoryPage, HistoryQuery, Limit, Message,
    MessageContent, MessageId, MessageType, NewMessage, Posted, RoomId,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::{message, room};
use super::errors::map_db_err;
use super::{SqlStore, outbox};

impl TryFrom<message::Model> for Message {
    type Error = DomainError;

    fn try_from(m: message::Model) -> Result<Self, DomainError> {
        let message_type = MessageType::parse(&m.message_type).map_err(|_| {
            DomainError::Internal(format!("message {} has unknown type {:?}", m.id, m.message_type))
        })?;
        Ok(Message {
            id: MessageId::new(m.id)?,
            room_id: RoomId::new(m.room_id)?,
            seq: m.seq,
            user_id: m.user_id,
            content: m.content,
            message_type,
            client_msg_id: m.client_msg_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
            edited: m.edited,
        })
    }
}

#[async_trait]
impl MessageRepository for SqlStore {
    async fn append(&self, new: NewMessage) -> Result<Posted, DomainError> {
        let txn = self.begin_write().await?;
        let locked = room::Entity::update_many()
            .col_expr(room::Column::LastSeq, Expr::col(room::Column::LastSeq).add(1))
            .filter(room::Column::Id.eq(new.room_id.get()))
            .filter(room::Column::IsActive.eq(true))
            .exec_with_returning(&txn)
            .await
            .map_err(map_db_err)?;
        let Some(room) = locked.into_iter().next() else {
            return Err(DomainError::NotFound(format!("room {} not found", new.room_id)));
        };
        // Checked under the room lock, so two retries of one message cannot both insert.
        if let Some(key) = &new.client_msg_id {
            let original = message::Entity::find()
                .filter(message::Column::RoomId.eq(new.room_id.get()))
                .filter(message::Column::UserId.eq(new.user_id.as_str()))
                .filter(message::Column::ClientMsgId.eq(key.as_str()))
                .one(&txn)
                .await
                .map_err(map_db_err)?;
            if let Some(original) = original {
                txn.rollback().await.map_err(map_db_err)?;
                return Ok(Posted::Duplicate(original.try_into()?));
            }
        }
        let notify = new.notify.clone();
        let correlation = new.correlation_id.clone();
        let inserted = message::ActiveModel {
            room_id: Set(new.room_id.get()),
            seq: Set(room.last_seq),
            user_id: Set(new.user_id.into_string()),
            content: Set(new.content.into_string()),
            message_type: Set(new.message_type.as_str().to_owned()),
            client_msg_id: Set(new.client_msg_id.map(|k| k.as_str().to_owned())),
            edited: Set(false),
            created_at: Set(new.created_at),
            updated_at: Set(new.created_at),
            deleted_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(map_db_err)?;
        let message = Message::try_from(inserted)?;
        if self.outbox {
            let event = ChatEvent::message_created(&message).with_correlation(correlation.clone());
            outbox::enqueue(&txn, &event).await.map_err(map_db_err)?;
            if let Some(notice) = &notify {
                outbox::enqueue_notice(&txn, notice, message.room_id, correlation.as_ref())
                    .await
                    .map_err(map_db_err)?;
            }
        }
        txn.commit().await.map_err(map_db_err)?;
        self.stats.message_persisted();
        self.outbox_wrote();
        Ok(Posted::Created(message))
    }

    async fn item_participants(&self, item: &str) -> Result<Vec<String>, DomainError> {
        let rooms: Vec<i64> = room::Entity::find()
            .filter(room::Column::ItemId.eq(item))
            .all(&self.db)
            .await
            .map_err(map_db_err)?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        message::Entity::find()
            .select_only()
            .column(message::Column::UserId)
            .distinct()
            .filter(message::Column::RoomId.is_in(rooms))
            .filter(message::Column::DeletedAt.is_null())
            .order_by_asc(message::Column::UserId)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(map_db_err)
    }

    async fn clear_room(&self, room_id: RoomId, at: DateTime<Utc>) -> Result<u64, DomainError> {
        let result = message::Entity::update_many()
            .col_expr(message::Column::DeletedAt, Expr::value(Some(at)))
            .col_expr(message::Column::UpdatedAt, Expr::value(at))
            .filter(message::Column::RoomId.eq(room_id.get()))
            .filter(message::Column::DeletedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(map_db_err)?;
        Ok(result.rows_affected)
    }

    async fn find(&self, id: MessageId) -> Result<Option<Message>, DomainError> {
        message::Entity::find_by_id(id.get())
            .filter(message::Column::DeletedAt.is_null())
            .one(&self.db)
            .await
            .map_err(map_db_err)?
            .map(Message::try_from)
            .transpose()
    }

    async fn history(
        &self,
        room_id: RoomId,
        query: HistoryQuery,
        limit: Limit,
    ) -> Result<HistoryPage, DomainError> {
        let base = message::Entity::find()
            .filter(message::Column::RoomId.eq(room_id.get()))
            .filter(message::Column::DeletedAt.is_null());
        let (select, newest_first) = match query {
            HistoryQuery::Latest => (base.order_by_desc(message::Column::Seq), true),
            HistoryQuery::Before(seq) => (
                base.filter(message::Column::Seq.lt(seq)).order_by_desc(message::Column::Seq),
                true,
            ),
            HistoryQuery::After(seq) => (
                base.filter(message::Column::Seq.gt(seq)).order_by_asc(message::Column::Seq),
                false,
            ),
        };
        let page_size = u64::from(limit.get());
        // One extra row tells whether there is more beyond the page.
        let mut rows = select.limit(page_size + 1).all(&self.db).await.map_err(map_db_err)?;
        let has_more = rows.len() as u64 > page_size;
        rows.truncate(page_size as usize);
        if newest_first {
            rows.reverse();
        }
        let items = rows.into_iter().map(Message::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(HistoryPage { items, has_more })
    }

    async fn edit(
        &self,
        id: MessageId,
        content: MessageContent,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError> {
        let txn = self.begin_write().await?;
        let rows = message::Entity::update_many()
            .col_expr(message::Column::Content, Expr::value(content.into_string()))
            .col_expr(message::Column::Edited, Expr::value(true))
            .col_expr(message::Column::UpdatedAt, Expr::value(at))
            .filter(message::Column::Id.eq(id.get()))
            .filter(message::Column::DeletedAt.is_null())
            .exec_with_returning(&txn)
            .await
            .map_err(map_db_err)?;
        let Some(edited) = rows.into_iter().next().map(Message::try_from).transpose()? else {
            return Ok(None);
        };
        if self.outbox {
            let event = ChatEvent::message_updated(&edited).with_correlation(correlation.cloned());
            outbox::enqueue(&txn, &event).await.map_err(map_db_err)?;
        }
        txn.commit().await.map_err(map_db_err)?;
        self.outbox_wrote();
        Ok(Some(edited))
    }

    async fn delete(
        &self,
        id: MessageId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError> {
        let txn = self.begin_write().await?;
        let rows = message::Entity::update_many()
            .col_expr(message::Column::DeletedAt, Expr::value(Some(at)))
            .col_expr(message::Column::UpdatedAt, Expr::value(at))
            .filter(message::Column::Id.eq(id.get()))
            .filter(message::Column::DeletedAt.is_null())
            .exec_with_returning(&txn)
            .await
            .map_err(map_db_err)?;
        let Some(deleted) = rows.into_iter().next().map(Message::try_from).transpose()? else {
            return Ok(None);
        };
        if self.outbox {
            let event =
                ChatEvent::message_deleted(&deleted, at).with_correlation(correlation.cloned());
            outbox::enqueue(&txn, &event).await.map_err(map_db_err)?;
        }
        txn.commit().await.map_err(map_db_err)?;
        self.outbox_wrote();
        Ok(Some(deleted))
    }
}
