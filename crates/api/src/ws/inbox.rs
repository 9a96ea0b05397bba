//! The unread counts an inbox socket (`/ws`) keeps for its user's rooms, so
//! that it can send `unread` whenever one changes. Counts start from storage
//! and move with the hub's notices: a new message of someone else is one more;
//! anything a notice cannot tell exactly (a deletion, a gap in the seqs, a read
//! behind the newest message) reads the count again, and the messages that
//! arrive while that read is on its way are added to what it returns.

use std::collections::HashMap;

use chat_domain::RoomId;
use chat_domain::read_state::UnreadState;

/// One room's count as this socket knows it.
#[derive(Debug, Clone, Default)]
struct RoomCount {
    unread: u64,
    last_seq: i64,
    /// While a recount is on its way: the seqs of others' messages counted since
    /// it was asked for (the recount may or may not include them).
    counted_since_recount: Option<Vec<i64>>,
    /// Another recount is wanted once the one on its way is back.
    recount_again: bool,
    /// Whether the client was given this room's count (a room added here is
    /// announced by its first recount, whatever the count).
    announced: bool,
}

/// What the socket is to do after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send `{"type":"unread","room_id","unread","last_seq"}`.
    Send { room: RoomId, unread: u64, last_seq: i64 },
    /// Read the room's count from storage, then call [`UnreadCounts::recounted`].
    Recount(RoomId),
}

/// The unread counts of one inbox socket's rooms.
#[derive(Debug, Default)]
pub struct UnreadCounts {
    rooms: HashMap<RoomId, RoomCount>,
}

