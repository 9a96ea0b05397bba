//! Presence kept in this process's memory (one instance, no Redis): sockets per
//! room, and each user's sockets of every kind with the last time one closed.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chat_domain::ports::{PresenceEntry, PresenceRegistry, UserPresence};
use chat_domain::{DomainError, RoomId, UserId};
use chrono::{DateTime, Utc};

/// A room's open connections: connection id → (user, connected at), and how
/// many each user has (so first and last socket are found without a scan).
#[derive(Default)]
struct Sockets {
    open: HashMap<String, (UserId, DateTime<Utc>)>,
    per_user: HashMap<UserId, u32>,
}

/// A user's open sockets (of any kind) and when one last closed. Kept after
/// the last socket closes, for `last_seen`: one small entry per user seen.
#[derive(Default)]
struct UserSockets {
    open: HashSet<String>,
    last_seen: Option<DateTime<Utc>>,
}

/// Per room: each open connection's user and start time; per user: their sockets.
#[derive(Default)]
pub struct InProcessPresence {
    rooms: Mutex<HashMap<RoomId, Sockets>>,
    users: Mutex<HashMap<UserId, UserSockets>>,
}

impl InProcessPresence {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Sockets>> {
        // The maps stay consistent even if a holder panicked: keep using them.
        self.rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_users(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, UserSockets>> {
        self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl PresenceRegistry for InProcessPresence {
    async fn socket_opened(
        &self,
        room: RoomId,
        user: &UserId,
        connection: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let mut rooms = self.lock();
        let sockets = rooms.entry(room).or_default();
        if sockets.open.insert(connection.to_owned(), (user.clone(), at)).is_some() {
            return Ok(false);
        }
        let count = sockets.per_user.entry(user.clone()).or_default();
        *count += 1;
        Ok(*count == 1)
    }

    async fn socket_closed(
        &self,
        room: RoomId,
        user: &UserId,
        connection: &str,
    ) -> Result<bool, DomainError> {
        let mut rooms = self.lock();
        let Some(sockets) = rooms.get_mut(&room) else {
            return Ok(false);
        };
        if sockets.open.remove(connection).is_none() {
            return Ok(false);
        }
        let last = match sockets.per_user.get_mut(user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            _ => {
                sockets.per_user.remove(user);
                true
            }
        };
        if sockets.open.is_empty() {
            rooms.remove(&room);
        }
        Ok(last)
    }

    async fn users(&self, room: RoomId) -> Result<Vec<PresenceEntry>, DomainError> {
        let rooms = self.lock();
        Ok(rooms.get(&room).map(|sockets| group_sockets(sockets.open.values())).unwrap_or_default())
    }

    async fn some_users(
        &self,
        room: RoomId,
        limit: usize,
    ) -> Result<Vec<PresenceEntry>, DomainError> {
        let rooms = self.lock();
        let Some(sockets) = rooms.get(&room) else {
            return Ok(Vec::new());
        };
        if sockets.per_user.len() <= limit {
            return Ok(group_sockets(sockets.open.values()));
        }
        let picked: std::collections::HashSet<&UserId> =
            sockets.per_user.keys().take(limit).collect();
        Ok(group_sockets(sockets.open.values().filter(|(user, _)| picked.contains(user))))
    }

    async fn user_connected(
        &self,
        user: &UserId,
        connection: &str,
        _at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        self.lock_users().entry(user.clone()).or_default().open.insert(connection.to_owned());
        Ok(())
    }

    async fn user_disconnected(
        &self,
        user: &UserId,
        connection: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut users = self.lock_users();
        let sockets = users.entry(user.clone()).or_default();
        sockets.open.remove(connection);
        // Closes may be recorded out of order: the latest one stands.
        sockets.last_seen = Some(sockets.last_seen.map_or(at, |seen| seen.max(at)));
        Ok(())
    }

    async fn user_presence(&self, user: &UserId) -> Result<UserPresence, DomainError> {
        let users = self.lock_users();
        Ok(users.get(user).map_or_else(
            || UserPresence::offline(user),
            |sockets| UserPresence {
                user_id: user.to_string(),
                connections: u32::try_from(sockets.open.len()).unwrap_or(u32::MAX),
                last_seen: sockets.last_seen,
            },
        ))
    }
}

/// Folds sockets into one entry per user, ordered by arrival.
pub(crate) fn group_sockets<'a>(
    sockets: impl Iterator<Item = &'a (UserId, DateTime<Utc>)>,
) -> Vec<PresenceEntry> {
    let mut by_user: HashMap<&str, PresenceEntry> = HashMap::new();
    for (user, since) in sockets {
        let entry = by_user.entry(user.as_str()).or_insert_with(|| PresenceEntry {
            user_id: user.to_string(),
            connections: 0,
            since: *since,
        });
        entry.connections += 1;
        entry.since = entry.since.min(*since);
    }
    let mut users: Vec<PresenceEntry> = by_user.into_values().collect();
    users.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.user_id.cmp(&b.user_id)));
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_and_last_socket_of_a_user() {
        let presence = InProcessPresence::new();
        let room = RoomId::new(1).unwrap();
        let alice = UserId::parse("alice").unwrap();
        let bob = UserId::parse("bob").unwrap();
        let now = chat_domain::timestamp::now();
        assert!(presence.socket_opened(room, &alice, "c1", now).await.unwrap());
        assert!(!presence.socket_opened(room, &alice, "c2", now).await.unwrap());
        assert!(presence.socket_opened(room, &bob, "c3", now).await.unwrap());
        let users = presence.users(room).await.unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users.iter().find(|u| u.user_id == "alice").unwrap().connections, 2);
        assert!(!presence.socket_closed(room, &alice, "c1").await.unwrap());
        assert!(presence.socket_closed(room, &alice, "c2").await.unwrap());
        assert!(
            !presence.socket_closed(room, &alice, "c2").await.unwrap(),
            "closing twice is harmless"
        );
        assert_eq!(presence.users(room).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_user_counts_each_socket_once_and_keeps_the_last_close() {
        let presence = InProcessPresence::new();
        let alice = UserId::parse("alice").unwrap();
        let t = |ms| chrono::TimeZone::timestamp_millis_opt(&Utc, ms).unwrap();
        assert_eq!(presence.user_presence(&alice).await.unwrap(), UserPresence::offline(&alice));
        presence.user_connected(&alice, "c1", t(1_000)).await.unwrap();
        presence.user_connected(&alice, "c1", t(1_000)).await.unwrap();
        presence.user_connected(&alice, "c2", t(2_000)).await.unwrap();
        let now = presence.user_presence(&alice).await.unwrap();
        assert_eq!((now.connections, now.last_seen), (2, None));
        presence.user_disconnected(&alice, "c2", t(5_000)).await.unwrap();
        let now = presence.user_presence(&alice).await.unwrap();
        assert_eq!((now.online(), now.last_seen), (true, Some(t(5_000))));
        presence.user_disconnected(&alice, "c1", t(4_000)).await.unwrap();
        presence.user_disconnected(&alice, "c1", t(6_000)).await.unwrap();
        let now = presence.user_presence(&alice).await.unwrap();
        assert_eq!((now.connections, now.last_seen), (0, Some(t(6_000))));
        assert_eq!(
            serde_json::to_value(&now).unwrap(),
            serde_json::json!({"user_id": "alice", "online": false, "connections": 0,
                "last_seen": "1970-01-01T00:00:06.000Z"})
        );
    }

    #[tokio::test]
    async fn a_big_room_lists_only_as_many_users_as_asked() {
        let presence = InProcessPresence::new();
        let room = RoomId::new(1).unwrap();
        let now = chat_domain::timestamp::now();
        for n in 0..10 {
            let user = UserId::parse(&format!("u{n}")).unwrap();
            presence.socket_opened(room, &user, &format!("c{n}"), now).await.unwrap();
            presence.socket_opened(room, &user, &format!("d{n}"), now).await.unwrap();
        }
        let some = presence.some_users(room, 3).await.unwrap();
        assert_eq!(some.len(), 3);
        assert!(some.iter().all(|u| u.connections == 2), "each listed user with all sockets");
        assert_eq!(presence.some_users(room, 10).await.unwrap().len(), 10);
        assert_eq!(
            presence.some_users(room, 50).await.unwrap(),
            presence.users(room).await.unwrap()
        );
    }
}
