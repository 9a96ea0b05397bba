//! `chat-bench`: parses the command line, raises the open-file limit, and runs
//! one scenario (or the baseline server). Results go to stdout (the table) and
//! to `--json`; logs and the progress bar go to stderr.

use std::process::ExitCode;

use chat_bench::cli::Over;
use chat_bench::cli::{Cli, Command};
use chat_bench::scenario::{self, BenchError, connections, history, inbox, legacy, rooms};
use chat_bench::{baseline, limits};
use clap::Parser;
use serde_json::json;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match limits::raise_open_files() {
        Ok(limit) => tracing::info!(soft = limit.soft, hard = limit.hard, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), BenchError> {
    match command {
        Command::Throughput(args) => {
            let parameters = json!({
                "rooms": args.rooms, "sockets_per_room": args.sockets, "senders_per_room": args.load.senders,
                "rate": args.load.rate, "window": args.load.window, "duration_s": args.load.duration,
                "content_bytes": args.load.size, "users": args.load.users,
            });
            scenario::compare("throughput", &args.target, parameters, |target| {
                rooms::run(target, &args)
            })
            .await?;
        }
        Command::Fanout(fanout) => {
            let args = fanout.as_room_load();
            let parameters = json!({
                "sockets": args.sockets, "senders": args.load.senders, "rate": args.load.rate,
                "window": args.load.window, "duration_s": args.load.duration, "content_bytes": args.load.size, "users": args.load.users,
            });
            scenario::compare("fanout", &args.target, parameters, |target| {
                rooms::run(target, &args)
            })
            .await?;
        }
        Command::Connections(args) => {
            let parameters = json!({
                "sockets": args.sockets, "per_room": args.per_room, "hold_s": args.hold,
                "source_ips": args.target.source_ips,
            });
            scenario::compare("connections", &args.target, parameters, |target| {
                connections::run(target, &args)
            })
            .await?;
        }
        Command::History(args) => {
            let parameters = json!({
                "room": args.room, "seed": args.seed, "concurrency": args.concurrency,
                "duration_s": args.duration, "limit": args.limit,
            });
            let size = history::RoomSize::default();
            scenario::compare("history", &args.target, parameters, |target| {
                history::run(target, &args, size.clone())
            })
            .await?;
        }
        Command::Legacy(args) => {
            let parameters = json!({
                "pairs": args.pairs, "both_send": args.both_send, "rate": args.rate,
                "window": args.window, "duration_s": args.duration, "content_bytes": args.size,
            });
            scenario::compare("legacy", &args.target, parameters, |target| {
                legacy::run(target, &args)
            })
            .await?;
        }
        Command::Inbox(args) => {
            let parameters = json!({
                "over": args.over.name(), "users": args.users, "rooms_per_user": args.rooms_per_user,
                "rooms": args.rooms, "senders": args.senders, "rate": args.rate, "window": args.window,
                "duration_s": args.duration, "content_bytes": args.size,
            });
            let name = match args.over {
                Over::Inbox => "inbox",
                Over::RoomSockets => "inbox-over-room-sockets",
            };
            scenario::compare(name, &args.target, parameters, |target| inbox::run(target, &args))
                .await?;
        }
        Command::Baseline(args) => {
            let address = std::net::SocketAddr::from((args.host, args.port));
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| BenchError::Setup(format!("cannot listen on {address}: {e}")))?;
            tracing::info!(%address, "baseline listening (no persistence); Ctrl-C stops it");
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            baseline::serve(listener, stop).await?;
        }
    }
    Ok(())
}
