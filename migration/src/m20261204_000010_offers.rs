//! Offers: one row per structured trade proposal, linked to the `offer` message
//! that carries it. Quantities and prices are exact decimals: NUMERIC on
//! Postgres, TEXT on SQLite (whose NUMERIC would turn them into floats).

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let decimal = |name: Offers| {
            let mut column = ColumnDef::new(name);
            match manager.get_database_backend() {
                DbBackend::Postgres => column.decimal(),
                _ => column.text(),
            };
            column.not_null().to_owned()
        };
        // No foreign keys to `rooms` or `messages`, for the reason `room_reads`
        // has none: a key-share lock on the room would queue behind its writers.
        manager
            .create_table(
                Table::create()
                    .table(Offers::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Offers::Id))
                    .col(big_integer(Offers::RoomId))
                    .col(big_integer(Offers::MessageId))
                    .col(string_len(Offers::Status, 16))
                    .col(string_len(Offers::Side, 8))
                    .col(string_len(Offers::Commodity, 400))
                    .col(decimal(Offers::Quantity))
                    .col(string_len(Offers::Unit, 8))
                    .col(decimal(Offers::Price))
                    .col(string_len(Offers::Currency, 3))
                    .col(string_len_null(Offers::Incoterm, 3))
                    .col(text_null(Offers::DeliveryPlace))
                    .col(string_len_null(Offers::DeliveryFrom, 10))
                    .col(string_len_null(Offers::DeliveryTo, 10))
                    .col(text_null(Offers::Note))
                    .col(string_len_null(Offers::ItemId, 64))
                    .col(string_len(Offers::FromUserId, 64))
                    .col(string_len_null(Offers::ToUserId, 64))
                    .col(big_integer_null(Offers::ParentOfferId))
                    .col(timestamp_with_time_zone_null(Offers::ExpiresAt))
                    .col(string_len_null(Offers::RespondedBy, 64))
                    .col(timestamp_with_time_zone_null(Offers::RespondedAt))
                    .col(timestamp_with_time_zone(Offers::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_offers_message")
                    .table(Offers::Table)
                    .col(Offers::MessageId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // A room's offers newest first (with or without a status filter).
        manager
            .create_index(
                Index::create()
                    .name("idx_offers_room")
                    .table(Offers::Table)
                    .col(Offers::RoomId)
                    .col(Offers::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // The expiry job: open offers by expiry.
        manager
            .create_index(
                Index::create()
                    .name("idx_offers_due")
                    .table(Offers::Table)
                    .col(Offers::Status)
                    .col(Offers::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Offers::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Offers {
    Table,
    Id,
    RoomId,
    MessageId,
    Status,
    Side,
    Commodity,
    Quantity,
    Unit,
    Price,
    Currency,
    Incoterm,
    DeliveryPlace,
    DeliveryFrom,
    DeliveryTo,
    Note,
    ItemId,
    FromUserId,
    ToUserId,
    ParentOfferId,
    ExpiresAt,
    RespondedBy,
    RespondedAt,
    CreatedAt,
}
