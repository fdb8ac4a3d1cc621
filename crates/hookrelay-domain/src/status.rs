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
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Discord => "discord",
            Self::Slack => "slack",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "http" => Self::Http,
            "discord" => Self::Discord,
            "slack" => Self::Slack,
            _ => return None,
        })
    }
}
