//! An offer's terms, each a value that parses its input: what is traded, how
//! much, at what price, where and when. Every refusal names its field (422).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::amount::{Price, Quantity};
use crate::DomainError;

/// Which way the author trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "buy" => Ok(Self::Buy),
            "sell" => Ok(Self::Sell),
            _ => Err(DomainError::validation("side", "must be \"buy\" or \"sell\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }
}

/// The unit a quantity is counted in and a price is per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// Metric tonnes.
    #[serde(rename = "t")]
    Tonne,
    #[serde(rename = "kg")]
    Kilogram,
    /// Bushels.
    #[serde(rename = "bu")]
    Bushel,
}

impl Unit {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "t" => Ok(Self::Tonne),
            "kg" => Ok(Self::Kilogram),
            "bu" => Ok(Self::Bushel),
            _ => Err(DomainError::validation("unit", "must be one of \"t\", \"kg\", \"bu\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tonne => "t",
            Self::Kilogram => "kg",
            Self::Bushel => "bu",
        }
    }
}

/// A short free text (commodity, delivery place, note): trimmed of nothing,
/// not only whitespace, bounded, no control characters (a note may hold
/// newlines and tabs).
fn text(field: &'static str, raw: &str, max: usize, lines: bool) -> Result<String, DomainError> {
    if raw.trim().is_empty() {
        return Err(DomainError::validation(field, "must not be empty or only whitespace"));
    }
    if raw.chars().count() > max {
        return Err(DomainError::validation(field, format!("must be at most {max} characters")));
    }
    let allowed = |c: char| lines && (c == '\n' || c == '\t');
    if raw.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(DomainError::validation(field, "must not contain control characters"));
    }
    Ok(raw.to_owned())
}

