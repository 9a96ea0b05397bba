//! The settings themselves, one flat struct whose keys are the environment
//! variable names in lower case; every value is read strictly (`parse`).

use std::time::Duration;

use serde::Deserialize;

use super::parse;

/// An enum setting read from its lower-case name, refusing anything else with
/// the names it accepts.
macro_rules! choice {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const CHOICES: &[&str] = &[$($text),+];
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                match raw.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(parse::not_one_of(Self::CHOICES, &raw)),
                }
            }
        }
    };
}

choice!(AppEnv { Development = "development", Production = "production" });

choice!(LogFormat { Json = "json", Pretty = "pretty" });

choice!(AuthMode {
    /// Identity as declared by the client (development).
    Disabled = "disabled",
    /// A valid JWT on every call.
    Required = "required",
});

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub host: String,
    #[serde(deserialize_with = "parse::whole")]
    pub port: u16,
    pub app_env: AppEnv,
    #[serde(deserialize_with = "parse::flag")]
    pub debug: bool,
    pub log_level: String,
    pub log_format: Option<LogFormat>,
    pub database_url: String,
    #[serde(deserialize_with = "parse::whole")]
    pub database_max_connections: u32,
    #[serde(deserialize_with = "parse::whole")]
    pub database_connect_timeout_secs: u64,
    /// The longest one storage call may take before it fails `unavailable`.
    #[serde(deserialize_with = "parse::whole")]
    pub database_query_timeout_secs: u64,
    #[serde(deserialize_with = "parse::flag")]
    pub run_migrations: bool,
    #[serde(default, deserialize_with = "parse::optional_text")]
    pub redis_url: Option<String>,
    pub redis_key_prefix: String,
    /// Serve rooms and newest pages from the cache (Redis, else in-process).
    #[serde(deserialize_with = "parse::flag")]
    pub cache_enabled: bool,
    #[serde(default, deserialize_with = "parse::optional_text")]
    pub rabbitmq_url: Option<String>,
    /// The queue of inbound commands (its dead letters go to `{queue}.dlx`).
    pub rabbitmq_commands_queue: String,
    pub auth_mode: Option<AuthMode>,
    #[serde(default, deserialize_with = "parse::optional_text")]
    pub jwt_secret: Option<String>,
    #[serde(default, deserialize_with = "parse::optional_text")]
    pub jwt_public_key: Option<String>,
    #[serde(default, deserialize_with = "parse::optional_text")]
    pub jwt_issuer: Option<String>,
    #[serde(default, deserialize_with = "parse::optional_text")]
    pub jwt_audience: Option<String>,
    #[serde(default, deserialize_with = "parse::optional_text")]
    pub cors_origins: Option<String>,
    #[serde(deserialize_with = "parse::whole")]
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "parse::whole")]
    pub request_timeout_secs: u64,
    #[serde(deserialize_with = "parse::whole")]
    pub ws_ping_interval_ms: u64,
    #[serde(deserialize_with = "parse::whole")]
    pub ws_pong_timeout_ms: u64,
    #[serde(deserialize_with = "parse::whole")]
    pub ws_max_frame_bytes: usize,
    #[serde(deserialize_with = "parse::whole")]
    pub ws_queue_capacity: usize,
    #[serde(deserialize_with = "parse::whole")]
    pub ws_close_grace_ms: u64,
    /// Messages of one socket that may wait for their commit at once; the
    /// socket's next frames are read when one is answered.
    #[serde(deserialize_with = "parse::whole")]
    pub ws_max_in_flight: usize,
    /// Rooms one inbox socket (`/ws`) may subscribe to.
    #[serde(deserialize_with = "parse::whole")]
    pub ws_max_subscriptions: usize,
    /// The most messages one transaction stores (group commit).
    #[serde(deserialize_with = "parse::whole")]
    pub message_batch_max: usize,
    /// Messages that may wait for storage; beyond that a post is `unavailable`.
    #[serde(deserialize_with = "parse::whole")]
    pub message_queue_capacity: usize,
    /// Message transactions in flight at once, on disjoint rooms (Postgres; SQLite: 1).
    pub message_writers: usize,
    /// Sockets of a room on this instance above which presence changes go out
    /// as one `presence` frame per interval instead of `user_joined`/`user_left`;
    /// 0 coalesces in every room.
    #[serde(deserialize_with = "parse::whole")]
    pub ws_presence_coalesce_above: usize,
    /// How often a coalescing room sends its `presence` frame (when anything changed).
    #[serde(deserialize_with = "parse::whole")]
    pub ws_presence_interval_ms: u64,
    /// Messages per user per second (REST and sockets together, shared by every
    /// instance through Redis when it is configured); 0 switches it off.
    #[serde(deserialize_with = "parse::rate")]
    pub rate_limit_messages_per_second: f64,
    /// How many messages a user may send at once before the rate applies.
    #[serde(deserialize_with = "parse::whole")]
    pub rate_limit_messages_burst: u32,
    /// REST requests per client address per second (this instance); 0: off.
    #[serde(deserialize_with = "parse::rate")]
    pub rate_limit_http_per_second: f64,
    #[serde(deserialize_with = "parse::whole")]
    pub rate_limit_http_burst: u32,
    /// New sockets per client address per second (this instance); 0: off.
    #[serde(deserialize_with = "parse::rate")]
    pub rate_limit_ws_connects_per_second: f64,
    #[serde(deserialize_with = "parse::whole")]
    pub rate_limit_ws_connects_burst: u32,
    /// Open sockets one user may hold on this instance; 0: no limit.
    #[serde(deserialize_with = "parse::whole")]
    pub ws_max_sockets_per_user: u32,
    /// `rate_limited` answers in a row after which a socket is closed (1008); 0: never.
    #[serde(deserialize_with = "parse::whole")]
    pub ws_flood_strikes: u32,
    /// Take the client address from `X-Forwarded-For` (behind a trusted proxy).
    #[serde(deserialize_with = "parse::flag")]
    pub trust_forwarded_for: bool,
    /// Archive messages older than this many days; unset or 0: never.
    #[serde(default, deserialize_with = "parse::optional_whole")]
    pub archive_after_days: Option<u32>,
    #[serde(deserialize_with = "parse::whole")]
    pub archive_interval_secs: u64,
    #[serde(deserialize_with = "parse::whole")]
    pub archive_batch_size: u64,
    /// Seconds an unread message waits before `notification_requested`; 0: off.
    #[serde(deserialize_with = "parse::whole")]
    pub notify_after_secs: u64,
}

