//! Reading the layers into [`Settings`] and checking what serde cannot: every
//! bad value stops start-up with one line naming the setting, what it expects
//! and what it got.

use config::{Config, Environment, File, FileFormat};
use thiserror::Error;

use super::Settings;

const BUILT_IN_DEFAULTS: &str = include_str!("../../../../config/default.toml");

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Invalid(config::ConfigError),
    /// A value the reader refused; `reason` says what was expected and what came.
    #[error("invalid setting {name}: {reason}")]
    Setting { name: String, reason: String },
}

impl SettingsError {
    fn setting(name: &str, reason: impl Into<String>) -> Self {
        Self::Setting { name: name.to_owned(), reason: reason.into() }
    }

    /// `expected …, got …` for a value the checks below refuse.
    fn expected(name: &str, expected: &str, got: impl std::fmt::Display) -> Self {
        Self::setting(name, format!("expected {expected}, got {got}"))
    }
}

/// Loads the layered configuration from the working directory and environment.
pub fn load() -> Result<Settings, SettingsError> {
    // A missing .env is normal; a malformed one is worth saying so.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        return Err(SettingsError::setting(".env", e.to_string()));
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
        use config::ConfigError;
        match err {
            ConfigError::Type { key: Some(key), unexpected, expected, .. } => {
                Self::expected(&key.to_uppercase(), expected, unexpected)
            }
            // The readers in `parse` and the enums' own messages ("expected …, got …").
            ConfigError::At { error, key: Some(key), .. } => match *error {
                ConfigError::Message(reason) => Self::setting(&key.to_uppercase(), reason),
                other => Self::setting(&key.to_uppercase(), other.to_string()),
            },
            other => Self::Invalid(other),
        }
    }
}

/// The levels `LOG_LEVEL` names (the seed's `warning` included).
const LOG_LEVELS: &[&str] = &["error", "warn", "warning", "info", "debug", "trace", "off"];

/// A level, or tracing directives such as `chat_api=debug,info`. A bare word
/// that is not a level is refused: tracing would read `loud` as a target name
/// and log nothing else at all.
fn check_log_level(raw: &str) -> Result<(), SettingsError> {
    let refuse = || {
        SettingsError::expected(
            "LOG_LEVEL",
            "one of error, warn, info, debug, trace, off, or directives like chat_api=debug,info",
            format!("{raw:?}"),
        )
    };
    let is_level = |word: &str| LOG_LEVELS.contains(&word.trim().to_ascii_lowercase().as_str());
    for part in raw.split(',') {
        let fine = match part.split_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(part),
        };
        if !fine {
            return Err(refuse());
        }
    }
    crate::telemetry::try_filter(raw).map(|_| ()).map_err(|_| refuse())
}

/// `scheme://host[:port]`, as browsers send it in `Origin` (no path, no slash).
fn is_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', ' '])
}

fn check_url(
    name: &str,
    url: Option<&str>,
    schemes: &[&str],
    example: &str,
) -> Result<(), SettingsError> {
    let Some(url) = url else { return Ok(()) };
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if scheme.is_some_and(|s| schemes.contains(&s)) {
        return Ok(());
    }
    let shown = chat_infra::sql::redact(url);
    Err(SettingsError::expected(name, &format!("a URL like {example}"), format!("{shown:?}")))
}

