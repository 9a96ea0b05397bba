//! `MessageRepository` on SQL, including the per-room `seq` allocation.
//!
//! New messages are stored in batches (`append/`): a batch takes the next
//! seqs by incrementing `rooms.last_seq` inside its transaction. That row lock
//! is held until commit, so writers to one room commit one after another in seq
//! order: no duplicate, and no gap a reader could see (a rolled-back batch gives
//! its seqs back). Writers to different rooms never wait on each other.
//!
//! Old messages may have been moved to the archive (`archive.rs`): reads by id
//! and history pages look in both tables, and archived messages can still be
//! edited and deleted (the same rules, the same events). An edit keeps the
//! text it replaces in `message_versions` (`versions.rs`), in its transaction.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chat_domain::ports::MessageRepository;
use chat_domain::{
    ChatEvent, CorrelationId, DomainError, HistoryPage, HistoryQuery, Limit, Message,
    MessageContent, MessageId, MessageVersion, NewMessage, Posted, RoomId,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect};

use super::entity::{archived_message, message, room};
use super::errors::map_db_err;
use super::message_table::{MessageTable, find_in, history_of_both, lock_live};
use super::{SqlStore, outbox, versions};

#[async_trait]
impl MessageRepository for SqlStore {
    async fn append_batch(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<Result<Posted, DomainError>>, DomainError> {
        self.append_messages(batch).await
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
        let live: Vec<String> = message::Entity::find()
            .select_only()
            .column(message::Column::UserId)
            .distinct()
            .filter(message::Column::RoomId.is_in(rooms.clone()))
            .filter(message::Column::DeletedAt.is_null())
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(map_db_err)?;
        let archived: Vec<String> = archived_message::Entity::find()
            .select_only()
            .column(archived_message::Column::UserId)
            .distinct()
            .filter(archived_message::Column::RoomId.is_in(rooms))
            .filter(archived_message::Column::DeletedAt.is_null())
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(map_db_err)?;
        let users: BTreeSet<String> = live.into_iter().chain(archived).collect();
        Ok(users.into_iter().collect())
    }

    async fn clear_room(&self, room_id: RoomId, at: DateTime<Utc>) -> Result<u64, DomainError> {
        let txn = self.begin_write().await?;
        let live = message::Entity::update_many()
            .col_expr(message::Column::DeletedAt, Expr::value(Some(at)))
            .col_expr(message::Column::UpdatedAt, Expr::value(at))
            .filter(message::Column::RoomId.eq(room_id.get()))
            .filter(message::Column::DeletedAt.is_null())
            .exec(&txn)
            .await
            .map_err(map_db_err)?;
        let archived = archived_message::Entity::update_many()
            .col_expr(archived_message::Column::DeletedAt, Expr::value(Some(at)))
            .col_expr(archived_message::Column::UpdatedAt, Expr::value(at))
            .filter(archived_message::Column::RoomId.eq(room_id.get()))
            .filter(archived_message::Column::DeletedAt.is_null())
            .exec(&txn)
            .await
            .map_err(map_db_err)?;
        txn.commit().await.map_err(map_db_err)?;
        Ok(live.rows_affected + archived.rows_affected)
    }

    async fn find(&self, id: MessageId) -> Result<Option<Message>, DomainError> {
        let mut found = match find_in::<message::Entity, _>(&self.db, id).await? {
            Some(message) => Some(message),
            None => find_in::<archived_message::Entity, _>(&self.db, id).await?,
        };
        if let Some(message) = found.as_mut() {
            self.attach_offers(std::slice::from_mut(message)).await?;
        }
        Ok(found)
    }

    async fn history(
        &self,
        room_id: RoomId,
        query: HistoryQuery,
        limit: Limit,
    ) -> Result<HistoryPage, DomainError> {
        let mut page = history_of_both(&self.db, room_id, query, limit).await?;
        // The hub fills gaps from here: its frames carry the offers too.
        self.attach_offers(&mut page.items).await?;
        Ok(page)
    }

    async fn edit(
        &self,
        id: MessageId,
        content: MessageContent,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError> {
        let txn = self.begin_write().await?;
        let content = content.into_string();
        // The live table first: if the archiver moved the row meanwhile, this
        // waited for its batch to commit and the row is now in the archive.
        let edited = match edit_in::<message::Entity>(&txn, id, &content, at).await? {
            Some(edited) => Some(edited),
            None => edit_in::<archived_message::Entity>(&txn, id, &content, at).await?,
        };
        let Some(edited) = edited else {
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

    async fn versions(&self, id: MessageId) -> Result<Option<Vec<MessageVersion>>, DomainError> {
        versions::of(&self.db, id).await
    }

    async fn delete(
        &self,
        id: MessageId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError> {
        let txn = self.begin_write().await?;
        let deleted = match delete_in::<message::Entity>(&txn, id, at).await? {
            Some(deleted) => Some(deleted),
            None => delete_in::<archived_message::Entity>(&txn, id, at).await?,
        };
        let Some(deleted) = deleted else {
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

/// Replaces a live message's content in table `T`, keeping the text it
/// replaces as the next version; `None` if it is not there.
async fn edit_in<T: MessageTable>(
    txn: &DatabaseTransaction,
    id: MessageId,
    content: &str,
    at: DateTime<Utc>,
) -> Result<Option<Message>, DomainError> {
    // Under the row's lock, so concurrent edits number their versions in turn.
    let Some(current) = lock_live::<T>(txn, id).await? else {
        return Ok(None);
    };
    versions::keep(txn, &current).await?;
    let rows = T::update_many()
        .col_expr(T::CONTENT, Expr::value(content))
        .col_expr(T::EDITED, Expr::value(true))
        .col_expr(T::UPDATED_AT, Expr::value(at))
        .filter(T::ID.eq(id.get()))
        .filter(T::DELETED_AT.is_null())
        .exec_with_returning(txn)
        .await
        .map_err(map_db_err)?;
    rows.into_iter().next().map(T::into_message).transpose()
}

/// Marks a live message deleted in table `T`; `None` if it is not there.
pub(super) async fn delete_in<T: MessageTable>(
    txn: &DatabaseTransaction,
    id: MessageId,
    at: DateTime<Utc>,
) -> Result<Option<Message>, DomainError> {
    let rows = T::update_many()
        .col_expr(T::DELETED_AT, Expr::value(Some(at)))
        .col_expr(T::UPDATED_AT, Expr::value(at))
        .filter(T::ID.eq(id.get()))
        .filter(T::DELETED_AT.is_null())
        .exec_with_returning(txn)
        .await
        .map_err(map_db_err)?;
    rows.into_iter().next().map(T::into_message).transpose()
}
