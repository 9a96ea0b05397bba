//! `chat-room`: loads settings, starts logging, builds and runs the service.
//! A bad setting or an unreachable database ends start-up with one clear line
//! and a non-zero exit.

use std::process::ExitCode;

use chat_api::{Application, settings, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
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
