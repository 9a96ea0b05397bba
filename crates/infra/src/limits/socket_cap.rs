//! Open sockets per user across every instance: a Redis hash per user of slot
//! id → instance, reserved and checked in one Lua script. Slots of instances
//! that stopped (their `{prefix}instance:{id}` key, kept by presence, expired)
//! are dropped when a user is found at the limit: the script names the owners,
//! their keys are checked one by one (on a Redis Cluster a script may touch only
//! keys of its own slot) and the script runs again without the stopped ones.
//! When Redis cannot answer, the socket is let in: the per-instance count still
//! holds, and a limit never turns a cache outage into a chat outage.

use fred::prelude::*;

use crate::redis::script::LuaScript;
use crate::redis::{RedisConnection, RedisGate};

/// KEYS[1] the user's slots; ARGV[1] slot id, ARGV[2] this instance, ARGV[3]
/// the most slots, ARGV[4..] instances found stopped (their slots are dropped).
/// → {'reserved'}, or {'full', owner…}: the other instances holding slots.
const RESERVE: &str = r#"
local stopped = {}
for i = 4, #ARGV do stopped[ARGV[i]] = true end
local slots = redis.call('HGETALL', KEYS[1])
local count = 0
local owners = {}
local named = {}
for i = 1, #slots, 2 do
  local owner = slots[i + 1]
  if stopped[owner] then
    redis.call('HDEL', KEYS[1], slots[i])
  else
    count = count + 1
    if owner ~= ARGV[2] and not named[owner] then
      named[owner] = true
      owners[#owners + 1] = owner
    end
  end
end
if count >= tonumber(ARGV[3]) then
  table.insert(owners, 1, 'full')
  return owners
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], 86400)
return {'reserved'}
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
        self.redis.keys.user(user, ":slots")
    }

    /// Reserves slot `slot` for one more socket of `user`; false when the user
    /// holds the most allowed on all instances (true when Redis is away).
    pub async fn reserve(&self, user: &str, slot: &str) -> bool {
        match self.try_reserve(user, slot, Vec::new()).await {
            Ok(Reserve::Reserved) => true,
            Ok(Reserve::Full(owners)) => {
                // Full: slots of instances that stopped without giving them back
                // do not count.
                let mut stopped = Vec::new();
                for owner in owners {
                    let alive = self.redis.key(&format!("instance:{owner}"));
                    if let Ok(0) = self.redis.run(self.redis.client.exists::<i64, _>(alive)).await {
                        stopped.push(owner);
                    }
                }
                if stopped.is_empty() {
                    return false;
                }
                match self.try_reserve(user, slot, stopped).await {
                    Ok(Reserve::Reserved) => true,
                    Ok(Reserve::Full(_)) => false,
                    Err(()) => true,
                }
            }
            Err(()) => true,
        }
    }

    /// One run of the script; `Err` when Redis did not answer (said here).
    async fn try_reserve(
        &self,
        user: &str,
        slot: &str,
        stopped: Vec<String>,
    ) -> Result<Reserve, ()> {
        let mut args = vec![slot.to_owned(), self.instance.clone(), self.max_per_user.to_string()];
        args.extend(stopped);
        let reserve =
            self.reserve.run::<Vec<String>, _>(&self.redis.client, vec![self.key(user)], args);
        match self.redis.run(reserve).await {
            Ok(answer) => match answer.split_first() {
                Some((first, owners)) if first == "full" => Ok(Reserve::Full(owners.to_vec())),
                _ => Ok(Reserve::Reserved),
            },
            Err(e) if e.is_skip() => Err(()),
            Err(e) => {
                tracing::warn!(error = %e, "shared socket limit unavailable; letting the socket in");
                Err(())
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

/// What the script answered.
enum Reserve {
    Reserved,
    /// At the limit; the other instances holding the user's slots.
    Full(Vec<String>),
}
