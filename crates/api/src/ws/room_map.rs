//! A small map keyed by room, kept in a `Vec`: a room socket holds one entry for
//! its whole life and an inbox socket at most `WS_MAX_SUBSCRIPTIONS`, so a scan
//! costs little, while a hash map's smallest table would cost every one of
//! 18,000 idle room sockets several times the entry it holds.

use chat_domain::RoomId;

#[derive(Debug)]
pub struct RoomMap<V> {
    entries: Vec<(RoomId, V)>,
}

impl<V> Default for RoomMap<V> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<V> RoomMap<V> {
    fn position(&self, room: RoomId) -> Option<usize> {
        self.entries.iter().position(|(r, _)| *r == room)
    }

    pub fn get(&self, room: RoomId) -> Option<&V> {
        self.entries.iter().find(|(r, _)| *r == room).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, room: RoomId) -> Option<&mut V> {
        self.entries.iter_mut().find(|(r, _)| *r == room).map(|(_, v)| v)
    }

    pub fn contains(&self, room: RoomId) -> bool {
        self.position(room).is_some()
    }

    /// Adds or replaces the room's entry.
    pub fn insert(&mut self, room: RoomId, value: V) {
        match self.position(room) {
            Some(at) => self.entries[at].1 = value,
            None => {
                // A room socket's one entry gets room for one, not the four
                // a first push would reserve.
                if self.entries.capacity() == 0 {
                    self.entries.reserve_exact(1);
                }
                self.entries.push((room, value))
            }
        }
    }

    pub fn remove(&mut self, room: RoomId) -> Option<V> {
        self.position(room).map(|at| self.entries.swap_remove(at).1)
    }

    pub fn rooms(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.entries.iter().map(|(r, _)| *r)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let room = |id| RoomId::new(id).unwrap();
        let mut map = RoomMap::default();
        map.insert(room(1), "a");
        map.insert(room(2), "b");
        map.insert(room(1), "c");
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(room(1)), Some(&"c"));
        assert_eq!(map.remove(room(1)), Some("c"));
        assert!(!map.contains(room(1)));
        assert_eq!(map.rooms().collect::<Vec<_>>(), [room(2)]);
        assert_eq!(map.remove(room(7)), None);
    }
}
