//! GrainTrade item conversations: a room may belong to an item (`item_id`,
//! searchable) and be the one conversation of an unordered pair of users about
//! it (`conversation_key`, unique, so concurrent first messages make one room).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .add_column(string_len_null(Rooms::ItemId, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .add_column(string_len_null(Rooms::ConversationKey, 200))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rooms_item_id")
                    .table(Rooms::Table)
                    .col(Rooms::ItemId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_rooms_conversation_key")
                    .table(Rooms::Table)
                    .col(Rooms::ConversationKey)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop().name("uq_rooms_conversation_key").table(Rooms::Table).to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name("idx_rooms_item_id").table(Rooms::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table(Rooms::Table).drop_column(Rooms::ConversationKey).to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(Rooms::Table).drop_column(Rooms::ItemId).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    ItemId,
    ConversationKey,
}