impl UnreadCounts {
    pub fn knows(&self, room: RoomId) -> bool {
        self.rooms.contains_key(&room)
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Starts from a count read from storage (nothing is sent: the client has it).
    pub fn load(&mut self, state: UnreadState) {
        self.rooms.insert(
            state.room_id,
            RoomCount {
                unread: state.unread,
                last_seq: state.last_seq,
                announced: true,
                ..RoomCount::default()
            },
        );
    }

    /// Takes a room in whose count is not known yet: a recount is on its way.
    pub fn add(&mut self, room: RoomId) -> Option<Effect> {
        if self.knows(room) {
            return None;
        }
        let count = RoomCount { counted_since_recount: Some(Vec::new()), ..RoomCount::default() };
        self.rooms.insert(room, count);
        Some(Effect::Recount(room))
    }

    pub fn remove(&mut self, room: RoomId) {
        self.rooms.remove(&room);
    }

    /// A new message in the room; `mine` when the socket's user wrote it.
    pub fn message(&mut self, room: RoomId, seq: i64, mine: bool) -> Option<Effect> {
        let Some(count) = self.rooms.get_mut(&room) else {
            // Posting in a room puts it in the author's inbox.
            return if mine { self.add(room) } else { None };
        };
        if seq <= count.last_seq {
            // Already counted (or older than the count that was read).
            return None;
        }
        let gap = seq > count.last_seq + 1 && count.counted_since_recount.is_none();
        count.last_seq = seq;
        if gap {
            // The messages in between were never seen here: whose they are is unknown.
            return Self::ask_recount(room, count);
        }
        if mine {
            return None;
        }
        count.unread += 1;
        count.announced = true;
        if let Some(seen) = &mut count.counted_since_recount {
            seen.push(seq);
        }
        Some(Effect::Send { room, unread: count.unread, last_seq: count.last_seq })
    }

    /// Something changed the room's count in a way a notice does not tell.
    pub fn changed(&mut self, room: RoomId) -> Option<Effect> {
        let count = self.rooms.get_mut(&room)?;
        Self::ask_recount(room, count)
    }

    /// The user's count as another part of the service computed it (a read on
    /// some device). Taken when it is at least as new as ours; else read again.
    pub fn reported(&mut self, room: RoomId, unread: u64, last_seq: i64) -> Option<Effect> {
        let count = self.rooms.get_mut(&room)?;
        if last_seq < count.last_seq || count.counted_since_recount.is_some() {
            return Self::ask_recount(room, count);
        }
        count.last_seq = last_seq;
        if count.unread == unread {
            return None;
        }
        count.unread = unread;
        count.announced = true;
        Some(Effect::Send { room, unread, last_seq })
    }

    /// A recount came back: exact as of its `last_seq`; the others' messages
    /// counted here after that are added.
    pub fn recounted(&mut self, state: UnreadState) -> Vec<Effect> {
        let room = state.room_id;
        let Some(count) = self.rooms.get_mut(&room) else { return Vec::new() };
        let seen = count.counted_since_recount.take().unwrap_or_default();
        let newer = seen.iter().filter(|seq| **seq > state.last_seq).count() as u64;
        let unread = state.unread + newer;
        let last_seq = count.last_seq.max(state.last_seq);
        let mut effects = Vec::new();
        if unread != count.unread || last_seq != count.last_seq || !count.announced {
            count.unread = unread;
            count.last_seq = last_seq;
            count.announced = true;
            effects.push(Effect::Send { room, unread, last_seq });
        }
        if std::mem::take(&mut count.recount_again) {
            effects.extend(Self::ask_recount(room, count));
        }
        effects
    }

    /// A recount could not be read: the count stays as it is, and the next
    /// change that needs one asks again.
    pub fn recount_failed(&mut self, room: RoomId) {
        if let Some(count) = self.rooms.get_mut(&room) {
            count.counted_since_recount = None;
            count.recount_again = false;
        }
    }

    fn ask_recount(room: RoomId, count: &mut RoomCount) -> Option<Effect> {
        if count.counted_since_recount.is_some() {
            count.recount_again = true;
            return None;
        }
        count.counted_since_recount = Some(Vec::new());
        Some(Effect::Recount(room))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: i64) -> RoomId {
        RoomId::new(id).unwrap()
    }

    fn state(id: i64, unread: u64, last_seq: i64) -> UnreadState {
        UnreadState { room_id: room(id), last_read_seq: 0, unread, last_seq }
    }

    fn send(id: i64, unread: u64, last_seq: i64) -> Option<Effect> {
        Some(Effect::Send { room: room(id), unread, last_seq })
    }

    #[test]
    fn others_messages_count_and_mine_do_not() {
        let mut counts = UnreadCounts::default();
        counts.load(state(1, 2, 10));
        assert_eq!(counts.message(room(1), 11, false), send(1, 3, 11));
        assert_eq!(counts.message(room(1), 12, true), None);
        assert_eq!(counts.message(room(1), 12, true), None, "a repeat changes nothing");
        assert_eq!(counts.message(room(1), 13, false), send(1, 4, 13));
        assert_eq!(counts.message(room(2), 1, false), None, "not one of the user's rooms");
    }

    #[test]
    fn a_gap_or_a_deletion_reads_the_count_again_and_keeps_what_came_meanwhile() {
        let mut counts = UnreadCounts::default();
        counts.load(state(1, 0, 10));
        assert_eq!(counts.message(room(1), 13, false), Some(Effect::Recount(room(1))));
        // Arrives while the recount is on its way; the recount read up to 13 only.
        assert_eq!(counts.message(room(1), 14, false), send(1, 1, 14));
        assert_eq!(counts.changed(room(1)), None, "one recount at a time");
        let effects = counts.recounted(state(1, 2, 13));
        assert_eq!(
            effects,
            vec![Effect::Send { room: room(1), unread: 3, last_seq: 14 }, Effect::Recount(room(1))]
        );
        assert_eq!(
            counts.recounted(state(1, 2, 14)),
            vec![Effect::Send { room: room(1), unread: 2, last_seq: 14 }]
        );
    }

    #[test]
    fn posting_adds_the_room_and_reports_are_taken_when_current() {
        let mut counts = UnreadCounts::default();
        assert_eq!(counts.message(room(5), 3, true), Some(Effect::Recount(room(5))));
        assert!(counts.knows(room(5)));
        assert_eq!(
            counts.recounted(state(5, 2, 3)),
            vec![Effect::Send { room: room(5), unread: 2, last_seq: 3 }]
        );
        assert_eq!(counts.reported(room(5), 0, 3), send(5, 0, 3));
        assert_eq!(counts.reported(room(5), 0, 3), None, "no change, nothing sent");
        assert_eq!(counts.message(room(5), 4, false), send(5, 1, 4));
        assert_eq!(counts.reported(room(5), 0, 3), Some(Effect::Recount(room(5))), "stale");
    }

    #[test]
    fn a_count_sent_before_the_first_recount_is_not_sent_again() {
        let mut counts = UnreadCounts::default();
        assert_eq!(counts.add(room(3)), Some(Effect::Recount(room(3))));
        assert_eq!(counts.message(room(3), 1, false), send(3, 1, 1));
        assert_eq!(counts.recounted(state(3, 1, 1)), Vec::new(), "the client has 1 already");
        assert_eq!(counts.message(room(3), 2, false), send(3, 2, 2));
    }
}
