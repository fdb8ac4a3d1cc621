//! The `--backlog` scenario: tenant A's receiver is down (it answers 503) while `--events`
//! deliveries for it accumulate, then it comes back; tenant B emits throughout at `--live-rate`.
//!
//! It shows what issue 15 asks of a million-delivery backlog: the server's RSS over each part,
//! how fast A's backlog drains once its circuit closes, and B's emit→delivery latency while A's
//! deliveries are held and while they drain. The ledger is exact over both tenants, as in the
//! outbound scenario; a run with a missing or unexpected delivery is void.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::api::{self, Api};
use crate::cli::Cli;
use crate::ledger::{self, Sample};
use crate::load::{self, Accepted, EmitConfig, EmitOutcome};
use crate::receiver::{Receiver, ReceiverConfig};
use crate::report::{kib_to_mib, summarize_us, Percentiles};
use crate::server::{self, MemSampler, Node, Phase, PhaseCell, ServerProcess, Stage};

/// Tenant A (the built-in `default` tenant), whose receiver goes down.
const HELD: u32 = 0;
/// Tenant B, delivered throughout.
const LIVE: u32 = 1;
/// Short retries, so that the few deliveries that failed before A's circuit opened (and its
/// failed probes) are due again soon after it closes, well within their retries; held ones use
/// none (API.md, "Endpoint health").
const RETRY_SCHEDULE_SECONDS: [u32; 12] = [1; 12];
/// How long B's last deliveries may take once A has drained and B stopped emitting.
const LIVE_TAIL: Duration = Duration::from_secs(30);

/// The parts of the run, as the memory sampler's phases.
const ACCUMULATE: Phase = Phase::Warmup;
const WAITING: Phase = Phase::Steady;
const DRAIN: Phase = Phase::Drain;

fn part_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Warmup => "accumulate (A down)",
        Phase::Steady => "A up, circuit still open",
        Phase::Drain => "drain",
        other => other.name(),
    }
}

/// Offsets (µs from the start of the emits) where each part ends.
#[derive(Debug, Clone, Copy)]
struct Parts {
    up_us: u64,
    first_us: u64,
    drained_us: u64,
}

struct Measured {
    held: EmitOutcome,
    live: EmitOutcome,
    parts: Parts,
    drained: bool,
    held_samples: Vec<Sample>,
    live_samples: Vec<Sample>,
    ledger: ledger::Ledger,
    refused: u64,
    signatures_failed: u64,
    cpu_after_setup: Option<Duration>,
}

/// Runs the scenario; `true` when the run is void.
pub async fn run(cli: &Cli) -> Result<bool> {
    let stage = Stage::prepare(cli)?;
    let receiver = Receiver::start(ReceiverConfig {
        tenants: 2,
        webhooks_per_tenant: 1,
        expected_pairs: cli.events.min(1 << 24) as usize,
        delay: Duration::from_millis(cli.receiver_delay_ms),
        verify_all: cli.verify_all,
    })
    .await?;
    let Node {
        process: mut server,
        api,
        ..
    } = stage.start("all", cli.concurrency as usize + 4).await?;
    let phase = Arc::new(PhaseCell::default());
    let sampler = MemSampler::spawn(server.pid, phase.clone());
    let measured = drive(cli, &api, &receiver, &phase, &mut server).await;
    let cpu_end = server::cpu_time_of(&[server.pid]);
    let exited = server.exited();
    let hwm = server.stop();
    let peak = sampler.finish();
    let m = measured.map_err(|err| {
        err.context(format!(
            "the run failed; server log tail ({}):\n{}",
            server.log_path.display(),
            server.log_tail(2048)
        ))
    })?;
    let cpu = match (m.cpu_after_setup, cpu_end) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let void = render(cli, &m, &stage.db.description, &peak, hwm, cpu, exited);
    stage.finish(cli.keep_workdir);
    Ok(void)
}

