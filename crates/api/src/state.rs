//! What every handler shares: the chat service and the adapters it needs to probe.

use chat_domain::ChatService;
use chat_infra::SqlStore;

#[derive(Clone)]
pub struct AppState {
    pub chat: ChatService,
    pub store: SqlStore,
}
