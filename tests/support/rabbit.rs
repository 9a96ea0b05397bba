//! Test access to RabbitMQ: a tap (an exclusive queue bound to `chat.events`)
//! that reads the service's events as another GrainTrade service would.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use amqprs::channel::{
    BasicConsumeArguments, Channel, ConsumerMessage, ExchangeDeclareArguments, QueueBindArguments,
    QueueDeclareArguments,
};
use amqprs::connection::Connection;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

/// How long a test waits for an event that should come.
pub const EVENT_WAIT: Duration = Duration::from_secs(30);

pub struct EventTap {
    _connection: Connection,
    _channel: Channel,
    deliveries: UnboundedReceiver<ConsumerMessage>,
}

/// One event as a consumer receives it.
#[derive(Debug, Clone)]
pub struct Tapped {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub delivery_mode: Option<u8>,
    pub content_type: Option<String>,
    /// The `x-request-id` header: the request that caused the event.
    pub request_id: Option<String>,
    pub body: Value,
}

impl EventTap {
    pub async fn open(url: &str) -> Self {
        let arguments = chat_infra::rabbit::connection_arguments(url).expect("amqp url");
        let connection = Connection::open(&arguments).await.expect("RabbitMQ connects");
        let channel = connection.open_channel(None).await.expect("channel opens");
        channel
            .exchange_declare(
                ExchangeDeclareArguments::new("chat.events", "topic").durable(true).finish(),
            )
            .await
            .expect("exchange declared");
        let (queue, _, _) = channel
            .queue_declare(QueueDeclareArguments::exclusive_server_named())
            .await
            .expect("queue declared")
            .expect("queue name");
        channel
            .queue_bind(QueueBindArguments::new(&queue, "chat.events", "#"))
            .await
            .expect("queue bound");
        let (_, deliveries) = channel
            .basic_consume_rx(BasicConsumeArguments::new(&queue, "").auto_ack(true).finish())
            .await
            .expect("consuming");
        Self { _connection: connection, _channel: channel, deliveries }
    }

    /// The next event whose `user_id` starts with `user_prefix` (other tests
    /// share the exchange; each uses its own user names).
    pub async fn next_for(&mut self, user_prefix: &str) -> Tapped {
        self.try_next_for(user_prefix, EVENT_WAIT).await.expect("an event arrives in time")
    }

    /// [`EventTap::next_for`], or `None` when none came within `wait`.
    pub async fn try_next_for(&mut self, user_prefix: &str, wait: Duration) -> Option<Tapped> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.deliveries.recv())
                .await
                .ok()?
                .expect("the tap is open");
            let body: Value =
                serde_json::from_slice(message.content.as_deref().unwrap_or_default())
                    .expect("events are JSON");
            if !body["user_id"].as_str().is_some_and(|u| u.starts_with(user_prefix)) {
                continue;
            }
            let properties = message.basic_properties.expect("properties");
            let request_id = properties.headers().and_then(|headers| {
                let name = amqprs::FieldName::try_from("x-request-id").expect("header name");
                match headers.get(&name)? {
                    amqprs::FieldValue::S(value) => Some(value.to_string()),
                    other => panic!("x-request-id is not a string: {other:?}"),
                }
            });
            return Some(Tapped {
                routing_key: message.deliver.expect("deliver").routing_key().clone(),
                message_id: properties.message_id().cloned(),
                delivery_mode: properties.delivery_mode(),
                content_type: properties.content_type().cloned(),
                request_id,
                body,
            });
        }
    }

    /// Reads `message_created` events of `user_prefix` until one has come for
    /// each of `message_ids`; panics naming those whose event never came, or on
    /// an event of another message or a second event id for one message.
    pub async fn expect_message_created(&mut self, user_prefix: &str, message_ids: &HashSet<i64>) {
        let mut events: HashMap<i64, String> = HashMap::new();
        while events.len() < message_ids.len() {
            let Some(event) = self.try_next_for(user_prefix, EVENT_WAIT).await else {
                let mut missing: Vec<&i64> =
                    message_ids.iter().filter(|id| !events.contains_key(id)).collect();
                missing.sort();
                panic!("no message_created event within {EVENT_WAIT:?} for messages {missing:?}");
            };
            if event.body["event_type"] != "message_created" {
                continue;
            }
            let id = event.body["message_id"].as_i64().expect("message_id");
            assert!(
                message_ids.contains(&id),
                "an event of a message not stored: {:?}",
                event.body
            );
            let event_id = event.body["event_id"].as_str().expect("event_id").to_owned();
            let first = events.entry(id).or_insert_with(|| event_id.clone());
            assert_eq!(*first, event_id, "message {id} has one event (redeliveries keep the id)");
        }
    }
}

