//! Figures and their presentation: percentiles, per-phase throughput and latency, and the
//! report printed as text (Markdown-friendly, for docs/perf.md) and optionally as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::ledger::{Ledger, Sample};
use crate::load::EmitStats;
use crate::receiver::ReceiverCounts;

/// Nearest-rank percentile of an ascending slice; `p` in (0, 100].
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Percentiles of values in microseconds (sorts them in place).
pub fn summarize_us(values: &mut [u64]) -> Option<Percentiles> {
    values.sort_unstable();
    let ms = |p: f64| percentile(values, p).map_or(0.0, |us| us as f64 / 1000.0);
    let max = *values.last()?;
    Some(Percentiles {
        count: values.len() as u64,
        p50_ms: ms(50.0),
        p95_ms: ms(95.0),
        p99_ms: ms(99.0),
        max_ms: max as f64 / 1000.0,
    })
}

/// Figures of one phase. Accepted/s counts events whose emit request was sent in the window;
/// deliveries/s counts first arrivals in the window; latency is over the deliveries of events
/// sent in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseStats {
    pub name: &'static str,
    pub duration_s: f64,
    pub accepted: u64,
    pub accepted_per_s: f64,
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    pub latency: Option<Percentiles>,
}

/// Phase boundaries as offsets (µs) from the emit start.
#[derive(Debug, Clone, Copy)]
pub struct Boundaries {
    pub warmup_end_us: u64,
    pub emit_end_us: u64,
    pub drain_end_us: u64,
}

