//! Offers: structured trade proposals that live in a room. The terms parse into
//! exact values, the status is a state machine of types, and the rules of who
//! may answer live here, not in the handlers.

mod amount;
mod model;
mod status;
mod terms;

pub use amount::{Amount, Price, Quantity};
pub use model::{EXPIRY_AUTHOR, NewOffer, Offer, OfferId, not_open, offer_message, system_message};
pub use status::{OfferAnswer, OfferStatus, Outcome, Transition};
pub use terms::{
    Commodity, Currency, DeliveryPlace, Incoterm, Note, OfferTerms, Side, TermsInput, Unit,
    delivery_date,
};

#[cfg(test)]
mod tests;
