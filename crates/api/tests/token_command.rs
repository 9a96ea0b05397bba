//! `chat-room token` mints what the service accepts: the configured `iss` and
//! `aud` are in the token (a verifier with them set requires them).

use std::process::Command;

use serde_json::Value;

/// The claims of the token the binary prints with `vars` set.
fn minted_claims(vars: &[(&str, &str)]) -> Value {
    let dir = std::env::temp_dir().join(format!("chat-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_chat-room"))
        .current_dir(&dir)
        .args(["token", "--sub", "alice", "--ttl", "1h"])
        .env("JWT_SECRET", "a-secret-long-enough-for-hs256")
        .env_remove("JWT_ISSUER")
        .env_remove("JWT_AUDIENCE")
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap();
    // Only reading what it says: the signature is the verifier's business.
    jsonwebtoken::dangerous::insecure_decode_claims(token.trim()).unwrap()
}

#[test]
fn the_token_carries_the_configured_issuer_and_audience() {
    let plain = minted_claims(&[]);
    assert_eq!(plain["sub"], "alice");
    assert!(plain.get("iss").is_none() && plain.get("aud").is_none(), "{plain}");
    let both = minted_claims(&[("JWT_ISSUER", "graintrade"), ("JWT_AUDIENCE", "chat")]);
    assert_eq!((&both["iss"], &both["aud"]), (&"graintrade".into(), &"chat".into()), "{both}");
    let issuer = minted_claims(&[("JWT_ISSUER", "graintrade")]);
    assert_eq!(issuer["iss"], "graintrade");
    assert!(issuer.get("aud").is_none(), "{issuer}");
    let audience = minted_claims(&[("JWT_AUDIENCE", "chat")]);
    assert_eq!(audience["aud"], "chat");
    assert!(audience.get("iss").is_none(), "{audience}");
}
