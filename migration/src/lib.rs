//! Database schema migrations for the chat service, for PostgreSQL and SQLite alike.
//! The service applies pending ones at start-up (`RUN_MIGRATIONS`); operators run
//! them by hand with `chat-room migrate up|down|status|fresh`.

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Schema, Statement};

mod m20261124_000001_create_chat_tables;
mod m20261124_000002_create_outbox;
mod m20261124_000003_message_search;
mod m20261124_000004_item_conversations;
mod m20261128_000005_outbox_request_id;
mod m20261128_000006_messages_archive;
mod m20261202_000007_lighter_message_indexes;
mod m20261203_000008_read_markers;
mod m20261203_000011_away_notifications;
mod m20261204_000009_replies_reactions_versions;
mod m20261204_000010_offers;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_chat_tables::Migration),
            Box::new(m20261124_000002_create_outbox::Migration),
            Box::new(m20261124_000003_message_search::Migration),
            Box::new(m20261124_000004_item_conversations::Migration),
            Box::new(m20261128_000005_outbox_request_id::Migration),
            Box::new(m20261128_000006_messages_archive::Migration),
            Box::new(m20261202_000007_lighter_message_indexes::Migration),
            Box::new(m20261203_000008_read_markers::Migration),
            Box::new(m20261204_000009_replies_reactions_versions::Migration),
            Box::new(m20261204_000010_offers::Migration),
            Box::new(m20261203_000011_away_notifications::Migration),
        ]
    }

    /// Creates the bookkeeping table only when it is missing. sea-orm-migration
    /// installs it before each step of `up` (four times per start-up) with
    /// `CREATE TABLE IF NOT EXISTS`, and Postgres answers every one on an existing
    /// table with a NOTICE that sqlx logs at `info`: "relation "seaql_migrations"
    /// already exists, skipping".
    async fn install<C>(db: &C) -> Result<(), DbErr>
    where
        C: ConnectionTrait,
    {
        if migration_table_exists(db).await? {
            return Ok(());
        }
        let backend = db.get_database_backend();
        let mut create = Schema::new(backend)
            .create_table_from_entity(sea_orm_migration::seaql_migrations::Entity);
        // Two processes may get here together; the loser's CREATE must not fail.
        create.table(Self::migration_table_name()).if_not_exists();
        db.execute(&create).await?;
        Ok(())
    }
}

/// Whether `seaql_migrations` exists under the unqualified name the migrator
/// uses (Postgres: looked up through the search path).
async fn migration_table_exists<C: ConnectionTrait>(db: &C) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT to_regclass('seaql_migrations') IS NOT NULL AS present",
        _ => {
            "SELECT COUNT(*) > 0 AS present FROM sqlite_master \
             WHERE type = 'table' AND name = 'seaql_migrations'"
        }
    };
    let row = db.query_one_raw(Statement::from_string(backend, sql)).await?;
    match row {
        Some(row) => row.try_get("", "present"),
        None => Ok(false),
    }
}
