//! hookrelay-bench: starts hookrelay on a fresh store, drives load through its public API into
//! a local receiver (or a broker it consumes from), and prints throughput, latency, memory and an
//! exact delivery ledger.

// serde_json::json! of the realistic GitHub payload (inbound.rs) nests deeper than 128.
#![recursion_limit = "256"]

mod api;
mod backlog;
mod ceiling;
mod cli;
mod consumer;
mod inbound;
mod ledger;
mod load;
mod receiver;
mod report;
#[cfg(test)]
mod selftest;
mod server;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::Parser;

use crate::api::{Api, Topology};
use crate::cli::{Cli, Scenario};
use crate::consumer::Consumer;
use crate::ledger::{Joined, Ledger};
use crate::load::{EmitConfig, EmitOutcome};
use crate::receiver::{Receiver, ReceiverConfig, ReceiverCounts};
use crate::report::{
    kib_to_mib, phase_stats, summarize_us, Boundaries, CpuFigures, DeliveryFigures, DrainFigures,
    EmitFigures, MemoryFigures, PhaseMemory, Report, RunConfig,
};
use crate::server::{MemSampler, Node, Phase, PhaseCell, ServerProcess, Stage};

/// How long the server may take to answer 200 on /health.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Variables the bench sets for the server itself.
const OWN_ENV: [&str; 7] = [
    "HOOKRELAY_LISTEN",
    "HOOKRELAY_DATABASE_URL",
    "HOOKRELAY_ADMIN_KEY",
    "HOOKRELAY_ALLOWED_TARGET_NETWORKS",
    "HOOKRELAY_MASTER_KEY",
    "HOOKRELAY_LOG_FORMAT",
    "HOOKRELAY_BIN",
];

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `run` is polled by block_on on the main thread, which the server's PDEATHSIG relies on.
    let result = tokio::select! {
        result = run_scenario(&cli) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    match result {
        Ok(void) if void => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the chosen scenario; `true` when the run is void.
async fn run_scenario(cli: &Cli) -> Result<bool> {
    cli.validate()?;
    match cli.scenario() {
        Scenario::Outbound => run(cli).await.map(|r| r.void),
        Scenario::Inbound => inbound::run(cli).await.map(|r| r.void),
        Scenario::Ceiling => ceiling::run(cli).await.map(|()| false),
        Scenario::Backlog => backlog::run(cli).await,
    }
}

async fn run(cli: &Cli) -> Result<Report> {
    // Declaration order is teardown order in reverse: the nodes, then the stage.
    let stage = Stage::prepare(cli)?;
    let receiver = Receiver::start(receiver_config(cli)).await?;
    // With --worker-nodes the server takes the API only and separate processes deliver.
    let primary_role = if cli.worker_nodes > 0 { "api" } else { "all" };
    let Node {
        process: mut server,
        api,
        startup,
    } = stage.start(primary_role, cli.concurrency as usize).await?;
    let mut workers = (1..=cli.worker_nodes)
        .map(|i| stage.spawn("worker", &format!("worker-{i}")))
        .collect::<Result<Vec<_>>>()?;
    for worker in &mut workers {
        worker.wait_healthy(&api.client, STARTUP_TIMEOUT).await?;
    }
    let pids: Vec<u32> = std::iter::once(server.pid)
        .chain(workers.iter().map(|w| w.pid))
        .collect();
    let phase = Arc::new(PhaseCell::default());
    let sampler = MemSampler::spawn(server.pid, phase.clone());
    let measured = drive(cli, &api, &receiver, &phase, Some(&mut server), &pids).await;

    let cpu_after = (server::cpu_time_of(&pids), server::cpu_time(None));
    let server_exit = server.exited().or_else(|| {
        workers
            .iter_mut()
            .find_map(|w| w.exited().map(|status| format!("a worker node: {status}")))
    });
    for worker in &mut workers {
        worker.stop();
    }
    let server_hwm = server.stop();
    let peak_rss = sampler.finish();
    let measured = match measured {
        Ok(m) => m,
        Err(err) => {
            return Err(err.context(format!(
                "the run failed; server log tail ({}):\n{}",
                server.log_path.display(),
                server.log_tail(2048)
            )))
        }
    };
    let mut report = assemble(cli, &measured);
    report.server_bin = stage.bin.display().to_string();
    report.database_kind = stage.db.kind.name();
    report.database = stage.db.description.clone();
    if cli.worker_nodes > 0 {
        report.database += &format!(
            "; one API node and {} worker node(s) (CPU is their sum)",
            cli.worker_nodes
        );
    }
    report.server_startup_ms = startup.as_secs_f64() * 1000.0;
    report.cpu = CpuFigures::between(
        measured.cpu_after_setup,
        cpu_after,
        report.emit.stats.accepted,
        measured.ledger.delivered,
    );
    report.memory.server_hwm_mib = server_hwm.map(kib_to_mib);
    report.memory.server_peak_rss = Phase::ALL
        .iter()
        .filter(|p| peak_rss[**p as usize] > 0)
        .map(|p| PhaseMemory {
            phase: p.name(),
            peak_rss_mib: kib_to_mib(peak_rss[*p as usize]),
        })
        .collect();
    if let Some(status) = server_exit {
        report.void = true;
        report
            .void_reasons
            .push(format!("the server exited during the run ({status})"));
    }
    print!("{}", report::render_text(&report));
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serializing the report")?
        );
    }
    stage.finish(cli.keep_workdir);
    Ok(report)
}

