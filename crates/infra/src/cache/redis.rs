//! The Redis cache (fred). Keys (prefix configurable, API.md's layout):
//! `{p}room:{id}` the room (1 h), `{p}room:{id}:recent` the newest messages as a
//! sorted set by seq (30 min) with `{p}room:{id}:recent:older` telling whether
//! older messages exist, and `{p}room:{id}:ver` the room's version (2 h). Every
//! check-and-write is one Lua script, so it is atomic across instances.

use std::sync::LazyLock;

use async_trait::async_trait;
use chat_domain::{Message, Room, RoomId};
use fred::prelude::*;
use serde::{Deserialize, Serialize};

use super::backend::{CacheBackend, CacheError, Recent};
use crate::redis::script::LuaScript;
use crate::redis::{RedisConnection, RedisGate, RedisUnavailable};

const ROOM_TTL: i64 = 3600;
const RECENT_TTL: i64 = 1800;
const VERSION_TTL: i64 = 7200;

/// KEYS: ver, recent, older. ARGV: limit, version ttl, then seq/json pairs of
/// new messages (new seqs: nothing to replace).
const APPEND_LUA: &str = r#"
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
for i = 3, #ARGV, 2 do redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
local limit = tonumber(ARGV[1])
local n = redis.call('ZCARD', KEYS[2])
if n > limit then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, n - limit - 1)
  redis.call('SET', KEYS[3], '1', 'KEEPTTL')
end
local ttl = redis.call('TTL', KEYS[3])
if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return 1
"#;

/// KEYS: ver, room. ARGV: seen ('' = none), json, ttl.
const FILL_ROOM_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
if (v == false and ARGV[1] == '') or v == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"#;

/// KEYS: ver, recent, older. ARGV: seen, has_older, ttl, then seq/json pairs.
const FILL_RECENT_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
if not ((v == false and ARGV[1] == '') or v == ARGV[1]) then return 0 end
redis.call('DEL', KEYS[2])
for i = 4, #ARGV, 2 do redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"#;

/// KEYS: recent, older. → false, or {older, {json…}} (ascending seq).
const READ_RECENT_LUA: &str = r#"
local o = redis.call('GET', KEYS[2])
if o == false then return false end
return {o, redis.call('ZRANGE', KEYS[1], 0, -1)}
"#;

/// KEYS: ver, recent, older. ARGV: seq, json, version ttl. Replaces an edited
/// message in a cached page (a page without it is left alone).
const REPLACE_LUA: &str = r#"
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
if #redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
local ttl = redis.call('TTL', KEYS[3])
if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return 1
"#;

/// KEYS: ver, recent, older, room. ARGV: version ttl, room_too.
const INVALIDATE_LUA: &str = r#"
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
if ARGV[2] == '1' then redis.call('DEL', KEYS[4]) end
return 1
"#;

/// The room as cached, `last_seq` included (the API's Room leaves it out).
static APPEND: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(APPEND_LUA));
static FILL_RECENT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(FILL_RECENT_LUA));
static FILL_ROOM: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(FILL_ROOM_LUA));
static INVALIDATE: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(INVALIDATE_LUA));
static READ_RECENT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(READ_RECENT_LUA));
static REPLACE: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(REPLACE_LUA));

#[derive(Serialize, Deserialize)]
struct CachedRoom {
    id: RoomId,
    name: String,
    description: Option<String>,
    is_active: bool,
    is_private: bool,
    created_by: Option<String>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(with = "chat_domain::timestamp::rfc3339_millis")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "chat_domain::timestamp::rfc3339_millis")]
    updated_at: chrono::DateTime<chrono::Utc>,
    last_seq: i64,
}

impl From<&Room> for CachedRoom {
    fn from(r: &Room) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            description: r.description.clone(),
            is_active: r.is_active,
            is_private: r.is_private,
            created_by: r.created_by.clone(),
            item_id: r.item_id.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_seq: r.last_seq,
        }
    }
}

impl From<CachedRoom> for Room {
    fn from(r: CachedRoom) -> Self {
        Room {
            id: r.id,
            name: r.name,
            description: r.description,
            is_active: r.is_active,
            is_private: r.is_private,
            created_by: r.created_by,
            item_id: r.item_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_seq: r.last_seq,
        }
    }
}

pub struct RedisCache {
    redis: RedisGate,
}

impl RedisCache {
    pub fn new(redis: &RedisConnection) -> Self {
        Self { redis: redis.gate("cache") }
    }

    fn keys(&self, room: RoomId) -> [String; 4] {
        [
            self.redis.keys.room(room, ":ver"),
            self.redis.keys.room(room, ":recent"),
            self.redis.keys.room(room, ":recent:older"),
            self.redis.keys.room(room, ""),
        ]
    }
}

