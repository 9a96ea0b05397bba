//! Moving old messages to `messages_archive`, one small batch per transaction.
//!
//! A batch locks the oldest messages created before the cut-off (on Postgres
//! `FOR UPDATE SKIP LOCKED`: rows a writer holds are left for a later batch, and
//! a writer that reaches a locked row waits only for this short transaction),
//! copies them into the archive and deletes them from `messages`, then commits.
//! A batch is all or nothing: a process killed at any point leaves every message
//! in exactly one of the two tables, and the next run carries on. Should a
//! message somehow be in both, the live row wins (the copy is an upsert).

use chat_domain::DomainError;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::sea_query::{ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::SqlStore;
use super::entity::{archived_message, message};
use super::errors::map_db_err;

/// A batch moved inside an open transaction: nothing is visible to others, and
/// dropping it instead of committing rolls it back.
pub struct ArchiveBatch {
    txn: DatabaseTransaction,
    moved: u64,
}

impl ArchiveBatch {
    /// How many messages the batch moves.
    pub fn len(&self) -> u64 {
        self.moved
    }

    pub fn is_empty(&self) -> bool {
        self.moved == 0
    }

    /// Makes the move permanent; returns how many messages were moved.
    pub async fn commit(self) -> Result<u64, DomainError> {
        self.txn.commit().await.map_err(map_db_err)?;
        Ok(self.moved)
    }
}

impl SqlStore {
    /// Moves up to `limit` messages created before `before` (oldest ids first)
    /// into the archive, in a transaction the caller commits.
    pub async fn archive_batch(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<ArchiveBatch, DomainError> {
        let txn = self.begin_write().await?;
        let mut oldest = message::Entity::find()
            .select_only()
            .column(message::Column::Id)
            .filter(message::Column::CreatedAt.lt(before))
            .order_by_asc(message::Column::Id)
            .limit(limit);
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            oldest = oldest.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let ids: Vec<i64> = oldest.into_tuple().all(&txn).await.map_err(map_db_err)?;
        if ids.is_empty() {
            return Ok(ArchiveBatch { txn, moved: 0 });
        }
        let copied = copy_to_archive(&txn, &ids).await?;
        let deleted = message::Entity::delete_many()
            .filter(message::Column::Id.is_in(ids.iter().copied()))
            .exec(&txn)
            .await
            .map_err(map_db_err)?
            .rows_affected;
        if deleted != ids.len() as u64 || copied < deleted {
            // Rolled back on drop: better no move than a half one.
            return Err(DomainError::Internal(format!(
                "archive batch: {} locked, {copied} copied, {deleted} deleted",
                ids.len()
            )));
        }
        Ok(ArchiveBatch { txn, moved: deleted })
    }

    /// How many messages are archived: for tests and operators.
    pub async fn archived_count(&self) -> Result<u64, DomainError> {
        use sea_orm::PaginatorTrait;
        archived_message::Entity::find().count(&self.db).await.map_err(map_db_err)
    }
}

/// `INSERT INTO messages_archive (…) SELECT …, now FROM messages WHERE id IN (…)`,
/// the live row replacing any archived copy of the same id.
async fn copy_to_archive(txn: &DatabaseTransaction, ids: &[i64]) -> Result<u64, DomainError> {
    use archived_message::Column as A;
    use message::Column as M;
    let pairs = [
        (A::Id, M::Id),
        (A::RoomId, M::RoomId),
        (A::Seq, M::Seq),
        (A::UserId, M::UserId),
        (A::Content, M::Content),
        (A::MessageType, M::MessageType),
        (A::ClientMsgId, M::ClientMsgId),
        (A::Edited, M::Edited),
        (A::CreatedAt, M::CreatedAt),
        (A::UpdatedAt, M::UpdatedAt),
        (A::DeletedAt, M::DeletedAt),
        (A::ReplyTo, M::ReplyTo),
        (A::Reactions, M::Reactions),
    ];
    let select = Query::select()
        .columns(pairs.map(|(_, live)| live))
        .expr(Expr::value(chat_domain::timestamp::now()))
        .from(message::Entity)
        .and_where(Expr::col(M::Id).is_in(ids.iter().copied()))
        .to_owned();
    let upsert = OnConflict::column(A::Id)
        .update_columns(pairs.iter().skip(1).map(|(archived, _)| *archived))
        .to_owned();
    let insert = Query::insert()
        .into_table(archived_message::Entity)
        .columns(pairs.map(|(archived, _)| archived).into_iter().chain([A::ArchivedAt]))
        .select_from(select)
        .map_err(|e| DomainError::Internal(format!("archive copy: {e}")))?
        .on_conflict(upsert)
        .to_owned();
    let result = txn.execute(&insert).await.map_err(map_db_err)?;
    Ok(result.rows_affected())
}
