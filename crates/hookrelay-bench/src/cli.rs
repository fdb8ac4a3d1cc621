//! Command-line interface of the bench: flags, defaults and the scenario to run.
//! Everything else receives an already validated `Cli` from here.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};

/// Where the webhooks deliver: the bench's HTTP receiver, or a broker the bench consumes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Http,
    Nats,
    Rabbitmq,
    Redis,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Nats => "nats",
            Kind::Rabbitmq => "rabbitmq",
            Kind::Redis => "redis",
        }
    }

    /// The broker this machine runs for the kind (`None` for http).
    pub fn default_broker_url(self) -> Option<&'static str> {
        match self {
            Kind::Http => None,
            Kind::Nats => Some("nats://127.0.0.1:4222"),
            Kind::Rabbitmq => Some("amqp://guest:guest@127.0.0.1:5672/%2f"),
            Kind::Redis => Some("redis://127.0.0.1:6379"),
        }
    }
}

/// What the bench measures: outbound delivery, or inbound ingest (`POST /ingest/{source}` with
/// GitHub signatures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Emit events through the API and measure deliveries to a local receiver.
    Outbound,
    /// Inbound ingest throughput (`--ingest-only`): signed GitHub deliveries to a source.
    Inbound,
    /// The raw-receiver ceiling (`--ceiling`): no hookrelay, a bare client and the receiver.
    Ceiling,
    /// A backlog (`--backlog`): one tenant's receiver down while its deliveries accumulate,
    /// then up, with another tenant's events delivered throughout.
    Backlog,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Outbound => "outbound",
            Scenario::Inbound => "inbound-ingest",
            Scenario::Ceiling => "ceiling",
            Scenario::Backlog => "backlog",
        }
    }
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "hookrelay-bench",
    version,
    about = "Starts hookrelay on a fresh store, drives events through its API into a local \
             receiver, and reports throughput, latency, memory and an exact delivery ledger."
)]
pub struct Cli {
    /// hookrelay server binary [default: <workspace>/target/release/hookrelay]
    #[arg(long, env = "HOOKRELAY_BIN", value_name = "PATH")]
    pub server_bin: Option<PathBuf>,

    /// Store for the server [default: a fresh sqlite://<tempdir>/bench.db]. A postgres:// URL
    /// gets a fresh schema (created and dropped with psql).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// Run the server as one API node (`--role api`) and this many worker nodes (`--role
    /// worker`) on the same store, instead of one node doing both (0). PostgreSQL only.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub worker_nodes: u32,

    /// Number of tenants (tenant 0 is the built-in `default` tenant).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub tenants: u32,

    /// Webhooks per tenant; each subscribes to `bench.*`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub webhooks: u32,

    /// Number of events to emit.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub events: u64,

    /// Target emit rate in events/s (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,

    /// Emit requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,

    /// 0 = POST /api/v1/events one by one; B>0 = POST /api/v1/events/batch with B events each.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub batch: u32,

    /// How long to wait after the last emit for the expected deliveries to arrive.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub drain_timeout_secs: u64,

    /// The first seconds of emitting are reported separately as the warm-up phase.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_secs: f64,

    /// The receiver waits this long before answering each delivery.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub receiver_delay_ms: u64,

    /// Verify the signature of every delivery instead of every 100th.
    #[arg(long)]
    pub verify_all: bool,

    /// Also print the report as JSON (after the human-readable one).
    #[arg(long)]
    pub json: bool,

    /// Keep the temporary working directory (server log, SQLite file) and print its path.
    #[arg(long)]
    pub keep_workdir: bool,

    /// The webhooks' kind: `http` posts to the bench's receiver; `nats`, `rabbitmq` and
    /// `redis` publish to that broker, which the bench consumes from into the same ledger.
    #[arg(long, value_enum, default_value_t = Kind::Http)]
    pub kind: Kind,