fn failed(e: Error) -> CacheError {
    CacheError(e.to_string())
}

fn unavailable(e: RedisUnavailable) -> CacheError {
    CacheError(e.to_string())
}

fn seen_arg(seen: Option<i64>) -> String {
    seen.map(|v| v.to_string()).unwrap_or_default()
}

#[async_trait]
impl CacheBackend for RedisCache {
    async fn version(&self, room: RoomId) -> Result<Option<i64>, CacheError> {
        let [ver, ..] = self.keys(room);
        self.redis.run(self.redis.client.get::<Option<i64>, _>(ver)).await.map_err(unavailable)
    }

    async fn room(&self, room: RoomId) -> Result<Option<Room>, CacheError> {
        let [.., key] = self.keys(room);
        let json: Option<String> =
            self.redis.run(self.redis.client.get(key)).await.map_err(unavailable)?;
        Ok(json.and_then(|j| serde_json::from_str::<CachedRoom>(&j).ok()).map(Room::from))
    }

    async fn fill_room(&self, room: &Room, seen: Option<i64>) -> Result<(), CacheError> {
        let [ver, _, _, key] = self.keys(room.id);
        let json = serde_json::to_string(&CachedRoom::from(room))
            .map_err(|e| CacheError(e.to_string()))?;
        let args = vec![seen_arg(seen), json, ROOM_TTL.to_string()];
        self.redis
            .run(FILL_ROOM.run::<i64, _>(&self.redis.client, vec![ver, key], args))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn recent(&self, room: RoomId) -> Result<Option<Recent>, CacheError> {
        let [_, recent, older, _] = self.keys(room);
        let value: Value = self
            .redis
            .run(READ_RECENT.run(&self.redis.client, vec![recent, older], Vec::<String>::new()))
            .await
            .map_err(unavailable)?;
        let Value::Array(mut parts) = value else {
            return Ok(None);
        };
        if parts.len() != 2 {
            return Ok(None);
        }
        let members = parts.pop().unwrap_or(Value::Null);
        let has_older = parts.pop().and_then(|v| v.as_string()).is_some_and(|s| s == "1");
        let members: Vec<String> = members.convert().map_err(failed)?;
        let items = members
            .iter()
            .map(|json| serde_json::from_str::<Message>(json))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CacheError(format!("cached message unreadable: {e}")))?;
        Ok(Some(Recent { items, has_older }))
    }

    async fn fill_recent(
        &self,
        room: RoomId,
        recent: &Recent,
        seen: Option<i64>,
    ) -> Result<(), CacheError> {
        let [ver, key, older, _] = self.keys(room);
        let mut args = vec![
            seen_arg(seen),
            if recent.has_older { "1" } else { "0" }.to_owned(),
            RECENT_TTL.to_string(),
        ];
        for message in &recent.items {
            args.push(message.seq.to_string());
            args.push(serde_json::to_string(message).map_err(|e| CacheError(e.to_string()))?);
        }
        self.redis
            .run(FILL_RECENT.run::<i64, _>(&self.redis.client, vec![ver, key, older], args))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn appended(&self, room: RoomId, messages: &[Message]) -> Result<(), CacheError> {
        let [ver, recent, older, _] = self.keys(room);
        let mut args = Vec::with_capacity(2 + 2 * messages.len());
        args.push(super::RECENT_LIMIT.to_string());
        args.push(VERSION_TTL.to_string());
        for message in messages {
            args.push(message.seq.to_string());
            args.push(serde_json::to_string(message).map_err(|e| CacheError(e.to_string()))?);
        }
        self.redis
            .run(APPEND.run::<i64, _>(&self.redis.client, vec![ver, recent, older], args))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn replaced(&self, message: &Message) -> Result<(), CacheError> {
        self.replace(message).await
    }

    async fn invalidate(&self, room: RoomId, room_too: bool) -> Result<(), CacheError> {
        let [ver, recent, older, key] = self.keys(room);
        let args = vec![VERSION_TTL.to_string(), if room_too { "1" } else { "0" }.to_owned()];
        self.redis
            .run(INVALIDATE.run::<i64, _>(&self.redis.client, vec![ver, recent, older, key], args))
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

impl RedisCache {
    async fn replace(&self, message: &Message) -> Result<(), CacheError> {
        let [ver, recent, older, _] = self.keys(message.room_id);
        let json = serde_json::to_string(message).map_err(|e| CacheError(e.to_string()))?;
        let args = vec![message.seq.to_string(), json, VERSION_TTL.to_string()];
        self.redis
            .run(REPLACE.run::<i64, _>(&self.redis.client, vec![ver, recent, older], args))
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
