//! Key names. On one Redis server they are the documented ones
//! (`chat:room:7:active`); on a Redis Cluster the part that groups the keys a
//! script uses together (a room, a user) becomes a hash tag
//! (`chat:{room:7}:active`), so that they sit in one hash slot.

use std::fmt::Display;

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    cluster: bool,
}

impl Keys {
    pub(crate) fn new(prefix: &str, cluster: bool) -> Self {
        Self { prefix: prefix.to_owned(), cluster }
    }

    /// A key that is never used with another: `{prefix}{suffix}`.
    pub(crate) fn plain(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// A room's key: `{prefix}room:{id}{rest}`, the room tagged on a cluster.
    pub(crate) fn room(&self, room: impl Display, rest: &str) -> String {
        self.grouped("room", room, rest)
    }

    /// A user's key: `{prefix}user:{id}{rest}`, the user tagged on a cluster.
    pub(crate) fn user(&self, user: impl Display, rest: &str) -> String {
        self.grouped("user", user, rest)
    }

    /// A socket's session record, written with its room's presence:
    /// `{prefix}session:{connection}`, or `{prefix}session:{room:7}:{connection}`
    /// on a cluster.
    pub(crate) fn session(&self, room: impl Display, connection: &str) -> String {
        if self.cluster {
            format!("{}session:{{room:{room}}}:{connection}", self.prefix)
        } else {
            format!("{}session:{connection}", self.prefix)
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster
    }

    fn grouped(&self, kind: &str, id: impl Display, rest: &str) -> String {
        if self.cluster {
            format!("{}{{{kind}:{id}}}{rest}", self.prefix)
        } else {
            format!("{}{kind}:{id}{rest}", self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::util::redis_keyslot;

    #[test]
    fn one_server_keeps_the_documented_names() {
        let keys = Keys::new("chat:", false);
        assert_eq!(keys.room(7, ":active"), "chat:room:7:active");
        assert_eq!(keys.room(7, ""), "chat:room:7");
        assert_eq!(keys.user("bob", ":slots"), "chat:user:bob:slots");
        assert_eq!(keys.session(7, "c1"), "chat:session:c1");
        assert_eq!(keys.plain("instance:a"), "chat:instance:a");
    }

    #[test]
    fn on_a_cluster_a_rooms_keys_and_its_sessions_share_a_slot() {
        let keys = Keys::new("chat:", true);
        let slot = redis_keyslot(keys.room(7, "").as_bytes());
        for key in [
            keys.room(7, ":active"),
            keys.room(7, ":users"),
            keys.room(7, ":conns"),
            keys.room(7, ":recent"),
            keys.room(7, ":recent:older"),
            keys.room(7, ":ver"),
            keys.session(7, "c1"),
        ] {
            assert_eq!(redis_keyslot(key.as_bytes()), slot, "{key}");
        }
        assert_eq!(
            redis_keyslot(keys.user("bob", ":sockets").as_bytes()),
            redis_keyslot(keys.user("bob", ":seen").as_bytes())
        );
        assert_ne!(slot, redis_keyslot(keys.room(8, "").as_bytes()), "rooms spread over slots");
    }
}
