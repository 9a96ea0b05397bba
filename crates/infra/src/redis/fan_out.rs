//! Fan-out across instances over Redis pub/sub: each delivery is handed to this
//! instance's hub at once and published on one channel — the deliveries queued
//! meanwhile together, in order, as one Redis message; every instance hands the
//! deliveries of the others to its own hub, whose per-room pump restores seq
//! order and fills any gap from the database.

use std::sync::Arc;

use chat_domain::Delivery;
use chat_domain::ports::FanOut;
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{RedisConnection, RedisGate};

/// Deliveries waiting to be published; beyond this they are dropped (sockets
/// on other instances recover messages from storage by seq).
const PUBLISH_QUEUE: usize = 16_384;

/// Deliveries published together per Redis message, at most.
const PUBLISH_BATCH: usize = 256;

/// What goes over the channel: the deliveries of one instance, in order.
#[derive(Serialize)]
struct Envelope<'a> {
    origin: &'a str,
    deliveries: &'a [Delivery],
}

/// An envelope as read.
#[derive(Deserialize)]
struct Batch {
    origin: String,
    deliveries: Vec<Delivery>,
}

/// One delivery as the previous version published it (instances of both may
/// run during a rolling update).
#[derive(Deserialize)]
struct Single {
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
            redis.gate("fan_out"),
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
        let own = own_prefix(&instance_id);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(message) => deliver(&*receiver_local, &own, &message.value),
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

fn deliver(local: &dyn FanOut, own_prefix: &[u8], value: &Value) {
    let Some(bytes) = value.as_bytes() else {
        return;
    };
    // This instance's own envelopes come back too: recognised by their first
    // bytes (`origin` is serialized first) and not parsed at all.
    if bytes.starts_with(own_prefix) {
        return;
    }
    let own_origin = &own_prefix[OWN_PREFIX_START.len()..own_prefix.len() - 1];
    match serde_json::from_slice::<Batch>(bytes) {
        Ok(batch) if batch.origin.as_bytes() == own_origin => {}
        Ok(batch) => {
            for delivery in batch.deliveries {
                local.publish(delivery);
            }
        }
        Err(_) => match serde_json::from_slice::<Single>(bytes) {
            Ok(single) if single.origin.as_bytes() == own_origin => {}
            Ok(single) => local.publish(single.delivery),
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed event on the Redis channel"),
        },
    }
}

/// How a serialized [`Envelope`] starts, up to the origin's value.
const OWN_PREFIX_START: &str = "{\"origin\":\"";

/// The first bytes of this instance's envelopes: `{"origin":"<id>"`.
fn own_prefix(instance_id: &str) -> Vec<u8> {
    format!("{OWN_PREFIX_START}{instance_id}\"").into_bytes()
}

async fn publish_loop(
    redis: RedisGate,
    channel: String,
    origin: String,
    mut queued: mpsc::Receiver<Delivery>,
) {
    let mut deliveries = Vec::with_capacity(PUBLISH_BATCH);
    // One PUBLISH at a time: what queues up meanwhile goes in the next one.
    while queued.recv_many(&mut deliveries, PUBLISH_BATCH).await > 0 {
        let envelope = Envelope { origin: &origin, deliveries: &deliveries };
        let payload = serde_json::to_vec(&envelope);
        deliveries.clear();
        let Ok(payload) = payload else {
            continue;
        };
        // While the circuit is open the batch is dropped at once (sockets on
        // other instances recover by seq) instead of each waiting for a timeout.
        match redis.run(redis.client.publish::<(), _, _>(channel.as_str(), payload)).await {
            Err(e) if !e.is_skip() => {
                tracing::warn!(error = %e, "cannot publish an event to Redis")
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_domain::{RoomEvent, RoomId};

    struct Collect(std::sync::Mutex<Vec<Delivery>>);

    impl FanOut for Collect {
        fn publish(&self, delivery: Delivery) {
            self.0.lock().unwrap().push(delivery);
        }
    }

    fn typing(user: &str) -> Delivery {
        Delivery::to_all(RoomEvent::Typing {
            room_id: RoomId::new(1).unwrap(),
            user_id: user.into(),
        })
    }

    #[test]
    fn own_envelopes_are_skipped_and_others_delivered_in_order() {
        let deliveries = [typing("a"), typing("b")];
        let ours = serde_json::to_vec(&Envelope { origin: "me", deliveries: &deliveries }).unwrap();
        let theirs =
            serde_json::to_vec(&Envelope { origin: "them", deliveries: &deliveries }).unwrap();
        let local = Collect(Default::default());
        let prefix = own_prefix("me");
        assert!(ours.starts_with(&prefix));
        deliver(&local, &prefix, &Value::Bytes(ours.into()));
        assert!(local.0.lock().unwrap().is_empty());
        deliver(&local, &prefix, &Value::Bytes(theirs.into()));
        assert_eq!(*local.0.lock().unwrap(), deliveries);
    }

    #[test]
    fn a_single_delivery_of_the_previous_version_is_delivered() {
        let old = serde_json::json!({"origin": "old", "event": {"type": "typing", "room_id": 1, "user_id": "a"}});
        let local = Collect(Default::default());
        deliver(&local, &own_prefix("me"), &Value::Bytes(old.to_string().into_bytes().into()));
        assert_eq!(*local.0.lock().unwrap(), [typing("a")]);
    }
}
