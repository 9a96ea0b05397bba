//! The GrainTrade chat service: configuration, telemetry, the HTTP application
//! and its start-up. The `chat-room` binary is a thin `main` over this library,
//! which the integration tests drive directly.

pub mod auth;
pub mod cli;
pub mod edge;
pub mod healthcheck;
pub mod http;
pub mod legacy;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod presence;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
pub mod ws;

pub use settings::Settings;
pub use startup::{Application, StartupError};
