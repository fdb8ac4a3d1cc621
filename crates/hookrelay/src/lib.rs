//! hookrelay as a library: the store, the delivery engine and the HTTP API, wired by `app::run`.
//! The binary in `main.rs` is only the command line around it.

pub mod alerts;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod delivery;
pub mod destinations;
pub mod feed;
pub mod healthcheck;
pub mod inbound;
pub mod ingest;
pub mod listen;
pub mod monitoring;
pub mod retention;
pub mod secrets;
pub mod store;
pub mod telemetry;
