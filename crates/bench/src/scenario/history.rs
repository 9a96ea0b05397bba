//! `history`: newest-page reads (`GET /rooms/{id}/messages`), then `before=`
//! cursor pages at random places in the room, each phase with C requests in
//! flight for a fixed time. The room is given, or created and seeded.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use super::rooms;
use super::tally::Tally;
use super::{BenchError, rss_figures};
use crate::cli::HistoryArgs;
use crate::latency::Latencies;
use crate::progress::Progress;
use crate::report::Report;
use crate::target::{Kind, Target};

/// Content length of seeded messages.
const SEED_SIZE: usize = 64;

/// The service's room size, given to the baseline so both read the same pages.
#[derive(Clone, Default)]
pub struct RoomSize(Arc<AtomicU64>);

pub async fn run(target: Target, args: &HistoryArgs, size: RoomSize) -> Result<Report, BenchError> {
    let quiet = args.target.quiet;
    let mut report = Report::new(target.kind.name(), &target.http);
    let tally = Arc::new(Tally::default());
    let room = match (target.kind, args.room) {
        (Kind::Baseline, _) => {
            let last_seq = Tally::get(&size.0) as i64;
            target.create_room("history", Some(last_seq)).await?
        }
        (Kind::Service, Some(room)) => room,
        (Kind::Service, None) => target.create_room("history", None).await?,
    };
    if target.kind == Kind::Service && args.seed > 0 {
        let seeded =
            rooms::seed(&target, room, args.seed, SEED_SIZE, args.target.source_ips, quiet).await;
        report.figure("seeded", seeded.acked as f64, "msg");
        report.figure("seed rate", seeded.acked as f64 / seeded.secs, "msg/s");
        for (kind, count) in seeded.errors {
            tally.error_n(&format!("seeding: {kind}"), count);
        }
    }
    let last_seq = target.last_seq(room).await?;
    if target.kind == Kind::Service {
        size.0.store(last_seq.max(0) as u64, std::sync::atomic::Ordering::Relaxed);
    }
    report.figure("messages in the room (last seq)", last_seq as f64, "msg");
    let rss_before = target.rss();
    let duration = Duration::from_secs_f64(args.duration);
    let base = format!("{}/rooms/{room}/messages", target.http);
    let newest = Latencies::new();
    let newest_url = format!("{base}?limit={}", args.limit);
    let count =
        read_phase(&target, args, duration, "newest", &tally, &newest, move |_| newest_url.clone())
            .await;
    report.figure("newest page requests/s", count as f64 / duration.as_secs_f64(), "req/s");
    let before = Latencies::new();
    let limit = i64::from(args.limit);
    // Cursors at random over the room, each with a full page before it when the room allows.
    let low = if last_seq > limit + 1 { limit + 1 } else { 2 };
    let high = last_seq.max(low) + 1;
    let count = read_phase(&target, args, duration, "before=", &tally, &before, move |rng| {
        format!("{base}?before={}&limit={limit}", rng.i64(low..=high))
    })
    .await;
    report.figure("before= page requests/s", count as f64 / duration.as_secs_f64(), "req/s");
    rss_figures(&mut report, &[("before reads", rss_before), ("after reads", target.rss())]);
    report.latency("newest page", newest.summary());
    report.latency("before= page", before.summary());
    report.errors = tally.errors();
    Ok(report)
}

/// `concurrency` workers GET `url(rng)` back to back for `duration`; returns
/// the number of successful responses.
async fn read_phase(
    target: &Target,
    args: &HistoryArgs,
    duration: Duration,
    label: &str,
    tally: &Arc<Tally>,
    latencies: &Latencies,
    url: impl Fn(&mut fastrand::Rng) -> String + Clone + Send + 'static,
) -> u64 {
    let ok = Arc::new(AtomicU64::new(0));
    let progress = Progress::timed(duration, label, args.target.quiet);
    let ticker = {
        let (ok, tally) = (ok.clone(), tally.clone());
        progress.tick_with(move || format!("ok {} errors {}", Tally::get(&ok), tally.error_total()))
    };
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|worker| {
            let (client, url, ok, tally) =
                (target.http_client().clone(), url.clone(), ok.clone(), tally.clone());
            let mut recorder = latencies.recorder();
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(worker as u64 + 1);
                while Instant::now() < deadline {
                    let url = url(&mut rng);
                    let start = Instant::now();
                    match client.get(&url).send().await {
                        Ok(response) if response.status().is_success() => {
                            match response.bytes().await {
                                Ok(_) => {
                                    recorder.record(start.elapsed());
                                    Tally::add(&ok);
                                }
                                Err(e) => tally.error(&format!("body: {e}")),
                            }
                        }
                        Ok(response) => tally.error(&format!("HTTP {}", response.status())),
                        Err(e) => tally.error(&format!("request: {e}")),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    drop(ticker);
    progress.finish();
    Tally::get(&ok)
}
