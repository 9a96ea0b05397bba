//! The versions of edited messages: `message_versions` keeps each text an edit
//! replaced (numbered from 1, with the time it became the message's); the
//! message row holds the current one.

use chat_domain::message::version::with_current;
use chat_domain::{DomainError, Message, MessageId, MessageVersion};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, UnionType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityName, EntityTrait, FromQueryResult,
    QueryFilter, QuerySelect,
};

use super::entity::{archived_message, message, message_version};
use super::errors::map_db_err;

/// Stores `current`'s text as its next version, before an edit replaces it.
/// The caller holds the message's row lock.
pub(crate) async fn keep(txn: &DatabaseTransaction, current: &Message) -> Result<(), DomainError> {
    use message_version::Column as V;
    let newest: Option<Option<i32>> = message_version::Entity::find()
        .select_only()
        .expr(Expr::col(V::Version).max())
        .filter(V::MessageId.eq(current.id.get()))
        .into_tuple()
        .one(txn)
        .await
        .map_err(map_db_err)?;
    let version = newest.flatten().unwrap_or(0).saturating_add(1);
    let row = message_version::ActiveModel {
        message_id: sea_orm::Set(current.id.get()),
        version: sea_orm::Set(version),
        content: sea_orm::Set(current.content.clone()),
        // No other change moves `updated_at` of a live message: it is when
        // this text became the message's (its creation, or the last edit).
        created_at: sea_orm::Set(current.updated_at),
    };
    message_version::Entity::insert(row).exec_without_returning(txn).await.map_err(map_db_err)?;
    Ok(())
}

/// A row of [`of`]'s statement: a replaced text (`version` ≥ 1) or the
/// current one (`version` 0).
#[derive(FromQueryResult)]
struct Text {
    version: i32,
    content: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Message `id`'s versions, oldest first, the current text last; `None` when
/// it is not a live message. One statement, so one snapshot: an edit
/// committing meanwhile is seen whole or not at all.
pub(crate) async fn of<C: ConnectionTrait>(
    conn: &C,
    id: MessageId,
) -> Result<Option<Vec<MessageVersion>>, DomainError> {
    use message_version::Column as V;
    let current = |table: sea_orm::sea_query::TableRef| {
        Query::select()
            .expr_as(Expr::cust("0"), Alias::new("version"))
            .column(Alias::new("content"))
            .expr_as(Expr::col(Alias::new("updated_at")), Alias::new("created_at"))
            .from(table)
            .and_where(Expr::col(Alias::new("id")).eq(id.get()))
            .and_where(Expr::col(Alias::new("deleted_at")).is_null())
            .to_owned()
    };
    let mut texts = Query::select()
        .columns([V::Version, V::Content, V::CreatedAt])
        .from(message_version::Entity)
        .and_where(Expr::col(V::MessageId).eq(id.get()))
        .to_owned();
    texts
        .union(UnionType::All, current(message::Entity.table_ref()))
        .union(UnionType::All, current(archived_message::Entity.table_ref()));
    let statement = conn.get_database_backend().build(&texts);
    let rows = Text::find_by_statement(statement).all(conn).await.map_err(map_db_err)?;
    let mut replaced = Vec::with_capacity(rows.len());
    let mut now = None;
    for row in rows {
        match u32::try_from(row.version) {
            Ok(version) if version > 0 => replaced.push(MessageVersion {
                version,
                content: row.content,
                created_at: row.created_at,
            }),
            _ => now = Some((row.content, row.created_at)),
        }
    }
    Ok(now.map(|(content, since)| with_current(replaced, content, since)))
}
