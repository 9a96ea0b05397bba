//! The use case behind notifications for people who are away: of the users due
//! one, those with no socket open to the room on any instance are notified.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::{ChatService, DomainError, RoomId, timestamp};

impl ChatService {
    /// Notifies the participants of rooms active after `active_since` whose
    /// unread messages of others waited since `cutoff` or longer, who are not in
    /// the room now (presence on every instance). Returns how many were
    /// notified and whether `limit` cut the list short (run again).
    pub async fn notify_away(
        &self,
        active_since: DateTime<Utc>,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<(usize, bool), DomainError> {
        let due = self.away.due(active_since, cutoff, limit).await?;
        let cut_short = due.len() >= limit as usize;
        let mut away = Vec::with_capacity(due.len());
        let mut present: Option<(RoomId, HashSet<String>)> = None;
        for user in due {
            let in_room = match &present {
                Some((room, users)) if *room == user.room_id => users,
                _ => {
                    let users = self.presence.users(user.room_id).await?;
                    let users = users.into_iter().map(|entry| entry.user_id).collect();
                    &present.insert((user.room_id, users)).1
                }
            };
            if !in_room.contains(&user.user_id) {
                away.push(user);
            }
        }
        if away.is_empty() {
            return Ok((0, cut_short));
        }
        Ok((self.away.notify(&away, timestamp::now()).await?, cut_short))
    }
}
