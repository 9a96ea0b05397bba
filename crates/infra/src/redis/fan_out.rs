//! Fan-out across instances over Redis pub/sub, one channel per room (and per
//! user for events addressed to one, per item for GrainTrade conversations):
//! each delivery is handed to this instance's hub at once and published on its
//! channel — the deliveries queued meanwhile together, one Redis message per
//! channel, pipelined. An instance subscribes only to the channels its sockets
//! hold (see `interest.rs`), so what it reads from Redis grows with its own
//! rooms, not with every message of the service. The hub's per-room pump
//! restores seq order and fills any gap from the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_domain::ports::FanOut;
use chat_domain::{Delivery, RoomEvent};
use fred::clients::SubscriberClient;
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::interest::{Interests, Topic};
use super::{RedisConnection, RedisGate};

/// Deliveries waiting to be published; beyond this they are dropped (sockets
/// on other instances recover messages from storage by seq).
const PUBLISH_QUEUE: usize = 16_384;

/// Deliveries published together per round of PUBLISHes, at most.
const PUBLISH_BATCH: usize = 256;

/// How often subscriptions are reconciled besides when a topic is added (the
/// lingering ones are dropped then, failed ones tried again).
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// Channels per SUBSCRIBE / UNSUBSCRIBE command.
const CHANNELS_PER_COMMAND: usize = 500;

/// What goes over a channel: the deliveries of one instance, in order.
#[derive(Serialize)]
struct Envelope<'a> {
    origin: &'a str,
    deliveries: &'a [&'a Delivery],
}

/// An envelope as read.
#[derive(Deserialize)]
struct Batch {
    origin: String,
    deliveries: Vec<Delivery>,
}

/// One delivery as an older version published it on its single channel.
#[derive(Deserialize)]
struct Single {
    origin: String,
    #[serde(flatten)]
    delivery: Delivery,
}

/// What the fan-out read and wrote, for metrics.
#[derive(Debug, Default)]
pub struct FanOutStats {
    received: AtomicU64,
    published: AtomicU64,
}

impl FanOutStats {
    /// Deliveries of other instances received from Redis.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Redis messages (envelopes, one per channel per round) published.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}

/// The channel names of one key prefix, and how they are used: sharded
/// pub/sub (`SPUBLISH` / `SSUBSCRIBE`) on a Redis Cluster, where a plain
/// `PUBLISH` would be copied to every node of the cluster.
#[derive(Clone)]
struct Channels {
    prefix: String,
    sharded: bool,
}

impl Channels {
    /// The one channel every instance of earlier versions published on.
    fn shared(&self) -> String {
        format!("{}events", self.prefix)
    }

    fn of_topic(&self, topic: &Topic) -> String {
        match topic {
            Topic::Room(room) => format!("{}bus:room:{room}", self.prefix),
            Topic::User(user) => format!("{}bus:user:{user}", self.prefix),
            Topic::Item(item) => format!("{}bus:item:{item}", self.prefix),
        }
    }

