//! Presence shared by all instances, in one Redis hash per room
//! (`{prefix}room:{id}:active`, TTL 5 minutes, refreshed while sockets are
//! open): field = connection id, value = `since_ms \t instance \t user`; beside
//! it `{prefix}room:{id}:users` counts each user's sockets and
//! `{prefix}room:{id}:conns` lists them (user → connection ids), so a sample of
//! a big room's users costs the sample, not the room. Lua scripts make
//! "first/last socket of this user" atomic across instances, in constant time.
//! Entries of an instance that stopped refreshing its liveness key
//! (`{prefix}instance:{id}`) are ignored and cleaned up. If Redis fails, presence
//! degrades to "nobody here" rather than failing a socket.
//!
//! User presence, whatever the socket: `{prefix}user:{id}:sockets` (connection
//! → instance, TTL 5 minutes, refreshed by the instances holding them) and
//! `{prefix}user:{id}:seen` (ms of the latest close, 30 days).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::ports::{PresenceEntry, PresenceRegistry, UserPresence};
use chat_domain::{DomainError, RoomId, UserId};
use chrono::{DateTime, TimeZone, Utc};
use fred::prelude::*;

use super::script::LuaScript;
use super::{RedisConnection, RedisGate, RedisUnavailable};

const ROOM_TTL_SECS: i64 = 300;
const INSTANCE_TTL_SECS: i64 = 30;
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// `last_seen` outlives the sockets, but not forever: a user unseen this long
/// reads as never seen, and Redis holds no key per user ever met.
const SEEN_TTL_SECS: i64 = 30 * 24 * 3600;
/// Departures that could not be written, kept to be written again; beyond
/// this many (a long outage) the oldest are left to the key's TTL.
const UNWRITTEN_AT_MOST: usize = 65_536;

/// KEYS[1] the user's sockets; ARGV: connection, instance, ttl.
const USER_OPEN_LUA: &str = r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"#;

/// KEYS[1] the user's sockets, KEYS[2] their last seen (ms); ARGV: seen ttl,
/// at (ms), connections → forgets them and keeps the later of the stored time
/// and `at`, in one step so that no close is lost to a concurrent one.
const USER_CLOSE_LUA: &str = r#"
for i = 3, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
local old = redis.call('GET', KEYS[2])
if (not old) or (tonumber(old) or 0) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1])
else
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 1
"#;

/// KEYS[1] the user's sockets, KEYS[2] their last seen → [seen or '',
/// connection, instance, …], read together.
const USER_READ_LUA: &str = r#"
local out = {redis.call('GET', KEYS[2]) or ''}
local sockets = redis.call('HGETALL', KEYS[1])
for i = 1, #sockets do out[#out + 1] = sockets[i] end
return out
"#;

