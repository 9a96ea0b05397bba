//! Database schema migrations for the chat service, for PostgreSQL and SQLite alike.
//! The service applies pending ones at start-up (`RUN_MIGRATIONS`); the `migration`
//! binary runs them by hand (`up`, `down`, `status`, …).

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_chat_tables;
mod m20261124_000002_create_outbox;
mod m20261124_000003_message_search;
mod m20261124_000004_item_conversations;
mod m20261128_000005_outbox_request_id;
mod m20261128_000006_messages_archive;

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
        ]
    }
}
