//! Full-text search of message content, maintained by the database itself.
//! Postgres: a generated `tsvector` column with the language-neutral `simple`
//! configuration (Ukrainian, English and mixed text all match) and a GIN index.
//! SQLite: an external-content FTS5 table kept in step by triggers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS content_tsv tsvector \
     GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED",
    "CREATE INDEX IF NOT EXISTS idx_messages_content_tsv ON messages USING GIN (content_tsv)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS idx_messages_content_tsv",
    "ALTER TABLE messages DROP COLUMN IF EXISTS content_tsv",
];

const SQLITE_UP: &[&str] = &[
    "CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(\
     content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN \
     INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN \
     INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF content ON messages BEGIN \
     INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); \
     INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "DROP TRIGGER IF EXISTS messages_fts_insert",
    "DROP TABLE IF EXISTS messages_fts",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => run(manager, POSTGRES_UP).await,
            DatabaseBackend::Sqlite => run(manager, SQLITE_UP).await,
            other => Err(DbErr::Migration(format!("search is not supported on {other:?}"))),
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => run(manager, POSTGRES_DOWN).await,
            DatabaseBackend::Sqlite => run(manager, SQLITE_DOWN).await,
            _ => Ok(()),
        }
    }
}
