//! Open sockets per user across every instance: a Redis hash per user of slot
//! id → instance, reserved and checked in one Lua script. Slots of instances
//! that stopped (their `{prefix}instance:{id}` key, kept by presence, expired)
//! are dropped as they are found. When Redis cannot answer, the socket is let
//! in: the per-instance count still holds, and a limit never turns a cache
//! outage into a chat outage.

use fred::prelude::*;

use crate::redis::script::LuaScript;
use crate::redis::{RedisConnection, RedisGate};

/// KEYS[1] the user's slots; ARGV[1] slot id, ARGV[2] this instance, ARGV[3]
/// the most slots, ARGV[4] the instance key prefix. 1: reserved, 0: full.
const RESERVE: &str = r#"
local slots = redis.call('HGETALL', KEYS[1])
local alive = {}
alive[ARGV[2]] = true
local count = 0
for i = 1, #slots, 2 do
  local owner = slots[i + 1]
  if alive[owner] == nil then
    alive[owner] = redis.call('EXISTS', ARGV[4] .. owner) == 1
  end
  if alive[owner] then
    count = count + 1
  else
    redis.call('HDEL', KEYS[1], slots[i])
  end
end
if count >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], 86400)
return 1
"#;

pub struct RedisSocketCap {
    redis: RedisGate,
    reserve: LuaScript,
    instance: String,
    max_per_user: u32,
}

impl RedisSocketCap {
    /// At most `max_per_user` sockets per user on all instances together.
    pub fn new(redis: &RedisConnection, instance: String, max_per_user: u32) -> Self {
        Self {
            redis: redis.gate("socket_cap"),
            reserve: LuaScript::new(RESERVE),
            instance,
            max_per_user,
        }
    }

    fn key(&self, user: &str) -> String {
        self.redis.key(&format!("user:{user}:slots"))
    }

    /// Reserves slot `slot` for one more socket of `user`; false when the user
    /// holds the most allowed on all instances (true when Redis is away).
    pub async fn reserve(&self, user: &str, slot: &str) -> bool {
        let args = vec![
            slot.to_owned(),
            self.instance.clone(),
            self.max_per_user.to_string(),
            self.redis.key("instance:"),
        ];
        let reserve = self.reserve.run::<i64, _>(&self.redis.client, vec![self.key(user)], args);
        match self.redis.run(reserve).await {
            Ok(reserved) => reserved == 1,
            Err(e) if e.is_skip() => true,
            Err(e) => {
                tracing::warn!(error = %e, "shared socket limit unavailable; letting the socket in");
                true
            }
        }
    }

    /// Gives slot `slot` of `user` back.
    pub async fn release(&self, user: &str, slot: &str) {
        let release = self.redis.client.hdel::<i64, _, _>(self.key(user), slot);
        if let Err(e) = self.redis.run(release).await
            && !e.is_skip()
        {
            // The slot goes when this instance stops (its instance key expires).
            tracing::warn!(error = %e, "cannot give a shared socket slot back");
        }
    }
}
