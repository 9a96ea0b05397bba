//! Development convenience: with authentication disabled, `/ws/{name}` (a room
//! key that is not an id, as in the seed's `ws://localhost:8001/ws/room_123`)
//! joins the public room of that name, creating it on first use, so the seed's
//! client examples run verbatim.

use std::sync::Arc;

use chat_domain::{Actor, ChatService, RoomId};
use tokio::sync::Mutex;

use crate::http::error::ApiError;

#[derive(Clone, Default)]
pub struct RoomNames {
    /// One resolution at a time, so two first connections make one room.
    creating: Arc<Mutex<()>>,
}

impl RoomNames {
    pub async fn resolve(
        &self,
        chat: &ChatService,
        actor: &Actor,
        name: &str,
    ) -> Result<RoomId, ApiError> {
        let _one_at_a_time = self.creating.lock().await;
        let room = chat.room_by_name(actor, name).await.map_err(|e| match e {
            chat_domain::DomainError::Validation { .. } => {
                ApiError::NotFound(format!("room {name} not found"))
            }
            other => other.into(),
        })?;
        Ok(room.id)
    }
}
