//! Messages live in two tables with the same columns: `messages` and, once old
//! enough, `messages_archive`. [`MessageTable`] lets one query be written once
//! for both, and [`history_of_both`] reads a page across them: each table's
//! page is read on its `(room_id, seq)` index and the two are merged by seq, so
//! paging runs on into the archive with no gap, whichever rows were moved.
//! Reads by id likewise try the live table first, then the archive.

use chat_domain::{
    DomainError, HistoryPage, HistoryQuery, Limit, Message, MessageId, MessageType, RoomId,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

use super::entity::{archived_message, message};
use super::errors::map_db_err;

/// A table of messages.
pub(crate) trait MessageTable: EntityTrait {
    const ID: Self::Column;
    const ROOM_ID: Self::Column;
    const SEQ: Self::Column;
    const CONTENT: Self::Column;
    const EDITED: Self::Column;
    const UPDATED_AT: Self::Column;
    const DELETED_AT: Self::Column;

    fn into_message(model: Self::Model) -> Result<Message, DomainError>;
}

impl MessageTable for message::Entity {
    const ID: message::Column = message::Column::Id;
    const ROOM_ID: message::Column = message::Column::RoomId;
    const SEQ: message::Column = message::Column::Seq;
    const CONTENT: message::Column = message::Column::Content;
    const EDITED: message::Column = message::Column::Edited;
    const UPDATED_AT: message::Column = message::Column::UpdatedAt;
    const DELETED_AT: message::Column = message::Column::DeletedAt;

    fn into_message(model: message::Model) -> Result<Message, DomainError> {
        model.try_into()
    }
}

impl MessageTable for archived_message::Entity {
    const ID: archived_message::Column = archived_message::Column::Id;
    const ROOM_ID: archived_message::Column = archived_message::Column::RoomId;
    const SEQ: archived_message::Column = archived_message::Column::Seq;
    const CONTENT: archived_message::Column = archived_message::Column::Content;
    const EDITED: archived_message::Column = archived_message::Column::Edited;
    const UPDATED_AT: archived_message::Column = archived_message::Column::UpdatedAt;
    const DELETED_AT: archived_message::Column = archived_message::Column::DeletedAt;

    fn into_message(m: archived_message::Model) -> Result<Message, DomainError> {
        message::Model {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            user_id: m.user_id,
            content: m.content,
            message_type: m.message_type,
            client_msg_id: m.client_msg_id,
            edited: m.edited,
            created_at: m.created_at,
            updated_at: m.updated_at,
            deleted_at: m.deleted_at,
        }
        .try_into()
    }
}

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

/// A message that is not deleted, from table `T`.
pub(crate) async fn find_in<T: MessageTable, C: ConnectionTrait>(
    conn: &C,
    id: MessageId,
) -> Result<Option<Message>, DomainError> {
    T::find()
        .filter(T::ID.eq(id.get()))
        .filter(T::DELETED_AT.is_null())
        .one(conn)
        .await
        .map_err(map_db_err)?
        .map(T::into_message)
        .transpose()
}

/// Up to `rows` live messages of table `T` for the query, nearest the cursor first.
async fn page_in<T: MessageTable, C: ConnectionTrait>(
    conn: &C,
    room: RoomId,
    query: HistoryQuery,
    rows: u64,
) -> Result<Vec<Message>, DomainError> {
    let base: Select<T> =
        T::find().filter(T::ROOM_ID.eq(room.get())).filter(T::DELETED_AT.is_null());
    let select = match query {
        HistoryQuery::Latest => base.order_by_desc(T::SEQ),
        HistoryQuery::Before(seq) => base.filter(T::SEQ.lt(seq)).order_by_desc(T::SEQ),
        HistoryQuery::After(seq) => base.filter(T::SEQ.gt(seq)).order_by_asc(T::SEQ),
    };
    let models = select.limit(rows).all(conn).await.map_err(map_db_err)?;
    models.into_iter().map(T::into_message).collect()
}

/// A history page over the live table and the archive, ascending seq.
pub(crate) async fn history_of_both<C: ConnectionTrait>(
    conn: &C,
    room: RoomId,
    query: HistoryQuery,
    limit: Limit,
) -> Result<HistoryPage, DomainError> {
    let page_size = u64::from(limit.get());
    // One extra row tells whether there is more beyond the page. The live table
    // is read first: a batch archived between the two reads then shows up in
    // both (dropped below), never in neither.
    let mut rows = page_in::<message::Entity, _>(conn, room, query, page_size + 1).await?;
    rows.extend(page_in::<archived_message::Entity, _>(conn, room, query, page_size + 1).await?);
    let newest_first = !matches!(query, HistoryQuery::After(_));
    if newest_first {
        rows.sort_unstable_by_key(|m| std::cmp::Reverse(m.seq));
    } else {
        rows.sort_unstable_by_key(|m| m.seq);
    }
    rows.dedup_by_key(|m| m.seq);
    let has_more = rows.len() as u64 > page_size;
    rows.truncate(page_size as usize);
    if newest_first {
        rows.reverse();
    }
    Ok(HistoryPage { items: rows, has_more })
}
