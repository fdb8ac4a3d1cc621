//! Wires one hookrelay process: opens and migrates the store, bootstraps the default tenant
//! and admin key, then runs the API and/or the delivery workers until `shutdown` fires.

use std::future::IntoFuture;
use std::sync::{Arc, OnceLock};

use hookrelay_domain::netpolicy::TargetPolicy;
use hookrelay_domain::time::now_millis;
use hookrelay_domain::{KeyId, Role, TenantId, UserId};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::auth::keys::{generate_api_key, hash_api_key};
use crate::config::Config;
use crate::delivery::gate::GateLimits;
use crate::delivery::guard::{HostLookup, SystemLookup};
use crate::delivery::worker::WorkerContext;
use crate::delivery::{spawn_workers, Sender};
use crate::feed::ChangeFeed;
use crate::ingest::Ingestor;
use crate::store::{self, ApiKey, Store, StoreError, Tenant, User};

/// Which parts of hookrelay this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProcessRole {
    /// The HTTP API only (plus health and metrics).
    Api,
    /// Delivery workers only (plus health and metrics).
    Worker,
    /// Both, the single-node default.
    All,
}

impl ProcessRole {
    fn runs_api(self) -> bool {
        matches!(self, Self::Api | Self::All)
    }

    fn runs_workers(self) -> bool {
        matches!(self, Self::Worker | Self::All)
    }
}

pub const DEFAULT_TENANT: &str = "default";

/// The process-wide Prometheus recorder (a recorder can be installed only once per process).
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ])
                .ok()?
                // End-to-end latency spans the retry schedule: seconds to two days.
                .set_buckets_for_metric(
                    Matcher::Full("hookrelay_delivery_latency_seconds".into()),
                    &[
                        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0,
                        3600.0, 21600.0, 86400.0, 172800.0,
                    ],
                )
                .ok()?
                .install_recorder()
                .ok()
                .inspect(|_| crate::monitoring::register())
        })
        .clone()
}

/// A fresh name for a process: it owns the leases the process takes, and is the
/// `service.instance.id` of its traces.
pub fn new_node_id() -> String {
    format!("node-{}", ulid::Ulid::new())
}

/// Runs until `shutdown` is cancelled, then drains in-flight deliveries and returns.
pub async fn run(
    config: Config,
    role: ProcessRole,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with(config, role, listener, shutdown, Arc::new(SystemLookup)).await
}

/// `run` as the node `node_id` (the command line names its traces with the same id).
pub async fn run_as(
    node_id: String,
    config: Config,
    role: ProcessRole,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    start(
        node_id,
        config,
        role,
        listener,
        shutdown,
        Arc::new(SystemLookup),
    )
    .await
}

/// `run` with a chosen host-name lookup for deliveries (tests resolve names to loopback).
pub async fn run_with(
    config: Config,
    role: ProcessRole,
    listener: TcpListener,
    shutdown: CancellationToken,
    lookup: Arc<dyn HostLookup>,
) -> anyhow::Result<()> {
    start(new_node_id(), config, role, listener, shutdown, lookup).await
}