/// Warm-up, steady and drain figures.
pub fn phase_stats(sent_us: &[u64], samples: &[Sample], b: Boundaries) -> Vec<PhaseStats> {
    let warmup_end = b.warmup_end_us.min(b.emit_end_us);
    let drain_end = b.drain_end_us.max(b.emit_end_us);
    // Warm-up is [start, end), steady [start, end] and drain (start, end], so that every
    // instant of the run belongs to exactly one phase.
    let windows = [
        ("warm-up", 0, warmup_end),
        ("steady", warmup_end, b.emit_end_us),
        ("drain", b.emit_end_us, drain_end),
    ];
    windows
        .iter()
        .map(|&(name, start, end)| {
            let inside = |t: u64| match name {
                "warm-up" => t >= start && t < end,
                "steady" => t >= start && t <= end,
                _ => t > start && t <= end,
            };
            let duration_s = (end - start) as f64 / 1e6;
            let rate = |n: u64| {
                if duration_s > 0.0 {
                    n as f64 / duration_s
                } else {
                    0.0
                }
            };
            let accepted = sent_us.iter().filter(|&&t| inside(t)).count() as u64;
            let deliveries = samples.iter().filter(|s| inside(s.arrived_us)).count() as u64;
            let mut latencies: Vec<u64> = samples
                .iter()
                .filter(|s| inside(s.sent_us))
                .map(Sample::latency_us)
                .collect();
            PhaseStats {
                name,
                duration_s,
                accepted,
                accepted_per_s: rate(accepted),
                deliveries,
                deliveries_per_s: rate(deliveries),
                latency: summarize_us(&mut latencies),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// The webhooks' kind: `http` (the local receiver) or a broker (`nats`, `rabbitmq`, `redis`).
    pub kind: &'static str,
    pub tenants: u32,
    pub webhooks_per_tenant: u32,
    pub events: u64,
    pub rate: f64,
    pub concurrency: u32,
    pub batch: u32,
    pub warmup_secs: f64,
    pub drain_timeout_secs: u64,
    pub receiver_delay_ms: u64,
    pub verify_all: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmitFigures {
    pub duration_s: f64,
    pub accepted: u64,
    pub accepted_per_s: f64,
    pub api_latency: Option<Percentiles>,
    pub stats: EmitStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryFigures {
    /// Distinct expected pairs that arrived.
    pub delivered: u64,
    /// Seconds from the first emit to the last first arrival.
    pub span_s: f64,
    pub deliveries_per_s: f64,
    pub latency: Option<Percentiles>,
    pub receiver: ReceiverCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrainFigures {
    pub duration_s: f64,
    /// All expected deliveries arrived before the timeout.
    pub complete: bool,
    pub timeout_s: u64,
}

/// CPU time used from the end of setup to the end of the drain. On a shared machine this is
/// steadier than throughput: it is what an event costs, whatever else the cores were doing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuFigures {
    pub server_s: Option<f64>,
    /// Server CPU per accepted event, in microseconds.
    pub server_us_per_event: Option<f64>,
    /// Server CPU per delivery that arrived, in microseconds (the figure to compare across
    /// fan-outs: an event to 100 webhooks is 100 deliveries).
    pub server_us_per_delivery: Option<f64>,
    /// The bench's own (emitter and receiver).
    pub bench_s: Option<f64>,
}

type CpuReading = (Option<Duration>, Option<Duration>);

impl CpuFigures {
    /// From `(server, bench)` readings before and after the measured run (setup excluded).
    pub fn between(
        before: CpuReading,
        after: CpuReading,
        accepted: u64,
        delivered: u64,
    ) -> CpuFigures {
        let spent =
            |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?).as_secs_f64());
        let server_s = spent(before.0, after.0);
        CpuFigures {
            server_s,
            server_us_per_event: server_s
                .filter(|_| accepted > 0)
                .map(|s| s * 1e6 / accepted as f64),
            server_us_per_delivery: server_s
                .filter(|_| delivered > 0)
                .map(|s| s * 1e6 / delivered as f64),
            bench_s: spent(before.1, after.1),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryFigures {
    /// Server VmHWM just before it was stopped.
    pub server_hwm_mib: Option<f64>,
    /// Peak of the 500 ms VmRSS samples, per phase (phases without a sample are left out).
    pub server_peak_rss: Vec<PhaseMemory>,
    pub bench_hwm_mib: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseMemory {
    pub phase: &'static str,
    pub peak_rss_mib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub command: String,
    pub server_bin: String,
    pub database_kind: &'static str,
    pub database: String,
    pub cpus: usize,
    /// HOOKRELAY_* variables inherited by the server besides the ones the bench sets.
    pub inherited_env: Vec<String>,
    pub config: RunConfig,
    pub server_startup_ms: f64,
    pub emit: EmitFigures,
    pub deliveries: DeliveryFigures,
    pub phases: Vec<PhaseStats>,
    pub drain: DrainFigures,
    pub cpu: CpuFigures,
    pub memory: MemoryFigures,
    pub ledger: Ledger,
    pub void: bool,
    pub void_reasons: Vec<String>,
    /// Anything odd worth a look even when the run is valid.
    pub notes: Vec<String>,
}

pub fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn fmt_latency(p: &Option<Percentiles>) -> [String; 4] {
    match p {
        Some(p) => [p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms].map(|v| format!("{v:.1}")),
        None => std::array::from_fn(|_| "-".to_string()),
    }
}

/// The human-readable report.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let c = &r.config;
    let _ = writeln!(
        s,
        "## hookrelay-bench: {} ({})",
        r.scenario, r.database_kind
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "command:  {}", r.command);
    let _ = writeln!(
        s,
        "server:   {} (ready in {:.0} ms)",
        r.server_bin, r.server_startup_ms
    );
    let _ = writeln!(s, "database: {}", r.database);
    let _ = writeln!(s, "host:     {} CPUs", r.cpus);
    if !r.inherited_env.is_empty() {
        let _ = writeln!(s, "env:      {}", r.inherited_env.join(" "));
    }
    let rate = if c.rate > 0.0 {
        format!("{} ev/s", c.rate)
    } else {
        "max".to_string()
    };
    let mode = if c.batch > 0 {
        format!("batch of {}", c.batch)
    } else {
        "single".to_string()
    };
    let _ = writeln!(
        s,
        "load:     kind={} tenants={} webhooks/tenant={} events={} rate={} concurrency={} emit={} \
         receiver-delay={}ms verify={}",
        c.kind,
        c.tenants,
        c.webhooks_per_tenant,
        c.events,
        rate,
        c.concurrency,
        mode,
        c.receiver_delay_ms,
        if c.verify_all { "all" } else { "every 100th" }
    );
    let _ = writeln!(s);
    let e = &r.emit;
    let _ = writeln!(
        s,
        "emit:       {} accepted in {:.3} s = {:.1} events/s; requests={} 429s={} errors={}",
        e.accepted,
        e.duration_s,
        e.accepted_per_s,
        e.stats.requests,
        e.stats.throttled_429,
        e.stats.errors
    );
    if let Some(p) = &e.api_latency {
        let _ = writeln!(
            s,
            "emit API:   round-trip p50={:.1} p95={:.1} p99={:.1} max={:.1} ms",
            p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms
        );
    }
    for (kind, n) in &e.stats.error_kinds {
        let sample = e.stats.error_samples.get(kind).map_or("", String::as_str);
        let _ = writeln!(s, "  error {kind}: {n} (e.g. {sample})");
    }
    let d = &r.deliveries;
    let _ = writeln!(
        s,
        "deliveries: {} in {:.3} s (first emit to last arrival) = {:.1} deliveries/s",
        d.delivered, d.span_s, d.deliveries_per_s
    );
    let [p50, p95, p99, max] = fmt_latency(&d.latency);
    let _ = writeln!(
        s,
        "latency:    p50={p50} p95={p95} p99={p99} max={max} ms (emit sent to first arrival)"
    );
    let rc = &d.receiver;
    let _ = writeln!(
        s,
        "receiver:   requests={} duplicates={} retried-attempts={} malformed={} signatures checked={} failed={}",
        rc.requests, rc.duplicates, rc.retried_attempts, rc.malformed, rc.signatures_checked, rc.signatures_failed
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| phase | duration s | accepted | accepted/s | deliveries | deliveries/s | p50 ms | p95 ms | p99 ms | max ms |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &r.phases {
        let [p50, p95, p99, max] = fmt_latency(&p.latency);
        let _ = writeln!(
            s,
            "| {} | {:.3} | {} | {:.1} | {} | {:.1} | {p50} | {p95} | {p99} | {max} |",
            p.name, p.duration_s, p.accepted, p.accepted_per_s, p.deliveries, p.deliveries_per_s
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "drain:      {:.3} s ({})",
        r.drain.duration_s,
        if r.drain.complete {
            "all expected deliveries arrived".to_string()
        } else {
            format!("incomplete: stopped at the {} s timeout", r.drain.timeout_s)
        }
    );
    let secs = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.2} s"));
    let _ = writeln!(
        s,
        "cpu:        server {} after setup ({} per accepted event, {} per delivery); bench (emitter + receiver) {}",
        secs(r.cpu.server_s),
        r.cpu
            .server_us_per_event
            .map_or("?".to_string(), |v| format!("{v:.0} µs")),
        r.cpu
            .server_us_per_delivery
            .map_or("?".to_string(), |v| format!("{v:.0} µs")),
        secs(r.cpu.bench_s)
    );
    let m = &r.memory;
    let mib = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1} MiB"));
    let rss: Vec<String> = m
        .server_peak_rss
        .iter()
        .map(|p| format!("{}={:.1}", p.phase, p.peak_rss_mib))
        .collect();
    let _ =
        writeln!(
        s,
        "memory:     server VmHWM={}; server peak RSS (MiB, 500 ms samples): {}; bench VmHWM={}",
        mib(m.server_hwm_mib),
        if rss.is_empty() { "-".to_string() } else { rss.join(" ") },
        mib(m.bench_hwm_mib)
    );
    for note in &r.notes {
        let _ = writeln!(s, "note: {note}");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{}", r.ledger.line());
    if r.void {
        let _ = writeln!(s, "RUN VOID: {}", r.void_reasons.join("; "));
    } else {
        let _ = writeln!(s, "run valid");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.1), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2], 50.0), Some(1));
        assert_eq!(percentile(&[1, 2], 51.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summarizes_unsorted_microseconds() {
        let mut v = vec![3_000, 1_000, 2_000, 10_000];
        let p = summarize_us(&mut v).expect("non-empty");
        assert_eq!(p.count, 4);
        assert_eq!(p.p50_ms, 2.0);
        assert_eq!(p.p99_ms, 10.0);
        assert_eq!(p.max_ms, 10.0);
        assert!(summarize_us(&mut []).is_none());
    }

    #[test]
    fn splits_figures_into_phases() {
        let s = |sent_ms: u64, arrived_ms: u64| Sample {
            sent_us: sent_ms * 1000,
            arrived_us: arrived_ms * 1000,
        };
        // Warm-up 0-1 s, steady 1-3 s, drain 3-4 s.
        let sent: Vec<u64> = [0, 500, 1000, 2000, 3000].map(|ms| ms * 1000).to_vec();
        let samples = vec![
            s(0, 10),
            s(500, 1500),
            s(1000, 1020),
            s(2000, 2040),
            s(3000, 3900),
        ];
        let phases = phase_stats(
            &sent,
            &samples,
            Boundaries {
                warmup_end_us: 1_000_000,
                emit_end_us: 3_000_000,
                drain_end_us: 4_000_000,
            },
        );
        let names: Vec<&str> = phases.iter().map(|p| p.name).collect();
        assert_eq!(names, ["warm-up", "steady", "drain"]);
        let (w, st, d) = (&phases[0], &phases[1], &phases[2]);
        assert_eq!((w.accepted, w.deliveries), (2, 1));
        assert_eq!(w.accepted_per_s, 2.0);
        assert_eq!(w.latency.expect("latency").max_ms, 1000.0);
        assert_eq!((st.accepted, st.deliveries), (3, 3));
        assert_eq!(st.duration_s, 2.0);
        assert_eq!(st.latency.expect("latency").count, 3);
        assert_eq!(st.latency.expect("latency").max_ms, 900.0);
        assert_eq!((d.accepted, d.deliveries), (0, 1));
        assert!(d.latency.is_none());
        assert_eq!(d.deliveries_per_s, 1.0);
    }

    #[test]
    fn short_runs_have_an_empty_steady_phase() {
        let phases = phase_stats(
            &[0],
            &[Sample {
                sent_us: 0,
                arrived_us: 5,
            }],
            Boundaries {
                warmup_end_us: 2_000_000,
                emit_end_us: 1_000,
                drain_end_us: 1_000,
            },
        );
        assert_eq!(phases[0].accepted, 1);
        assert_eq!(phases[1].duration_s, 0.0);
        assert_eq!(phases[1].accepted_per_s, 0.0);
        assert_eq!(phases[2].deliveries, 0);
    }
}
