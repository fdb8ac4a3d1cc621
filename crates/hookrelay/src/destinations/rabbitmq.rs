//! `kind: rabbitmq`: each delivery is published (AMQP 0-9-1, `amqp://` or `amqps://`, the
//! vhost in the path) to `target.exchange` with `target.routing_key`, on a channel in confirm
//! mode with the `mandatory` flag: the publisher confirm is the acknowledgement, and a message
//! no queue takes (returned as unroutable), a nack, or an exchange that does not exist is a
//! failed attempt. The envelope is the body; the headers go in the message's `headers` table,
//! with `message_id` = the delivery id, `type` = the event type, `content_type`, `timestamp`
//! and persistent delivery.
//!
//! One connection per broker URL; one confirm channel per (URL, exchange), so an exchange that
//! closes its channel (a missing exchange is a channel error) does not disturb the others. A
//! closed channel or connection is dropped and made again on the next publish.

use std::sync::Arc;

use async_trait::async_trait;
use hookrelay_domain::validate::FieldError;
use hookrelay_domain::{ErrorKind, WebhookKind};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;

use super::broker::{only_fields, target_str, Broker, Destination, Failure, Message, Pool};

#[derive(Default)]
pub struct RabbitMq {
    connections: Pool<Arc<Connection>>,
    channels: Pool<Channel>,
}

fn amqp_err(what: &str, e: &lapin::Error) -> Failure {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let kind = if lower.contains("connection refused")
        || lower.contains("io error")
        || lower.contains("not connected")
        || lower.contains("broken pipe")
        || lower.contains("reset by peer")
    {
        ErrorKind::Connect
    } else {
        ErrorKind::Broker
    };
    (kind, format!("rabbitmq: {what}: {text}"))
}

impl RabbitMq {
    async fn connection(&self, broker: &Broker<'_>) -> Result<Arc<Connection>, Failure> {
        let key = broker.url.as_str();
        let connect = || async {
            let tls = broker.url.scheme() == "amqps";
            let url = broker.connect_url(tls).await?;
            Connection::connect(url.as_str(), ConnectionProperties::default())
                .await
                .map(Arc::new)
                .map_err(|e| amqp_err("connecting", &e))
        };
        let conn = self.connections.get(key, connect).await?;
        if conn.status().connected() {
            return Ok(conn);
        }
        // The connection closed (the broker restarted, a connection error): make another.
        self.connections.invalidate(key).await;
        self.connections.get(key, connect).await
    }

    async fn channel(&self, broker: &Broker<'_>, exchange: &str) -> Result<Channel, Failure> {
        let key = format!("{}\n{exchange}", broker.url.as_str());
        let open = || async {
            let conn = self.connection(broker).await?;
            let channel = conn
                .create_channel()
                .await
                .map_err(|e| amqp_err("opening a channel", &e))?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| amqp_err("enabling publisher confirms", &e))?;
            Ok(channel)
        };
        let channel = self.channels.get(&key, open).await?;
        if channel.status().connected() {
            return Ok(channel);
        }
        self.channels.invalidate(&key).await;
        self.channels.get(&key, open).await
    }
}

#[async_trait]
impl Destination for RabbitMq {
    fn kind(&self) -> WebhookKind {
        WebhookKind::Rabbitmq
    }

    fn schemes(&self) -> &'static [(&'static str, bool)] {
        &[("amqp", false), ("amqps", true)]
    }

    fn check_target(&self, target: &Value) -> Result<(), FieldError> {
        only_fields(target, &["exchange", "routing_key"])?;
        // The default exchange ("") routes by queue name: allowed, spelled as an empty string.
        match target.get("exchange") {
            Some(Value::String(s)) if s.is_empty() => {}
            _ => {
                target_str(target, "exchange")?;
            }
        }
        match target.get("routing_key") {
            Some(Value::String(s)) if s.len() <= 255 => Ok(()),
            Some(Value::String(_)) => Err(FieldError::new(
                "target.routing_key",
                "must be at most 255 bytes",
            )),
            None | Some(Value::Null) => Err(FieldError::new("target.routing_key", "is required")),
            Some(_) => Err(FieldError::new("target.routing_key", "must be a string")),
        }
    }

    async fn publish(
        &self,
        broker: &Broker<'_>,
        target: &Value,
        message: &Message<'_>,
    ) -> Result<String, Failure> {
        let field = |name: &str| {
            target
                .get(name)
                .and_then(Value::as_str)
                .ok_or((ErrorKind::Render, format!("the target has no {name}")))
        };
        let (exchange, routing_key) = (field("exchange")?, field("routing_key")?);
        let channel = self.channel(broker, exchange).await?;
        let mut headers = FieldTable::default();
        for (name, value) in message.headers {
            headers.insert(
                name.as_str().into(),
                AMQPValue::LongString(value.as_str().into()),
            );
        }
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_message_id(message.delivery_id.into())
            .with_type(message.event_type.into())
            .with_app_id("hookrelay".into())
            .with_delivery_mode(2)
            .with_timestamp(hookrelay_domain::time::now_millis().max(0) as u64 / 1000)
            .with_headers(headers);
        let key = format!("{}\n{exchange}", broker.url.as_str());
        let confirm = async {
            channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    message.body,
                    properties,
                )
                .await
                .map_err(|e| amqp_err("publishing", &e))?
                .await
                .map_err(|e| amqp_err("waiting for the publisher confirm", &e))
        }
        .await;
        let confirmation = match confirm {
            Ok(c) => c,
            Err(e) => {
                // A channel error (e.g. the exchange does not exist) closes the channel.
                if !channel.status().connected() {
                    self.channels.invalidate(&key).await;
                }
                return Err(e);
            }
        };
        let shown = if exchange.is_empty() {
            "(default)"
        } else {
            exchange
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(format!(
                "confirmed by {shown} (routing key {routing_key})"
            )),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => Err((
                ErrorKind::Broker,
                format!(
                    "rabbitmq: returned as unroutable by {shown} with routing key {routing_key}: {} {}",
                    returned.reply_code,
                    returned.reply_text.as_str()
                ),
            )),
            Confirmation::Nack(None) => Err((
                ErrorKind::Broker,
                format!("rabbitmq: {shown} nacked the message (it could not be stored)"),
            )),
            Confirmation::NotRequested => Err((
                ErrorKind::Broker,
                "rabbitmq: the channel is not in confirm mode".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let r = RabbitMq::default();
        assert!(r
            .check_target(&serde_json::json!({"exchange": "orders", "routing_key": "paid"}))
            .is_ok());
        assert!(r
            .check_target(&serde_json::json!({"exchange": "", "routing_key": "queue-name"}))
            .is_ok());
        assert!(r
            .check_target(&serde_json::json!({"exchange": "x", "routing_key": ""}))
            .is_ok());
        assert_eq!(
            r.check_target(&serde_json::json!({"exchange": "x"}))
                .unwrap_err()
                .field,
            "target.routing_key"
        );
        assert_eq!(
            r.check_target(&serde_json::json!({"routing_key": "k"}))
                .unwrap_err()
                .field,
            "target.exchange"
        );
    }
}