async fn start(
    node_id: String,
    config: Config,
    role: ProcessRole,
    listener: TcpListener,
    shutdown: CancellationToken,
    lookup: Arc<dyn HostLookup>,
) -> anyhow::Result<()> {
    if config.master_key.is_none() {
        tracing::warn!(dir = %config.data_dir().display(), "no HOOKRELAY_MASTER_KEY: using the key file in the data folder (dev only; prod refuses to start)");
    }
    let keyring = Arc::new(config.keyring()?);
    let store = store::connect(
        &config.database_url,
        keyring,
        &store::StoreOptions::from_config(&config),
    )
    .await?;
    store.migrate().await?;
    bootstrap(store.as_ref(), &config).await?;

    let wake = Arc::new(Notify::new());
    let policy = TargetPolicy::new(&config.allowed_target_networks)
        .map_err(|e| anyhow::anyhow!("HOOKRELAY_ALLOWED_TARGET_NETWORKS: {e}"))?;
    let sender = Sender::with_pool(
        config.delivery_timeout,
        policy,
        lookup,
        config.worker_concurrency.max(64),
    )?;
    let config = Arc::new(config);
    let feed = ChangeFeed::start(&node_id, store.clone(), shutdown.clone());
    // Cross-node signals (PostgreSQL): wake-ups for the workers, the feed's relay for streams.
    let listener_task = {
        let (store, wake, feed, shutdown) =
            (store.clone(), wake.clone(), feed.clone(), shutdown.clone());
        tokio::spawn(async move { store.forward_notifications(wake, feed, shutdown).await })
    };

    // Retention runs beside the workers (an api-only node leaves it to them).
    let retention = role.runs_workers().then(|| {
        tokio::spawn(crate::retention::run(
            store.clone(),
            config.retention_days,
            shutdown.clone(),
        ))
    });
    // The alert loop runs beside the workers: their recorder feeds its counters.
    let alert_counters = Arc::new(crate::alerts::AlertCounters::new(config.alerts.window));
    let alert_loop = role.runs_workers().then(|| {
        tokio::spawn(crate::alerts::run(
            store.clone(),
            alert_counters.clone(),
            config.alerts,
            config.alert_every,
            shutdown.clone(),
        ))
    });
    let workers = role.runs_workers().then(|| {
        spawn_workers(
            WorkerContext {
                store: store.clone(),
                sender: sender.clone(),
                schedule: config.retry_schedule.clone(),
                wake: wake.clone(),
                concurrency: config.worker_concurrency,
                claim_batch: config.claim_batch,
                lease_grace: config.lease_grace,
                owner: node_id.clone(),
                limits: GateLimits {
                    per_webhook_inflight: config.max_inflight_per_webhook,
                    per_tenant_inflight: config.max_inflight_per_tenant,
                    default_tenant_rate: config.default_quotas.delivery_rate_per_sec,
                    shared_rates: store.backend() == "postgres",
                },
                feed: feed.clone(),
                health: config.health,
                alerts: alert_counters.clone(),
            },
            shutdown.clone(),
        )
    });
    let writers = if store.backend() == "postgres" { 4 } else { 1 };
    let handoff = workers
        .as_ref()
        .filter(|_| config.handoff && role.runs_api())
        .map(|w| w.handoff.clone());
    let ingestor = Ingestor::start(
        store.clone(),
        wake.clone(),
        writers,
        handoff,
        feed.clone(),
        config.ingest_queue_max_events,
    );

    let state = AppState {
        store: store.clone(),
        ingestor,
        sender,
        config: config.clone(),
        keys: Arc::new(api::auth::KeyCache::new(config.key_cache_ttl)),
        quotas: Arc::new(api::quotas::QuotaCache::new(config.key_cache_ttl)),
        wake,
        metrics: metrics_handle(),
        node_id,
        schemas: Arc::new(crate::destinations::catalog::SchemaCache::new(
            config.key_cache_ttl,
        )),
        inbound: api::ingest::Gateway::start(store.clone(), &config),
        login_throttle: Arc::new(crate::auth::sessions::LoginThrottle::new(
            config.login_max_failures,
            config.login_lockout,
        )),
        feed,
    };
    let router = if role.runs_api() {
        api::router(state)
    } else {
        api::worker_router(state)
    };
    tracing::info!(listen = %listener.local_addr()?, backend = store.backend(), ?role, "hookrelay started");
    // Connect info gives the login throttle the client's address. On shutdown the server stops
    // accepting connections and lets the requests in flight finish.
    let mut http = tokio::spawn(
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future(),
    );
    let mut http_done = false;
    tokio::select! {
        // Biased: once the signal came, the server's own end is awaited by the drain below.
        biased;
        _ = shutdown.cancelled() => {}
        served = &mut http => {
            // The server ended before any shutdown was asked for: that is an error.
            http_done = true;
            shutdown.cancel();
            served??;
        }
    }

    // One grace for both halves of the drain, counted from the signal.
    let deadline = tokio::time::Instant::now() + config.shutdown_grace;
    tracing::info!(grace = ?config.shutdown_grace, "draining: no new connections or claims; finishing what is in flight");
    let http_drained = async {
        if http_done {
            return;
        }
        match tokio::time::timeout_at(deadline, &mut http).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the HTTP server stopped with an error"),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("shutdown grace is over: closing the HTTP requests still open");
                http.abort();
            }
        }
    };
    let workers_drained = async {
        if let Some(workers) = workers {
            workers.join(deadline).await;
        }
    };
    tokio::join!(http_drained, workers_drained);
    listener_task.abort();
    for task in [retention, alert_loop].into_iter().flatten() {
        task.abort();
    }
    tracing::info!("hookrelay stopped");
    Ok(())
}

