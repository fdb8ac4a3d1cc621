//! End-to-end tests: the real server (in-process on port 0, or as a child process) against a
//! real store and real HTTP receivers on 127.0.0.1. One test binary keeps link time down.

mod support;

mod api_errors;
mod crash;
mod delivery;
mod destinations;
mod fairness;
mod inbound;
mod metrics;
mod quotas;
mod secrets;
mod ssrf;
mod stream;
mod users;
mod workers;
