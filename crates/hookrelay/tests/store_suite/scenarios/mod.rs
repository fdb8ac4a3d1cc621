//! The scenarios, each `async fn scenario_x(store: &dyn Store)` on a fresh, migrated store.

mod access;
mod destinations;
mod fanout;
mod health;
mod ingest;
mod lists;
mod portal;
mod queue;
mod rate_limits;
mod replay;
mod retention;
mod sources;
mod stats;
mod users;
mod webhooks;

pub use access::*;
pub use destinations::*;
pub use fanout::*;
pub use health::*;
pub use ingest::*;
pub use lists::*;
pub use portal::*;
pub use queue::*;
pub use rate_limits::*;
pub use replay::*;
pub use retention::*;
pub use sources::*;
pub use stats::*;
pub use users::*;
pub use webhooks::*;