async fn drive(
    cli: &Cli,
    api: &Api,
    receiver: &Receiver,
    phase: &Arc<PhaseCell>,
    server: &mut ServerProcess,
) -> Result<Measured> {
    phase.set(Phase::Setup);
    let port = receiver.addr.port();
    let topology = Arc::new(
        api::setup(api, 2, 1, |i, j| {
            let mut body = api::http_webhook(port, i, j);
            body["retry_schedule_seconds"] = serde_json::json!(RETRY_SCHEDULE_SECONDS);
            body
        })
        .await
        .context("setting up the two tenants")?,
    );
    receiver.set_keys(topology.webhooks.iter().map(|w| w.key.clone()).collect())?;
    let cpu_after_setup = server::cpu_time_of(&[server.pid]);

    receiver.refuse(Some(HELD));
    let start = Instant::now();
    let stop_live = Arc::new(AtomicBool::new(false));
    let live_task = {
        let api = api.clone();
        let topology = topology.clone();
        // Room for the longest run the drain timeout allows; the emitter stops when told.
        let events = (cli.live_rate * (cli.drain_timeout_secs as f64 + 3_600.0)) as u64;
        let cfg = EmitConfig {
            events,
            rate: cli.live_rate,
            concurrency: 4,
            batch: 0,
            warmup: Duration::ZERO,
            tenant: Some(LIVE),
            stop: Some(stop_live.clone()),
        };
        tokio::spawn(async move { load::emit(&api, topology, cfg, Arc::default()).await })
    };

    phase.set(ACCUMULATE);
    let held = load::emit(
        api,
        topology.clone(),
        EmitConfig {
            events: cli.events,
            rate: 0.0,
            concurrency: cli.concurrency,
            batch: cli.batch,
            warmup: Duration::ZERO,
            tenant: Some(HELD),
            stop: None,
        },
        Arc::default(),
    )
    .await?;
    let expected_held = held.expected_deliveries();

    phase.set(WAITING);
    receiver.refuse(None);
    let up = Instant::now();
    let deadline = up + Duration::from_secs(cli.drain_timeout_secs);
    let mut first = None;
    let drained = loop {
        let arrived = receiver.distinct_of(HELD);
        if first.is_none() && arrived > 0 {
            first = Some(Instant::now());
            phase.set(DRAIN);
        }
        if arrived >= expected_held {
            break true;
        }
        if Instant::now() >= deadline || server.exited().is_some() {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let drained_at = Instant::now();
    stop_live.store(true, std::sync::atomic::Ordering::Relaxed);
    let live = live_task
        .await
        .context("the live emitter panicked")?
        .context("tenant B's emits")?;
    let expected_live = live.expected_deliveries();
    let tail = Instant::now() + LIVE_TAIL;
    while receiver.distinct_of(LIVE) < expected_live && Instant::now() < tail {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    phase.set(Phase::Ledger);
    let us = |t: Instant| t.saturating_duration_since(start).as_micros() as u64;
    let parts = Parts {
        up_us: us(up),
        first_us: us(first.unwrap_or(drained_at)),
        drained_us: us(drained_at),
    };
    let all: Vec<Accepted> = held
        .accepted
        .iter()
        .chain(&live.accepted)
        .cloned()
        .collect();
    let (ledger, _) = ledger::reconcile(api, &topology, &all, receiver, start).await?;
    let arrivals = receiver.arrivals();
    let held_samples = ledger::join(&held.accepted, &arrivals, 1, start).samples;
    let live_samples = ledger::join(&live.accepted, &arrivals, 1, start).samples;
    drop(arrivals);
    let counts = receiver.counts();
    Ok(Measured {
        held,
        live,
        parts,
        drained,
        held_samples,
        live_samples,
        ledger,
        refused: counts.refused,
        signatures_failed: counts.signatures_failed,
        cpu_after_setup,
    })
}

/// B's latency over the deliveries of its events sent in `[from, to)` (µs offsets).
fn live_latency(samples: &[Sample], from: u64, to: u64) -> Option<Percentiles> {
    let mut us: Vec<u64> = samples
        .iter()
        .filter(|s| (from..to).contains(&s.sent_us))
        .map(Sample::latency_us)
        .collect();
    summarize_us(&mut us)
}

fn fmt_latency(p: &Option<Percentiles>) -> String {
    match p {
        Some(p) => format!(
            "{} deliveries, p50 {:.1} / p95 {:.1} / p99 {:.1} / max {:.1} ms",
            p.count, p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms
        ),
        None => "no deliveries".to_string(),
    }
}

/// Prints the report; returns whether the run is void.
fn render(
    cli: &Cli,
    m: &Measured,
    database: &str,
    peak_kib: &[u64; 5],
    hwm_kib: Option<u64>,
    cpu: Option<Duration>,
    exited: Option<String>,
) -> bool {
    let s = |us: u64| us as f64 / 1e6;
    let p = m.parts;
    let emit_s = (m.held.end - m.held.start).as_secs_f64();
    let accepted = m.held.accepted.len() as u64;
    let (first_arrival, last_arrival) = m
        .held_samples
        .iter()
        .filter(|x| x.arrived_us >= p.up_us)
        .fold((u64::MAX, 0), |(lo, hi), x| {
            (lo.min(x.arrived_us), hi.max(x.arrived_us))
        });
    let drained_after_up = m
        .held_samples
        .iter()
        .filter(|x| x.arrived_us >= p.up_us)
        .count() as u64;
    let drain_span = s(last_arrival.saturating_sub(first_arrival));
    let drain_rate = if drain_span > 0.0 {
        drained_after_up as f64 / drain_span
    } else {
        0.0
    };
    let during_drain = live_latency(&m.live_samples, p.first_us, p.drained_us);
    let peak_mib = |phase: Phase| kib_to_mib(peak_kib[phase as usize]);
    let peak_all = peak_kib
        .iter()
        .copied()
        .max()
        .map(kib_to_mib)
        .unwrap_or(0.0);

    println!("hookrelay-bench --backlog ({database})");
    println!("  command: {}", crate::cli::command_line());
    println!(
        "  accumulate: {accepted} events for tenant A accepted in {emit_s:.1} s ({:.0}/s; batch {}, {} in flight) while its receiver answered 503 ({} refused attempts)",
        accepted as f64 / emit_s.max(1e-9),
        cli.batch,
        cli.concurrency,
        m.refused
    );
    println!(
        "  receiver up at {:.1} s; first of A's deliveries {:.1} s later (its circuit's cooldown)",
        s(p.up_us),
        s(p.first_us.saturating_sub(p.up_us))
    );
    println!(
        "  drain: {drained_after_up} of A's deliveries in {drain_span:.1} s = {drain_rate:.0}/s{}",
        if m.drained {
            ""
        } else {
            " (INCOMPLETE at the drain timeout)"
        }
    );
    println!(
        "  tenant B ({} events at {}/s), emit→delivery of the events sent:",
        m.live.accepted.len(),
        cli.live_rate
    );
    println!(
        "    while A was down:          {}",
        fmt_latency(&live_latency(&m.live_samples, 0, p.up_us))
    );
    println!(
        "    A up, its circuit open:    {}",
        fmt_latency(&live_latency(&m.live_samples, p.up_us, p.first_us))
    );
    println!(
        "    during A's drain:          {}",
        fmt_latency(&during_drain)
    );
    println!("  server peak RSS (MiB):");
    for phase in [Phase::Setup, ACCUMULATE, WAITING, DRAIN, Phase::Ledger] {
        println!("    {:<26} {:.1}", part_name(phase), peak_mib(phase));
    }
    if let Some(hwm) = hwm_kib {
        println!("    high-water mark (VmHWM)    {:.1}", kib_to_mib(hwm));
    }
    let delivered = m.ledger.delivered.max(1);
    if let Some(cpu) = cpu {
        println!(
            "  server CPU after setup: {:.1} s, {:.1} µs per delivery",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / delivered as f64
        );
    }
    println!("  {}", m.ledger.line());
    let rss_ok = peak_all < 300.0;
    let p95_ok = during_drain.as_ref().is_some_and(|l| l.p95_ms < 1_000.0);
    println!(
        "  targets: peak RSS {peak_all:.1} MiB < 300: {}; B's p95 during the drain < 1 s: {}",
        if rss_ok { "yes" } else { "NO" },
        if p95_ok { "yes" } else { "NO" }
    );

    let mut void = Vec::new();
    if m.ledger.missing > 0 {
        void.push(format!("{} deliveries missing", m.ledger.missing));
    }
    if m.ledger.unexpected > 0 {
        void.push(format!("{} unexpected deliveries", m.ledger.unexpected));
    }
    if m.signatures_failed > 0 {
        void.push(format!("{} signature checks failed", m.signatures_failed));
    }
    if !m.drained {
        void.push("A's backlog did not drain before the timeout".to_string());
    }
    if let Some(status) = exited {
        void.push(format!("the server exited during the run ({status})"));
    }
    if !void.is_empty() {
        println!("  VOID: {}", void.join("; "));
    }
    !void.is_empty()
}
