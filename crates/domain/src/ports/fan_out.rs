//! Fan-out: carries room events to every socket of a room, on every instance.

use crate::Delivery;

pub trait FanOut: Send + Sync + 'static {
    /// Hands a delivery over for broadcast. Never blocks and never fails the
    /// caller: the change is already committed, and sockets recover any message
    /// they miss from storage by its `seq`.
    fn publish(&self, delivery: Delivery);

    /// Deliveries may have been missed (the bus between instances reconnected):
    /// re-read recent messages from storage for the rooms with sockets here.
    fn catch_up(&self) {}
}

/// A fan-out that drops everything: for tools and tests that have no sockets.
pub struct NoFanOut;

impl FanOut for NoFanOut {
    fn publish(&self, _delivery: Delivery) {}
}