fn receiver_config(cli: &Cli) -> ReceiverConfig {
    ReceiverConfig {
        tenants: cli.tenants,
        webhooks_per_tenant: cli.webhooks,
        expected_pairs: (cli.events.saturating_mul(cli.webhooks as u64)).min(1 << 24) as usize,
        delay: Duration::from_millis(cli.receiver_delay_ms),
        verify_all: cli.verify_all,
    }
}

/// Everything measured by one outbound run.
struct Measured {
    topology: Arc<Topology>,
    emit: EmitOutcome,
    drain: Drained,
    ledger: Ledger,
    joined: Joined,
    receiver: ReceiverCounts,
    first_failure: Option<String>,
    /// (server, bench) CPU when setup ended: creating 100,000 webhooks is not the run's cost.
    cpu_after_setup: (Option<Duration>, Option<Duration>),
}

struct Drained {
    complete: bool,
    /// When the drain loop stopped (used when incomplete).
    stopped: Instant,
}

/// Setup, emit, drain and ledger against a running server (or a test fake).
async fn drive(
    cli: &Cli,
    api: &Api,
    receiver: &Receiver,
    phase: &Arc<PhaseCell>,
    mut server: Option<&mut ServerProcess>,
    server_pids: &[u32],
) -> Result<Measured> {
    phase.set(Phase::Setup);
    // Broker kinds: the consumer reads before any webhook exists, so nothing is missed.
    let consumer = match cli.broker_url() {
        Some(url) => Some(
            Consumer::start(cli.kind, &url, receiver.sink())
                .await
                .with_context(|| format!("starting the {} consumer", cli.kind.name()))?,
        ),
        None => None,
    };
    let port = receiver.addr.port();
    let topology = Arc::new(
        api::setup(api, cli.tenants, cli.webhooks, |i, j| match &consumer {
            Some(c) => c.webhook_body(i, j),
            None => api::http_webhook(port, i, j),
        })
        .await
        .context("setting up tenants and webhooks")?,
    );
    receiver.set_keys(topology.webhooks.iter().map(|w| w.key.clone()).collect())?;
    let cpu_after_setup = (server::cpu_time_of(server_pids), server::cpu_time(None));
    let emit = load::emit(
        api,
        topology.clone(),
        EmitConfig {
            events: cli.events,
            rate: cli.rate,
            concurrency: cli.concurrency,
            batch: cli.batch,
            warmup: Duration::from_secs_f64(cli.warmup_secs),
            tenant: None,
            stop: None,
        },
        phase.clone(),
    )
    .await?;

    phase.set(Phase::Drain);
    let expected = emit.expected_deliveries();
    let deadline = emit.end + Duration::from_secs(cli.drain_timeout_secs);
    let complete = loop {
        if receiver.distinct() >= expected {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        if let Some(server) = server.as_deref_mut() {
            if server.exited().is_some() {
                break false;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let drain = Drained {
        complete,
        stopped: Instant::now(),
    };

    phase.set(Phase::Ledger);
    let (ledger, joined) =
        ledger::reconcile(api, &topology, &emit.accepted, receiver, emit.start).await?;
    if let Some(c) = consumer {
        if let Err(err) = c.stop(cli.tenants, cli.webhooks).await {
            eprintln!("warning: cleaning up the broker: {err:#}");
        }
    }
    Ok(Measured {
        topology,
        emit,
        drain,
        ledger,
        joined,
        receiver: receiver.counts(),
        first_failure: receiver.first_failure(),
        cpu_after_setup,
    })
}

/// Turns measurements into the report (server and database fields are filled by the caller).
fn assemble(cli: &Cli, m: &Measured) -> Report {
    let us = |d: Duration| d.as_micros() as u64;
    let emit_end_us = us(m.emit.end - m.emit.start);
    let last_arrival_us = m.joined.samples.iter().map(|s| s.arrived_us).max();
    let drain_end_us = if m.drain.complete {
        last_arrival_us.unwrap_or(0).max(emit_end_us)
    } else {
        us(m.drain.stopped.saturating_duration_since(m.emit.start))
    };
    let sent_us: Vec<u64> = m
        .emit
        .accepted
        .iter()
        .map(|a| us(a.sent.saturating_duration_since(m.emit.start)))
        .collect();
    let phases = phase_stats(
        &sent_us,
        &m.joined.samples,
        Boundaries {
            warmup_end_us: us(Duration::from_secs_f64(cli.warmup_secs)),
            emit_end_us,
            drain_end_us,
        },
    );
    let mut latencies: Vec<u64> = m.joined.samples.iter().map(|s| s.latency_us()).collect();
    let mut api_latency = m.emit.api_latency_us.clone();
    let emit_s = emit_end_us as f64 / 1e6;
    let span_s = last_arrival_us.unwrap_or(0) as f64 / 1e6;
    let per_s = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };

    let l = &m.ledger;
    let rc = &m.receiver;
    let mut void_reasons = Vec::new();
    if l.missing > 0 {
        void_reasons.push(format!("{} deliveries missing", l.missing));
    }
    if l.unexpected > 0 {
        void_reasons.push(format!("{} unexpected deliveries", l.unexpected));
    }
    if rc.signatures_failed > 0 {
        void_reasons.push(format!("{} signature checks failed", rc.signatures_failed));
    }
    if rc.malformed > 0 {
        void_reasons.push(format!(
            "{} malformed requests at the receiver",
            rc.malformed
        ));
    }
    if m.emit.stats.accepted == 0 {
        void_reasons.push("no event was accepted".to_string());
    }
    let mut notes = Vec::new();
    if let Some(first) = &m.first_failure {
        notes.push(format!("first receiver anomaly: {first}"));
    }
    if l.pending > 0 {
        notes.push(format!(
            "{} deliveries were still pending on the server when the drain ended",
            l.pending
        ));
    }
    if l.lookup_errors > 0 {
        notes.push(format!(
            "{} event lookups failed (their pairs count as missing)",
            l.lookup_errors
        ));
    }
    if m.emit.stats.errors > 0 {
        notes.push(format!(
            "{} events were not accepted (not expected in the ledger)",
            m.emit.stats.errors
        ));
    }
    if m.emit.stats.duplicate_answers > 0 {
        notes.push(format!(
            "{} emit answers were marked duplicate (not expected in the ledger)",
            m.emit.stats.duplicate_answers
        ));
    }
    let mismatched = m
        .emit
        .accepted
        .iter()
        .filter(|a| a.deliveries != m.topology.per_tenant)
        .count();
    if mismatched > 0 {
        notes.push(format!(
            "{mismatched} accepted events reported a deliveries count other than {} (webhooks per tenant)",
            m.topology.per_tenant
        ));
    }

    Report {
        scenario: cli.scenario().name(),
        command: cli::command_line(),
        server_bin: String::new(),
        database_kind: "",
        database: String::new(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        inherited_env: inherited_env(),
        config: RunConfig {
            kind: cli.kind.name(),
            tenants: cli.tenants,
            webhooks_per_tenant: cli.webhooks,
            events: cli.events,
            rate: cli.rate,
            concurrency: cli.concurrency,
            batch: cli.batch,
            warmup_secs: cli.warmup_secs,
            drain_timeout_secs: cli.drain_timeout_secs,
            receiver_delay_ms: cli.receiver_delay_ms,
            verify_all: cli.verify_all,
        },
        server_startup_ms: 0.0,
        emit: EmitFigures {
            duration_s: emit_s,
            accepted: m.emit.stats.accepted,
            accepted_per_s: per_s(m.emit.stats.accepted, emit_s),
            api_latency: summarize_us(&mut api_latency),
            stats: m.emit.stats.clone(),
        },
        deliveries: DeliveryFigures {
            delivered: l.delivered,
            span_s,
            deliveries_per_s: per_s(l.delivered, span_s),
            latency: summarize_us(&mut latencies),
            receiver: *rc,
        },
        phases,
        drain: DrainFigures {
            duration_s: drain_end_us.saturating_sub(emit_end_us) as f64 / 1e6,
            complete: m.drain.complete,
            timeout_s: cli.drain_timeout_secs,
        },
        cpu: CpuFigures::default(),
        memory: MemoryFigures {
            server_hwm_mib: None,
            server_peak_rss: Vec::new(),
            bench_hwm_mib: server::own_hwm_kib().map(kib_to_mib),
        },
        ledger: *l,
        void: !void_reasons.is_empty(),
        void_reasons,
        notes,
    }
}

/// HOOKRELAY_* variables the server inherits besides the bench's own, secrets redacted.
pub(crate) fn inherited_env() -> Vec<String> {
    let mut vars: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("HOOKRELAY_") && !OWN_ENV.contains(&k.as_str()))
        .map(|(k, v)| {
            let secret = ["KEY", "SECRET", "PASSWORD", "TOKEN"]
                .iter()
                .any(|s| k.contains(s));
            if secret {
                format!("{k}=***")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    vars.sort();
    vars
}
