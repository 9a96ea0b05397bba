//! What every handler shares: the chat service and the adapters it needs to probe.

use chat_domain::ChatService;
use chat_infra::SqlStore;
use std::sync::Arc;

use chat_infra::rabbit::RelayStatus;
use chat_infra::redis::RedisConnection;
use tokio_util::task::TaskTracker;

use crate::ws::{Hub, RoomNames, SocketSettings};

#[derive(Clone)]
pub struct AppState {
    pub chat: ChatService,
    pub store: SqlStore,
    /// Set when `REDIS_URL` is: for health checks.
    pub redis: Option<RedisConnection>,
    /// Set when `RABBITMQ_URL` is: the event relay's state.
    pub relay: Option<Arc<RelayStatus>>,
    pub hub: Hub,
    pub sockets: SocketSettings,
    /// Open socket tasks, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Rooms addressed by name on the socket path (development mode only).
    pub room_names: Option<RoomNames>,
    /// Token verification when authentication is required.
    pub auth: Option<Arc<crate::auth::TokenVerifier>>,
    /// `CORS_ORIGINS`, also checked on socket upgrades (`None`: any origin).
    pub origins: Option<Arc<Vec<String>>>,
    /// Requests and sockets per client address, sockets per user.
    pub limits: crate::limits::Limits,
    /// The GrainTrade-compatible sockets.
    pub legacy: crate::legacy::LegacyHub,
    pub metrics: crate::metrics::Metrics,
}
