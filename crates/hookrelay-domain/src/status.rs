//! Small closed vocabularies shared by the store and the API: delivery status and webhook kind.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or held while its webhook is paused).
    Pending,
    Succeeded,
    /// Retries exhausted: the delivery is in the dead-letter queue.
    Failed,
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    #[default]
    Http,
    Discord,
    Slack,
    /// Delivered to `hookrelay listen` processes connected to the server (local development).
    Relay,
    /// Published to a NATS subject (JetStream when a stream binds it).
    Nats,
    /// Published to a RabbitMQ exchange (AMQP 0-9-1, publisher confirms).
    Rabbitmq,
    /// Appended to a Redis stream (`XADD`).
    Redis,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Discord => "discord",
            Self::Slack => "slack",
            Self::Relay => "relay",
            Self::Nats => "nats",
            Self::Rabbitmq => "rabbitmq",
            Self::Redis => "redis",
        }
    }

    /// Whether deliveries are published to a message broker (the URL names the broker, `target`
    /// where on it) rather than posted over HTTP.
    pub fn is_broker(self) -> bool {
        matches!(self, Self::Nats | Self::Rabbitmq | Self::Redis)
    }

    /// Whether the body is rendered from `templates` (a chat message) rather than the envelope.
    pub fn is_chat(self) -> bool {
        matches!(self, Self::Discord | Self::Slack)
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "http" => Self::Http,
            "discord" => Self::Discord,
            "slack" => Self::Slack,
            "relay" => Self::Relay,
            "nats" => Self::Nats,
            "rabbitmq" => Self::Rabbitmq,
            "redis" => Self::Redis,
            _ => return None,
        })
    }
}
