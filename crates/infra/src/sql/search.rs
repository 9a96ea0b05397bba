//! `MessageSearch` on SQL: Postgres `tsvector @@ to_tsquery('simple', …)` over the
//! GIN index, SQLite FTS5 `MATCH`. The words are letters and digits only (the
//! domain's parser), and every value is a bound parameter.

use async_trait::async_trait;
use chat_domain::ports::{MessageSearch, RoomVisibility};
use chat_domain::search::SearchFilter;
use chat_domain::{DomainError, Message};
use sea_orm::{DatabaseBackend, FromQueryResult, Statement, Value};

use super::SqlStore;
use super::entity::message;
use super::errors::map_db_err;

/// SQL text with `?` placeholders and their values, numbered for Postgres at the end.
struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn push(&mut self, fragment: &str, values: impl IntoIterator<Item = Value>) {
        self.text.push_str(fragment);
        self.values.extend(values);
    }

    fn statement(self, backend: DatabaseBackend) -> Statement {
        let text = if backend == DatabaseBackend::Postgres {
            let mut numbered = String::with_capacity(self.text.len() + 16);
            let mut n = 0;
            for c in self.text.chars() {
                if c == '?' {
                    n += 1;
                    numbered.push_str(&format!("${n}"));
                } else {
                    numbered.push(c);
                }
            }
            numbered
        } else {
            self.text
        };
        Statement::from_sql_and_values(backend, text, self.values)
    }
}

#[async_trait]
impl MessageSearch for SqlStore {
    async fn search(
        &self,
        filter: &SearchFilter,
        visibility: &RoomVisibility,
    ) -> Result<Vec<Message>, DomainError> {
        let backend = self.db.get_database_backend();
        let words = filter.terms.words();
        let (last, whole) =
            words.split_last().ok_or_else(|| DomainError::validation("q", "is empty"))?;
        let mut sql = Sql { text: String::new(), values: Vec::new() };
        match backend {
            DatabaseBackend::Postgres => {
                let query: Vec<String> =
                    whole.iter().cloned().chain([format!("{last}:*")]).collect();
                sql.push(
                    "SELECT m.* FROM messages m JOIN rooms r ON r.id = m.room_id \
                     WHERE m.content_tsv @@ to_tsquery('simple', ?)",
                    [query.join(" & ").into()],
                );
            }
            _ => {
                let query: Vec<String> = whole
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .chain([format!("\"{last}\"*")])
                    .collect();
                sql.push(
                    "SELECT m.* FROM messages_fts f JOIN messages m ON m.id = f.rowid \
                     JOIN rooms r ON r.id = m.room_id WHERE messages_fts MATCH ?",
                    [query.join(" ").into()],
                );
            }
        }
        sql.push(" AND m.deleted_at IS NULL AND r.is_active = ?", [true.into()]);
        if let Some(room) = filter.room {
            sql.push(" AND m.room_id = ?", [room.get().into()]);
        }
        if let RoomVisibility::PublicOrMemberOf(user) = visibility {
            sql.push(
                " AND (r.is_private = ? OR r.id IN (SELECT room_id FROM room_members WHERE user_id = ?))",
                [false.into(), user.as_str().into()],
            );
        }
        if let Some(user) = &filter.user {
            sql.push(" AND m.user_id = ?", [user.as_str().into()]);
        }
        if let Some(since) = filter.since {
            sql.push(" AND m.created_at >= ?", [since.into()]);
        }
        if let Some(until) = filter.until {
            sql.push(" AND m.created_at < ?", [until.into()]);
        }
        if let Some(before) = filter.before {
            sql.push(" AND m.id < ?", [before.get().into()]);
        }
        sql.push(" ORDER BY m.id DESC LIMIT ?", [i64::from(filter.limit.get() + 1).into()]);
        let rows = message::Model::find_by_statement(sql.statement(backend))
            .all(&self.db)
            .await
            .map_err(map_db_err)?;
        rows.into_iter().map(Message::try_from).collect()
    }
}
