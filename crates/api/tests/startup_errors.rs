//! A bad setting or an unreachable database ends start-up with one error line
//! naming the setting and a non-zero exit, never a panic.

use std::process::Command;

fn start_with(vars: &[(&str, &str)]) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("chat-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_chat-room"))
        .current_dir(&dir)
        .env("LOG_FORMAT", "json")
        .env("DATABASE_CONNECT_TIMEOUT_SECS", "2")
        .env("PORT", "0")
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn assert_fails_naming(vars: &[(&str, &str)], setting: &str) {
    let (ok, output) = start_with(vars);
    assert!(!ok, "start-up must fail for {vars:?}");
    assert!(!output.contains("panicked"), "no panic: {output}");
    let errors: Vec<&str> = output.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error line: {output}");
    assert!(errors[0].contains(setting), "the line names {setting}: {}", errors[0]);
}

#[test]
fn bad_settings_end_start_up_with_one_clear_line() {
    assert_fails_naming(&[("PORT", "abc")], "PORT");
    assert_fails_naming(&[("PORT", "70000")], "PORT");
    assert_fails_naming(&[("DEBUG", "maybe")], "DEBUG");
    assert_fails_naming(&[("HOST", "not-an-address")], "HOST");
    assert_fails_naming(&[("DATABASE_URL", "mysql://localhost/chat")], "DATABASE_URL");
    assert_fails_naming(
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")],
        "DATABASE_URL",
    );
    assert_fails_naming(&[("REDIS_URL", "http://localhost")], "REDIS_URL");
    assert_fails_naming(&[("APP_ENV", "production")], "AUTH_MODE");
    assert_fails_naming(&[("ARCHIVE_AFTER_DAYS", "soon")], "ARCHIVE_AFTER_DAYS");
    assert_fails_naming(&[("ARCHIVE_BATCH_SIZE", "0")], "ARCHIVE_BATCH_SIZE");
    assert_fails_naming(&[("ARCHIVE_INTERVAL_SECS", "0")], "ARCHIVE_INTERVAL_SECS");
}
