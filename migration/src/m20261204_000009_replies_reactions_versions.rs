//! Replies, reactions and the versions of edited messages. Both message tables
//! (`messages`, `messages_archive`) gain `reply_to` (the id of the message
//! answered, or NULL) and `reactions` (the counts per key as a JSON object, kept
//! in step with `message_reactions` in the same transaction, so every read of a
//! message carries them without a join). `message_reactions` holds who reacted
//! with what; `message_versions` the texts an edit replaced.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign keys to `messages`: the archiver moves rows to
        // `messages_archive` (same ids), and a reply, a reaction or a version
        // stays attached to the message wherever it lives. SQLite alters one
        // column per statement.
        for table in [Messages::Table.into_iden(), MessagesArchive::Table.into_iden()] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table.clone())
                        .add_column(big_integer_null(Messages::ReplyTo))
                        .to_owned(),
                )
                .await?;
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(text(Messages::Reactions).default("{}"))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(MessageReactions::Table)
                    .if_not_exists()
                    .col(big_integer(MessageReactions::MessageId))
                    .col(string_len(MessageReactions::Key, 32))
                    .col(string_len(MessageReactions::UserId, 64))
                    .col(timestamp_with_time_zone(MessageReactions::CreatedAt))
                    // Once per user and key; a message's reactions are a prefix scan.
                    .primary_key(
                        Index::create()
                            .col(MessageReactions::MessageId)
                            .col(MessageReactions::Key)
                            .col(MessageReactions::UserId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MessageVersions::Table)
                    .if_not_exists()
                    .col(big_integer(MessageVersions::MessageId))
                    .col(integer(MessageVersions::Version))
                    .col(text(MessageVersions::Content))
                    // When this text became the message's: its creation or an edit.
                    .col(timestamp_with_time_zone(MessageVersions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(MessageVersions::MessageId)
                            .col(MessageVersions::Version),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageVersions::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(MessageReactions::Table).if_exists().to_owned())
            .await?;
        for table in [Messages::Table.into_iden(), MessagesArchive::Table.into_iden()] {
            for column in [Messages::Reactions, Messages::ReplyTo] {
                manager
                    .alter_table(Table::alter().table(table.clone()).drop_column(column).to_owned())
                    .await?;
            }
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    ReplyTo,
    Reactions,
}

#[derive(DeriveIden)]
enum MessagesArchive {
    Table,
}

#[derive(DeriveIden)]
enum MessageReactions {
    Table,
    MessageId,
    Key,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MessageVersions {
    Table,
    MessageId,
    Version,
    Content,
    CreatedAt,
}
