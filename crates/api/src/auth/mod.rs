//! JWT authentication (jsonwebtoken): the GrainTrade main backend issues the
//! tokens; `sub` is the user id, `exp` is required, `roles` is optional, and
//! `iss`/`aud` are checked when configured. HS256 with `JWT_SECRET`, or RS256 /
//! ES256 with `JWT_PUBLIC_KEY`; any other algorithm (`none` included) is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_domain::{Actor, Role, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::settings::Settings;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, Error)]
pub enum AuthSetupError {
    #[error("authentication is required but neither JWT_SECRET nor JWT_PUBLIC_KEY is set")]
    NoKey,
    #[error("JWT_PUBLIC_KEY is neither an RSA nor an EC public key in PEM: {0}")]
    BadKey(String),
}

/// A verified token: who, and until when.
#[derive(Debug, Clone)]
pub struct Verified {
    pub actor: Actor,
    pub expires_at: SystemTime,
}

pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn from_settings(settings: &Settings) -> Result<Self, AuthSetupError> {
        let (key, algorithm) =
            if let Some(secret) = settings.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
                (DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256)
            } else if let Some(raw) = settings.jwt_public_key.as_deref().filter(|s| !s.is_empty()) {
                let pem = if raw.contains("-----BEGIN") {
                    raw.to_owned()
                } else {
                    std::fs::read_to_string(raw)
                        .map_err(|e| AuthSetupError::BadKey(format!("{raw}: {e}")))?
                };
                match DecodingKey::from_rsa_pem(pem.as_bytes()) {
                    Ok(key) => (key, Algorithm::RS256),
                    Err(_) => (
                        DecodingKey::from_ec_pem(pem.as_bytes())
                            .map_err(|e| AuthSetupError::BadKey(e.to_string()))?,
                        Algorithm::ES256,
                    ),
                }
            } else {
                return Err(AuthSetupError::NoKey);
            };
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = settings.jwt_issuer.as_deref().filter(|s| !s.is_empty()) {
            validation.set_issuer(&[issuer]);
        }
        match settings.jwt_audience.as_deref().filter(|s| !s.is_empty()) {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(Self { key, validation })
    }

    /// Checks signature, algorithm and claims; the reason is for logs only.
    pub fn verify(&self, token: &str) -> Result<Verified, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| e.to_string())?;
        let user = UserId::parse(&data.claims.sub).map_err(|e| e.to_string())?;
        let roles = data
            .claims
            .roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .filter(|r| *r != Role::Service)
            .collect();
        Ok(Verified {
            actor: Actor::new(user, roles),
            expires_at: UNIX_EPOCH + Duration::from_secs(data.claims.exp),
        })
    }
}

/// Mints an HS256 development token (`chat-room token --sub alice --ttl 1h`).
pub fn mint(secret: &str, sub: &str, ttl: Duration, roles: Vec<String>) -> Result<String, String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?;
    let claims = Claims { sub: sub.to_owned(), exp: (now + ttl).as_secs(), nbf: None, roles };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

/// `30s`, `15m`, `1h`, `2d`, or plain seconds.
pub fn parse_ttl(raw: &str) -> Option<Duration> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}