fn validate(s: &Settings) -> Result<(), SettingsError> {
    check_log_level(&s.log_level)?;
    if chat_infra::sql::normalize_url(&s.database_url).is_err() {
        return Err(SettingsError::expected(
            "DATABASE_URL",
            "sqlite://FILE or postgres://USER@HOST/DB (or the seed's sqlite+aiosqlite:///FILE, \
             postgresql+asyncpg://…)",
            format!("{:?}", chat_infra::sql::redact(&s.database_url)),
        ));
    }
    check_url(
        "REDIS_URL",
        s.redis_url.as_deref(),
        &[
            "redis",
            "rediss",
            "redis-cluster",
            "rediss-cluster",
            "redis-sentinel",
            "rediss-sentinel",
        ],
        "redis://HOST:6379/0",
    )?;
    check_url(
        "RABBITMQ_URL",
        s.rabbitmq_url.as_deref(),
        &["amqp", "amqps"],
        "amqp://USER:PASSWORD@HOST:5672/%2f",
    )?;
    if let Some(origins) = &s.cors_origins {
        let list = origins.trim();
        // Empty entries (a trailing comma) are skipped, as `cors_origin_list` does.
        let mut entries = list.split(',').map(str::trim).filter(|o| !o.is_empty());
        if list != "*" && !entries.all(is_origin) {
            return Err(SettingsError::expected(
                "CORS_ORIGINS",
                "comma-separated origins like https://app.example (scheme and host, no path), or *",
                format!("{origins:?}"),
            ));
        }
    }
    for (name, value) in [
        ("DATABASE_MAX_CONNECTIONS", u64::from(s.database_max_connections)),
        ("DATABASE_CONNECT_TIMEOUT_SECS", s.database_connect_timeout_secs),
        ("DATABASE_QUERY_TIMEOUT_SECS", s.database_query_timeout_secs),
        ("REQUEST_TIMEOUT_SECS", s.request_timeout_secs),
        ("WS_PING_INTERVAL_MS", s.ws_ping_interval_ms),
        ("WS_PONG_TIMEOUT_MS", s.ws_pong_timeout_ms),
        ("WS_MAX_FRAME_BYTES", s.ws_max_frame_bytes as u64),
        ("WS_QUEUE_CAPACITY", s.ws_queue_capacity as u64),
        ("WS_MAX_IN_FLIGHT", s.ws_max_in_flight as u64),
        ("WS_MAX_SUBSCRIPTIONS", s.ws_max_subscriptions as u64),
        ("MESSAGE_QUEUE_CAPACITY", s.message_queue_capacity as u64),
        ("MESSAGE_WRITERS", s.message_writers as u64),
        ("WS_PRESENCE_INTERVAL_MS", s.ws_presence_interval_ms),
        ("ARCHIVE_INTERVAL_SECS", s.archive_interval_secs),
    ] {
        if value == 0 {
            return Err(SettingsError::expected(name, "a whole number of at least 1", 0));
        }
    }
    // Each message is ten parameters of one INSERT; SQLite allows 32,766.
    if !(1..=1000).contains(&s.message_batch_max) {
        return Err(SettingsError::expected(
            "MESSAGE_BATCH_MAX",
            "a whole number from 1 to 1000",
            s.message_batch_max,
        ));
    }
    if !(1..=10_000).contains(&s.archive_batch_size) {
        return Err(SettingsError::expected(
            "ARCHIVE_BATCH_SIZE",
            "a whole number from 1 to 10000",
            s.archive_batch_size,
        ));
    }
    // The job looks this far back for rooms to check: a week is already generous.
    if s.notify_after_secs > 604_800 {
        return Err(SettingsError::expected(
            "NOTIFY_AFTER_SECS",
            "a whole number from 0 (off) to 604800",
            s.notify_after_secs,
        ));
    }
    if s.max_body_bytes < 1024 {
        return Err(SettingsError::expected(
            "MAX_BODY_BYTES",
            "a whole number of at least 1024",
            s.max_body_bytes,
        ));
    }
    if s.rabbitmq_commands_queue.trim().is_empty() {
        return Err(SettingsError::expected("RABBITMQ_COMMANDS_QUEUE", "a queue name", "\"\""));
    }
    if s.host.parse::<std::net::IpAddr>().is_err() && s.host != "localhost" {
        return Err(SettingsError::expected(
            "HOST",
            "an IP address (0.0.0.0, 127.0.0.1, ::) or localhost",
            format!("{:?}", s.host),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::AuthMode;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// The one line a bad value gets.
    fn refusal(name: &str, value: &str) -> String {
        from_vars(vars(&[(name, value)])).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn every_bad_value_is_refused_with_what_was_expected() {
        for (name, value, line) in [
            (
                "PORT",
                "abc",
                r#"invalid setting PORT: expected a whole number from 0 to 65535, got "abc""#,
            ),
            (
                "PORT",
                "1.5",
                "invalid setting PORT: expected a whole number from 0 to 65535, got 1.5",
            ),
            (
                "PORT",
                "true",
                "invalid setting PORT: expected a whole number from 0 to 65535, got true",
            ),
            (
                "WS_QUEUE_CAPACITY",
                "-1",
                "invalid setting WS_QUEUE_CAPACITY: expected a whole number (0 or more), got -1",
            ),
            (
                "WS_QUEUE_CAPACITY",
                "0",
                "invalid setting WS_QUEUE_CAPACITY: expected a whole number of at least 1, got 0",
            ),
            (
                "AUTH_MODE",
                "maybe",
                r#"invalid setting AUTH_MODE: expected one of disabled, required, got "maybe""#,
            ),
            (
                "APP_ENV",
                "prod",
                r#"invalid setting APP_ENV: expected one of development, production, got "prod""#,
            ),
            (
                "LOG_FORMAT",
                "xml",
                r#"invalid setting LOG_FORMAT: expected one of json, pretty, got "xml""#,
            ),
            ("DEBUG", "maybe", r#"invalid setting DEBUG: expected true or false, got "maybe""#),
            (
                "LOG_LEVEL",
                "loud",
                r#"invalid setting LOG_LEVEL: expected one of error, warn, info, debug, trace, off, or directives like chat_api=debug,info, got "loud""#,
            ),
            (
                "RATE_LIMIT_MESSAGES_PER_SECOND",
                "-5",
                "invalid setting RATE_LIMIT_MESSAGES_PER_SECOND: expected a number of 0 or more (0 switches the limit off), got -5",
            ),
            (
                "RATE_LIMIT_HTTP_PER_SECOND",
                "inf",
                "invalid setting RATE_LIMIT_HTTP_PER_SECOND: expected a number of 0 or more (0 switches the limit off), got inf",
            ),
            (
                "ARCHIVE_AFTER_DAYS",
                "soon",
                r#"invalid setting ARCHIVE_AFTER_DAYS: expected a whole number from 0 to 4294967295, got "soon""#,
            ),
            (
                "RABBITMQ_URL",
                "localhost",
                r#"invalid setting RABBITMQ_URL: expected a URL like amqp://USER:PASSWORD@HOST:5672/%2f, got "localhost""#,
            ),
            (
                "CORS_ORIGINS",
                "graintrade.example",
                r#"invalid setting CORS_ORIGINS: expected comma-separated origins like https://app.example (scheme and host, no path), or *, got "graintrade.example""#,
            ),
        ] {
            assert_eq!(refusal(name, value), line, "{name}={value}");
        }
        let url = refusal("DATABASE_URL", "mysql://u:secret@h/db");
        assert!(url.starts_with("invalid setting DATABASE_URL: expected sqlite://"), "{url}");
        assert!(url.ends_with(r#"got "mysql://u:***@h/db""#), "the password is masked: {url}");
    }

    #[test]
    fn good_values_in_their_other_spellings() {
        let set = from_vars(vars(&[
            ("LOG_LEVEL", "warning"),
            ("DEBUG", "yes"),
            ("AUTH_MODE", "Required"),
            ("JWT_SECRET", ""),
            ("RATE_LIMIT_MESSAGES_PER_SECOND", "0.5"),
            ("ARCHIVE_AFTER_DAYS", ""),
            ("CORS_ORIGINS", "https://a.example, http://localhost:8001,"),
        ]))
        .unwrap();
        assert!(set.debug);
        assert_eq!(set.auth_mode, Some(AuthMode::Required));
        assert_eq!(set.jwt_secret, None, "an empty value is unset");
        assert_eq!(set.rate_limit_messages_per_second, 0.5);
        assert_eq!(set.archive_after_days, None);
        for level in ["chat_api=debug,info", "off", "tower_http=warn"] {
            assert!(from_vars(vars(&[("LOG_LEVEL", level)])).is_ok(), "{level}");
        }
    }

    #[test]
    fn notification_wait_defaults_to_a_minute_and_zero_is_off() {
        let defaults = from_vars(vars(&[])).unwrap();
        assert_eq!(defaults.notify_after_secs, 60);
        let on = defaults.away_notifications().expect("on by default");
        assert_eq!(on.after, std::time::Duration::from_secs(60));
        let off = from_vars(vars(&[("NOTIFY_AFTER_SECS", "0")])).unwrap();
        assert!(off.away_notifications().is_none());
        assert_eq!(
            refusal("NOTIFY_AFTER_SECS", "604801"),
            "invalid setting NOTIFY_AFTER_SECS: expected a whole number from 0 (off) to 604800, got 604801"
        );
    }

    #[test]
    fn presence_coalescing_settings() {
        let defaults = from_vars(vars(&[])).unwrap();
        assert_eq!(defaults.ws_presence_coalesce_above, 50);
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
