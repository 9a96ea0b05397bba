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
