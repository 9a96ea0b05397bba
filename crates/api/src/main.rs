//! `chat-room`: loads settings, starts logging, builds and runs the service.
//! A bad setting or an unreachable database ends start-up with one clear line
//! and a non-zero exit.

use std::process::ExitCode;

use chat_api::{Application, settings, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("token") => return mint_token(&args[1..]),
        Some("healthcheck") => return chat_api::healthcheck::run(),
        _ => {}
    }
    let settings = match settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            // No settings, so no configured logger yet: log with the defaults.
            telemetry::init("info", settings::LogFormat::Pretty);
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let level = if settings.debug { "debug" } else { settings.log_level.as_str() };
    telemetry::init(level, settings.effective_log_format());
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

/// Every socket is an open file: lift the soft limit to the hard one so the
/// process holds as many sockets as the system lets it.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(open_files = limit, "open-file limit raised to the hard limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// `chat-room token --sub alice [--ttl 1h] [--role admin]…`: prints an HS256
/// token signed with `JWT_SECRET`, for trying the service with authentication on.
fn mint_token(args: &[String]) -> ExitCode {
    use std::io::Write;
    let usage = "usage: chat-room token --sub USER [--ttl 1h] [--role admin|moderator]…";
    let (mut sub, mut ttl, mut roles) = (None, "1h".to_owned(), Vec::new());
    let mut pairs = args.chunks(2);
    for pair in &mut pairs {
        match pair {
            [flag, value] if flag == "--sub" => sub = Some(value.clone()),
            [flag, value] if flag == "--ttl" => ttl = value.clone(),
            [flag, value] if flag == "--role" => roles.push(value.clone()),
            _ => {
                let _ = writeln!(std::io::stderr(), "{usage}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = dotenvy::dotenv();
    let (Some(sub), Some(ttl), Ok(secret)) =
        (sub, chat_api::auth::parse_ttl(&ttl), std::env::var("JWT_SECRET"))
    else {
        let _ = writeln!(std::io::stderr(), "{usage} (JWT_SECRET must be set)");
        return ExitCode::FAILURE;
    };
    match chat_api::auth::mint(&secret, &sub, ttl, roles, &chat_api::auth::Issuance::from_env()) {
        Ok(token) => {
            let _ = writeln!(std::io::stdout(), "{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "cannot mint a token: {e}");
            ExitCode::FAILURE
        }
    }
}
