//! Page sizes, cursors and pages for room lists and message history.

use crate::{DomainError, Message, Room, RoomId};

/// A page size: 1–100, default 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const MAX: u32 = 100;
    pub const DEFAULT: Limit = Limit(50);

    pub fn parse(raw: i64) -> Result<Self, DomainError> {
        if (1..=i64::from(Self::MAX)).contains(&raw) {
            Ok(Self(raw as u32))
        } else {
            Err(DomainError::validation("limit", format!("must be between 1 and {}", Self::MAX)))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which slice of a room's history to read. Pages always come back in ascending seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryQuery {
    /// The newest `limit` messages.
    Latest,
    /// The `limit` messages just before this seq.
    Before(i64),
    /// The `limit` messages just after this seq.
    After(i64),
}

impl HistoryQuery {
    /// Builds the query from the optional `before`/`after` parameters.
    pub fn from_bounds(before: Option<i64>, after: Option<i64>) -> Result<Self, DomainError> {
        match (before, after) {
            (Some(_), Some(_)) => Err(DomainError::validation(
                "before",
                "`before` and `after` cannot be used together",
            )),
            (Some(b), None) if b < 1 => {
                Err(DomainError::validation("before", "must be a positive seq"))
            }
            (None, Some(a)) if a < 0 => {
                Err(DomainError::validation("after", "must be zero or a positive seq"))
            }
            (Some(b), None) => Ok(Self::Before(b)),
            (None, Some(a)) => Ok(Self::After(a)),
            (None, None) => Ok(Self::Latest),
        }
    }
}

/// What a client asks of a room's history: a [`HistoryQuery`], or — `after`
/// and `before` together — the messages strictly between two seqs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRequest {
    Page(HistoryQuery),
    /// The first `limit` messages with `after < seq < before`, ascending;
    /// `has_more` when more lie between the page and `before`.
    Between {
        after: i64,
        before: i64,
    },
}

impl HistoryRequest {
    /// Builds the request from the optional `before`/`after` parameters.
    pub fn from_bounds(before: Option<i64>, after: Option<i64>) -> Result<Self, DomainError> {
        match (before, after) {
            (Some(b), Some(_)) if b < 1 => {
                Err(DomainError::validation("before", "must be a positive seq"))
            }
            (Some(_), Some(a)) if a < 0 => {
                Err(DomainError::validation("after", "must be zero or a positive seq"))
            }
            (Some(before), Some(after)) => Ok(Self::Between { after, before }),
            _ => HistoryQuery::from_bounds(before, after).map(Self::Page),
        }
    }
}

/// A page of history: ascending seq; `has_more` says whether more exist beyond
/// the page in the direction of the query (older for `Latest`/`Before`, newer for `After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub items: Vec<Message>,
    pub has_more: bool,
}

/// An opaque position in the room list: the last room id of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomCursor(pub RoomId);

impl RoomCursor {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        raw.parse::<i64>()
            .ok()
            .and_then(|id| RoomId::new(id).ok())
            .map(Self)
            .ok_or_else(|| DomainError::validation("cursor", "is not a cursor this service issued"))
    }

    pub fn encode(self) -> String {
        self.0.get().to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPage {
    pub items: Vec<Room>,
    pub next_cursor: Option<RoomCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_bounds() {
        assert!(Limit::parse(0).is_err());
        assert_eq!(Limit::parse(1).unwrap().get(), 1);
        assert_eq!(Limit::parse(100).unwrap().get(), 100);
        assert!(Limit::parse(101).is_err());
        assert!(Limit::parse(-5).is_err());
    }

    #[test]
    fn history_bounds() {
        assert_eq!(HistoryQuery::from_bounds(None, None).unwrap(), HistoryQuery::Latest);
        assert_eq!(HistoryQuery::from_bounds(Some(5), None).unwrap(), HistoryQuery::Before(5));
        assert_eq!(HistoryQuery::from_bounds(None, Some(0)).unwrap(), HistoryQuery::After(0));
        assert!(HistoryQuery::from_bounds(Some(1), Some(2)).is_err());
        assert!(HistoryQuery::from_bounds(Some(0), None).is_err());
        assert!(HistoryQuery::from_bounds(None, Some(-1)).is_err());
    }

    #[test]
    fn both_bounds_ask_for_what_lies_between() {
        let between = HistoryRequest::from_bounds(Some(9), Some(2)).unwrap();
        assert_eq!(between, HistoryRequest::Between { after: 2, before: 9 });
        assert_eq!(
            HistoryRequest::from_bounds(Some(5), None).unwrap(),
            HistoryRequest::Page(HistoryQuery::Before(5))
        );
        assert!(HistoryRequest::from_bounds(Some(0), Some(2)).is_err());
        assert!(HistoryRequest::from_bounds(Some(3), Some(-1)).is_err());
    }

    #[test]
    fn cursor_round_trip() {
        let c = RoomCursor::parse("42").unwrap();
        assert_eq!(RoomCursor::parse(&c.encode()).unwrap(), c);
        assert!(RoomCursor::parse("abc").is_err());
        assert!(RoomCursor::parse("-1").is_err());
    }
}
