//! Inbound commands: other GrainTrade services post messages (`post_message`) and
//! offers (`post_offer`) into rooms through the durable queue `chat.commands`
//! (PROTOCOL.md). A command is acknowledged only
//! after its message is committed (and so broadcast and evented); `client_msg_id`
//! makes redelivery harmless. A command that can never succeed (bad JSON, unknown
//! command or room, invalid content) is published to the dead-letter exchange
//! `chat.commands.dlx` with the reason in the `x-reject-reason` header, confirmed,
//! then acknowledged — never retried forever. Storage outages requeue the command.

use std::time::Duration;

use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicNackArguments, BasicPublishArguments,
    BasicQosArguments, Channel, ConfirmSelectArguments, ConsumerMessage, ExchangeDeclareArguments,
    QueueBindArguments, QueueDeclareArguments,
};
use amqprs::connection::Connection;
use amqprs::{BasicProperties, FieldName, FieldTable, FieldValue};
use chat_domain::offer::TermsInput;
use chat_domain::service::OfferInput;
use chat_domain::{
    Actor, ChatService, CorrelationId, DomainError, MessageInput, Role, RoomId, UserId,
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::confirms::{Confirm, ConfirmCallback};

#[derive(Deserialize)]
struct PostMessage {
    room_id: i64,
    content: String,
    message_type: Option<String>,
    user_id: String,
    client_msg_id: Option<String>,
}

/// An offer made in a room on a user's behalf (`"command": "post_offer"`).
#[derive(Deserialize)]
struct PostOffer {
    room_id: i64,
    user_id: String,
    side: Option<String>,
    commodity: Option<String>,
    quantity: Option<String>,
    unit: Option<String>,
    price: Option<String>,
    currency: Option<String>,
    incoterm: Option<String>,
    delivery_place: Option<String>,
    delivery_from: Option<String>,
    delivery_to: Option<String>,
    note: Option<String>,
    expires_at: Option<String>,
    to_user_id: Option<String>,
    item_id: Option<String>,
    client_msg_id: Option<String>,
}

impl PostOffer {
    fn into_input(self) -> OfferInput {
        OfferInput {
            terms: TermsInput {
                side: self.side,
                commodity: self.commodity,
                quantity: self.quantity,
                unit: self.unit,
                price: self.price,
                currency: self.currency,
                incoterm: self.incoterm,
                delivery_place: self.delivery_place,
                delivery_from: self.delivery_from,
                delivery_to: self.delivery_to,
                note: self.note,
            },
            expires_at: self.expires_at,
            to_user_id: self.to_user_id,
            item_id: self.item_id,
            client_msg_id: self.client_msg_id,
        }
    }
}

/// Why a command was dead-lettered, or that it should be retried.
enum Outcome {
    Done,
    Poison(String),
    Retry(String),
}

pub struct CommandConsumer {
    url: String,
    queue: String,
    chat: ChatService,
}

impl CommandConsumer {
    /// Consumes `queue` in the background, reconnecting with backoff.
    pub fn spawn(url: String, queue: String, chat: ChatService) {
        tokio::spawn(Self { url, queue, chat }.run());
    }

    fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.queue)
    }

    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.consume().await {
                Ok(()) => tracing::warn!("command consumer lost RabbitMQ; reconnecting"),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "command consumer cannot reach RabbitMQ")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn consume(&self) -> Result<(), amqprs::error::Error> {
        let arguments = super::url::connection_arguments(&self.url)?;
        let connection = Connection::open(&arguments).await?;
        let channel = connection.open_channel(None).await?;
        let (tx, mut confirms) = mpsc::channel(64);
        channel.register_callback(ConfirmCallback { tx }).await?;
        let dlx = self.dead_letter_exchange();
        let dead = format!("{}.dead", self.queue);
        channel
            .exchange_declare(ExchangeDeclareArguments::new(&dlx, "fanout").durable(true).finish())
            .await?;
        channel.queue_declare(QueueDeclareArguments::new(&dead).durable(true).finish()).await?;
        channel.queue_bind(QueueBindArguments::new(&dead, &dlx, "")).await?;
        let mut queue_arguments = FieldTable::new();
        queue_arguments
            .insert(field_name("x-dead-letter-exchange")?, FieldValue::from(dlx.clone()));
        channel
            .queue_declare(
                QueueDeclareArguments::new(&self.queue)
                    .durable(true)
                    .arguments(queue_arguments)
                    .finish(),
            )
            .await?;
        channel.confirm_select(ConfirmSelectArguments::default()).await?;
        channel.basic_qos(BasicQosArguments::new(0, 32, false)).await?;
        let (_, mut deliveries) = channel
            .basic_consume_rx(BasicConsumeArguments::new(&self.queue, "").manual_ack(true).finish())
            .await?;
        tracing::info!(queue = %self.queue, "consuming chat commands");
        let mut next_tag = 1u64;
        while let Some(delivery) = deliveries.recv().await {
            self.handle(&channel, &mut confirms, &mut next_tag, delivery).await?;
        }
        let _ = connection.close().await;
        Ok(())
    }

    async fn handle(
        &self,
        channel: &Channel,
        confirms: &mut mpsc::Receiver<Confirm>,
        next_tag: &mut u64,
        delivery: ConsumerMessage,
    ) -> Result<(), amqprs::error::Error> {
        let Some(deliver) = delivery.deliver else { return Ok(()) };
        let body = delivery.content.unwrap_or_default();
        let tag = deliver.delivery_tag();
        let correlation = delivery.basic_properties.as_ref().and_then(correlation_of);
        let span = tracing::info_span!(
            "command",
            request_id = correlation.as_ref().map(CorrelationId::as_str).unwrap_or("-")
        );
        match self.execute(&body, correlation).instrument(span).await {
            Outcome::Done => channel.basic_ack(BasicAckArguments::new(tag, false)).await,
            Outcome::Retry(reason) => {
                tracing::warn!(%reason, "command not executed now; requeued");
                tokio::time::sleep(Duration::from_secs(1)).await;
                channel.basic_nack(BasicNackArguments::new(tag, false, true)).await
            }
            Outcome::Poison(reason) => {
                tracing::warn!(%reason, "command dead-lettered");
                let mut headers = FieldTable::new();
                headers.insert(field_name("x-reject-reason")?, FieldValue::from(reason));
                headers
                    .insert(field_name("x-original-queue")?, FieldValue::from(self.queue.clone()));
                let properties = BasicProperties::default()
                    .with_persistence(true)
                    .with_content_type("application/json")
                    .with_headers(headers)
                    .finish();
                channel
                    .basic_publish(
                        properties,
                        body,
                        BasicPublishArguments::new(&self.dead_letter_exchange(), ""),
                    )
                    .await?;
                let published = *next_tag;
                *next_tag += 1;
                // Only acknowledge once the dead letter is safely with the broker.
                let confirmed = loop {
                    match tokio::time::timeout(Duration::from_secs(10), confirms.recv()).await {
                        Ok(Some(c)) if c.tag == published || (c.multiple && c.tag >= published) => {
                            break c.ack;
                        }
                        Ok(Some(_)) => continue,
                        _ => break false,
                    }
                };
                if confirmed {
                    channel.basic_ack(BasicAckArguments::new(tag, false)).await
                } else {
                    channel.basic_nack(BasicNackArguments::new(tag, false, true)).await
                }
            }
        }
    }

    async fn execute(&self, body: &[u8], correlation: Option<CorrelationId>) -> Outcome {
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => return Outcome::Poison(format!("invalid command: {e}")),
        };
        match value.get("command").and_then(serde_json::Value::as_str) {
            Some("post_offer") => match serde_json::from_value::<PostOffer>(value) {
                Ok(command) => self.post_offer(command, correlation).await,
                Err(e) => Outcome::Poison(format!("invalid command: {e}")),
            },
            Some(other) if other != "post_message" => {
                Outcome::Poison(format!("unknown command {other:?}"))
            }
            None => Outcome::Poison("invalid command: missing field `command`".to_owned()),
            Some(_) => match serde_json::from_value::<PostMessage>(value) {
                Ok(command) => self.post_message(command, correlation).await,
                Err(e) => Outcome::Poison(format!("invalid command: {e}")),
            },
        }
    }

    async fn post_offer(&self, command: PostOffer, correlation: Option<CorrelationId>) -> Outcome {
        let (actor, room) = match trusted(&command.user_id, command.room_id, correlation) {
            Ok(found) => found,
            Err(e) => return Outcome::Poison(e.to_string()),
        };
        settle(self.chat.post_offer(&actor, room, command.into_input()).await.map(|_| ()))
    }

    async fn post_message(
        &self,
        command: PostMessage,
        correlation: Option<CorrelationId>,
    ) -> Outcome {
        let (actor, room) = match trusted(&command.user_id, command.room_id, correlation) {
            Ok(found) => found,
            Err(e) => return Outcome::Poison(e.to_string()),
        };
        let input = MessageInput {
            content: command.content,
            message_type: command.message_type,
            client_msg_id: command.client_msg_id,
            reply_to: None,
        };
        settle(self.chat.post_message(&actor, room, input).await.map(|_| ()))
    }
}

