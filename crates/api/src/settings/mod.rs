//! Service configuration, layered with the `config` crate: built-in defaults
//! (`config/default.toml`, compiled in), then `config/default.toml` and
//! `config/{APP_ENV}.toml` from the working directory when present, then a `.env`
//! file, then environment variables (`DATABASE_URL`, `PORT`, … always win).

mod load;
mod model;
mod parse;

pub use load::{SettingsError, from_vars, load};
pub use model::{AppEnv, AuthMode, LogFormat, Settings};
