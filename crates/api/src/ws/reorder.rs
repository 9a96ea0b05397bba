//! Messages of a room that arrived ahead of a missing seq. With senders on
//! several instances (or several writers on one), commits reach a room's pump
//! slightly out of order: seq 5 from one instance before seq 4 from another.
//! Reading the database at every such jump made each receiving instance read
//! once per message; instead the early ones wait here, a few milliseconds at
//! most, for the missing ones, and only a gap still open then is filled from
//! the database.

use std::collections::BTreeMap;
use std::time::Duration;

use chat_domain::{Delivery, RoomEvent};
use tokio::time::Instant;

/// How long a message ahead of a gap waits for the missing ones before the gap
/// is filled from the database.
pub(super) const REORDER_WAIT: Duration = Duration::from_millis(20);

/// Messages held at most; one more fills the gap at once.
const HELD_AT_MOST: usize = 256;

#[derive(Default)]
pub(super) struct Ahead {
    held: BTreeMap<i64, Delivery>,
    /// When the oldest held message arrived.
    since: Option<Instant>,
}

impl Ahead {
    /// Holds message `seq`; true when too many are held and the gap is to be
    /// filled now.
    pub(super) fn hold(&mut self, seq: i64, delivery: Delivery, now: Instant) -> bool {
        self.held.entry(seq).or_insert(delivery);
        self.since.get_or_insert(now);
        self.held.len() > HELD_AT_MOST
    }

    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// When the gap is to be filled from the database, if anything is held.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + REORDER_WAIT)
    }

    /// The highest seq held: a fill up to it delivers everything held.
    pub(super) fn highest(&self) -> Option<i64> {
        self.held.last_key_value().map(|(seq, _)| *seq)
    }

    /// The held messages that follow `last` without a gap, in seq order; those
    /// at or below `last` (delivered meanwhile) are dropped.
    pub(super) fn take_run(&mut self, mut last: i64) -> Vec<Delivery> {
        let mut run = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            let seq = *entry.key();
            if seq <= last {
                entry.remove();
            } else if seq == last + 1 {
                run.push(entry.remove());
                last = seq;
            } else {
                break;
            }
        }
        if self.held.is_empty() {
            self.since = None;
        }
        run
    }

    pub(super) fn clear(&mut self) {
        self.held.clear();
        self.since = None;
    }
}

/// Whether `event` names a message, so that it must not overtake one still held
/// (an edit, a deletion, a reaction); typing and presence need not wait.
pub(super) fn refers_to_messages(event: &RoomEvent) -> bool {
    !matches!(
        event,
        RoomEvent::Typing { .. } | RoomEvent::UserJoined { .. } | RoomEvent::UserLeft { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_domain::{Message, MessageId, MessageType, RoomId};

    fn message(seq: i64) -> Delivery {
        let at = chat_domain::timestamp::now();
        Delivery::to_all(RoomEvent::Message(Message {
            id: MessageId::new(seq).unwrap(),
            room_id: RoomId::new(1).unwrap(),
            seq,
            user_id: "alice".into(),
            content: format!("m{seq}"),
            message_type: MessageType::Text,
            client_msg_id: None,
            created_at: at,
            updated_at: at,
            edited: false,
            reply_to: None,
            reactions: Default::default(),
            offer: None,
        }))
    }

    fn seqs(run: &[Delivery]) -> Vec<i64> {
        run.iter().filter_map(|d| d.event.new_message_seq()).collect()
    }

    #[test]
    fn held_messages_are_released_in_order_once_the_gap_closes() {
        let mut ahead = Ahead::default();
        let now = Instant::now();
        assert!(!ahead.hold(7, message(7), now));
        assert!(!ahead.hold(5, message(5), now));
        assert!(!ahead.hold(5, message(5), now), "a repeat is held once");
        assert_eq!(ahead.deadline(), Some(now + REORDER_WAIT));
        assert!(ahead.take_run(3).is_empty(), "4 is still missing");
        // 4 arrived and was delivered: 5 follows, 7 waits for 6.
        assert_eq!(seqs(&ahead.take_run(4)), [5]);
        assert_eq!(ahead.highest(), Some(7));
        assert!(!ahead.is_empty());
        assert_eq!(seqs(&ahead.take_run(6)), [7]);
        assert!(ahead.is_empty());
        assert_eq!(ahead.deadline(), None, "nothing held, no timer");
    }

    #[test]
    fn messages_delivered_meanwhile_are_dropped() {
        let mut ahead = Ahead::default();
        let now = Instant::now();
        ahead.hold(5, message(5), now);
        ahead.hold(6, message(6), now);
        // A fill from the database delivered up to 6.
        assert!(ahead.take_run(6).is_empty());
        assert!(ahead.is_empty());
    }

    #[test]
    fn too_many_held_asks_for_a_fill() {
        let mut ahead = Ahead::default();
        let now = Instant::now();
        let full = (0..=HELD_AT_MOST as i64).map(|n| ahead.hold(10 + n, message(10 + n), now));
        assert_eq!(full.filter(|over| *over).count(), 1, "only the one past the bound");
        ahead.clear();
        assert!(ahead.is_empty() && ahead.deadline().is_none());
    }

    #[test]
    fn only_typing_and_presence_may_pass_held_messages() {
        let room = RoomId::new(1).unwrap();
        let typing = RoomEvent::Typing { room_id: room, user_id: "a".into() };
        let deleted =
            RoomEvent::MessageDeleted { id: MessageId::new(3).unwrap(), room_id: room, seq: 3 };
        assert!(!refers_to_messages(&typing));
        assert!(refers_to_messages(&deleted));
    }
}
