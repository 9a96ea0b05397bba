//! The command line: one subcommand per scenario plus the baseline server.
//! Every scenario takes the same target options (`TargetArgs`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "chat-bench", version, about = "Load generator for the GrainTrade chat service")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// R rooms × U sockets, S senders per room, at a rate or flat out.
    Throughput(RoomLoadArgs),
    /// One big room: N sockets, S senders at a (total) rate.
    Fanout(FanoutArgs),
    /// Opens N idle sockets and holds them; reports server memory per socket.
    Connections(ConnectionsArgs),
    /// Newest-page and `before=` page reads with concurrency.
    History(HistoryArgs),
    /// The GrainTrade protocol: conversations on /ws/chat/{item}/{other}.
    Legacy(LegacyArgs),
    /// U users × K rooms each over one inbox socket (/ws) per user, or the
    /// same load over room sockets (`--over room-sockets`).
    Inbox(InboxArgs),
    /// Serves the no-persistence baseline until Ctrl-C.
    Baseline(BaselineArgs),
}

/// Where to send the load, and what to do with the results.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Base URL of the service (http://HOST:PORT); sockets use the ws:// form.
    #[arg(long, default_value = "http://127.0.0.1:8001")]
    pub target: String,
    /// Also run the scenario against an in-process baseline server and report ratios.
    #[arg(long, conflicts_with = "baseline_url")]
    pub baseline: bool,
    /// Compare with a `chat-bench baseline` already running at this URL (its RSS is then read too).
    #[arg(long)]
    pub baseline_url: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The service's process id, for its RSS (default: the process listening on the target's port).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Spread client sockets over 127.0.0.1 … 127.0.0.N (loopback targets only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub source_ips: u8,
    /// Sockets being opened at once.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Message load on rooms: shared by `throughput` and (as one room) `fanout`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Senders per room (the first S sockets of each room send).
    #[arg(long, default_value_t = 3)]
    pub senders: usize,
    /// Messages per second over all senders; 0 = flat out (each sender keeps `window` unacknowledged).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Unacknowledged messages per sender when flat out.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds to wait after sending for the last deliveries.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Message content length in bytes (at least the timestamp).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Distinct users per room (sockets take them in turn); default one per
    /// socket. Fewer users means fewer presence frames while sockets join.
    #[arg(long)]
    pub users: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct RoomLoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Rooms.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Sockets per room.
    #[arg(long, default_value_t = 10)]
    pub sockets: usize,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Sockets in the room.
    #[arg(long, default_value_t = 2000)]
    pub sockets: usize,
    /// Senders.
    #[arg(long, default_value_t = 5)]
    pub senders: usize,
    /// Messages per second over all senders; 0 = flat out.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Distinct users in the room (sockets take them in turn); default one per socket.
    #[arg(long)]
    pub users: Option<usize>,
}

impl FanoutArgs {
    /// Fan-out is the room load with one room.
    pub fn as_room_load(&self) -> RoomLoadArgs {
        RoomLoadArgs {
            target: self.target.clone(),
            rooms: 1,
            sockets: self.sockets,
            load: LoadArgs {
                senders: self.senders,
                rate: self.rate,
                window: self.window,
                duration: self.duration,
                drain: self.drain,
                size: self.size,
                users: self.users,
            },
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Idle sockets to open.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Sockets per room (rooms are created as needed).
    #[arg(long, default_value_t = 100)]
    pub per_room: usize,
    /// Seconds to hold the sockets open once connected (longer than the server's ping interval).
    #[arg(long, default_value_t = 30.0)]
    pub hold: f64,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Read this existing room instead of creating one.
    #[arg(long)]
    pub room: Option<i64>,
    /// Fill the room with this many messages first (over sockets, several senders).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds per phase (newest page, then `before=` pages).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Page size.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
}

#[derive(Debug, Clone, Args)]
pub struct LegacyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Conversations (two sockets each: buyer and seller of one item).
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Both parties send (else only the buyer).
    #[arg(long)]
    pub both_send: bool,
    /// Messages per second over all senders; 0 = flat out.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    #[arg(long, default_value_t = 64)]
    pub size: usize,
}

/// What carries the `inbox` load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Over {
    /// One `/ws` socket per user, subscribed to the user's K rooms.
    Inbox,
    /// One `/ws/{room}` socket per user and room: U × K sockets.
    RoomSockets,
}