/// Publishes commands to the service's command queue and reads its dead letters.
pub struct CommandQueue {
    _connection: Connection,
    channel: Channel,
    queue: String,
    dead: UnboundedReceiver<ConsumerMessage>,
}

impl CommandQueue {
    /// Declares the queue as the service does (so publishing never races its
    /// start-up) and starts reading `{queue}.dead`.
    pub async fn open(url: &str, queue: &str) -> Self {
        use amqprs::{FieldName, FieldTable, FieldValue};
        let arguments = chat_infra::rabbit::connection_arguments(url).expect("amqp url");
        let connection = Connection::open(&arguments).await.expect("RabbitMQ connects");
        let channel = connection.open_channel(None).await.expect("channel opens");
        let dlx = format!("{queue}.dlx");
        let dead = format!("{queue}.dead");
        channel
            .exchange_declare(ExchangeDeclareArguments::new(&dlx, "fanout").durable(true).finish())
            .await
            .unwrap();
        channel
            .queue_declare(QueueDeclareArguments::new(&dead).durable(true).finish())
            .await
            .unwrap();
        channel.queue_bind(QueueBindArguments::new(&dead, &dlx, "")).await.unwrap();
        let mut queue_arguments = FieldTable::new();
        queue_arguments.insert(
            FieldName::try_from("x-dead-letter-exchange").unwrap(),
            FieldValue::from(dlx.clone()),
        );
        channel
            .queue_declare(
                QueueDeclareArguments::new(queue).durable(true).arguments(queue_arguments).finish(),
            )
            .await
            .unwrap();
        let (_, dead) = channel
            .basic_consume_rx(BasicConsumeArguments::new(&dead, "").auto_ack(true).finish())
            .await
            .unwrap();
        Self { _connection: connection, channel, queue: queue.to_owned(), dead }
    }

    pub async fn send(&self, body: &str) {
        self.send_with(body, None).await;
    }

    /// Sends a command with an `x-request-id` header, if given.
    pub async fn send_with(&self, body: &str, request_id: Option<&str>) {
        use amqprs::channel::BasicPublishArguments;
        use amqprs::{BasicProperties, FieldName, FieldTable, FieldValue};
        let mut properties = BasicProperties::default();
        properties.with_persistence(true);
        if let Some(id) = request_id {
            let mut headers = FieldTable::new();
            headers.insert(
                FieldName::try_from("x-request-id").unwrap(),
                FieldValue::from(id.to_owned()),
            );
            properties.with_headers(headers);
        }
        let properties = properties.finish();
        self.channel
            .basic_publish(
                properties,
                body.as_bytes().to_vec(),
                BasicPublishArguments::new("", &self.queue),
            )
            .await
            .expect("command published");
    }

    /// The next dead letter: its body and `x-reject-reason` header.
    pub async fn next_dead_letter(&mut self) -> (String, String) {
        let message = tokio::time::timeout(EVENT_WAIT, self.dead.recv())
            .await
            .expect("a dead letter arrives in time")
            .expect("the dead-letter consumer is open");
        let body = String::from_utf8(message.content.unwrap_or_default()).unwrap();
        let properties = message.basic_properties.expect("properties");
        let headers = properties.headers().expect("headers");
        let reason = format!("{:?}", headers);
        (body, reason)
    }
}

/// Deletes a service's command queue, its dead-letter queue and exchange (what
/// `chat.commands`'s consumer declared), so test runs leave no durable queues.
pub async fn delete_command_queue(url: &str, queue: &str) {
    use amqprs::channel::{ExchangeDeleteArguments, QueueDeleteArguments};
    let arguments = chat_infra::rabbit::connection_arguments(url).expect("amqp url");
    let connection = Connection::open(&arguments).await.expect("RabbitMQ connects");
    let channel = connection.open_channel(None).await.expect("channel opens");
    for name in [queue.to_owned(), format!("{queue}.dead")] {
        channel.queue_delete(QueueDeleteArguments::new(&name)).await.expect("queue deleted");
    }
    channel
        .exchange_delete(ExchangeDeleteArguments::new(&format!("{queue}.dlx")))
        .await
        .expect("exchange deleted");
    let _ = channel.close().await;
    let _ = connection.close().await;
}
