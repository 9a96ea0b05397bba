//! Who is acting: a parsed user id plus the roles the identity source vouches for.

use serde::Serialize;

use crate::{CorrelationId, DomainError};

/// A GrainTrade user name: 1–64 characters, no control characters, no surrounding
/// whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::validation("user_id", "must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::validation(
                "user_id",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::validation("user_id", "must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The identity used when a development client names nobody.
    pub fn anonymous() -> Self {
        Self("anonymous".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Moderator,
    /// Another GrainTrade service acting through the service's own channels.
    Service,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Self::Admin),
            "moderator" => Some(Self::Moderator),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

/// The authenticated (or, in development, declared) caller of a use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub roles: Vec<Role>,
    /// The call this actor made, passed on to the events its changes produce.
    pub correlation_id: Option<CorrelationId>,
}

impl Actor {
    pub fn new(user_id: UserId, roles: Vec<Role>) -> Self {
        Self { user_id, roles, correlation_id: None }
    }

    pub fn user(user_id: UserId) -> Self {
        Self::new(user_id, Vec::new())
    }

    /// The same actor, acting for the call `correlation_id`.
    pub fn with_correlation(mut self, correlation_id: Option<CorrelationId>) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// Admins and GrainTrade services may post `system` messages.
    pub fn may_post_system(&self) -> bool {
        self.has(Role::Admin) || self.has(Role::Service)
    }

    pub fn may_moderate(&self) -> bool {
        self.has(Role::Admin) || self.has(Role::Moderator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_is_trimmed_and_bounded() {
        assert_eq!(UserId::parse("  alice ").unwrap().as_str(), "alice");
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("   ").is_err());
        assert!(UserId::parse(&"x".repeat(64)).is_ok());
        assert!(UserId::parse(&"x".repeat(65)).is_err());
        assert!(UserId::parse("a\u{0}b").is_err());
    }

    #[test]
    fn roles_parse_case_insensitively() {
        assert_eq!(Role::parse("Admin"), Some(Role::Admin));
        assert_eq!(Role::parse("moderator"), Some(Role::Moderator));
        assert_eq!(Role::parse("root"), None);
    }
}
