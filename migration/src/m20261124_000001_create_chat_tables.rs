//! Rooms, their members and their messages, with the indexes the queries need:
//! history pages walk `(room_id, seq)`, idempotency looks up
//! `(room_id, user_id, client_msg_id)`, and the seed asks for `room_id`, `user_id`
//! and `created_at`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rooms::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Rooms::Id))
                    .col(string_len(Rooms::Name, 100))
                    .col(text_null(Rooms::Description))
                    .col(boolean(Rooms::IsActive).default(true))
                    .col(boolean(Rooms::IsPrivate).default(false))
                    .col(string_len_null(Rooms::CreatedBy, 64))
                    .col(big_integer(Rooms::LastSeq).default(0))
                    .col(timestamp_with_time_zone(Rooms::CreatedAt))
                    .col(timestamp_with_time_zone(Rooms::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Rooms::DeletedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rooms_active_id")
                    .table(Rooms::Table)
                    .col(Rooms::IsActive)
                    .col(Rooms::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RoomMembers::Table)
                    .if_not_exists()
                    .col(big_integer(RoomMembers::RoomId))
                    .col(string_len(RoomMembers::UserId, 64))
                    .col(timestamp_with_time_zone(RoomMembers::AddedAt))
                    .primary_key(Index::create().col(RoomMembers::RoomId).col(RoomMembers::UserId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_members_room")
                            .from(RoomMembers::Table, RoomMembers::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_room_members_user")
                    .table(RoomMembers::Table)
                    .col(RoomMembers::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Messages::Id))
                    .col(big_integer(Messages::RoomId))
                    .col(big_integer(Messages::Seq))
                    .col(string_len(Messages::UserId, 64))
                    .col(text(Messages::Content))
                    .col(string_len(Messages::MessageType, 16).default("text"))
                    .col(string_len_null(Messages::ClientMsgId, 64))
                    .col(boolean(Messages::Edited).default(false))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(timestamp_with_time_zone(Messages::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Messages::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_room")
                            .from(Messages::Table, Messages::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // The seq index doubles as the room_id index: room_id is its leading column.
        let indexes = [
            Index::create()
                .name("uq_messages_room_seq")
                .table(Messages::Table)
                .col(Messages::RoomId)
                .col(Messages::Seq)
                .unique()
                .if_not_exists()
                .to_owned(),
            Index::create()
                .name("uq_messages_room_user_client_msg_id")
                .table(Messages::Table)
                .col(Messages::RoomId)
                .col(Messages::UserId)
                .col(Messages::ClientMsgId)
                .unique()
                .if_not_exists()
                .to_owned(),
            Index::create()
                .name("idx_messages_user_id")
                .table(Messages::Table)
                .col(Messages::UserId)
                .if_not_exists()
                .to_owned(),
            Index::create()
                .name("idx_messages_created_at")
                .table(Messages::Table)
                .col(Messages::CreatedAt)
                .if_not_exists()
                .to_owned(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Messages::Table).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(RoomMembers::Table).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(Rooms::Table).if_exists().to_owned()).await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    Id,
    Name,
    Description,
    IsActive,
    IsPrivate,
    CreatedBy,
    LastSeq,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum RoomMembers {
    Table,
    RoomId,
    UserId,
    AddedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    RoomId,
    Seq,
    UserId,
    Content,
    MessageType,
    ClientMsgId,
    Edited,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}
