//! The `chat-room` command line (clap): `serve` (the default), `token`,
//! `healthcheck` and `migrate`. Settings come from the environment and config
//! files, never from flags, so every command reads the same ones.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str =
    "GrainTrade chat room service: REST, WebSocket rooms and the built-in chat page.";

const AFTER_HELP: &str = "\
With no command, `chat-room` serves (as `chat-room serve`). Settings are environment
variables (PORT, DATABASE_URL, …), a .env file and config/*.toml; see the README.";

#[derive(Debug, Parser)]
#[command(name = "chat-room", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default)
    Serve,
    /// Print an HS256 token signed with JWT_SECRET, for trying the service with authentication on
    Token(TokenArgs),
    /// Exit 0 when the service at HOST:PORT answers /health with 200, 1 otherwise
    Healthcheck,
    /// Apply, roll back or list the database migrations of DATABASE_URL
    Migrate {
        #[command(subcommand)]
        action: Migrate,
    },
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user the token names (its `sub`): 1–64 characters
    #[arg(long, value_name = "USER", value_parser = user_id)]
    pub sub: String,
    /// How long the token is valid: 30s, 15m, 1h, 2d, or seconds
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = ttl)]
    pub ttl: Duration,
    /// A role the token grants; repeat the flag for both
    #[arg(long = "role", value_name = "ROLE", value_enum)]
    pub roles: Vec<TokenRole>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenRole {
    Admin,
    Moderator,
}

impl TokenRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Moderator => "moderator",
        }
    }
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Migrate {
    /// Apply pending migrations (creates a missing SQLite file, like the service)
    Up {
        /// Apply at most this many
        #[arg(long, value_name = "N")]
        steps: Option<u32>,
    },
    /// Roll back the last applied migration
    Down {
        /// Roll back this many
        #[arg(long, value_name = "N", default_value_t = 1)]
        steps: u32,
    },
    /// List every migration and whether it is applied
    Status,
    /// Drop every table, then apply all migrations: all data is lost
    Fresh,
}

/// `--sub`: the same rule as every user id the service accepts.
fn user_id(raw: &str) -> Result<String, String> {
    match chat_domain::UserId::parse(raw) {
        Ok(user) => Ok(user.as_str().to_owned()),
        Err(chat_domain::DomainError::Validation { reason, .. }) => Err(reason),
        Err(other) => Err(other.to_string()),
    }
}

/// `--ttl`: `30s`, `15m`, `1h`, `2d` or plain seconds, more than zero.
fn ttl(raw: &str) -> Result<Duration, String> {
    let expected = || "expected a duration like 30s, 15m, 1h or 2d".to_owned();
    let digits = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(digits);
    let n: u64 = number.parse().map_err(|_| expected())?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(expected()),
    };
    match n.checked_mul(unit_secs) {
        Some(0) => Err("a token must be valid for more than 0 seconds".to_owned()),
        // A year at most: a development token, not a credential to keep.
        Some(secs) if secs <= 366 * 86_400 => Ok(Duration::from_secs(secs)),
        _ => Err("at most 366d".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("chat-room").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_serves_and_serve_is_explicit_too() {
        assert!(parse(&[]).unwrap().command.is_none());
        assert!(matches!(parse(&["serve"]).unwrap().command, Some(Command::Serve)));
    }

    #[test]
    fn help_version_and_typos_do_not_serve() {
        for (args, kind) in [
            (&["--help"][..], ErrorKind::DisplayHelp),
            (&["-h"], ErrorKind::DisplayHelp),
            (&["--version"], ErrorKind::DisplayVersion),
            (&["-V"], ErrorKind::DisplayVersion),
            (&["tokn"], ErrorKind::InvalidSubcommand),
            (&["--port", "1"], ErrorKind::UnknownArgument),
            (&["serve", "extra"], ErrorKind::UnknownArgument),
            (&["migrate"], ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand),
            (&["migrate", "sideways"], ErrorKind::InvalidSubcommand),
        ] {
            assert_eq!(parse(args).unwrap_err().kind(), kind, "{args:?}");
        }
    }

    #[test]
    fn token_arguments() {
        let Some(Command::Token(args)) =
            parse(&["token", "--sub", "alice", "--role", "admin", "--role", "moderator"])
                .unwrap()
                .command
        else {
            panic!("a token command")
        };
        assert_eq!(args.sub, "alice");
        assert_eq!(args.ttl, Duration::from_secs(3600));
        assert_eq!(args.roles, [TokenRole::Admin, TokenRole::Moderator]);

        let missing = parse(&["token"]).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::MissingRequiredArgument);
        assert!(missing.to_string().contains("--sub <USER>"), "{missing}");
        let forever = parse(&["token", "--sub", "a", "--ttl", "forever"]).unwrap_err();
        assert_eq!(forever.kind(), ErrorKind::ValueValidation);
        assert!(forever.to_string().contains("'forever'"), "{forever}");
        let king = parse(&["token", "--sub", "a", "--role", "king"]).unwrap_err();
        assert_eq!(king.kind(), ErrorKind::InvalidValue);
        assert!(king.to_string().contains("admin, moderator"), "{king}");
        let empty = parse(&["token", "--sub", " "]).unwrap_err();
        assert_eq!(empty.kind(), ErrorKind::ValueValidation);
    }

    #[test]
    fn ttl_forms() {
        assert_eq!(ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(ttl("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(ttl("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "h", "1w", "-1h", "0", "0h", "1.5h", "99999999999999999999d", "367d"] {
            assert!(ttl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn migrate_commands() {
        let action = |args: &[&str]| match parse(args).unwrap().command {
            Some(Command::Migrate { action }) => action,
            other => panic!("{other:?}"),
        };
        assert!(matches!(action(&["migrate", "up"]), Migrate::Up { steps: None }));
        assert!(matches!(action(&["migrate", "down"]), Migrate::Down { steps: 1 }));
        assert!(matches!(action(&["migrate", "down", "--steps", "3"]), Migrate::Down { steps: 3 }));
        assert!(matches!(action(&["migrate", "status"]), Migrate::Status));
        assert!(matches!(action(&["migrate", "fresh"]), Migrate::Fresh));
    }
}
