//! The one rule for a user id a request or frame claims (a body's `user_id`, a
//! frame's `user_id` or `sender_id`, `?current_user=`): with a token it must be the
//! token's own subject; without one (development) it names the caller. Either way
//! the caller's roles and correlation id stay on the actor.

use chat_domain::{Actor, DomainError, UserId};

/// The actor a request acts as. `own` is the caller as identified (by the token
/// when `from_token`); `field` names the claim in the refusal's message.
///
/// # Errors
/// `Forbidden` for a claim other than the token's subject, `Validation` for a
/// malformed user id without a token.
pub fn claimed_actor(
    own: &Actor,
    from_token: bool,
    field: &'static str,
    claimed: Option<&str>,
) -> Result<Actor, DomainError> {
    match claimed {
        None => Ok(own.clone()),
        Some(raw) if from_token => {
            if raw == own.user_id.as_str() {
                Ok(own.clone())
            } else {
                Err(DomainError::Forbidden(format!("{field} does not match the token")))
            }
        }
        Some(raw) => Ok(Actor::new(UserId::parse(raw)?, own.roles.clone())
            .with_correlation(own.correlation_id.clone())),
    }
}

#[cfg(test)]
mod tests {
    use chat_domain::{CorrelationId, Role};

    use super::*;

    fn own() -> Actor {
        Actor::new(UserId::parse("alice").unwrap(), vec![Role::Admin])
            .with_correlation(CorrelationId::new("req-1"))
    }

    #[test]
    fn a_token_fixes_the_user() {
        assert_eq!(claimed_actor(&own(), true, "user_id", None).unwrap(), own());
        assert_eq!(claimed_actor(&own(), true, "user_id", Some("alice")).unwrap(), own());
        let refused = claimed_actor(&own(), true, "sender_id", Some("bob")).unwrap_err();
        assert!(
            matches!(&refused, DomainError::Forbidden(m) if m == "sender_id does not match the token")
        );
    }

    #[test]
    fn without_a_token_the_claim_names_the_caller_with_its_roles_and_request() {
        let actor = claimed_actor(&own(), false, "current_user", Some("bob")).unwrap();
        assert_eq!(actor.user_id.as_str(), "bob");
        assert_eq!(actor.roles, own().roles);
        assert_eq!(actor.correlation_id, own().correlation_id);
        let bad = claimed_actor(&own(), false, "user_id", Some("")).unwrap_err();
        assert!(matches!(bad, DomainError::Validation { .. }));
    }
}
