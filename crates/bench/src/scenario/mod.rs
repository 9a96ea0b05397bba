//! The scenarios, and running one against the service and (optionally) the
//! baseline: the service first, then the baseline, then the comparison.

pub mod connections;
pub mod history;
pub mod inbox;
pub mod legacy;
pub mod phase;
pub mod rooms;
pub mod sending;
pub mod sockets;
pub mod tally;

use std::future::Future;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::baseline::BaselineServer;
use crate::cli::TargetArgs;
use crate::report::{Comparison, Report};
use crate::server_memory;
use crate::target::{Kind, Target, TargetError};

#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot write the JSON results: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs `scenario` against the service, then against the baseline if asked;
/// prints the table and writes the JSON.
pub async fn compare<F, Fut>(
    name: &'static str,
    args: &TargetArgs,
    parameters: serde_json::Value,
    scenario: F,
) -> Result<Comparison, BenchError>
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = Result<Report, BenchError>>,
{
    let service = Target::new(Kind::Service, &args.target, service_pid(args)).await?;
    tracing::info!(scenario = name, url = %service.http, pid = ?service.pid, "running against the service");
    let service_report = scenario(service).await?;
    let baseline_report = match (&args.baseline_url, args.baseline) {
        (Some(url), _) => {
            let target = Target::new(Kind::Baseline, url, None).await?;
            let pid = server_memory::pid_listening_on(target.address.port())
                .filter(|pid| *pid != std::process::id());
            let target = target.with_pid(pid);
            tracing::info!(url = %target.http, pid = ?target.pid, "running against the baseline");
            Some(scenario(target).await?)
        }
        (None, true) => {
            let server = BaselineServer::start_in_background()
                .map_err(|e| BenchError::Setup(format!("cannot start the baseline: {e}")))?;
            // In this process: its memory is the load generator's too, so no RSS.
            let target = Target::new(Kind::Baseline, &server.url(), None).await?;
            tracing::info!(url = %target.http, "running against the in-process baseline");
            let report = scenario(target).await?;
            drop(server);
            Some(report)
        }
        (None, false) => None,
    };
    let comparison = Comparison::new(name, parameters, service_report, baseline_report);
    comparison.print();
    if let Some(path) = &args.json {
        comparison.write_json(path)?;
    }
    Ok(comparison)
}

fn service_pid(args: &TargetArgs) -> Option<u32> {
    if args.server_pid.is_some() {
        return args.server_pid;
    }
    let port = reqwest::Url::parse(&args.target).ok()?.port_or_known_default()?;
    server_memory::pid_listening_on(port).filter(|pid| *pid != std::process::id())
}

/// Polls `done` until it holds or `limit` passes; whether it held.
pub async fn drain_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        poll.tick().await;
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// Server RSS figures at the named moments, when readable.
pub fn rss_figures(report: &mut Report, moments: &[(&str, Option<u64>)]) {
    for (moment, kib) in moments {
        if let Some(kib) = kib {
            report.figure(&format!("server RSS {moment}"), *kib as f64, "KiB");
        }
    }
}
