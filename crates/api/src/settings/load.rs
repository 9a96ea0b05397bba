//! Reading the layers into [`Settings`] and checking what serde cannot.

use config::{Config, Environment, File, FileFormat};
use thiserror::Error;

use super::Settings;

const BUILT_IN_DEFAULTS: &str = include_str!("../../../../config/default.toml");

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Invalid(config::ConfigError),
    #[error("invalid setting {name}: expected {expected}, got {got}")]
    Type { name: String, expected: String, got: String },
    #[error("invalid setting {name}: {reason}")]
    Setting { name: &'static str, reason: String },
}

/// Loads the layered configuration from the working directory and environment.
pub fn load() -> Result<Settings, SettingsError> {
    // A missing .env is normal; a malformed one is worth saying so.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        return Err(SettingsError::Setting { name: ".env", reason: e.to_string() });
    }
    build(None)
}

/// The settings as `vars` alone would make them (instead of the process
/// environment; no `.env`): how deployment files are checked against the
/// settings the service really reads.
pub fn from_vars(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, SettingsError> {
    build(Some(vars.into_iter().collect()))
}

fn build(vars: Option<config::Map<String, String>>) -> Result<Settings, SettingsError> {
    let var = |name: &str| match &vars {
        Some(vars) => vars.get(name).cloned(),
        None => std::env::var(name).ok(),
    };
    let app_env = var("APP_ENV").unwrap_or_else(|| "development".to_owned());
    let dir = var("CONFIG_DIR").unwrap_or_else(|| "config".to_owned());
    let settings: Settings = Config::builder()
        .add_source(File::from_str(BUILT_IN_DEFAULTS, FileFormat::Toml))
        .add_source(File::with_name(&format!("{dir}/default")).required(false))
        .add_source(File::with_name(&format!("{dir}/{app_env}")).required(false))
        .add_source(Environment::default().try_parsing(true).source(vars))
        .build()?
        .try_deserialize()?;
    validate(&settings)?;
    Ok(settings)
}

impl From<config::ConfigError> for SettingsError {
    /// Names the setting as operators write it (`PORT`, not `port`).
    fn from(err: config::ConfigError) -> Self {
        match err {
            config::ConfigError::Type { key: Some(key), unexpected, expected, .. } => Self::Type {
                name: key.to_uppercase(),
                expected: expected.to_owned(),
                got: unexpected.to_string(),
            },
            other => Self::Invalid(other),
        }
    }
}

fn validate(s: &Settings) -> Result<(), SettingsError> {
    if s.database_max_connections == 0 {
        return Err(SettingsError::Setting {
            name: "DATABASE_MAX_CONNECTIONS",
            reason: "must be at least 1".to_owned(),
        });
    }
    for (name, value) in [
        ("DATABASE_QUERY_TIMEOUT_SECS", s.database_query_timeout_secs),
        ("WS_PING_INTERVAL_MS", s.ws_ping_interval_ms),
        ("WS_PONG_TIMEOUT_MS", s.ws_pong_timeout_ms),
        ("WS_MAX_FRAME_BYTES", s.ws_max_frame_bytes as u64),
        ("WS_QUEUE_CAPACITY", s.ws_queue_capacity as u64),
        ("WS_MAX_IN_FLIGHT", s.ws_max_in_flight as u64),
        ("MESSAGE_QUEUE_CAPACITY", s.message_queue_capacity as u64),
        ("MESSAGE_WRITERS", s.message_writers as u64),
        ("WS_PRESENCE_INTERVAL_MS", s.ws_presence_interval_ms),
    ] {
        if value == 0 {
            return Err(SettingsError::Setting { name, reason: "must be at least 1".to_owned() });
        }
    }
    // Each message is ten parameters of one INSERT; SQLite allows 32,766.
    if !(1..=1000).contains(&s.message_batch_max) {
        return Err(SettingsError::Setting {
            name: "MESSAGE_BATCH_MAX",
            reason: "must be between 1 and 1000".to_owned(),
        });
    }
    if s.archive_interval_secs == 0 {
        return Err(SettingsError::Setting {
            name: "ARCHIVE_INTERVAL_SECS",
            reason: "must be at least 1".to_owned(),
        });
    }
    if !(1..=10_000).contains(&s.archive_batch_size) {
        return Err(SettingsError::Setting {
            name: "ARCHIVE_BATCH_SIZE",
            reason: "must be between 1 and 10000".to_owned(),
        });
    }
    if s.max_body_bytes < 1024 {
        return Err(SettingsError::Setting {
            name: "MAX_BODY_BYTES",
            reason: "must be at least 1024".to_owned(),
        });
    }
    if s.host.parse::<std::net::IpAddr>().is_err() && s.host != "localhost" {
        return Err(SettingsError::Setting {
            name: "HOST",
            reason: format!("{:?} is not an IP address", s.host),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn presence_coalescing_settings() {
        let defaults = from_vars(vars(&[])).unwrap();
        assert_eq!(defaults.ws_presence_coalesce_above, 100);
        assert_eq!(defaults.ws_presence_interval_ms, 1000);
        let set = from_vars(vars(&[
            ("WS_PRESENCE_COALESCE_ABOVE", "0"),
            ("WS_PRESENCE_INTERVAL_MS", "250"),
        ]))
        .unwrap();
        assert_eq!(set.presence().coalesce_above, 0);
        assert_eq!(set.presence().interval, std::time::Duration::from_millis(250));
        // A zero period would make the pump's timer panic.
        let zero = from_vars(vars(&[("WS_PRESENCE_INTERVAL_MS", "0")])).unwrap_err();
        assert!(zero.to_string().contains("WS_PRESENCE_INTERVAL_MS"), "{zero}");
    }
}
