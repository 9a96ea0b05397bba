//! `chat-room`: parses the command line, loads settings, then serves, mints a
//! token, probes `/health` or runs migrations. A bad argument gets clap's usage
//! line; a bad setting or an unreachable database one log line and exit 1.

use std::io::Write;
use std::process::ExitCode;

use chat_api::cli::{Cli, Command, Migrate, TokenArgs};
use chat_api::{Application, Settings, settings, telemetry};
use clap::Parser;
use clap::error::ErrorKind;

// glibc's malloc was ~15 % of the service's CPU under load (many small,
// short-lived frames and buffers); mimalloc's per-thread free lists cost less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Exits by itself: 0 after --help/--version, 2 with a usage line otherwise.
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Token(args) => mint_token(&args),
        Command::Healthcheck => healthcheck(),
        Command::Migrate { action } => migrate(action).await,
    }
}

/// The settings, with logging started as they ask; `None` once the reason is logged.
fn settings_and_logs() -> Option<Settings> {
    match settings::load() {
        Ok(settings) => {
            let level = if settings.debug { "debug" } else { settings.log_level.as_str() };
            telemetry::init(level, settings.effective_log_format());
            Some(settings)
        }
        Err(e) => {
            // No settings, so no configured logger yet: log with the defaults.
            telemetry::init("info", settings::LogFormat::Pretty);
            tracing::error!("{e}");
            None
        }
    }
}

async fn serve() -> ExitCode {
    let Some(settings) = settings_and_logs() else { return ExitCode::FAILURE };
    raise_open_file_limit();
    let app = match Application::build(&settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(action: Migrate) -> ExitCode {
    let Some(settings) = settings_and_logs() else { return ExitCode::FAILURE };
    match chat_api::migrate::run(&settings, action).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Silent, as container health checks expect: the exit status is the answer.
fn healthcheck() -> ExitCode {
    let Ok(settings) = settings::load() else { return ExitCode::FAILURE };
    if chat_api::healthcheck::run(&settings.host, settings.port) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every socket is an open file: lift the soft limit to the hard one so the
/// process holds as many sockets as the system lets it.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(open_files = limit, "open-file limit raised to the hard limit")
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// `chat-room token --sub alice [--ttl 1h] [--role admin]…`: prints an HS256
/// token signed with the service's `JWT_SECRET` (environment, `.env` or config).
fn mint_token(args: &TokenArgs) -> ExitCode {
    let fail = |message: String| {
        let _ = clap::Error::raw(ErrorKind::InvalidValue, format!("{message}\n")).print();
        ExitCode::FAILURE
    };
    let settings = match settings::load() {
        Ok(settings) => settings,
        Err(e) => return fail(e.to_string()),
    };
    let Some(secret) = settings.jwt_secret else {
        return fail(if settings.jwt_public_key.is_some() {
            "this service checks tokens with JWT_PUBLIC_KEY; `chat-room token` signs only with \
             an HS256 JWT_SECRET, so tokens for it come from the key's owner"
                .to_owned()
        } else {
            "JWT_SECRET is not set (environment, .env or config/*.toml): `chat-room token` \
             signs with it, e.g. JWT_SECRET=dev chat-room token --sub alice"
                .to_owned()
        });
    };
    let roles = args.roles.iter().map(|role| role.as_str().to_owned()).collect();
    let issuance = chat_api::auth::Issuance {
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
    };
    match chat_api::auth::mint(&secret, &args.sub, args.ttl, roles, &issuance) {
        Ok(token) => {
            let _ = writeln!(std::io::stdout(), "{token}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot sign the token: {e}")),
    }
}