/// Ensures the `default` tenant and a server-admin key exist. A configured admin key is
/// registered by hash; otherwise one is generated on first start and printed once.
pub async fn bootstrap(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    let tenant = match store.get_tenant_by_name(DEFAULT_TENANT).await? {
        Some(t) => t,
        None => {
            let now = now_millis();
            let t = Tenant {
                id: TenantId::generate(),
                name: DEFAULT_TENANT.into(),
                quotas: Default::default(),
                retention_days: None,
                created_at: now,
                updated_at: now,
            };
            match store.create_tenant(&t).await {
                Ok(()) => t,
                // Another node created it first.
                Err(StoreError::Conflict(_)) => store
                    .get_tenant_by_name(DEFAULT_TENANT)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("default tenant vanished"))?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let admin = |plaintext: &str, name: &str| ApiKey {
        id: KeyId::generate(),
        tenant_id: tenant.id.clone(),
        name: name.into(),
        role: Role::Admin,
        key_hash: hash_api_key(plaintext),
        server_admin: true,
        created_at: now_millis(),
    };
    match &config.admin_key {
        Some(key)
            if store
                .find_api_key_by_hash(&hash_api_key(key))
                .await?
                .is_none() =>
        {
            match store
                .create_api_key(&admin(key, "bootstrap (HOOKRELAY_ADMIN_KEY)"))
                .await
            {
                // Another node registered it first.
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Some(_) => {}
        None if !store.has_server_admin_key().await? => {
            let key = generate_api_key();
            store
                .create_api_key(&admin(&key, "bootstrap (generated)"))
                .await?;
            // Printed once, on purpose outside the log pipeline: it is never shown again.
            eprintln!(
                "\n  hookrelay: generated the server admin API key (shown only now, store it safely):\n\n    {key}\n\n  Use it as `Authorization: Bearer {key}`, or set HOOKRELAY_ADMIN_KEY yourself.\n"
            );
        }
        None => {}
    }
    bootstrap_user(store, config, &tenant).await
}

/// Creates the server-admin dashboard account when no user exists yet, so that a newcomer can
/// log in on first start. A generated password is printed once, like the generated admin key.
async fn bootstrap_user(store: &dyn Store, config: &Config, tenant: &Tenant) -> anyhow::Result<()> {
    if store.has_users().await? {
        return Ok(());
    }
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.clone(), false),
        None => (crate::auth::passwords::generate_password(), true),
    };
    let to_hash = password.clone();
    let password_hash =
        tokio::task::spawn_blocking(move || crate::auth::passwords::hash_password(&to_hash))
            .await?
            .map_err(|e| anyhow::anyhow!(e))?;
    let user = User {
        id: UserId::generate(),
        tenant_id: tenant.id.clone(),
        email: config.admin_email.clone(),
        password_hash,
        role: Role::Admin,
        server_admin: true,
        created_at: now_millis(),
    };
    match store.create_user(&user).await {
        Ok(()) => {}
        // Another node bootstrapped at the same moment.
        Err(StoreError::Conflict(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let shown = if generated {
        format!(
            "{password}   (generated, shown only now; set HOOKRELAY_ADMIN_PASSWORD to choose it)"
        )
    } else {
        String::from("the value of HOOKRELAY_ADMIN_PASSWORD")
    };
    // Printed once, on purpose outside the log pipeline, like the generated admin key.
    eprintln!(
        "\n  hookrelay: created the dashboard account\n\n    email:    {}\n    password: {shown}\n\n  Log in with POST /api/v1/auth/login {{\"email\", \"password\"}}; the answer's token is a bearer token.\n",
        user.email
    );
    Ok(())
}
