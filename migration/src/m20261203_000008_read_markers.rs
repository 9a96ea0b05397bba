//! Read markers and the inbox: `room_reads` holds each user's forward-only read
//! seq per room (a row with `read_at` NULL is a participant who posted but never
//! read), and `rooms.last_activity_at` orders a user's rooms by their newest message.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to `rooms`: inserting a row would take a key-share lock
        // on the room, which every batch of new messages holds `FOR UPDATE`, so a
        // first read marker would wait for (or deadlock with) the room's writers.
        // Rows are only ever written for active rooms (the statements join them),
        // and rooms are never removed (deletes are soft).
        manager
            .create_table(
                Table::create()
                    .table(RoomReads::Table)
                    .if_not_exists()
                    .col(big_integer(RoomReads::RoomId))
                    .col(string_len(RoomReads::UserId, 64))
                    .col(big_integer(RoomReads::Seq).default(0))
                    .col(timestamp_with_time_zone_null(RoomReads::ReadAt))
                    .primary_key(Index::create().col(RoomReads::RoomId).col(RoomReads::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_room_reads_user")
                    .table(RoomReads::Table)
                    .col(RoomReads::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .add_column(timestamp_with_time_zone_null(Rooms::LastActivityAt))
                    .to_owned(),
            )
            .await?;
        // The inbox gathers a user's rooms from its own rows: memberships and
        // participations by `user_id`, created rooms by `created_by`. No index
        // on `last_activity_at`: every batch updates it, and an indexed column
        // would cost each batch an index entry (and Postgres its HOT updates).
        manager
            .create_index(
                Index::create()
                    .name("idx_rooms_created_by")
                    .table(Rooms::Table)
                    .col(Rooms::CreatedBy)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE rooms SET last_activity_at = COALESCE(
                (SELECT max(m.created_at) FROM messages AS m WHERE m.room_id = rooms.id),
                (SELECT max(a.created_at) FROM messages_archive AS a WHERE a.room_id = rooms.id),
                rooms.created_at)",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO room_reads (room_id, user_id)
             SELECT room_id, user_id FROM (
                 SELECT room_id, user_id FROM messages
                 UNION SELECT room_id, user_id FROM messages_archive
             ) AS posted
             WHERE true
             ON CONFLICT DO NOTHING",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("idx_rooms_created_by").table(Rooms::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table(Rooms::Table).drop_column(Rooms::LastActivityAt).to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table(RoomReads::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    CreatedBy,
    LastActivityAt,
}

#[derive(DeriveIden)]
enum RoomReads {
    Table,
    RoomId,
    UserId,
    Seq,
    ReadAt,
}