    /// Where a delivery goes: its user's channel when addressed to one, its
    /// item's for a GrainTrade copy, else its room's.
    fn of_delivery(&self, delivery: &Delivery) -> String {
        let topic = match (&delivery.to_user, &delivery.event) {
            (Some(user), _) => Topic::User(Arc::from(user.as_str())),
            (None, RoomEvent::ConversationMessage { item_id, .. }) => {
                Topic::Item(Arc::from(item_id.as_str()))
            }
            (None, event) => Topic::Room(event.room_id()),
        };
        self.of_topic(&topic)
    }
}

pub struct RedisFanOut {
    local: Arc<dyn FanOut>,
    outbox: mpsc::Sender<Delivery>,
    stats: Arc<FanOutStats>,
}

impl RedisFanOut {
    /// Starts the publisher, the subscriber and the task that keeps the
    /// subscriptions to what `interests` holds, for instance `instance_id`.
    pub async fn start(
        redis: &RedisConnection,
        instance_id: String,
        local: Arc<dyn FanOut>,
        interests: Arc<Interests>,
    ) -> Self {
        let channels = Channels { prefix: redis.prefix.clone(), sharded: redis.keys.is_cluster() };
        let stats = Arc::new(FanOutStats::default());
        let (outbox, queued) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(publish_loop(
            redis.gate("fan_out"),
            channels.clone(),
            instance_id.clone(),
            queued,
            stats.clone(),
        ));

        let mut messages = redis.subscriber.message_rx();
        let mut reconnects = redis.subscriber.reconnect_rx();
        // Instances of the previous version publish there during a rolling
        // update; none of them ran on a cluster.
        if !channels.sharded
            && let Err(e) = redis.subscriber.subscribe(channels.shared()).await
        {
            // manage_subscriptions() subscribes again once Redis is back.
            tracing::warn!(error = %e, "cannot subscribe to the Redis event channel yet");
        }
        tokio::spawn(keep_subscriptions(redis.subscriber.clone(), channels, interests));
        let receiver_local = local.clone();
        let receiver_stats = stats.clone();
        let own = own_prefix(&instance_id);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(message) => {
                            let count = deliver(&*receiver_local, &own, &message.value);
                            receiver_stats.received.fetch_add(count, Ordering::Relaxed);
                        }
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
        Self { local, outbox, stats }
    }

