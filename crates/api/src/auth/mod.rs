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

/// What [`mint`] signs: the claims, with the `iss`/`aud` the service demands.
#[derive(Serialize)]
struct MintedClaims<'a> {
    #[serde(flatten)]
    claims: Claims,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
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
        // jsonwebtoken checks `iss`/`aud` only when the token has them: a
        // configured one must also be required, or a token without it passes.
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = configured(&settings.jwt_issuer) {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match configured(&settings.jwt_audience) {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
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

/// A setting that is set and not empty.
fn configured(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.is_empty())
}

/// The `iss` and `aud` the service demands when `JWT_ISSUER`/`JWT_AUDIENCE`
/// are set, for the tokens [`mint`] makes.
#[derive(Debug, Clone, Default)]
pub struct Issuance {
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl Issuance {
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|s: &String| !s.is_empty());
        Self { issuer: var("JWT_ISSUER"), audience: var("JWT_AUDIENCE") }
    }
}

/// Mints an HS256 development token (`chat-room token --sub alice --ttl 1h`)
/// carrying the configured `iss`/`aud`, so the service accepts it.
pub fn mint(
    secret: &str,
    sub: &str,
    ttl: Duration,
    roles: Vec<String>,
    issuance: &Issuance,
) -> Result<String, String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?;
    let claims = MintedClaims {
        claims: Claims { sub: sub.to_owned(), exp: (now + ttl).as_secs(), nbf: None, roles },
        iss: issuance.issuer.as_deref(),
        aud: issuance.audience.as_deref(),
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-secret-long-enough-for-hs256";

    fn verifier(issuer: Option<&str>, audience: Option<&str>) -> TokenVerifier {
        let mut vars = vec![("AUTH_MODE", "required"), ("JWT_SECRET", SECRET)];
        vars.extend(issuer.map(|i| ("JWT_ISSUER", i)));
        vars.extend(audience.map(|a| ("JWT_AUDIENCE", a)));
        let settings =
            crate::settings::from_vars(vars.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())))
                .unwrap();
        TokenVerifier::from_settings(&settings).unwrap()
    }

    fn token(iss: Option<&str>, aud: Option<&str>) -> String {
        mint(
            SECRET,
            "alice",
            Duration::from_secs(600),
            Vec::new(),
            &Issuance { issuer: iss.map(str::to_owned), audience: aud.map(str::to_owned) },
        )
        .unwrap()
    }

    /// Every configuration (issuer and audience each set or not) against every
    /// token (each claim right, wrong or missing): a configured claim must be
    /// present and match; one not configured is not looked at.
    #[test]
    fn a_configured_issuer_or_audience_is_required_and_must_match() {
        let claims = [None, Some("right"), Some("wrong")];
        for issuer in [None, Some("right")] {
            for audience in [None, Some("right")] {
                let verifier = verifier(issuer, audience);
                for iss in claims {
                    for aud in claims {
                        let accepted = verifier.verify(&token(iss, aud)).is_ok();
                        let expected = (issuer.is_none() || iss == Some("right"))
                            && (audience.is_none() || aud == Some("right"));
                        assert_eq!(
                            accepted, expected,
                            "configured iss {issuer:?} aud {audience:?}; token iss {iss:?} aud {aud:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_audience_list_holding_the_configured_one_is_accepted() {
        let verifier = verifier(None, Some("chat"));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims = serde_json::json!({"sub": "alice", "exp": now + 600, "aud": ["web", "chat"]});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(verifier.verify(&token).unwrap().actor.user_id.as_str(), "alice");
    }
}
