//! Building the application from settings (adapters wired into the service) and
//! running it until a shutdown signal. `main` and the tests both start here.

use std::sync::Arc;
use std::time::Duration;

use axum::ServiceExt;
use axum::extract::Request;
use chat_domain::ChatService;
use chat_infra::sql::ConnectError;
use chat_infra::{DatabaseSettings, SqlStore};
use thiserror::Error;
use tokio::net::TcpListener;

use crate::http;
use crate::settings::{AuthMode, Settings};
use crate::state::AppState;

#[derive(Debug, Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error("cannot listen on {address} (HOST/PORT): {reason}")]
    Listen { address: String, reason: String },
    #[error("AUTH_MODE=required is not available yet; use AUTH_MODE=disabled (development)")]
    AuthUnavailable,
}

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    app: tower_http::normalize_path::NormalizePath<axum::Router>,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        if settings.effective_auth_mode() == AuthMode::Required {
            return Err(StartupError::AuthUnavailable);
        }
        tracing::warn!(
            "authentication is DISABLED: callers are trusted to say who they are (development mode)"
        );
        let store = SqlStore::open(&DatabaseSettings {
            url: settings.database_url.clone(),
            max_connections: settings.database_max_connections,
            connect_timeout: Duration::from_secs(settings.database_connect_timeout_secs),
            run_migrations: settings.run_migrations,
        })
        .await?;
        tracing::info!(backend = store.backend_name(), "database ready");
        let chat = ChatService::new(Arc::new(store.clone()), Arc::new(store.clone()));
        let state = AppState { chat, store };
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|e| StartupError::Listen {
                address: address.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            listener,
            app: http::app(state, settings),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until SIGINT/SIGTERM, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if let Ok(address) = self.listener.local_addr() {
            tracing::info!(%address, "listening");
        }
        axum::serve(
            self.listener,
            ServiceExt::<Request>::into_make_service(self.app),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