    /// The broker for `--kind nats|rabbitmq|redis` [default: nats://127.0.0.1:4222,
    /// amqp://guest:guest@127.0.0.1:5672/%2f, redis://127.0.0.1:6379].
    #[arg(long, value_name = "URL")]
    pub broker_url: Option<String>,

    /// Inbound ingest instead of outbound delivery: `--events` signed GitHub `pull_request`
    /// deliveries posted to a GitHub source (`--rate`, `--concurrency`, `--warmup-secs` apply;
    /// no webhook subscribes, so nothing is delivered).
    #[arg(long)]
    pub ingest_only: bool,

    /// The raw-receiver ceiling instead: `--events` requests over `--concurrency` bare
    /// keep-alive connections straight to the bench's receiver (no server is started), so each
    /// delivery figure can be read as a fraction of what this machine does at best.
    #[arg(long, conflicts_with_all = ["ingest_only", "batch", "rate", "database_url", "worker_nodes"])]
    pub ceiling: bool,

    /// A backlog instead: tenant A's receiver answers 503 while `--events` events for it are
    /// emitted (its circuit opens and holds them), then comes back; meanwhile tenant B emits
    /// single events at `--live-rate`. Reports the drain rate, B's latency during each part, and
    /// the server's peak RSS. `--tenants` and `--webhooks` are 2 and 1.
    #[arg(long, conflicts_with_all = ["ingest_only", "ceiling", "rate", "worker_nodes", "kind", "tenants", "webhooks"])]
    pub backlog: bool,

    /// Tenant B's events per second during `--backlog`.
    #[arg(long, default_value_t = 100.0)]
    pub live_rate: f64,
}

impl Cli {
    pub fn scenario(&self) -> Scenario {
        if self.ceiling {
            Scenario::Ceiling
        } else if self.backlog {
            Scenario::Backlog
        } else if self.ingest_only {
            Scenario::Inbound
        } else {
            Scenario::Outbound
        }
    }

    /// Checks what clap's parsers cannot express.
    pub fn validate(&self) -> Result<()> {
        if !self.live_rate.is_finite() || self.live_rate <= 0.0 {
            bail!(
                "--live-rate must be a finite number > 0, got {}",
                self.live_rate
            );
        }
        if !self.rate.is_finite() || self.rate < 0.0 {
            bail!("--rate must be a finite number >= 0, got {}", self.rate);
        }
        if !(0.0..=86_400.0).contains(&self.warmup_secs) {
            bail!(
                "--warmup-secs must be between 0 and 86400, got {}",
                self.warmup_secs
            );
        }
        let postgres = self
            .database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
        if self.worker_nodes > 0 && (!postgres || self.ingest_only) {
            bail!("--worker-nodes needs a postgres:// --database-url and outbound delivery (nodes share one database)");
        }
        if self.kind != Kind::Http && self.ingest_only {
            bail!(
                "--kind {} is an outbound destination; --ingest-only delivers nothing",
                self.kind.name()
            );
        }
        if self.broker_url.is_some() && self.kind == Kind::Http {
            bail!("--broker-url needs --kind nats, rabbitmq or redis");
        }
        if self.kind != Kind::Http && self.tenants as u64 * self.webhooks as u64 > 1_000 {
            bail!("--kind {} takes at most 1000 webhooks in all (one stream, subject or routing key each)", self.kind.name());
        }
        if self.tenants as u64 * self.webhooks as u64 > 100_000 {
            bail!("--tenants x --webhooks must be at most 100000");
        }
        Ok(())
    }

    /// The broker URL of a broker kind: the flag, else the kind's default.
    pub fn broker_url(&self) -> Option<String> {
        self.broker_url
            .clone()
            .or_else(|| self.kind.default_broker_url().map(str::to_owned))
    }

    /// The server binary: the flag, else $HOOKRELAY_BIN (both via clap), else the workspace's
    /// release build.
    pub fn server_bin(&self) -> PathBuf {
        match &self.server_bin {
            Some(path) => path.clone(),
            None => workspace_root().join("target/release/hookrelay"),
        }
    }
}

