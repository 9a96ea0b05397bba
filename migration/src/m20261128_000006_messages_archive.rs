//! The archive of old messages: the same columns as `messages` (ids and seqs
//! kept) plus when the row was archived. The archiving job moves rows here in
//! small batches; history pages and reads by id look in both tables. The
//! indexes serve history pages `(room_id, seq)` and the idempotency look-up.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MessagesArchive::Table)
                    .if_not_exists()
                    // The message's own id: not generated here.
                    .col(big_integer(MessagesArchive::Id).primary_key())
                    .col(big_integer(MessagesArchive::RoomId))
                    .col(big_integer(MessagesArchive::Seq))
                    .col(string_len(MessagesArchive::UserId, 64))
                    .col(text(MessagesArchive::Content))
                    .col(string_len(MessagesArchive::MessageType, 16).default("text"))
                    .col(string_len_null(MessagesArchive::ClientMsgId, 64))
                    .col(boolean(MessagesArchive::Edited).default(false))
                    .col(timestamp_with_time_zone(MessagesArchive::CreatedAt))
                    .col(timestamp_with_time_zone(MessagesArchive::UpdatedAt))
                    .col(timestamp_with_time_zone_null(MessagesArchive::DeletedAt))
                    .col(timestamp_with_time_zone(MessagesArchive::ArchivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_archive_room")
                            .from(MessagesArchive::Table, MessagesArchive::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        let indexes = [
            Index::create()
                .name("uq_messages_archive_room_seq")
                .table(MessagesArchive::Table)
                .col(MessagesArchive::RoomId)
                .col(MessagesArchive::Seq)
                .unique()
                .if_not_exists()
                .to_owned(),
            Index::create()
                .name("uq_messages_archive_room_user_client_msg_id")
                .table(MessagesArchive::Table)
                .col(MessagesArchive::RoomId)
                .col(MessagesArchive::UserId)
                .col(MessagesArchive::ClientMsgId)
                .unique()
                .if_not_exists()
                .to_owned(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MessagesArchive::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum MessagesArchive {
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
    ArchivedAt,
}