impl Over {
    pub fn name(self) -> &'static str {
        match self {
            Over::Inbox => "inbox",
            Over::RoomSockets => "room-sockets",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct InboxArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Users (one inbox socket each, or K room sockets each).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub users: u64,
    /// Rooms each user is in (K); at most `--rooms`.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub rooms_per_user: u64,
    /// Rooms (R); each has users × rooms-per-user / R members.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub rooms: u64,
    /// Sending users, over all rooms (spread evenly over the users); each
    /// sends to its K rooms in turn.
    #[arg(long, default_value_t = 100)]
    pub senders: usize,
    /// Messages per second over all senders; 0 = flat out (each sender keeps `window` unacknowledged).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Unacknowledged messages per sender when flat out (over all its rooms).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// What carries the load: inbox sockets, or room sockets for the ratio.
    #[arg(long, value_enum, default_value_t = Over::Inbox)]
    pub over: Over,
}

#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST)]
    pub host: Ipv4Addr,
    #[arg(long, default_value_t = 9101)]
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("chat-bench").chain(args.iter().copied()))
    }

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn throughput_defaults_are_the_issue_scenario() {
        let Command::Throughput(args) = parse(&["throughput"]).unwrap().command else {
            panic!("not throughput")
        };
        assert_eq!((args.rooms, args.sockets, args.load.senders), (100, 10, 3));
        assert_eq!(args.load.rate, 0.0);
        assert_eq!(args.target.target, "http://127.0.0.1:8001");
        assert!(!args.target.baseline);
    }

    #[test]
    fn throughput_options_are_read() {
        let cli = parse(&[
            "throughput",
            "--target",
            "http://127.0.0.1:9000",
            "--baseline",
            "--rooms",
            "7",
            "--sockets",
            "4",
            "--senders",
            "2",
            "--rate",
            "1000",
            "--duration",
            "2.5",
            "--json",
            "out.json",
            "--source-ips",
            "4",
        ])
        .unwrap();
        let Command::Throughput(args) = cli.command else { panic!("not throughput") };
        assert_eq!((args.rooms, args.sockets, args.load.senders), (7, 4, 2));
        assert_eq!(args.load.rate, 1000.0);
        assert_eq!(args.load.duration, 2.5);
        assert!(args.target.baseline);
        assert_eq!(args.target.source_ips, 4);
        assert_eq!(args.target.json.as_deref(), Some(std::path::Path::new("out.json")));
    }

    #[test]
    fn fanout_is_one_room() {
        let Command::Fanout(args) = parse(&["fanout", "--sockets", "300"]).unwrap().command else {
            panic!("not fanout")
        };
        let load = args.as_room_load();
        assert_eq!((load.rooms, load.sockets, load.load.senders), (1, 300, 5));
        assert_eq!(load.load.rate, 50.0);
    }

    #[test]
    fn inbox_defaults_are_the_issue_scenario() {
        let Command::Inbox(args) = parse(&["inbox"]).unwrap().command else { panic!("not inbox") };
        assert_eq!((args.users, args.rooms_per_user, args.rooms), (1000, 20, 1000));
        assert_eq!(args.over, Over::Inbox);
        let Command::Inbox(args) =
            parse(&["inbox", "--over", "room-sockets", "--users", "20", "--rooms-per-user", "3"])
                .unwrap()
                .command
        else {
            panic!("not inbox")
        };
        assert_eq!((args.users, args.rooms_per_user, args.over), (20, 3, Over::RoomSockets));
        assert!(parse(&["inbox", "--over", "carrier-pigeon"]).is_err());
        assert!(parse(&["inbox", "--rooms-per-user", "0"]).is_err());
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(parse(&["throughput", "--rooms", "many"]).is_err());
        assert!(parse(&["throughput", "--window", "0"]).is_err());
        assert!(parse(&["connections", "--source-ips", "0"]).is_err());
        assert!(parse(&["history", "--limit", "101"]).is_err());
        assert!(parse(&["throughput", "--baseline", "--baseline-url", "http://x"]).is_err());
        assert!(parse(&["dance"]).is_err());
    }
}
