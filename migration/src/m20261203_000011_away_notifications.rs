//! Notifications for people who are away: `room_notifications` holds one row per
//! user and room that was sent `notification_requested` and has not read the room
//! or opened a socket to it since (the coalescing rule: at most one until then).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to `rooms`, for the reason `room_reads` has none: a key
        // share lock on the room would wait on its writers' `FOR UPDATE`.
        manager
            .create_table(
                Table::create()
                    .table(RoomNotifications::Table)
                    .if_not_exists()
                    .col(big_integer(RoomNotifications::RoomId))
                    .col(string_len(RoomNotifications::UserId, 64))
                    .col(big_integer(RoomNotifications::Seq))
                    .col(timestamp_with_time_zone(RoomNotifications::NotifiedAt))
                    .primary_key(
                        Index::create()
                            .col(RoomNotifications::RoomId)
                            .col(RoomNotifications::UserId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomNotifications::Table).if_exists().to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RoomNotifications {
    Table,
    RoomId,
    UserId,
    Seq,
    NotifiedAt,
}
