//! Fan-out across instances over Redis pub/sub: each delivery is handed to this
//! instance's hub at once and published on one channel; every instance hands
//! the deliveries of the others to its own hub, whose per-room pump restores seq
//! order and fills any gap from the database.

use std::sync::Arc;

use chat_domain::Delivery;
use chat_domain::ports::FanOut;
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::RedisConnection;

/// Deliveries waiting to be published; beyond this they are dropped (sockets
/// on other instances recover messages from storage by seq).
const PUBLISH_QUEUE: usize = 16_384;

#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: String,
    #[serde(flatten)]
    delivery: Delivery,
}

pub struct RedisFanOut {
    local: Arc<dyn FanOut>,
    outbox: mpsc::Sender<Delivery>,
}

impl RedisFanOut {
    /// Starts the publisher and subscriber tasks for instance `instance_id`.
    pub async fn start(
        redis: &RedisConnection,
        instance_id: String,
        local: Arc<dyn FanOut>,
    ) -> Self {
        let channel = redis.key("events");
        let (outbox, queued) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(publish_loop(
            redis.client.clone(),
            channel.clone(),
            instance_id.clone(),
            queued,
        ));

        let mut messages = redis.subscriber.message_rx();
        let mut reconnects = redis.subscriber.reconnect_rx();
        if let Err(e) = redis.subscriber.subscribe(channel.clone()).await {
            // manage_subscriptions() subscribes again once Redis is back.
            tracing::warn!(error = %e, "cannot subscribe to the Redis event channel yet");
        }
        // SUBSCRIBE returns once written; a round trip makes sure it took effect.
        let _: Result<Value, _> = redis.subscriber.ping(None).await;
        let receiver_local = local.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(message) => deliver(&*receiver_local, &instance_id, &message.value),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "Redis event receiver lagged; catching up from storage");
                            receiver_local.catch_up();
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    reconnected = reconnects.recv() => match reconnected {
                        Ok(_) => {
                            tracing::info!("Redis reconnected; catching up from storage");
                            receiver_local.catch_up();
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
        Self { local, outbox }
    }
}

impl FanOut for RedisFanOut {
    fn publish(&self, delivery: Delivery) {
        self.local.publish(delivery.clone());
        if self.outbox.try_send(delivery).is_err() {
            tracing::warn!("Redis publish queue full; a delivery to other instances was dropped");
        }
    }

    fn catch_up(&self) {
        self.local.catch_up();
    }
}

fn deliver(local: &dyn FanOut, instance_id: &str, value: &Value) {
    let Some(bytes) = value.as_bytes() else {
        return;
    };
    match serde_json::from_slice::<Envelope>(bytes) {
        Ok(envelope) if envelope.origin == instance_id => {}
        Ok(envelope) => local.publish(envelope.delivery),
        Err(e) => tracing::warn!(error = %e, "ignoring a malformed event on the Redis channel"),
    }
}

async fn publish_loop(
    client: Client,
    channel: String,
    origin: String,
    mut queued: mpsc::Receiver<Delivery>,
) {
    while let Some(delivery) = queued.recv().await {
        let envelope = Envelope { origin: origin.clone(), delivery };
        let Ok(payload) = serde_json::to_vec(&envelope) else {
            continue;
        };
        if let Err(e) = client.publish::<(), _, _>(channel.as_str(), payload).await {
            tracing::warn!(error = %e, "cannot publish an event to Redis");
        }
    }
}
