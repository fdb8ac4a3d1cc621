//! End-to-end tests: the real server (in-process on port 0, or as a child process) against a
//! real store and real HTTP receivers on 127.0.0.1. One test binary keeps link time down.

/// `both_backends!(a, b)`: one `#[tokio::test]` per store for each scenario `async fn(Backend)`
/// of the module it is used in, as `sqlite::a` and `postgres::a`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::support::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::support::Backend::Postgres).await })*
        }
    };
}

mod support;

mod api_errors;
mod broker_faults;
mod brokers;
mod crash;
mod dashboard;
mod delivery;
mod destinations;
mod ed25519;
mod fairness;
mod faults;
mod handover;
mod health;
mod healthcheck;
mod inbound;
mod listen;
mod metrics;
mod ordered;
mod otlp;
mod outage;
mod overload;
mod portal;
mod quotas;
mod replay;
mod retention;
mod secrets;
mod shared_limits;
mod ssrf;
mod stats;
mod stream;
mod transform;
mod users;
mod workers;
