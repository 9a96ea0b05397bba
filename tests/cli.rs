//! The real `chat-room` binary as an operator meets it: help, version and typos
//! never serve; `token`, `migrate` and bad settings give exact one-line errors;
//! start-up logs have no colour codes in a pipe, name the addresses, stay quiet.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chat_tests::{fresh_postgres_database, service_binary};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// What a finished run printed, and how it ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// An empty working directory of its own (no `.env`, no `config/`).
fn empty_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The binary in `dir` with only `vars` set; a listener on a free loopback port,
/// so a command that wrongly serves shows up as a time-out, not a clash.
fn command(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(service_binary());
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", free_port().to_string())
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs to the end; a command still running after 20 s fails the test.
async fn run_in(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let child = command(dir, args, vars).spawn().expect("chat-room starts");
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`chat-room {}` did not finish: did it serve?", args.join(" ")))
        .expect("output");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

async fn run(args: &[&str], vars: &[(&str, &str)]) -> Run {
    run_in(&empty_dir(), args, vars).await
}

/// The one line a failed start-up logs: its text after the level and target.
fn only_line(run: &Run) -> String {
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line: {run:?}");
    assert!(!lines[0].contains('\u{1b}'), "no colour codes into a pipe: {:?}", lines[0]);
    assert!(lines[0].contains(" ERROR "), "{:?}", lines[0]);
    lines[0].split_once(": ").map(|(_, text)| text.to_owned()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_and_version_answer_without_serving() {
    for args in [&["--help"][..], &["-h"], &["help"], &["serve", "--help"], &["migrate", "--help"]]
    {
        let out = run(args, &[]).await;
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        assert!(out.stdout.contains("Usage: chat-room"), "{args:?}: {}", out.stdout);
    }
    let help = run(&["--help"], &[]).await.stdout;
    for command in ["serve", "token", "healthcheck", "migrate"] {
        assert!(help.contains(&format!("  {command} ")), "--help lists {command}: {help}");
    }
    for args in [&["--version"][..], &["-V"]] {
        let out = run(args, &[]).await;
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout.trim(), format!("chat-room {}", env!("CARGO_PKG_VERSION")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_arguments_are_refused_with_a_usage_line() {
    for (args, error) in [
        (&["tokn"][..], "error: unrecognized subcommand 'tokn'"),
        (&["--port", "8002"], "error: unexpected argument '--port' found"),
        (&["serve", "now"], "error: unexpected argument 'now' found"),
        (&["migrate", "sideways"], "error: unrecognized subcommand 'sideways'"),
    ] {
        let out = run(args, &[]).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert!(out.stderr.starts_with(error), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("Usage: chat-room"), "{args:?}: {}", out.stderr);
    }
    let typo = run(&["tokn"], &[]).await.stderr;
    assert!(typo.contains("a similar subcommand exists: 'token'"), "{typo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_errors_say_exactly_what_is_wrong() {
    let secret = [("JWT_SECRET", "dev")];
    for (args, error) in [
        (
            &["token"][..],
            "error: the following required arguments were not provided:\n  --sub <USER>",
        ),
        (
            &["token", "--sub", "alice", "--ttl", "forever"],
            "error: invalid value 'forever' for '--ttl <DURATION>': expected a duration like 30s, 15m, 1h or 2d",
        ),
        (
            &["token", "--sub", "alice", "--role", "king"],
            "error: invalid value 'king' for '--role <ROLE>'\n  [possible values: admin, moderator]",
        ),
        (
            &["token", "--sub", "alice", "--ttl", "0"],
            "error: invalid value '0' for '--ttl <DURATION>': a token must be valid for more than 0 seconds",
        ),
    ] {
        let out = run(args, &secret).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.starts_with(error), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("JWT_SECRET"), "the secret is set: {}", out.stderr);
    }
    let unset = run(&["token", "--sub", "alice"], &[]).await;
    assert_eq!(unset.code, Some(1), "{unset:?}");
    assert!(unset.stderr.starts_with("error: JWT_SECRET is not set"), "{}", unset.stderr);
    let bad_setting =
        run(&["token", "--sub", "alice"], &[("JWT_SECRET", "dev"), ("PORT", "x")]).await;
    assert_eq!(bad_setting.code, Some(1), "{bad_setting:?}");
    assert!(bad_setting.stderr.starts_with("error: invalid setting PORT"), "{bad_setting:?}");

    let minted = run(
        &["token", "--sub", "alice", "--ttl", "15m", "--role", "admin", "--role", "moderator"],
        &secret,
    )
    .await;
    assert_eq!(minted.code, Some(0), "{minted:?}");
    let token = minted.stdout.trim();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(b"dev"),
        &validation,
    )
    .expect("a token signed with JWT_SECRET")
    .claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["roles"], serde_json::json!(["admin", "moderator"]));
    let now = chrono::Utc::now().timestamp();
    let exp = claims["exp"].as_i64().unwrap();
    assert!((now + 880..=now + 920).contains(&exp), "valid for 15 minutes: {exp} vs {now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_setting_stops_start_up_with_one_line() {
    for (name, value, line) in [
        (
            "PORT",
            "abc",
            r#"invalid setting PORT: expected a whole number from 0 to 65535, got "abc""#,
        ),
        (
            "LOG_LEVEL",
            "loud",
            r#"invalid setting LOG_LEVEL: expected one of error, warn, info, debug, trace, off, or directives like chat_api=debug,info, got "loud""#,
        ),
        (
            "AUTH_MODE",
            "maybe",
            r#"invalid setting AUTH_MODE: expected one of disabled, required, got "maybe""#,
        ),
        (
            "APP_ENV",
            "staging",
            r#"invalid setting APP_ENV: expected one of development, production, got "staging""#,
        ),
        (
            "RATE_LIMIT_MESSAGES_PER_SECOND",
            "-1",
            "invalid setting RATE_LIMIT_MESSAGES_PER_SECOND: expected a number of 0 or more (0 switches the limit off), got -1",
        ),
        (
            "DATABASE_MAX_CONNECTIONS",
            "1.5",
            "invalid setting DATABASE_MAX_CONNECTIONS: expected a whole number from 0 to 4294967295, got 1.5",
        ),
        ("DEBUG", "maybe", r#"invalid setting DEBUG: expected true or false, got "maybe""#),
        (
            "CORS_ORIGINS",
            "https://graintrade.example/",
            r#"invalid setting CORS_ORIGINS: expected comma-separated origins like https://app.example (scheme and host, no path), or *, got "https://graintrade.example/""#,
        ),
        (
            "REDIS_URL",
            "localhost:6379",
            r#"invalid setting REDIS_URL: expected a URL like redis://HOST:6379/0, got "localhost:6379""#,
        ),
    ] {
        let dir = empty_dir();
        let out = run_in(&dir, &[], &[(name, value)]).await;
        assert_eq!(only_line(&out), line, "{name}={value}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{name}: nothing created");
    }
}

/// Starts the service in `dir`, returns the lines it logged up to `listening`
/// (which must come) and stops it.
async fn start_up_lines(dir: &Path, vars: &[(&str, &str)]) -> Vec<String> {
    let mut child = command(dir, &[], vars).spawn().expect("chat-room starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("listening");
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    };
    let listening = tokio::time::timeout(Duration::from_secs(30), read).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    assert!(matches!(listening, Ok(true)), "the service came up: {seen:#?}");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_names_the_addresses_to_open_without_colour_codes() {
    let port = free_port().to_string();
    let dir = empty_dir();
    let lines = start_up_lines(&dir, &[("PORT", &port)]).await;
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "no colour codes into a pipe: {line:?}");
    }
    let listening = lines.last().unwrap();
    for address in [format!("http://127.0.0.1:{port}/"), format!("http://127.0.0.1:{port}/docs")] {
        assert!(listening.contains(&address), "{address} in {listening:?}");
    }
    let wildcard = start_up_lines(&empty_dir(), &[("HOST", "0.0.0.0"), ("PORT", &port)]).await;
    let listening = wildcard.last().unwrap();
    assert!(listening.contains(&format!("http://localhost:{port}/")), "{listening:?}");
    // JSON lines are never coloured either, nor are they mixed with text.
    let json = start_up_lines(&empty_dir(), &[("LOG_FORMAT", "json")]).await;
    for line in &json {
        let parsed: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert!(parsed["level"].is_string(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_postgres_database_starts_quietly() {
    let Some(url) = fresh_postgres_database().await else { return };
    let dir = empty_dir();
    // The first start creates the schema, the second finds it there.
    for start in ["first", "second"] {
        let lines = start_up_lines(&dir, &[("DATABASE_URL", &url)]).await;
        let noise: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("already exists") || l.contains("sqlx::postgres::notice"))
            .collect();
        assert!(noise.is_empty(), "{start} start: {noise:#?}");
        let warnings: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(" WARN ") && !l.contains("authentication is DISABLED"))
            .collect();
        assert!(warnings.is_empty(), "{start} start: {warnings:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_uses_the_services_settings_and_errors() {
    // Looking at a database that is not there creates nothing.
    let dir = empty_dir();
    for action in ["status", "down"] {
        let out = run_in(&dir, &["migrate", action], &[]).await;
        assert_eq!(
            only_line(&out),
            "no database file chat.db (DATABASE_URL sqlite://chat.db?mode=rwc): \
             `chat-room migrate up`, or starting the service, creates it",
            "{action}"
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{action} created nothing");
    }
    // up, status, down, status on the default SQLite file, as the service uses it.
    let up = run_in(&dir, &["migrate", "up"], &[]).await;
    assert_eq!(up.code, Some(0), "{up:?}");
    assert!(dir.join("chat.db").exists());
    let status = run_in(&dir, &["migrate", "status"], &[]).await;
    assert_eq!(status.code, Some(0), "{status:?}");
    // Every migration the service knows (not a number to keep up to date by hand).
    let total = <migration::Migrator as migration::MigratorTrait>::migrations().len();
    let applied = format!("total={total} pending=0");
    assert!(status.stdout.contains(&applied), "{}", status.stdout);
    assert!(status.stdout.contains("m20261124_000001_create_chat_tables status=\"applied\""));
    let down = run_in(&dir, &["migrate", "down"], &[]).await;
    assert_eq!(down.code, Some(0), "{down:?}");
    let status = run_in(&dir, &["migrate", "status"], &[]).await;
    let one_down = format!("total={total} pending=1");
    assert!(status.stdout.contains(&one_down), "{}", status.stdout);

    // The seed's URL form, which the service accepts, works for migrations too.
    if let Some(url) = fresh_postgres_database().await {
        let seed_form = url.replacen("postgres://", "postgresql+asyncpg://", 1);
        let up = run(&["migrate", "up"], &[("DATABASE_URL", &seed_form)]).await;
        assert_eq!(up.code, Some(0), "{up:?}");
        assert!(up.stdout.contains(&format!("applied={total}")), "{}", up.stdout);
        assert!(!up.stdout.contains("already exists"), "quiet: {}", up.stdout);
        let fresh = run(&["migrate", "fresh"], &[("DATABASE_URL", &url)]).await;
        assert_eq!(fresh.code, Some(0), "{fresh:?}");
    }

    // An unreachable database: one line within the connect time-out, no panic.
    let started = std::time::Instant::now();
    let out = run(
        &["migrate", "up"],
        &[
            ("DATABASE_URL", "postgres://chat@127.0.0.1:1/chat"),
            ("DATABASE_CONNECT_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let line = only_line(&out);
    assert!(
        line.starts_with("cannot connect to DATABASE_URL postgres://chat@127.0.0.1:1/chat"),
        "{line}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let bad = run(&["migrate", "status"], &[("DATABASE_URL", "mysql://h/db")]).await;
    assert!(only_line(&bad).starts_with("invalid setting DATABASE_URL"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_reports_the_service_at_host_and_port() {
    let port = free_port().to_string();
    let nothing = run(&["healthcheck"], &[("PORT", &port)]).await;
    assert_eq!(nothing.code, Some(1), "{nothing:?}");
    assert!(nothing.stdout.is_empty() && nothing.stderr.is_empty(), "silent: {nothing:?}");
    let dir = empty_dir();
    let mut service = command(&dir, &[], &[("PORT", &port)]).spawn().unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        if run(&["healthcheck"], &[("PORT", &port)]).await.code == Some(0) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = service.start_kill();
    let _ = service.wait().await;
    assert!(healthy, "a running service is healthy");
}
