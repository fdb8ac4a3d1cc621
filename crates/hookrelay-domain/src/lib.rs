//! The pure domain of hookrelay: identifiers, event-type filters, payload signing, retry policy
//! and attempt classification. Nothing here performs I/O; every other crate depends on this one.

pub mod alerting;
pub mod envelope;
pub mod filter;
pub mod health;
pub mod ids;
pub mod netpolicy;
pub mod outcome;
pub mod payload_filter;
pub mod quota;
pub mod retry;
pub mod role;
pub mod signing;
pub mod stats;
pub mod status;
pub mod time;
pub mod validate;

pub use filter::EventFilter;
pub use ids::*;
pub use outcome::{classify, classify_with_hint, AttemptOutcome, ErrorKind};
pub use payload_filter::PayloadFilter;
pub use retry::RetrySchedule;
pub use role::{Action, Role};
pub use signing::{SignatureScheme, SigningKey, WebhookSecret};
pub use status::{DeliveryStatus, WebhookKind};
