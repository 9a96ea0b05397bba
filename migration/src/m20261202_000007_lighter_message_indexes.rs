//! Fewer indexes for every new message to update. `messages(user_id)` served no
//! query (per-user filters always come with a room or a full-text match), and on
//! Postgres `messages(created_at)` — read only by the archiving job — becomes a
//! BRIN index: a few pages summarising ranges of an append-mostly table instead
//! of a B-tree entry per row. SQLite keeps its B-tree (it has no BRIN).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_messages_user_id").await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("DROP INDEX IF EXISTS idx_messages_created_at").await?;
            db.execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_messages_created_at_brin ON messages \
                 USING BRIN (created_at) WITH (autosummarize = on)",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("DROP INDEX IF EXISTS idx_messages_created_at_brin").await?;
            db.execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_messages_created_at ON messages (created_at)",
            )
            .await?;
        }
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_messages_user_id ON messages (user_id)",
        )
        .await?;
        Ok(())
    }
}