/// Removes connection `conn` from `user`'s list in the hash `key`.
const DROP_CONN_LUA: &str = r#"
local function drop_conn(key, user, conn)
  local listed = redis.call('HGET', key, user)
  if not listed then return end
  local kept = {}
  for id in string.gmatch(listed, '%S+') do
    if id ~= conn then kept[#kept + 1] = id end
  end
  if #kept == 0 then
    redis.call('HDEL', key, user)
  else
    redis.call('HSET', key, user, table.concat(kept, ' '))
  end
end
"#;

/// KEYS[1] room hash, KEYS[2] session hash, KEYS[3] the room's sockets per
/// user, KEYS[4] their connection ids per user; ARGV: connection, value, ttl,
/// user, room, instance, since → the user's socket count in the room (1: the first).
const OPEN_LUA: &str = r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'user', ARGV[4], 'room', ARGV[5], 'instance', ARGV[6], 'since', ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local n = redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
redis.call('EXPIRE', KEYS[3], ARGV[3])
local listed = redis.call('HGET', KEYS[4], ARGV[4])
if listed then listed = listed .. ' ' .. ARGV[1] else listed = ARGV[1] end
redis.call('HSET', KEYS[4], ARGV[4], listed)
redis.call('EXPIRE', KEYS[4], ARGV[3])
return n
"#;

/// KEYS[1] room hash, KEYS[2] sockets per user, KEYS[3] connection ids per
/// user; ARGV: connection, user pairs → how many of those connections were
/// still there. Forgets each one.
const FORGET_LUA: &str = r#"
local gone = 0
for i = 1, #ARGV, 2 do
  drop_conn(KEYS[3], ARGV[i + 1], ARGV[i])
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    gone = gone + 1
    if redis.call('HINCRBY', KEYS[2], ARGV[i + 1], -1) <= 0 then
      redis.call('HDEL', KEYS[2], ARGV[i + 1])
    end
  end
end
return gone
"#;

/// KEYS[1] room hash, KEYS[2] session hash, KEYS[3] sockets per user, KEYS[4]
/// connection ids per user; ARGV: connection, user → -1 if unknown, else the
/// user's remaining sockets.
const CLOSE_LUA: &str = r#"
redis.call('DEL', KEYS[2])
drop_conn(KEYS[4], ARGV[2], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
local n = redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[3], ARGV[2])
  return 0
end
return n
"#;

/// KEYS[1] room hash, KEYS[2] sockets per user, KEYS[3] connection ids per
/// user; ARGV: limit → the sockets (field, value, …) of every user, or of
/// `limit` users picked at random — every socket of each, so their counts and
/// `since` are whole. The picked users' sockets are read from their lists; a
/// user without one (opened by an older version during a rolling update)
/// makes it scan the room hash as that version did.
const SOME_LUA: &str = r#"
local limit = tonumber(ARGV[1])
if redis.call('HLEN', KEYS[2]) <= limit then
  return redis.call('HGETALL', KEYS[1])
end
local users = redis.call('HRANDFIELD', KEYS[2], limit)
if #users == 0 then return {} end
-- Two HMGETs, not one HGET per user and per socket: a join into a big room
-- cost Redis ~150 commands inside this script, and Redis runs one script at a time.
local lists = redis.call('HMGET', KEYS[3], unpack(users))
local ids = {}
for i = 1, #users do
  if not lists[i] then
    ids = nil
    break
  end
  for id in string.gmatch(lists[i], '%S+') do ids[#ids + 1] = id end
end
if ids then
  local sockets = {}
  if #ids > 0 then
    local values = redis.call('HMGET', KEYS[1], unpack(ids))
    for i = 1, #ids do
      if values[i] then
        sockets[#sockets + 1] = ids[i]
        sockets[#sockets + 1] = values[i]
      end
    end
  end
  return sockets
end
local picked = {}
for _, user in ipairs(users) do picked[user] = true end
local sockets = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local user = string.match(all[i + 1], '^[^\t]*\t[^\t]*\t(.*)$')
  if user and picked[user] then
    sockets[#sockets + 1] = all[i]
    sockets[#sockets + 1] = all[i + 1]
  end
end
return sockets
"#;

static CLOSE: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(format!("{DROP_CONN_LUA}{CLOSE_LUA}")));
static FORGET: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(format!("{DROP_CONN_LUA}{FORGET_LUA}")));
static SOME: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(SOME_LUA));
static OPEN: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(OPEN_LUA));
static USER_OPEN: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(USER_OPEN_LUA));
static USER_CLOSE: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(USER_CLOSE_LUA));
static USER_READ: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(USER_READ_LUA));

/// A departure not yet written to Redis: user, connection, when.
type Unwritten = (UserId, String, DateTime<Utc>);

#[derive(Clone)]
pub struct RedisPresence {
    redis: RedisGate,
    instance: String,
    /// Rooms with sockets on this instance, and how many: their keys are refreshed.
    local_rooms: Arc<Mutex<HashMap<RoomId, usize>>>,
    /// The session keys of this instance's open sockets: they are refreshed.
    local_sessions: Arc<Mutex<HashSet<String>>>,
    /// Users with sockets (of any kind) on this instance, and how many: their
    /// socket hashes are refreshed.
    local_users: Arc<Mutex<HashMap<UserId, usize>>>,
    /// Departures Redis did not take: written again on every refresh, so a
    /// socket closed during an outage does not stay counted once it ends.
    unwritten: Arc<Mutex<VecDeque<Unwritten>>>,
}

