//! The way new messages reach storage: submitted one by one, written in groups.
//! An adapter may queue what arrives while a commit is in flight and store it
//! in one transaction (group commit); the callers each get their own outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{FanOut, MessageRepository, UnreadCounters};
use crate::{DomainError, NewMessage, Posted};

pub trait MessageWriter: Send + Sync + 'static {
    /// Queues `message` for storage and returns at once.
    ///
    /// Contract: messages submitted one after another (by one caller) are
    /// stored in that order, so one room's get increasing seqs; the returned
    /// future resolves once the message is committed (or refused); before it
    /// resolves, a created conversation message was counted as unread for its
    /// receiver, and then every created message was handed to the fan-out, in
    /// seq order with the rest of its room.
    fn submit(&self, message: NewMessage) -> PendingPost;
}

/// The outcome of a submitted message, once it is known.
pub struct PendingPost(Pin<Box<dyn Future<Output = Result<Posted, DomainError>> + Send>>);

impl PendingPost {
    pub fn new(
        outcome: impl Future<Output = Result<Posted, DomainError>> + Send + 'static,
    ) -> Self {
        Self(Box::pin(outcome))
    }

    /// An outcome known at once (a refusal before anything was queued).
    pub fn ready(outcome: Result<Posted, DomainError>) -> Self {
        Self::new(std::future::ready(outcome))
    }
}

impl Future for PendingPost {
    type Output = Result<Posted, DomainError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for PendingPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingPost")
    }
}

/// A writer without a queue: each message is a batch of its own, stored when
/// its future is first polled. For tools and tests that post one message at a
/// time; concurrent submissions are not ordered.
pub struct DirectWriter {
    messages: Arc<dyn MessageRepository>,
    fan_out: Arc<dyn FanOut>,
    unread: Arc<dyn UnreadCounters>,
}

impl DirectWriter {
    pub fn new(
        messages: Arc<dyn MessageRepository>,
        fan_out: Arc<dyn FanOut>,
        unread: Arc<dyn UnreadCounters>,
    ) -> Self {
        Self { messages, fan_out, unread }
    }
}

impl MessageWriter for DirectWriter {
    fn submit(&self, message: NewMessage) -> PendingPost {
        let (messages, fan_out, unread) =
            (self.messages.clone(), self.fan_out.clone(), self.unread.clone());
        PendingPost::new(async move {
            let mut outcomes = messages.append_batch(std::slice::from_ref(&message)).await?;
            messages.appended(&outcomes).await;
            let outcome = outcomes
                .pop()
                .unwrap_or_else(|| Err(DomainError::Internal("no outcome for a message".into())));
            if let Ok(Posted::Created(stored)) = &outcome {
                if let Some(to) = &message.conversation {
                    // A convenience counter: its failure does not undo the message.
                    let _ = unread.increment(&to.item, &to.receiver).await;
                }
                for delivery in message.broadcasts(stored) {
                    fan_out.publish(delivery);
                }
            }
            outcome
        })
    }
}