impl Settings {
    /// `AUTH_MODE` when set; else required in production, disabled in development.
    pub fn effective_auth_mode(&self) -> AuthMode {
        self.auth_mode.unwrap_or(match self.app_env {
            AppEnv::Production => AuthMode::Required,
            AppEnv::Development => AuthMode::Disabled,
        })
    }

    pub fn effective_log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(match self.app_env {
            AppEnv::Production => LogFormat::Json,
            AppEnv::Development => LogFormat::Pretty,
        })
    }

    pub fn sockets(&self) -> crate::ws::SocketSettings {
        crate::ws::SocketSettings {
            ping_interval: Duration::from_millis(self.ws_ping_interval_ms),
            pong_timeout: Duration::from_millis(self.ws_pong_timeout_ms),
            max_frame_bytes: self.ws_max_frame_bytes,
            queue_capacity: self.ws_queue_capacity,
            close_grace: Duration::from_millis(self.ws_close_grace_ms),
            flood_strikes: self.ws_flood_strikes,
            max_in_flight: self.ws_max_in_flight,
            max_subscriptions: self.ws_max_subscriptions,
            joined_users_at_most: self.ws_presence_coalesce_above.max(1),
        }
    }

    pub fn group_commit(&self) -> chat_infra::group_commit::GroupCommitSettings {
        chat_infra::group_commit::GroupCommitSettings {
            max_batch: self.message_batch_max,
            queue: self.message_queue_capacity,
            writers: self.message_writers,
            deadline: Duration::from_secs(self.database_query_timeout_secs),
        }
    }

    pub fn presence(&self) -> crate::ws::hub::PresenceSettings {
        crate::ws::hub::PresenceSettings {
            coalesce_above: self.ws_presence_coalesce_above,
            interval: Duration::from_millis(self.ws_presence_interval_ms),
        }
    }

    /// The archiving job's settings, when it is on.
    pub fn archive(&self) -> Option<chat_infra::archiver::ArchiveSettings> {
        let days = self.archive_after_days.filter(|days| *days > 0)?;
        Some(chat_infra::archiver::ArchiveSettings {
            after: Duration::from_secs(u64::from(days) * 24 * 3600),
            interval: Duration::from_secs(self.archive_interval_secs),
            batch_size: self.archive_batch_size,
        })
    }

    /// Notifications for people who are away, when they are on.
    pub fn away_notifications(&self) -> Option<chat_infra::away_notifier::AwaySettings> {
        (self.notify_after_secs > 0).then(|| chat_infra::away_notifier::AwaySettings {
            after: Duration::from_secs(self.notify_after_secs),
        })
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Allowed CORS origins; `None` means any.
    pub fn cors_origin_list(&self) -> Option<Vec<String>> {
        let raw = self.cors_origins.as_deref()?.trim();
        if raw.is_empty() || raw == "*" {
            return None;
        }
        Some(raw.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
    }
}
