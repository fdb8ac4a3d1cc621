//! The delivery engine: workers lease due deliveries from the store (or take fresh ones the
//! ingest path handed over), send them over one pooled HTTP client, and hand results to a
//! recorder that writes them back in batches.

pub mod attempt;
pub mod gate;
pub mod guard;
pub mod handoff;
pub mod recorder;
pub mod relay;
pub mod sender;
pub mod slots;
pub mod worker;

pub use sender::Sender;
pub use worker::{spawn_workers, WorkerHandle};
