//! The `hookrelay` command line: `serve` (API, workers, or both), `migrate`, `listen` and
//! `healthcheck`.
//! Everything else lives in the library; this file only parses arguments, starts telemetry and
//! handles signals.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hookrelay::app::{self, ProcessRole};
use hookrelay::config::Config;
use hookrelay::store::StoreOptions;
use hookrelay::telemetry;
use tokio_util::sync::CancellationToken;

/// jemalloc rather than glibc's malloc: the hot paths allocate from many threads at once, and
/// under load glibc spent a sixth of the server's CPU consolidating and splitting its chunks
/// (docs/perf.md: about 15% less CPU per event with jemalloc, similar memory).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "hookrelay",
    version,
    about = "Durable, signed webhook delivery and verified inbound ingest"
)]
struct Cli {
    /// A TOML settings file; HOOKRELAY_* variables override it.
    #[arg(long, global = true, env = "HOOKRELAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// Which parts to run in this process.
        #[arg(long, value_enum, default_value = "all")]
        role: ProcessRole,
    },
    /// Apply the database schema and exit.
    Migrate,
    /// Delete events older than the given age now (every tenant, or one), with their
    /// deliveries, attempts and inbound requests, keeping any event with a pending delivery;
    /// prints what it removed.
    Prune {
        /// Age such as 7d, 12h or 90m.
        #[arg(long)]
        older_than: String,
        /// Only this tenant (`ten_…`).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Re-encrypt every stored secret with the current HOOKRELAY_MASTER_KEY (old keys go in
    /// HOOKRELAY_PREVIOUS_MASTER_KEYS until this has run).
    RotateMasterKey,
    /// Receive a tenant's deliveries on this machine: creates (or reuses) a `relay` webhook,
    /// holds one connection to the server and forwards each delivery, headers and signature
    /// included, to a local URL; the local answer is recorded as the attempt.
    Listen(ListenArgs),
    /// GET a node's readiness (`/ready`) and exit 0 when it answers 2xx, 1 otherwise: the
    /// container's HEALTHCHECK, with no curl in the image.
    Healthcheck(HealthcheckArgs),
}

#[derive(clap::Args)]
struct HealthcheckArgs {
    /// The URL to check [default: /ready on loopback at the port of HOOKRELAY_LISTEN, else
    /// http://127.0.0.1:8080/ready].
    #[arg(long)]
    url: Option<String>,
    /// How long to wait for the answer, in seconds.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

#[derive(clap::Args)]
struct ListenArgs {
    /// The hookrelay server.
    #[arg(
        long,
        env = "HOOKRELAY_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// An API key (editor or admin) of the tenant whose deliveries to receive.
    #[arg(long, env = "HOOKRELAY_KEY", hide_env_values = true)]
    key: String,
    /// Event types to receive: exact, `prefix.*` or `*`, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    events: Vec<String>,
    /// Where to POST each delivery, e.g. http://localhost:3000/hooks.
    #[arg(long)]
    forward_to: url::Url,
    /// Listen for this relay webhook (`wh_…`) instead of the one kept for --forward-to; its own
    /// events apply and --events is ignored. Lets two people forwarding to the same local URL
    /// keep separate webhooks (listeners of one webhook share its deliveries).
    #[arg(long)]
    webhook: Option<String>,
    /// How long the local receiver may take to answer, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Command::Listen(args) => return listen(args),
        Command::Healthcheck(args) => return healthcheck(args),
        command => command,
    };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hookrelay: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hookrelay: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let node_id = app::new_node_id();
    // Only a serving process exports traces; the one-shot commands just log.
    let otlp = match command {
        Command::Serve { .. } => config.otlp_endpoint.clone(),
        Command::Migrate
        | Command::Prune { .. }
        | Command::RotateMasterKey
        | Command::Listen(_)
        | Command::Healthcheck(_) => None,
    };
    // Inside the runtime: the trace exporter's batch task runs on it.
    let telemetry = {
        let _entered = runtime.enter();
        telemetry::init(config.log_format, otlp.as_ref(), &node_id)
    };
    let telemetry = match telemetry {
        Ok(t) => t,
        Err(e) => {
            eprintln!("hookrelay: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = runtime.block_on(run(command, config, node_id));
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "hookrelay failed");
    }
    runtime.block_on(telemetry.shutdown());
    // Blocking tasks still running (a trace export that gave up waiting) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookrelay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config, node_id: String) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            let store = hookrelay::store::connect(
                &config.database_url,
                Arc::new(config.keyring()?),
                &StoreOptions::from_config(&config),
            )
            .await?;
            store.migrate().await?;
            eprintln!("hookrelay: schema is up to date ({})", store.backend());
            Ok(())
        }
        Command::Prune { older_than, tenant } => {
            let age = hookrelay::retention::parse_age(&older_than).ok_or_else(|| {
                anyhow::anyhow!("--older-than `{older_than}` is not an age like 7d, 12h or 90m")
            })?;
            let tenant = tenant
                .map(|t| {
                    hookrelay_domain::TenantId::parse(&t)
                        .ok_or_else(|| anyhow::anyhow!("--tenant `{t}` is not a tenant id (ten_…)"))
                })
                .transpose()?;
            let store = hookrelay::store::connect(
                &config.database_url,
                Arc::new(config.keyring()?),
                &StoreOptions::from_config(&config),
            )
            .await?;
            store.migrate().await?;
            let removed = hookrelay::retention::prune(
                store.as_ref(),
                config.retention_days,
                Some(age),
                tenant.as_ref(),
            )
            .await?;
            println!(
                "pruned {} events, {} deliveries, {} attempts, {} inbound requests (older than {older_than}{})",
                removed.events,
                removed.deliveries,
                removed.attempts,
                removed.inbound_requests,
                tenant.map(|t| format!(", tenant {t}")).unwrap_or_default(),
            );
            Ok(())
        }
        Command::RotateMasterKey => {
            let keyring = Arc::new(config.keyring()?);
            let current = keyring.current_id().to_owned();
            let store = hookrelay::store::connect(
                &config.database_url,
                keyring,
                &StoreOptions::from_config(&config),
            )
            .await?;
            store.migrate().await?;
            let changed = store.reseal_secrets().await?;
            eprintln!("hookrelay: re-encrypted {changed} secret(s) with master key {current}; the previous keys are no longer needed");
            Ok(())
        }
        Command::Listen(_) | Command::Healthcheck(_) => {
            unreachable!("handled before the configuration is read")
        }
        Command::Serve { role } => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            app::run_as(node_id, config, role, listener, shutdown).await
        }
    }
}

/// `hookrelay listen`: a client of a server, so none of the server's configuration applies.
fn listen(args: ListenArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hookrelay: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let options = hookrelay::listen::ListenOptions {
        server: args.server,
        key: args.key,
        events: args.events,
        forward_to: args.forward_to,
        webhook: args.webhook,
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        hookrelay::listen::run(options, shutdown).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookrelay listen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `hookrelay healthcheck`: needs no configuration file, only where the node listens.
fn healthcheck(args: HealthcheckArgs) -> std::process::ExitCode {
    let url = args.url.unwrap_or_else(|| {
        hookrelay::healthcheck::default_url(std::env::var("HOOKRELAY_LISTEN").ok().as_deref())
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hookrelay healthcheck: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    match runtime.block_on(hookrelay::healthcheck::check(&url, timeout)) {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("hookrelay healthcheck: {why}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// SIGINT or SIGTERM: stop accepting, finish in-flight deliveries, release leases.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
