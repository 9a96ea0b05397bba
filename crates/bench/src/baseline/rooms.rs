//! `POST /rooms`: a room exists in memory only. `last_seq` (baseline only)
//! makes a room pretend to hold that many messages, for history reads.

use axum::Json;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::{State, now_rfc3339};

#[derive(Deserialize)]
pub struct NewRoom {
    name: String,
    #[serde(default)]
    last_seq: i64,
}

pub async fn create(
    Extract(state): Extract<State>,
    Json(room): Json<NewRoom>,
) -> (StatusCode, Json<Value>) {
    let id = state.create_room(room.last_seq.max(0));
    let now = now_rfc3339();
    (
        StatusCode::CREATED,
        Json(json!({
            "id": id, "name": room.name, "description": null, "is_active": true,
            "is_private": false, "created_by": null, "created_at": now, "updated_at": now,
        })),
    )
}
