//! A correlation id: an opaque label of the call that caused a change (the HTTP
//! request id, a socket's upgrade request, an inbound command). The domain only
//! carries it from the caller to the events the change produces, so that other
//! services' logs can be joined with this one's.

/// At most 128 characters, not empty, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CorrelationId(String);

impl CorrelationId {
    pub const MAX_CHARS: usize = 128;

    /// `None` for an id that is empty, too long or has control characters: such
    /// an id is not passed on (it would not be safe in a message header).
    pub fn new(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let fits = !raw.is_empty() && raw.chars().count() <= Self::MAX_CHARS;
        (fits && !raw.chars().any(char::is_control)).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_ordinary_ids_and_refuses_unsafe_ones() {
        assert_eq!(CorrelationId::new(" req-1 ").unwrap().as_str(), "req-1");
        assert!(CorrelationId::new("").is_none());
        assert!(CorrelationId::new(&"x".repeat(129)).is_none());
        assert!(CorrelationId::new("a\nb").is_none());
    }
}