/// The workspace root, two levels above this crate's manifest (fixed at compile time).
pub fn workspace_root() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The command line as typed, shell-quoted so it can be pasted back.
pub fn command_line() -> String {
    std::env::args()
        .map(|arg| shell_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_brief() {
        let cli = Cli::try_parse_from(["hookrelay-bench"]).expect("defaults parse");
        assert_eq!(cli.tenants, 1);
        assert_eq!(cli.webhooks, 1);
        assert_eq!(cli.events, 20_000);
        assert_eq!(cli.rate, 0.0);
        assert_eq!(cli.concurrency, 64);
        assert_eq!(cli.batch, 0);
        assert_eq!(cli.drain_timeout_secs, 60);
        assert_eq!(cli.warmup_secs, 2.0);
        assert_eq!(cli.receiver_delay_ms, 0);
        assert_eq!(cli.scenario(), Scenario::Outbound);
        cli.validate().expect("defaults are valid");
    }

    #[test]
    fn broker_kinds_parse_and_default_their_url() {
        let cli = Cli::try_parse_from(["hookrelay-bench"]).unwrap();
        assert_eq!((cli.kind, cli.broker_url()), (Kind::Http, None));
        let cli = Cli::try_parse_from(["hookrelay-bench", "--kind", "redis"]).unwrap();
        assert_eq!(cli.broker_url().as_deref(), Some("redis://127.0.0.1:6379"));
        cli.validate().unwrap();
        let cli = Cli::try_parse_from([
            "hookrelay-bench",
            "--kind",
            "nats",
            "--broker-url",
            "nats://10.0.0.5:4222",
        ])
        .unwrap();
        assert_eq!(cli.broker_url().as_deref(), Some("nats://10.0.0.5:4222"));
        assert!(Cli::try_parse_from(["hookrelay-bench", "--kind", "kafka"]).is_err());
    }

    #[test]
    fn broker_kinds_refuse_what_they_cannot_do() {
        for args in [
            &["hookrelay-bench", "--kind", "rabbitmq", "--ingest-only"][..],
            &["hookrelay-bench", "--broker-url", "redis://127.0.0.1:6379"][..],
            &[
                "hookrelay-bench",
                "--kind",
                "redis",
                "--tenants",
                "20",
                "--webhooks",
                "51",
            ][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert!(cli.validate().is_err(), "{args:?}");
        }
    }

    #[test]
    fn ingest_only_selects_the_inbound_scenario() {
        let cli = Cli::try_parse_from(["hookrelay-bench", "--ingest-only"]).expect("parses");
        assert_eq!(cli.scenario(), Scenario::Inbound);
    }

    #[test]
    fn ceiling_is_its_own_scenario_and_takes_no_server_flags() {
        let cli = Cli::try_parse_from(["hookrelay-bench", "--ceiling"]).expect("parses");
        assert_eq!(cli.scenario(), Scenario::Ceiling);
        for flag in [&["--batch", "10"][..], &["--ingest-only"], &["--rate", "5"]] {
            let args = [&["hookrelay-bench", "--ceiling"][..], flag].concat();
            assert!(Cli::try_parse_from(args).is_err(), "{flag:?}");
        }
    }

    #[test]
    fn rejects_out_of_range_values() {
        assert!(Cli::try_parse_from(["hookrelay-bench", "--batch", "1001"]).is_err());
        assert!(Cli::try_parse_from(["hookrelay-bench", "--tenants", "0"]).is_err());
        let cli = Cli::try_parse_from(["hookrelay-bench", "--rate=-1"]).expect("parses");
        assert!(cli.validate().is_err());
        let cli =
            Cli::try_parse_from(["hookrelay-bench", "--warmup-secs", "1e30"]).expect("parses");
        assert!(cli.validate().is_err());
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote("--events"), "--events");
        assert_eq!(
            shell_quote("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
