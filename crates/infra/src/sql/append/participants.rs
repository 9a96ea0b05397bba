//! The (room, poster) pairs a batch must record in `room_reads` (a row with
//! `read_at` NULL, so the inbox finds rooms a user posted in without scanning
//! messages). Pairs already known to have their row are skipped, so in the
//! steady state a batch writes none; the set is bounded and simply starts over
//! when full (a forgotten pair costs one `ON CONFLICT DO NOTHING` row later).

use std::collections::HashSet;
use std::sync::Mutex;

use chat_domain::{Message, NewMessage};

/// How many pairs are remembered before the set starts over.
const CAPACITY: usize = 100_000;

/// A room and a user who posted in it.
pub(crate) type Pair = (i64, String);

#[derive(Debug, Default)]
pub(crate) struct Participants {
    known: Mutex<HashSet<Pair>>,
}

impl Participants {
    /// The pairs of `batch` not known to be stored, each once.
    pub(crate) fn unknown(&self, batch: &[NewMessage]) -> Vec<Pair> {
        let known = self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut unknown: Vec<Pair> = Vec::new();
        for new in batch {
            let (room, user) = (new.room_id.get(), new.user_id.as_str());
            let seen = |pair: &Pair| pair.0 == room && pair.1 == user;
            if !known.contains(&(room, user.to_owned())) && !unknown.iter().any(seen) {
                unknown.push((room, user.to_owned()));
            }
        }
        unknown
    }

    /// Remembers the pairs of `sent` whose room stored rows (so their insert
    /// ran) after the batch committed.
    pub(crate) fn stored(&self, sent: Vec<Pair>, stored: &[Message]) {
        if sent.is_empty() {
            return;
        }
        let mut known = self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if known.len() + sent.len() > CAPACITY {
            known.clear();
        }
        for pair in sent {
            if stored.iter().any(|m| m.room_id.get() == pair.0) {
                known.insert(pair);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chat_domain::{MessageContent, MessageId, MessageType, RoomId, UserId};

    use super::*;

    fn new(room: i64, user: &str) -> NewMessage {
        NewMessage {
            room_id: RoomId::new(room).unwrap(),
            user_id: UserId::parse(user).unwrap(),
            content: MessageContent::parse("hi").unwrap(),
            message_type: MessageType::default(),
            client_msg_id: None,
            reply_to: None,
            created_at: chat_domain::timestamp::now(),
            conversation: None,
            correlation_id: None,
        }
    }

    fn stored(room: i64, user: &str) -> Message {
        let at = chat_domain::timestamp::now();
        Message {
            id: MessageId::new(1).unwrap(),
            room_id: RoomId::new(room).unwrap(),
            seq: 1,
            user_id: user.to_owned(),
            content: "hi".to_owned(),
            message_type: MessageType::default(),
            client_msg_id: None,
            created_at: at,
            updated_at: at,
            edited: false,
            reply_to: None,
            reactions: Default::default(),
            offer: None,
        }
    }

    #[test]
    fn a_known_pair_is_not_sent_again() {
        let participants = Participants::default();
        let batch = [new(1, "a"), new(1, "a"), new(1, "b"), new(2, "a")];
        let first = participants.unknown(&batch);
        assert_eq!(first, vec![(1, "a".into()), (1, "b".into()), (2, "a".into())]);
        // Room 2 stored nothing (deleted, say): only room 1's pairs are known.
        participants.stored(first, &[stored(1, "a"), stored(1, "b")]);
        assert_eq!(participants.unknown(&batch), vec![(2, "a".to_owned())]);
    }

    #[test]
    fn a_full_set_starts_over() {
        let participants = Participants::default();
        let pairs: Vec<Pair> = (0..CAPACITY as i64).map(|n| (1, format!("u{n}"))).collect();
        participants.stored(pairs, &[stored(1, "u0")]);
        assert!(participants.unknown(&[new(1, "u0")]).is_empty());
        participants.stored(vec![(1, "new".to_owned())], &[stored(1, "new")]);
        assert_eq!(participants.unknown(&[new(1, "u0")]).len(), 1, "forgotten");
        assert!(participants.unknown(&[new(1, "new")]).is_empty());
    }
}
