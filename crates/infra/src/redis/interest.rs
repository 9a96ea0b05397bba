//! What this instance's sockets listen to, so that the Redis fan-out subscribes
//! to those channels only: a room (its sockets, inbox sockets watching it), a
//! user (their inbox sockets) or an item (GrainTrade conversation sockets).
//! Holders count per topic; a topic nobody holds is dropped after a linger, so
//! a socket that reconnects at once does not unsubscribe and subscribe again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chat_domain::RoomId;
use tokio::sync::{Notify, watch};

/// A channel of the fan-out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    Room(RoomId),
    User(Arc<str>),
    Item(Arc<str>),
}

struct Entry {
    holders: usize,
    /// When the last holder let go; `None` while held.
    idle_since: Option<Instant>,
    /// True once the channel's subscription took effect.
    subscribed: watch::Sender<bool>,
}

/// The topics of this instance, shared by the hubs (which hold them) and the
/// Redis fan-out (which subscribes to them).
pub struct Interests {
    topics: Mutex<HashMap<Topic, Entry>>,
    changed: Notify,
    linger: Duration,
}

/// A hold on a topic; dropping it lets go.
pub struct Held {
    interests: Arc<Interests>,
    topic: Topic,
    subscribed: watch::Receiver<bool>,
}

impl Held {
    /// Turns true once this instance receives the topic's deliveries.
    pub fn subscribed(&self) -> watch::Receiver<bool> {
        self.subscribed.clone()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.interests.release(&self.topic);
    }
}

/// What the subscriber has to do next.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub subscribe: Vec<Topic>,
    pub unsubscribe: Vec<Topic>,
}

impl Interests {
    /// `linger`: how long a topic stays subscribed after its last holder left.
    pub fn new(linger: Duration) -> Arc<Self> {
        Arc::new(Self { topics: Mutex::new(HashMap::new()), changed: Notify::new(), linger })
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<Topic, Entry>> {
        self.topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `topic` until the returned guard is dropped.
    pub fn hold(self: &Arc<Self>, topic: Topic) -> Held {
        let mut topics = self.topics();
        let mut new = false;
        let entry = topics.entry(topic.clone()).or_insert_with(|| {
            new = true;
            Entry { holders: 0, idle_since: None, subscribed: watch::channel(false).0 }
        });
        entry.holders += 1;
        entry.idle_since = None;
        let subscribed = entry.subscribed.subscribe();
        drop(topics);
        if new {
            self.changed.notify_one();
        }
        Held { interests: self.clone(), topic, subscribed }
    }

    fn release(&self, topic: &Topic) {
        let mut topics = self.topics();
        if let Some(entry) = topics.get_mut(topic) {
            entry.holders = entry.holders.saturating_sub(1);
            if entry.holders == 0 {
                entry.idle_since = Some(Instant::now());
            }
        }
    }

    /// Wakes when a topic was added (others are found by the periodic pass).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Topics to subscribe (held, not yet subscribed) and to drop (nobody held
    /// them for the linger; they are forgotten here).
    pub(crate) fn plan(&self, now: Instant) -> Plan {
        let mut plan = Plan::default();
        self.topics().retain(|topic, entry| {
            let expired = entry.idle_since.is_some_and(|at| now.duration_since(at) >= self.linger);
            if expired {
                if *entry.subscribed.borrow() {
                    plan.unsubscribe.push(topic.clone());
                }
                return false;
            }
            if !*entry.subscribed.borrow() {
                plan.subscribe.push(topic.clone());
            }
            true
        });
        plan
    }

    /// Records that the subscriptions of `topics` took effect.
    pub(crate) fn subscribed(&self, topics: &[Topic]) {
        let entries = self.topics();
        for topic in topics {
            if let Some(entry) = entries.get(topic) {
                entry.subscribed.send_replace(true);
            }
        }
    }

    /// Topics subscribed now (a gauge).
    pub fn subscribed_count(&self) -> usize {
        self.topics().values().filter(|entry| *entry.subscribed.borrow()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: i64) -> Topic {
        Topic::Room(RoomId::new(id).unwrap())
    }

    #[test]
    fn a_topic_is_subscribed_while_held_and_dropped_after_the_linger() {
        let interests = Interests::new(Duration::from_secs(5));
        let first = interests.hold(room(1));
        let second = interests.hold(room(1));
        let start = Instant::now();
        assert_eq!(interests.plan(start).subscribe, [room(1)]);
        interests.subscribed(&[room(1)]);
        assert!(*first.subscribed().borrow());
        assert_eq!(interests.plan(start), Plan::default(), "nothing left to do");
        drop(first);
        drop(second);
        let later = Instant::now() + Duration::from_secs(5);
        assert_eq!(interests.plan(later).unsubscribe, [room(1)]);
        assert_eq!(interests.subscribed_count(), 0);
    }

    #[test]
    fn a_topic_held_again_within_the_linger_stays() {
        let interests = Interests::new(Duration::from_secs(5));
        drop(interests.hold(room(2)));
        interests.subscribed(&[room(2)]);
        let again = interests.hold(room(2));
        assert!(*again.subscribed().borrow(), "still subscribed: no new round trip");
        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(interests.plan(later), Plan::default());
        assert_eq!(interests.subscribed_count(), 1);
    }

    #[test]
    fn a_topic_never_subscribed_is_forgotten_without_unsubscribing() {
        let interests = Interests::new(Duration::ZERO);
        drop(interests.hold(Topic::User("bob".into())));
        assert_eq!(interests.plan(Instant::now()), Plan::default());
    }
}