macro_rules! text_term {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $lines:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                text($field, raw, $max, $lines).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

text_term!(
    /// What is traded ("wheat", "sunflower seeds"): 1–100 characters.
    Commodity, "commodity", 100, false
);
text_term!(
    /// Where the goods are handed over ("Odesa port"): 1–200 characters.
    DeliveryPlace, "delivery_place", 200, false
);
text_term!(
    /// Free words of the author: 1–1000 characters, newlines and tabs allowed.
    Note, "note", 1000, true
);

/// An ISO 4217 currency code: three uppercase letters of a currency in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// The active ISO 4217 codes (the list as of 2026).
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB \
EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY \
KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR \
MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF \
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS \
UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let known = raw.len() == 3
            && raw.bytes().all(|b| b.is_ascii_uppercase())
            && ISO_4217.split_ascii_whitespace().any(|code| code == raw);
        match raw.as_bytes() {
            [a, b, c] if known => Ok(Self([*a, *b, *c])),
            _ => Err(DomainError::validation(
                "currency",
                "must be an ISO 4217 code in capitals, such as \"UAH\", \"USD\" or \"EUR\"",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        // Parsed from ASCII capitals only.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.as_str().to_owned()
    }
}

/// The Incoterms 2020 rule that splits costs and risks (`FOB`, `CIF`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Incoterm(&'static str);

impl<'de> Deserialize<'de> for Incoterm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

const INCOTERMS: [&str; 11] =
    ["EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF"];

impl Incoterm {
    /// Case-insensitive (`fob` is `FOB`).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        INCOTERMS
            .iter()
            .find(|rule| rule.eq_ignore_ascii_case(raw))
            .map(|rule| Self(rule))
            .ok_or_else(|| {
                DomainError::validation(
                    "incoterm",
                    format!("must be an Incoterms 2020 rule: {}", INCOTERMS.join(", ")),
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl From<Incoterm> for String {
    fn from(i: Incoterm) -> Self {
        i.0.to_owned()
    }
}

/// A delivery date, `YYYY-MM-DD`.
pub fn delivery_date(field: &'static str, raw: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|_| raw.len() == 10)
        .ok_or_else(|| DomainError::validation(field, "must be a date, YYYY-MM-DD"))
}

/// Everything an offer proposes, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferTerms {
    pub side: Side,
    pub commodity: Commodity,
    pub quantity: Quantity,
    pub unit: Unit,
    pub price: Price,
    pub currency: Currency,
    pub incoterm: Option<Incoterm>,
    pub delivery_place: Option<DeliveryPlace>,
    pub delivery_from: Option<NaiveDate>,
    pub delivery_to: Option<NaiveDate>,
    pub note: Option<Note>,
}

/// The terms as a client sent them: a missing required one is refused by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TermsInput {
    pub side: Option<String>,
    pub commodity: Option<String>,
    pub quantity: Option<String>,
    pub unit: Option<String>,
    pub price: Option<String>,
    pub currency: Option<String>,
    pub incoterm: Option<String>,
    pub delivery_place: Option<String>,
    pub delivery_from: Option<String>,
    pub delivery_to: Option<String>,
    pub note: Option<String>,
}

fn required<'a>(field: &'static str, raw: &'a Option<String>) -> Result<&'a str, DomainError> {
    raw.as_deref().ok_or_else(|| DomainError::validation(field, "is required"))
}

impl TermsInput {
    /// All terms of a new offer; the first invalid one (in the contract's
    /// order) is the error.
    pub fn parse(&self) -> Result<OfferTerms, DomainError> {
        let terms = OfferTerms {
            side: Side::parse(required("side", &self.side)?)?,
            commodity: Commodity::parse(required("commodity", &self.commodity)?)?,
            quantity: Quantity::parse(required("quantity", &self.quantity)?)?,
            unit: Unit::parse(required("unit", &self.unit)?)?,
            price: Price::parse(required("price", &self.price)?)?,
            currency: Currency::parse(required("currency", &self.currency)?)?,
            incoterm: self.incoterm.as_deref().map(Incoterm::parse).transpose()?,
            delivery_place: self.delivery_place.as_deref().map(DeliveryPlace::parse).transpose()?,
            delivery_from: self
                .delivery_from
                .as_deref()
                .map(|d| delivery_date("delivery_from", d))
                .transpose()?,
            delivery_to: self
                .delivery_to
                .as_deref()
                .map(|d| delivery_date("delivery_to", d))
                .transpose()?,
            note: self.note.as_deref().map(Note::parse).transpose()?,
        };
        terms.check_delivery_window()?;
        Ok(terms)
    }

    /// Whether the input names any term at all (a counter must change one).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `base` with the terms this input names replaced (a counter-offer).
    pub fn apply_to(&self, base: &OfferTerms) -> Result<OfferTerms, DomainError> {
        let mut terms = base.clone();
        if let Some(raw) = &self.side {
            terms.side = Side::parse(raw)?;
        }
        if let Some(raw) = &self.commodity {
            terms.commodity = Commodity::parse(raw)?;
        }
        if let Some(raw) = &self.quantity {
            terms.quantity = Quantity::parse(raw)?;
        }
        if let Some(raw) = &self.unit {
            terms.unit = Unit::parse(raw)?;
        }
        if let Some(raw) = &self.price {
            terms.price = Price::parse(raw)?;
        }
        if let Some(raw) = &self.currency {
            terms.currency = Currency::parse(raw)?;
        }
        if let Some(raw) = &self.incoterm {
            terms.incoterm = Some(Incoterm::parse(raw)?);
        }
        if let Some(raw) = &self.delivery_place {
            terms.delivery_place = Some(DeliveryPlace::parse(raw)?);
        }
        if let Some(raw) = &self.delivery_from {
            terms.delivery_from = Some(delivery_date("delivery_from", raw)?);
        }
        if let Some(raw) = &self.delivery_to {
            terms.delivery_to = Some(delivery_date("delivery_to", raw)?);
        }
        if let Some(raw) = &self.note {
            terms.note = Some(Note::parse(raw)?);
        }
        terms.check_delivery_window()?;
        Ok(terms)
    }
}

impl OfferTerms {
    fn check_delivery_window(&self) -> Result<(), DomainError> {
        match (self.delivery_from, self.delivery_to) {
            (Some(from), Some(to)) if to < from => {
                Err(DomainError::validation("delivery_to", "must not be before delivery_from"))
            }
            _ => Ok(()),
        }
    }

    /// The offer's message text: "sell 250.5 t of wheat at 210 UAH/t, FOB".
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} {} {} of {} at {} {}/{}",
            self.side.as_str(),
            self.quantity,
            self.unit.as_str(),
            self.commodity.as_str(),
            self.price,
            self.currency.as_str(),
            self.unit.as_str(),
        );
        if let Some(rule) = self.incoterm {
            text.push_str(", ");
            text.push_str(rule.as_str());
        }
        if let Some(place) = &self.delivery_place {
            text.push_str(", ");
            text.push_str(place.as_str());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> TermsInput {
        TermsInput {
            side: Some("sell".into()),
            commodity: Some("wheat".into()),
            quantity: Some("250.5".into()),
            unit: Some("t".into()),
            price: Some("210".into()),
            currency: Some("UAH".into()),
            ..Default::default()
        }
    }

    fn field_of(err: DomainError) -> &'static str {
        match err {
            DomainError::Validation { field, .. } => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn parses_the_required_terms() {
        let terms = input().parse().unwrap();
        assert_eq!(terms.side, Side::Sell);
        assert_eq!(terms.unit, Unit::Tonne);
        assert_eq!(terms.currency.as_str(), "UAH");
        assert_eq!(terms.summary(), "sell 250.5 t of wheat at 210 UAH/t");
    }

    #[test]
    fn each_missing_or_invalid_term_is_named() {
        type Spoil = fn(&mut TermsInput);
        let cases: [(&str, Spoil); 16] = [
            ("side", |i| i.side = None),
            ("side", |i| i.side = Some("Sell".into())),
            ("commodity", |i| i.commodity = Some("  ".into())),
            ("commodity", |i| i.commodity = Some("x".repeat(101))),
            ("quantity", |i| i.quantity = Some("0".into())),
            ("quantity", |i| i.quantity = None),
            ("unit", |i| i.unit = Some("lb".into())),
            ("price", |i| i.price = Some("1.23456".into())),
            ("currency", |i| i.currency = Some("usd".into())),
            ("currency", |i| i.currency = Some("ABC".into())),
            ("incoterm", |i| i.incoterm = Some("XYZ".into())),
            ("delivery_place", |i| i.delivery_place = Some("a\u{7}b".into())),
            ("delivery_from", |i| i.delivery_from = Some("2026-13-01".into())),
            ("delivery_to", |i| i.delivery_to = Some("tomorrow".into())),
            ("delivery_to", |i| {
                i.delivery_from = Some("2026-03-02".into());
                i.delivery_to = Some("2026-03-01".into());
            }),
            ("note", |i| i.note = Some("".into())),
        ];
        for (field, spoil) in cases {
            let mut bad = input();
            spoil(&mut bad);
            assert_eq!(field_of(bad.parse().unwrap_err()), field);
        }
    }

    #[test]
    fn optional_terms_and_codes() {
        let mut full = input();
        full.incoterm = Some("fob".into());
        full.delivery_from = Some("2026-03-01".into());
        full.delivery_to = Some("2026-03-31".into());
        let terms = full.parse().unwrap();
        assert_eq!(terms.incoterm.unwrap().as_str(), "FOB");
        for code in ["UAH", "USD", "EUR", "PLN"] {
            assert!(Currency::parse(code).is_ok());
        }
        for code in ["US", "USDT", "Eur", ""] {
            assert!(Currency::parse(code).is_err());
        }
    }

    #[test]
    fn a_counter_changes_only_what_it_names() {
        let base = input().parse().unwrap();
        let change = TermsInput { price: Some("205.75".into()), ..Default::default() };
        let countered = change.apply_to(&base).unwrap();
        assert_eq!(countered.price.to_string(), "205.75");
        assert_eq!(countered.quantity, base.quantity);
        assert_eq!(countered.commodity, base.commodity);
        assert!(!change.is_empty() && TermsInput::default().is_empty());
        let bad = TermsInput { unit: Some("oz".into()), ..Default::default() };
        assert_eq!(field_of(bad.apply_to(&base).unwrap_err()), "unit");
    }
}
