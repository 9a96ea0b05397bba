//! The REST handlers, one file per resource. They parse, call the service and
//! shape the response; rules live in the domain.

pub mod docs;
pub mod health;
pub mod messages;
pub mod offers;
pub mod reactions;
pub mod reads;
pub mod rooms;
pub mod search;
pub mod users;
