//! Publisher confirms: a channel callback that forwards the broker's acks and
//! nacks to the relay, which waits for them before marking events sent.

use amqprs::callbacks::ChannelCallback;
use amqprs::channel::Channel;
use amqprs::{Ack, BasicProperties, Cancel, CloseChannel, Nack, Return};
use async_trait::async_trait;
use tokio::sync::mpsc;

/// One ack or nack; `multiple` covers every tag up to `tag`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Confirm {
    pub tag: u64,
    pub multiple: bool,
    pub ack: bool,
}

pub(crate) struct ConfirmCallback {
    pub tx: mpsc::Sender<Confirm>,
}

#[async_trait]
impl ChannelCallback for ConfirmCallback {
    async fn close(
        &mut self,
        _channel: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        tracing::warn!(reason = %close, "RabbitMQ closed the relay channel");
        Ok(())
    }

    async fn cancel(
        &mut self,
        _channel: &Channel,
        _cancel: Cancel,
    ) -> Result<(), amqprs::error::Error> {
        Ok(())
    }

    async fn flow(
        &mut self,
        _channel: &Channel,
        active: bool,
    ) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }

    async fn publish_ack(&mut self, _channel: &Channel, ack: Ack) {
        let _ = self
            .tx
            .send(Confirm { tag: ack.delivery_tag(), multiple: ack.mutiple(), ack: true })
            .await;
    }

    async fn publish_nack(&mut self, _channel: &Channel, nack: Nack) {
        let _ = self
            .tx
            .send(Confirm { tag: nack.delivery_tag(), multiple: nack.multiple(), ack: false })
            .await;
    }

    async fn publish_return(
        &mut self,
        _channel: &Channel,
        ret: Return,
        _properties: BasicProperties,
        _content: Vec<u8>,
    ) {
        tracing::warn!(reason = %ret, "RabbitMQ returned an event");
    }
}
