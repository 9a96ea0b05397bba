//! `ReactionRepository` on SQL. A change locks the message's row (live or
//! archived), checks and writes `message_reactions`, writes the counts back
//! into the row's `reactions` column and, with a broker, its outbox event —
//! one transaction, so the counts every read carries always match the rows,
//! and a repeat (nothing inserted or deleted) writes nothing at all.

use async_trait::async_trait;
use chat_domain::ports::ReactionRepository;
use chat_domain::{
    ChatEvent, CorrelationId, DomainError, MessageId, Reaction, ReactionChange, ReactionKey, UserId,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
};

use super::entity::{archived_message, message, message_reaction};
use super::errors::map_db_err;
use super::message_table::{MessageTable, lock_live, reactions_column};
use super::{SqlStore, outbox};

#[async_trait]
impl ReactionRepository for SqlStore {
    async fn add(
        &self,
        id: MessageId,
        key: &ReactionKey,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReactionChange>, DomainError> {
        self.change_reaction(Change { id, key, user, at, add: true }, correlation).await
    }

    async fn remove(
        &self,
        id: MessageId,
        key: &ReactionKey,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReactionChange>, DomainError> {
        self.change_reaction(Change { id, key, user, at, add: false }, correlation).await
    }

    async fn list(&self, id: MessageId) -> Result<Vec<Reaction>, DomainError> {
        use message_reaction::Column as R;
        let rows = message_reaction::Entity::find()
            .filter(R::MessageId.eq(id.get()))
            .order_by_asc(R::CreatedAt)
            .order_by_asc(R::Key)
            .order_by_asc(R::UserId)
            .all(&self.db)
            .await
            .map_err(map_db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| Reaction { key: r.key, user_id: r.user_id, created_at: r.created_at })
            .collect())
    }
}

/// One reaction to add or remove.
#[derive(Clone, Copy)]
struct Change<'a> {
    id: MessageId,
    key: &'a ReactionKey,
    user: &'a UserId,
    at: DateTime<Utc>,
    add: bool,
}

impl SqlStore {
    async fn change_reaction(
        &self,
        change: Change<'_>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReactionChange>, DomainError> {
        let txn = self.begin_write().await?;
        // The live table first: a row the archiver moved meanwhile is found in
        // the archive once its batch committed.
        let outcome = match change_in::<message::Entity>(&txn, change).await? {
            Some(outcome) => Some(outcome),
            None => change_in::<archived_message::Entity>(&txn, change).await?,
        };
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        if !outcome.changed {
            // Nothing was written: dropping the transaction rolls back nothing.
            return Ok(Some(outcome));
        }
        if self.outbox {
            let count = outcome.count(change.key);
            let event = ChatEvent::reaction(
                &outcome.message,
                change.user,
                change.key,
                change.add,
                count,
                change.at,
            )
            .with_correlation(correlation.cloned());
            outbox::enqueue(&txn, &event).await.map_err(map_db_err)?;
        }
        txn.commit().await.map_err(map_db_err)?;
        self.outbox_wrote();
        Ok(Some(outcome))
    }
}

/// The change on a live message of table `T`; `None` if it is not there.
async fn change_in<T: MessageTable>(
    txn: &DatabaseTransaction,
    change: Change<'_>,
) -> Result<Option<ReactionChange>, DomainError> {
    let Some(mut message) = lock_live::<T>(txn, change.id).await? else {
        return Ok(None);
    };
    let key = change.key.as_str();
    let changed = if change.add {
        change.key.fits(&message.reactions)?;
        insert(txn, change).await?
    } else {
        delete(txn, change).await?
    };
    if !changed {
        return Ok(Some(ReactionChange { message, changed }));
    }
    let counts = &mut message.reactions;
    if change.add {
        *counts.entry(key.to_owned()).or_default() += 1;
    } else if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
    T::update_many()
        .col_expr(T::REACTIONS, Expr::value(reactions_column(counts)))
        .filter(T::ID.eq(change.id.get()))
        .exec(txn)
        .await
        .map_err(map_db_err)?;
    Ok(Some(ReactionChange { message, changed }))
}

/// Inserts the user's reaction unless it is there; whether it was inserted.
async fn insert(txn: &DatabaseTransaction, change: Change<'_>) -> Result<bool, DomainError> {
    use message_reaction::Column as R;
    let mut insert = Query::insert();
    insert
        .into_table(message_reaction::Entity)
        .columns([R::MessageId, R::Key, R::UserId, R::CreatedAt])
        .values([
            change.id.get().into(),
            change.key.as_str().into(),
            change.user.as_str().into(),
            change.at.into(),
        ])
        .map_err(|e| DomainError::Internal(format!("reaction insert: {e}")))?
        .on_conflict(
            OnConflict::columns([R::MessageId, R::Key, R::UserId]).do_nothing().to_owned(),
        );
    let result = txn.execute(&insert).await.map_err(map_db_err)?;
    Ok(result.rows_affected() > 0)
}

/// Deletes the user's reaction; whether there was one.
async fn delete(txn: &DatabaseTransaction, change: Change<'_>) -> Result<bool, DomainError> {
    use message_reaction::Column as R;
    let result = message_reaction::Entity::delete_many()
        .filter(R::MessageId.eq(change.id.get()))
        .filter(R::Key.eq(change.key.as_str()))
        .filter(R::UserId.eq(change.user.as_str()))
        .exec(txn)
        .await
        .map_err(map_db_err)?;
    Ok(result.rows_affected > 0)
}