/// The command's author and room; the broker is an internal channel, so its
/// commands act as a trusted service.
fn trusted(
    user: &str,
    room: i64,
    correlation: Option<CorrelationId>,
) -> Result<(Actor, RoomId), DomainError> {
    let user = UserId::parse(user)?;
    let room = RoomId::new(room)?;
    Ok((Actor::new(user, vec![Role::Service, Role::Admin]).with_correlation(correlation), room))
}

/// Done, retried on an outage, dead-lettered otherwise.
fn settle(result: Result<(), DomainError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Done,
        Err(e @ (DomainError::Unavailable(_) | DomainError::Internal(_))) => {
            Outcome::Retry(e.to_string())
        }
        Err(e) => Outcome::Poison(e.to_string()),
    }
}

/// The command's `x-request-id` header, else its AMQP `message_id`: what the
/// events of the message it posts carry along.
fn correlation_of(properties: &BasicProperties) -> Option<CorrelationId> {
    let from_header = properties.headers().and_then(|headers| {
        let name = FieldName::try_from(super::relay::REQUEST_ID_HEADER).ok()?;
        match headers.get(&name)? {
            FieldValue::S(value) => CorrelationId::new(&value.to_string()),
            _ => None,
        }
    });
    from_header.or_else(|| properties.message_id().and_then(|id| CorrelationId::new(id)))
}

fn field_name(name: &str) -> Result<FieldName, amqprs::error::Error> {
    FieldName::try_from(name).map_err(|e| amqprs::error::Error::ChannelUseError(format!("{e:?}")))
}
