//! Exact decimal amounts (a quantity, a price): parsed from a decimal string,
//! kept as `rust_decimal::Decimal` and written back as the same string — never
//! a float, so `"0.0001"` and `"99999999.9999"` come back exactly as sent.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// At most this many digits after the point.
const MAX_DECIMALS: usize = 4;
/// At most this many digits before the point (below a trillion).
const MAX_INTEGER_DIGITS: usize = 12;

/// A positive decimal with at most four decimals, normalized (`"250.50"` is `250.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(#[serde(with = "rust_decimal::serde::str")] Decimal);

impl Amount {
    /// `field` names the input in the error: `quantity` or `price`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, DomainError> {
        let invalid = |reason: &str| DomainError::validation(field, reason.to_owned());
        let (integer, fraction) = match raw.split_once('.') {
            Some((integer, fraction)) => (integer, Some(fraction)),
            None => (raw, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(integer) || fraction.is_some_and(|f| !digits(f)) {
            return Err(invalid(
                "must be a decimal string such as \"250.5\" (digits, one optional point)",
            ));
        }
        if fraction.is_some_and(|f| f.len() > MAX_DECIMALS) {
            return Err(invalid("must have at most 4 decimals"));
        }
        if integer.trim_start_matches('0').len() > MAX_INTEGER_DIGITS {
            return Err(invalid("must be below 1000000000000"));
        }
        let value: Decimal = raw.parse().map_err(|_| invalid("must be a decimal string"))?;
        if value <= Decimal::ZERO {
            return Err(invalid("must be greater than 0"));
        }
        Ok(Self(value.normalize()))
    }

    pub fn get(self) -> Decimal {
        self.0
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How much is traded, in the offer's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(Amount);

impl Quantity {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Amount::parse("quantity", raw).map(Self)
    }

    pub fn amount(self) -> Amount {
        self.0
    }
}

/// The price per unit, in the offer's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(Amount);

impl Price {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Amount::parse("price", raw).map(Self)
    }

    pub fn amount(self) -> Amount {
        self.0
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(raw: &str) -> String {
        Quantity::parse(raw).unwrap().to_string()
    }

    #[test]
    fn keeps_every_digit() {
        assert_eq!(round_trip("0.0001"), "0.0001");
        assert_eq!(round_trip("99999999.9999"), "99999999.9999");
        assert_eq!(round_trip("250.5"), "250.5");
        assert_eq!(round_trip("250.50"), "250.5");
        assert_eq!(round_trip("1000"), "1000");
        assert_eq!(round_trip("007.10"), "7.1");
        let json = serde_json::to_value(Price::parse("210.25").unwrap()).unwrap();
        assert_eq!(json, serde_json::json!("210.25"));
        let back: Price = serde_json::from_value(json).unwrap();
        assert_eq!(back.to_string(), "210.25");
    }

    #[test]
    fn refuses_what_is_not_a_positive_four_decimal_string() {
        for bad in [
            "", "0", "0.0000", "-1", "+1", "1e3", "1.00001", ".5", "5.", "1,5", " 1", "NaN",
            "1.2.3",
        ] {
            let err = Quantity::parse(bad).unwrap_err();
            assert!(matches!(err, DomainError::Validation { field: "quantity", .. }), "{bad:?}");
        }
        assert!(Price::parse("1000000000000").is_err());
        assert!(Price::parse("999999999999.9999").is_ok());
        assert!(matches!(Price::parse("x"), Err(DomainError::Validation { field: "price", .. })));
    }
}