impl RedisPresence {
    /// Starts the task that keeps this instance's liveness key and its rooms' keys alive.
    pub fn start(redis: &RedisConnection, instance: String) -> Self {
        let presence = Self {
            redis: redis.gate("presence"),
            instance,
            local_rooms: Arc::default(),
            local_sessions: Arc::default(),
            local_users: Arc::default(),
            unwritten: Arc::default(),
        };
        let refresher = presence.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH_EVERY);
            loop {
                ticks.tick().await;
                refresher.refresh().await;
            }
        });
        presence
    }

    async fn refresh(&self) {
        let alive = self.redis.key(&format!("instance:{}", self.instance));
        let client = &self.redis.client;
        let _: Result<(), _> = self
            .redis
            .run(client.set(alive, "1", Some(Expiration::EX(INSTANCE_TTL_SECS)), None, false))
            .await;
        let rooms: Vec<RoomId> = self.local().keys().copied().collect();
        for room in rooms {
            for key in [self.room_key(room), self.users_key(room), self.conns_key(room)] {
                let _: Result<(), _> =
                    self.redis.run(client.expire(key, ROOM_TTL_SECS, None)).await;
            }
        }
        let sessions: Vec<String> = self.sessions().iter().cloned().collect();
        for key in sessions {
            let _: Result<(), _> = self.redis.run(client.expire(key, ROOM_TTL_SECS, None)).await;
        }
        let users: Vec<UserId> = self.users().keys().cloned().collect();
        for user in users {
            let key = self.user_sockets_key(&user);
            let _: Result<(), _> = self.redis.run(client.expire(key, ROOM_TTL_SECS, None)).await;
        }
        let unwritten = std::mem::take(&mut *self.unwritten_list());
        for (user, connection, at) in unwritten {
            if let Err(e) = self.write_departure(&user, &connection, at).await {
                degraded("close a user's socket, again", &e);
                self.keep_unwritten((user, connection, at));
            }
        }
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, usize>> {
        self.local_users.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unwritten_list(&self) -> std::sync::MutexGuard<'_, VecDeque<Unwritten>> {
        self.unwritten.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn keep_unwritten(&self, departure: Unwritten) {
        let mut list = self.unwritten_list();
        if list.len() >= UNWRITTEN_AT_MOST {
            list.pop_front();
        }
        list.push_back(departure);
    }

    fn count_user(&self, user: &UserId, delta: isize) {
        let mut users = self.users();
        let count = users.entry(user.clone()).or_insert(0);
        *count = count.saturating_add_signed(delta);
        if *count == 0 {
            users.remove(user);
        }
    }

    /// `{prefix}user:{id}:sockets`: the user's open sockets, connection → instance.
    fn user_sockets_key(&self, user: &UserId) -> String {
        self.redis.keys.user(user, ":sockets")
    }

    /// `{prefix}user:{id}:seen`: when the user's latest socket closed (ms).
    fn user_seen_key(&self, user: &UserId) -> String {
        self.redis.keys.user(user, ":seen")
    }

    async fn write_departure(
        &self,
        user: &UserId,
        connection: &str,
        at: DateTime<Utc>,
    ) -> Result<(), RedisUnavailable> {
        self.forget_user_sockets(user, vec![connection.to_owned()], at).await
    }

    /// Forgets `connections` of `user` and records `at` as a close.
    async fn forget_user_sockets(
        &self,
        user: &UserId,
        connections: Vec<String>,
        at: DateTime<Utc>,
    ) -> Result<(), RedisUnavailable> {
        let keys = vec![self.user_sockets_key(user), self.user_seen_key(user)];
        let mut args = vec![SEEN_TTL_SECS.to_string(), at.timestamp_millis().to_string()];
        args.extend(connections);
        self.redis.run(USER_CLOSE.run::<i64, _>(&self.redis.client, keys, args)).await.map(drop)
    }

    /// Whether `instance` still refreshes its liveness key; this one always
    /// does, and an unanswered check counts as alive (nothing is dropped on a
    /// doubt).
    async fn is_alive(&self, instance: &str) -> bool {
        instance == self.instance
            || self
                .redis
                .run(
                    self.redis
                        .client
                        .exists::<i64, _>(self.redis.key(&format!("instance:{instance}"))),
                )
                .await
                .map(|n| n > 0)
                .unwrap_or(true)
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, usize>> {
        self.local_rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.local_sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `{prefix}session:{connection}`: which user, room and instance a socket is.
    fn session_key(&self, room: RoomId, connection: &str) -> String {
        self.redis.keys.session(room, connection)
    }

    fn room_key(&self, room: RoomId) -> String {
        self.redis.keys.room(room, ":active")
    }

    /// `{prefix}room:{id}:users`: open sockets per user, so that "first" and
    /// "last socket of this user" cost the same in a room of any size.
    fn users_key(&self, room: RoomId) -> String {
        self.redis.keys.room(room, ":users")
    }

    /// `{prefix}room:{id}:conns`: each user's connection ids (space-separated),
    /// so a sample of users finds their sockets without reading the room's hash.
    fn conns_key(&self, room: RoomId) -> String {
        self.redis.keys.room(room, ":conns")
    }

    fn count_local(&self, room: RoomId, delta: isize) {
        let mut local = self.local();
        let count = local.entry(room).or_insert(0);
        *count = count.saturating_add_signed(delta);
        if *count == 0 {
            local.remove(&room);
        }
    }
}

fn degraded(what: &str, error: &RedisUnavailable) {
    // An open circuit was said once, when it opened.
    if !error.is_skip() {
        tracing::warn!(%error, "Redis presence unavailable ({what}); continuing without it");
    }
}

#[async_trait]
impl PresenceRegistry for RedisPresence {
    async fn socket_opened(
        &self,
        room: RoomId,
        user: &UserId,
        connection: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        self.count_local(room, 1);
        let session = self.session_key(room, connection);
        self.sessions().insert(session.clone());
        let value = format!("{}\t{}\t{}", at.timestamp_millis(), self.instance, user);
        let args = vec![
            connection.to_owned(),
            value,
            ROOM_TTL_SECS.to_string(),
            user.to_string(),
            room.to_string(),
            self.instance.clone(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ];
        let keys = vec![self.room_key(room), session, self.users_key(room), self.conns_key(room)];
        match self.redis.run(OPEN.run::<i64, _>(&self.redis.client, keys, args)).await {
            Ok(count) => Ok(count == 1),
            Err(e) => {
                degraded("open", &e);
                Ok(false)
            }
        }
    }

    async fn socket_closed(
        &self,
        room: RoomId,
        user: &UserId,
        connection: &str,
    ) -> Result<bool, DomainError> {
        self.count_local(room, -1);
        let session = self.session_key(room, connection);
        self.sessions().remove(&session);
        let args = vec![connection.to_owned(), user.to_string()];
        let keys = vec![self.room_key(room), session, self.users_key(room), self.conns_key(room)];
        match self.redis.run(CLOSE.run::<i64, _>(&self.redis.client, keys, args)).await {
            Ok(remaining) => Ok(remaining == 0),
            Err(e) => {
                degraded("close", &e);
                Ok(false)
            }
        }
    }

    async fn users(&self, room: RoomId) -> Result<Vec<PresenceEntry>, DomainError> {
        let sockets: Vec<(String, String)> = match self
            .redis
            .run(self.redis.client.hgetall::<HashMap<String, String>, _>(self.room_key(room)))
            .await
        {
            Ok(sockets) => sockets.into_iter().collect(),
            Err(e) => {
                degraded("list", &e);
                return Ok(Vec::new());
            }
        };
        Ok(self.live_users(room, sockets).await)
    }

    async fn some_users(
        &self,
        room: RoomId,
        limit: usize,
    ) -> Result<Vec<PresenceEntry>, DomainError> {
        let keys = vec![self.room_key(room), self.users_key(room), self.conns_key(room)];
        let fields = match self
            .redis
            .run(SOME.run::<Vec<String>, _>(&self.redis.client, keys, vec![limit]))
            .await
        {
            Ok(fields) => fields,
            Err(e) => {
                degraded("list", &e);
                return Ok(Vec::new());
            }
        };
        let mut pairs = Vec::with_capacity(fields.len() / 2);
        let mut fields = fields.into_iter();
        while let (Some(connection), Some(value)) = (fields.next(), fields.next()) {
            pairs.push((connection, value));
        }
        let mut users = self.live_users(room, pairs).await;
        users.truncate(limit);
        Ok(users)
    }

    async fn user_connected(
        &self,
        user: &UserId,
        connection: &str,
        _at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        // Counted before Redis answers, so the refresh covers it either way.
        self.count_user(user, 1);
        let keys = vec![self.user_sockets_key(user)];
        let args = vec![connection.to_owned(), self.instance.clone(), ROOM_TTL_SECS.to_string()];
        if let Err(e) =
            self.redis.run(USER_OPEN.run::<i64, _>(&self.redis.client, keys, args)).await
        {
            degraded("open a user's socket", &e);
        }
        Ok(())
    }

    async fn user_disconnected(
        &self,
        user: &UserId,
        connection: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        self.count_user(user, -1);
        // Written even if the open was not (it may have reached Redis after
        // its time-out): forgetting an unknown socket is harmless.
        if let Err(e) = self.write_departure(user, connection, at).await {
            degraded("close a user's socket", &e);
            self.keep_unwritten((user.clone(), connection.to_owned(), at));
        }
        Ok(())
    }

    async fn user_presence(&self, user: &UserId) -> Result<UserPresence, DomainError> {
        let keys = vec![self.user_sockets_key(user), self.user_seen_key(user)];
        let fields = match self
            .redis
            .run(USER_READ.run::<Vec<String>, _>(&self.redis.client, keys, Vec::<String>::new()))
            .await
        {
            Ok(fields) => fields,
            Err(e) => {
                degraded("user presence", &e);
                return Ok(UserPresence::offline(user));
            }
        };
        let mut fields = fields.into_iter();
        let mut last_seen = fields
            .next()
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        let mut alive: HashMap<String, bool> = HashMap::new();
        let (mut connections, mut dead) = (0u32, Vec::new());
        while let (Some(connection), Some(instance)) = (fields.next(), fields.next()) {
            let live = match alive.get(&instance) {
                Some(live) => *live,
                None => {
                    let live = self.is_alive(&instance).await;
                    alive.insert(instance, live);
                    live
                }
            };
            if live {
                connections = connections.saturating_add(1);
            } else {
                dead.push(connection);
            }
        }
        if !dead.is_empty() {
            // Their instance stopped (within its liveness TTL) without closing
            // them: they count as closed when found, which is the best known.
            let found = chat_domain::timestamp::now();
            last_seen = Some(last_seen.map_or(found, |seen| seen.max(found)));
            if let Err(e) = self.forget_user_sockets(user, dead, found).await {
                degraded("forget a stopped instance's sockets", &e);
            }
        }
        Ok(UserPresence { user_id: user.to_string(), connections, last_seen })
    }
}

impl RedisPresence {
    /// The users of `sockets` (connection, value) whose instance is alive;
    /// the sockets of instances that stopped are forgotten on the way.
    async fn live_users(&self, room: RoomId, sockets: Vec<(String, String)>) -> Vec<PresenceEntry> {
        let mut alive: HashMap<String, bool> = HashMap::new();
        let mut entries = Vec::new();
        let mut dead = Vec::new();
        for (connection, value) in sockets {
            let mut parts = value.splitn(3, '\t');
            let (Some(since), Some(instance), Some(user)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let live = match alive.get(instance) {
                Some(live) => *live,
                None => {
                    let live = self.is_alive(instance).await;
                    alive.insert(instance.to_owned(), live);
                    live
                }
            };
            if !live {
                dead.push(connection);
                dead.push(user.to_owned());
                continue;
            }
            let (Ok(since), Ok(user)) = (since.parse::<i64>(), UserId::parse(user)) else {
                continue;
            };
            let since = Utc.timestamp_millis_opt(since).single().unwrap_or_else(Utc::now);
            entries.push((user, since));
        }
        if !dead.is_empty() {
            let keys = vec![self.room_key(room), self.users_key(room), self.conns_key(room)];
            let _: Result<i64, _> =
                self.redis.run(FORGET.run(&self.redis.client, keys, dead)).await;
        }
        crate::memory::group_sockets(entries.iter())
    }
}