    pub fn stats(&self) -> Arc<FanOutStats> {
        self.stats.clone()
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

/// Hands the deliveries of another instance to the hubs here; returns how
/// many there were (0 for this instance's own, which come back too).
fn deliver(local: &dyn FanOut, own_prefix: &[u8], value: &Value) -> u64 {
    let Some(bytes) = value.as_bytes() else {
        return 0;
    };
    // This instance's own envelopes are recognised by their first bytes
    // (`origin` is serialized first) and not parsed at all.
    if bytes.starts_with(own_prefix) {
        return 0;
    }
    let own_origin = &own_prefix[OWN_PREFIX_START.len()..own_prefix.len() - 1];
    match serde_json::from_slice::<Batch>(bytes) {
        Ok(batch) if batch.origin.as_bytes() == own_origin => 0,
        Ok(batch) => {
            let count = batch.deliveries.len() as u64;
            for delivery in batch.deliveries {
                local.publish(delivery);
            }
            count
        }
        Err(_) => match serde_json::from_slice::<Single>(bytes) {
            Ok(single) if single.origin.as_bytes() == own_origin => 0,
            Ok(single) => {
                local.publish(single.delivery);
                1
            }
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a malformed event on the Redis channel");
                0
            }
        },
    }
}

/// How a serialized [`Envelope`] starts, up to the origin's value.
const OWN_PREFIX_START: &str = "{\"origin\":\"";

/// The first bytes of this instance's envelopes: `{"origin":"<id>"`.
fn own_prefix(instance_id: &str) -> Vec<u8> {
    format!("{OWN_PREFIX_START}{instance_id}\"").into_bytes()
}

/// Groups `deliveries` by channel, each group in the order it was queued.
fn by_channel<'a>(
    channels: &Channels,
    deliveries: &'a [Delivery],
) -> Vec<(String, Vec<&'a Delivery>)> {
    let mut groups: Vec<(String, Vec<&Delivery>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for delivery in deliveries {
        let channel = channels.of_delivery(delivery);
        match index.get(&channel) {
            Some(&at) => groups[at].1.push(delivery),
            None => {
                index.insert(channel.clone(), groups.len());
                groups.push((channel, vec![delivery]));
            }
        }
    }
    groups
}

/// (room, author) pairs whose first message here was copied to the author's
/// channel; forgotten all at once when this many.
const AUTHORS_REMEMBERED: usize = 100_000;

/// Copies for the authors' channels of the messages of `deliveries` whose
/// (room, author) pair is new here: an author's inbox socket on an instance
/// that does not listen to the room learns that the room is now in its inbox.
/// Later messages of the pair need no copy: the inbox knows the room by then,
/// or reads it from the database when it connects.
fn author_copies(deliveries: &[Delivery], announced: &mut Announced) -> Vec<Delivery> {
    let mut copies = Vec::new();
    for delivery in deliveries {
        if let (None, RoomEvent::Message(message)) = (&delivery.to_user, &delivery.event) {
            let room = message.room_id.get();
            // Looked up by `&str`: a pair already copied costs no allocation.
            if announced.by_room.get(&room).is_some_and(|users| users.contains(&message.user_id)) {
                continue;
            }
            if announced.pairs >= AUTHORS_REMEMBERED {
                *announced = Announced::default();
            }
            announced.by_room.entry(room).or_default().insert(message.user_id.clone());
            announced.pairs += 1;
            copies.push(Delivery::to_user(&message.user_id, delivery.event.clone()));
        }
    }
    copies
}

/// The (room, author) pairs already copied, by room.
#[derive(Default)]
struct Announced {
    by_room: HashMap<i64, HashSet<String>>,
    pairs: usize,
}

async fn publish_loop(
    redis: RedisGate,
    channels: Channels,
    origin: String,
    mut queued: mpsc::Receiver<Delivery>,
    stats: Arc<FanOutStats>,
) {
    let mut deliveries = Vec::with_capacity(PUBLISH_BATCH);
    let mut announced = Announced::default();
    // One round at a time: what queues up meanwhile goes in the next one.
    while queued.recv_many(&mut deliveries, PUBLISH_BATCH).await > 0 {
        let copies = author_copies(&deliveries, &mut announced);
        deliveries.extend(copies);
        let pipeline = redis.client.pipeline();
        let mut count = 0u64;
        for (channel, group) in by_channel(&channels, &deliveries) {
            let envelope = Envelope { origin: &origin, deliveries: &group };
            let Ok(payload) = serde_json::to_vec(&envelope) else {
                continue;
            };
            // Queued in memory only; sent by `all` below.
            let _: Result<(), _> = if channels.sharded {
                pipeline.spublish(channel, payload).await
            } else {
                pipeline.publish(channel, payload).await
            };
            count += 1;
        }
        deliveries.clear();
        // While the circuit is open the round is dropped at once (sockets on
        // other instances recover by seq) instead of each waiting for a timeout.
        match redis.run(pipeline.all::<Vec<Value>>()).await {
            Err(e) if !e.is_skip() => {
                tracing::warn!(error = %e, "cannot publish events to Redis")
            }
            Err(_) => {}
            Ok(_) => {
                stats.published.fetch_add(count, Ordering::Relaxed);
            }
        }
    }
}

/// Keeps the subscriber's channels to what `interests` holds: subscribes to a
/// new topic at once, drops a topic nobody held for the linger, and tries
/// failed subscriptions again.
async fn keep_subscriptions(
    subscriber: SubscriberClient,
    channels: Channels,
    interests: Arc<Interests>,
) {
    loop {
        let plan = interests.plan(Instant::now());
        for topics in plan.unsubscribe.chunks(CHANNELS_PER_COMMAND) {
            let names: Vec<String> = topics.iter().map(|t| channels.of_topic(t)).collect();
            if let Err(e) = unsubscribe(&subscriber, &channels, names).await {
                tracing::warn!(error = %e, "cannot unsubscribe from Redis channels");
            }
        }
        for topics in plan.subscribe.chunks(CHANNELS_PER_COMMAND) {
            let names: Vec<String> = topics.iter().map(|t| channels.of_topic(t)).collect();
            match subscribe(&subscriber, &channels, names).await {
                // SUBSCRIBE returns once written; a round trip makes sure it took effect.
                Ok(()) => match subscriber.ping::<Value>(None).await {
                    Ok(_) => interests.subscribed(topics),
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis subscription not confirmed; trying again")
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe to Redis channels; trying again")
                }
            }
        }
        tokio::select! {
            () = interests.changed() => {}
            () = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
    }
}

/// SUBSCRIBE, or on a cluster one SSUBSCRIBE per hash slot (a sharded
/// subscription names channels of one slot only).
async fn subscribe(
    subscriber: &SubscriberClient,
    channels: &Channels,
    names: Vec<String>,
) -> Result<(), Error> {
    if !channels.sharded {
        return subscriber.subscribe(names).await;
    }
    for (_, group) in fred::util::group_by_hash_slot(names)? {
        subscriber.ssubscribe(group).await?;
    }
    Ok(())
}

/// UNSUBSCRIBE, or SUNSUBSCRIBE per hash slot on a cluster.
async fn unsubscribe(
    subscriber: &SubscriberClient,
    channels: &Channels,
    names: Vec<String>,
) -> Result<(), Error> {
    if !channels.sharded {
        return subscriber.unsubscribe(names).await;
    }
    for (_, group) in fred::util::group_by_hash_slot(names)? {
        subscriber.sunsubscribe(group).await?;
    }
    Ok(())
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
        let refs: Vec<&Delivery> = deliveries.iter().collect();
        let ours = serde_json::to_vec(&Envelope { origin: "me", deliveries: &refs }).unwrap();
        let theirs = serde_json::to_vec(&Envelope { origin: "them", deliveries: &refs }).unwrap();
        let local = Collect(Default::default());
        let prefix = own_prefix("me");
        assert!(ours.starts_with(&prefix));
        assert_eq!(deliver(&local, &prefix, &Value::Bytes(ours.into())), 0);
        assert!(local.0.lock().unwrap().is_empty());
        assert_eq!(deliver(&local, &prefix, &Value::Bytes(theirs.into())), 2);
        assert_eq!(*local.0.lock().unwrap(), deliveries);
    }

    #[test]
    fn a_single_delivery_of_the_previous_version_is_delivered() {
        let old = serde_json::json!({"origin": "old", "event": {"type": "typing", "room_id": 1, "user_id": "a"}});
        let local = Collect(Default::default());
        deliver(&local, &own_prefix("me"), &Value::Bytes(old.to_string().into_bytes().into()));
        assert_eq!(*local.0.lock().unwrap(), [typing("a")]);
    }

    #[test]
    fn deliveries_go_to_their_room_user_or_item_channel_in_order() {
        let channels = Channels { prefix: "chat:".to_owned(), sharded: false };
        let room = |id| RoomId::new(id).unwrap();
        let typing_in = |id, user: &str| {
            Delivery::to_all(RoomEvent::Typing { room_id: room(id), user_id: user.into() })
        };
        let unread = Delivery::to_user(
            "bob",
            RoomEvent::Unread { room_id: room(1), unread: 2, last_seq: 9 },
        );
        let deliveries = [typing_in(1, "a"), typing_in(2, "b"), unread, typing_in(1, "c")];
        let groups = by_channel(&channels, &deliveries);
        let names: Vec<&str> = groups.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["chat:bus:room:1", "chat:bus:room:2", "chat:bus:user:bob"]);
        assert_eq!(groups[0].1, [&deliveries[0], &deliveries[3]], "a room's deliveries in order");
    }

    #[test]
    fn a_users_first_message_in_a_room_is_copied_to_the_users_channel_once() {
        let at = chat_domain::timestamp::now();
        let message = |room: i64, user: &str, seq: i64| {
            Delivery::to_all(RoomEvent::Message(chat_domain::Message {
                id: chat_domain::MessageId::new(seq).unwrap(),
                room_id: RoomId::new(room).unwrap(),
                seq,
                user_id: user.into(),
                content: "hi".into(),
                message_type: chat_domain::MessageType::Text,
                client_msg_id: None,
                created_at: at,
                updated_at: at,
                edited: false,
                reply_to: None,
                reactions: Default::default(),
                offer: None,
            }))
        };
        let mut announced = Announced::default();
        let first = [message(1, "alice", 1), message(1, "alice", 2), message(2, "alice", 1)];
        let copies = author_copies(&first, &mut announced);
        assert_eq!(copies.len(), 2, "one per new (room, author) pair");
        assert!(copies.iter().all(|c| c.to_user.as_deref() == Some("alice")));
        assert!(author_copies(&[message(1, "alice", 3)], &mut announced).is_empty());
    }
}
