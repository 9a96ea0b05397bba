//! The offer's state machine as types: `open`, then exactly one final
//! [`Outcome`]. A change is a [`Transition`], which only the domain's rules
//! (`Offer::answer`, `Offer::expire`) make; storage applies it on the
//! condition that the offer is still open, so of racing changes one wins.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::OfferId;
use crate::{DomainError, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfferStatus {
    Open,
    Accepted,
    Declined,
    Countered,
    Withdrawn,
    Expired,
}

impl OfferStatus {
    pub const ALL: [Self; 6] = [
        Self::Open,
        Self::Accepted,
        Self::Declined,
        Self::Countered,
        Self::Withdrawn,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Countered => "countered",
            Self::Withdrawn => "withdrawn",
            Self::Expired => "expired",
        }
    }

    /// A `status` filter or a stored value.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            DomainError::validation(
                "status",
                "must be one of open, accepted, declined, countered, withdrawn, expired",
            )
        })
    }

    pub fn is_final(self) -> bool {
        self != Self::Open
    }
}

/// A final status: where an open offer can go, and nowhere from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Declined,
    Countered,
    Withdrawn,
    Expired,
}

impl From<Outcome> for OfferStatus {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Accepted => Self::Accepted,
            Outcome::Declined => Self::Declined,
            Outcome::Countered => Self::Countered,
            Outcome::Withdrawn => Self::Withdrawn,
            Outcome::Expired => Self::Expired,
        }
    }
}

impl Outcome {
    /// The verb of the room's system message: "bob accepted the offer".
    pub fn verb(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Countered => "countered",
            Self::Withdrawn => "withdrew",
            Self::Expired => "expired",
        }
    }
}

/// What a person does to an open offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferAnswer {
    /// The counterparty takes it as it stands.
    Accept,
    /// The counterparty turns it down.
    Decline,
    /// The counterparty proposes other terms (a new offer replaces it).
    Counter,
    /// The author takes it back.
    Withdraw,
}

impl OfferAnswer {
    pub fn outcome(self) -> Outcome {
        match self {
            Self::Accept => Outcome::Accepted,
            Self::Decline => Outcome::Declined,
            Self::Counter => Outcome::Countered,
            Self::Withdraw => Outcome::Withdrawn,
        }
    }

    /// Whether this is the counterparty's answer (else the author's).
    pub fn by_counterparty(self) -> bool {
        !matches!(self, Self::Withdraw)
    }
}

/// A checked change of an open offer to `outcome`, by `by` at `at`.
/// Storage applies it only while the offer is open (and, but for expiry, not
/// past its `expires_at` at `at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    offer: OfferId,
    outcome: Outcome,
    by: Option<UserId>,
    at: DateTime<Utc>,
}

impl Transition {
    pub(super) fn new(
        offer: OfferId,
        outcome: Outcome,
        by: Option<UserId>,
        at: DateTime<Utc>,
    ) -> Self {
        Self { offer, outcome, by, at }
    }

    pub fn offer(&self) -> OfferId {
        self.offer
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Who answered; `None` for expiry (the service itself).
    pub fn by(&self) -> Option<&UserId> {
        self.by.as_ref()
    }

    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Whether the change is the expiry (it applies only past `expires_at`,
    /// every other change only before it).
    pub fn is_expiry(&self) -> bool {
        self.outcome == Outcome::Expired
    }
}
