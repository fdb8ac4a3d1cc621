//! The emitter: `--concurrency` workers post events (one by one or in batches), round-robin
//! over tenants, paced by a drift-free token schedule, honouring 429 Retry-After.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::api::{error_code, Api, ApiError, Topology};
use crate::server::{Phase, PhaseCell};

/// Give up on one request after this many 429 answers in a row.
const MAX_THROTTLED_RETRIES: u32 = 1000;
/// Wait when a 429 carries no usable Retry-After.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Event type the webhooks subscribe to (`bench.*`).
pub const EVENT_TYPE: &str = "bench.tick";

#[derive(Debug, Clone)]
pub struct EmitConfig {
    pub events: u64,
    /// Events per second; 0 = as fast as possible.
    pub rate: f64,
    pub concurrency: u32,
    /// 0 = one event per request; B > 0 = batches of B.
    pub batch: u32,
    pub warmup: Duration,
    /// Every event to this tenant (an index of the topology) instead of round-robin.
    pub tenant: Option<u32>,
    /// Once set, no further request starts (`--backlog`'s open-ended live emitter).
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// An event the server accepted (202 with an id).
#[derive(Debug, Clone)]
pub struct Accepted {
    pub id: Box<str>,
    pub tenant: u32,
    /// Taken just before the request that was accepted was sent.
    pub sent: Instant,
    /// Deliveries the server said it created.
    pub deliveries: u32,
}

/// Counters of the emit phase.
#[derive(Debug, Default, Clone, Serialize)]
pub struct EmitStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    pub accepted: u64,
    /// 429 answers (each was retried after its Retry-After).
    pub throttled_429: u64,
    /// Events not accepted (HTTP error, transport error, refused batch entry).
    pub errors: u64,
    /// Answers marked `duplicate: true` (the bench sends no idempotency key, so none expected;
    /// not added to the ledger's expectations).
    pub duplicate_answers: u64,
    /// Events not accepted, by cause.
    pub error_kinds: BTreeMap<String, u64>,
    /// One message per cause.
    pub error_samples: BTreeMap<String, String>,
}

impl EmitStats {
    fn error(&mut self, kind: String, message: String, events: u64) {
        self.errors += events;
        *self.error_kinds.entry(kind.clone()).or_default() += events;
        self.error_samples.entry(kind).or_insert(message);
    }

    fn merge(&mut self, other: EmitStats) {
        self.requests += other.requests;
        self.accepted += other.accepted;
        self.throttled_429 += other.throttled_429;
        self.errors += other.errors;
        self.duplicate_answers += other.duplicate_answers;
        for (k, v) in other.error_kinds {
            *self.error_kinds.entry(k).or_default() += v;
        }
        for (k, v) in other.error_samples {
            self.error_samples.entry(k).or_insert(v);
        }
    }
}

pub struct EmitOutcome {
    pub accepted: Vec<Accepted>,
    pub stats: EmitStats,
    /// Round-trip of every answered emit request (µs).
    pub api_latency_us: Vec<u64>,
    /// Just before the first request.
    pub start: Instant,
    /// After the last answer.
    pub end: Instant,
}

impl EmitOutcome {
    /// Sum of the `deliveries` of accepted events.
    pub fn expected_deliveries(&self) -> u64 {
        self.accepted.iter().map(|a| a.deliveries as u64).sum()
    }
}

struct Ctx {
    api: Api,
    topology: Arc<Topology>,
    cfg: EmitConfig,
    jobs: u64,
    next: AtomicU64,
    pacer: Option<Arc<Semaphore>>,
}

impl Ctx {
    /// Job → (tenant, first seq, number of events).
    fn job(&self, job: u64) -> (u32, u64, u64) {
        let tenants = self.topology.tenants.len().max(1) as u64;
        let size = (self.cfg.batch as u64).max(1);
        let first = job * size;
        let count = size.min(self.cfg.events - first);
        let tenant = self.cfg.tenant.unwrap_or((job % tenants) as u32);
        (tenant, first, count)
    }

    fn stopped(&self) -> bool {
        self.cfg
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

/// Runs the emit phase to completion; moves `phase` from warm-up to steady on time.
pub async fn emit(
    api: &Api,
    topology: Arc<Topology>,
    cfg: EmitConfig,
    phase: Arc<PhaseCell>,
) -> Result<EmitOutcome> {
    let per_request = (cfg.batch as u64).max(1);
    let jobs = cfg.events.div_ceil(per_request);
    let pacer = (cfg.rate > 0.0).then(|| Arc::new(Semaphore::new(0)));
    let workers = (cfg.concurrency as u64).min(jobs).max(1) as usize;
    let per_worker = (cfg.events as usize / workers) + 16;
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        topology,
        cfg: cfg.clone(),
        jobs,
        next: AtomicU64::new(0),
        pacer: pacer.clone(),
    });

    phase.set(Phase::Warmup);
    let start = Instant::now();
    let phase_task = {
        let phase = phase.clone();
        let warmup = cfg.warmup;
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            phase.advance(Phase::Warmup, Phase::Steady);
        })
    };
    let pacer_task = pacer.map(|sem| tokio::spawn(pace(sem, cfg.rate, cfg.events, start)));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker(ctx.clone(), per_worker));
    }
    let mut accepted = Vec::with_capacity(cfg.events as usize);
    let mut stats = EmitStats::default();
    let mut api_latency_us = Vec::with_capacity(jobs as usize);
    while let Some(joined) = set.join_next().await {
        let out = joined.context("an emit worker panicked")?;
        accepted.extend(out.accepted);
        api_latency_us.extend(out.api_latency_us);
        stats.merge(out.stats);
    }
    let end = Instant::now();
    phase_task.abort();
    if let Some(task) = pacer_task {
        task.abort();
    }
    phase.advance(Phase::Warmup, Phase::Steady);
    Ok(EmitOutcome {
        accepted,
        stats,
        api_latency_us,
        start,
        end,
    })
}

/// Releases tokens (one per event) so that `floor(rate * elapsed) + 1` are out at any time:
/// the schedule is absolute, so late ticks catch up instead of drifting.
async fn pace(sem: Arc<Semaphore>, rate: f64, total: u64, start: Instant) {
    let period = Duration::from_secs_f64((1.0 / rate).clamp(0.001, 0.010));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut released = 0u64;
    while released < total {
        tick.tick().await;
        let due = tokens_due(rate, start.elapsed(), total);
        if due > released {
            sem.add_permits((due - released) as usize);
            released = due;
        }
    }
}

/// Tokens that should have been released `elapsed` after the start at `rate` per second.
pub fn tokens_due(rate: f64, elapsed: Duration, total: u64) -> u64 {
    let due = (rate * elapsed.as_secs_f64()).floor() as u64 + 1;
    due.min(total)
}

struct WorkerOut {
    accepted: Vec<Accepted>,
    stats: EmitStats,
    api_latency_us: Vec<u64>,
}

async fn worker(ctx: Arc<Ctx>, capacity: usize) -> WorkerOut {
    let mut out = WorkerOut {
        accepted: Vec::with_capacity(capacity),
        stats: EmitStats::default(),
        api_latency_us: Vec::with_capacity(capacity),
    };
    loop {
        let job = ctx.next.fetch_add(1, Ordering::Relaxed);
        if job >= ctx.jobs {
            break;
        }
        let (tenant, first, count) = ctx.job(job);
        if let Some(sem) = &ctx.pacer {
            // count <= 1000 (the batch limit), so it fits a u32.
            match sem.acquire_many(count as u32).await {
                Ok(permit) => permit.forget(),
                Err(_) => break,
            }
        }
        if ctx.stopped() {
            break;
        }
        let (path, body) = if ctx.cfg.batch == 0 {
            ("/api/v1/events", Bytes::from(event_json(first)))
        } else {
            (
                "/api/v1/events/batch",
                Bytes::from(batch_json(first, count)),
            )
        };
        send(&ctx, &mut out, tenant, path, body, count).await;
    }
    out
}

fn event_json(seq: u64) -> String {
    format!(r#"{{"type":"{EVENT_TYPE}","data":{{"seq":{seq}}}}}"#)
}

fn batch_json(first: u64, count: u64) -> String {
    let mut body = String::with_capacity(16 + count as usize * 48);
    body.push_str(r#"{"events":["#);
    for seq in first..first + count {
        if seq > first {
            body.push(',');
        }
        body.push_str(&event_json(seq));
    }
    body.push_str("]}");
    body
}

#[derive(Deserialize)]
struct EmitAnswer {
    id: String,
    #[serde(default)]
    deliveries: u32,
    #[serde(default)]
    duplicate: bool,
}

#[derive(Deserialize)]
struct BatchAnswer {
    results: Vec<BatchEntry>,
}

#[derive(Deserialize)]
struct BatchEntry {
    id: Option<String>,
    #[serde(default)]
    deliveries: u32,
    #[serde(default)]
    duplicate: bool,
    error: Option<ApiError>,
}

/// Sends one request (single event or batch), retrying on 429, and records the outcome.
async fn send(ctx: &Ctx, out: &mut WorkerOut, tenant: u32, path: &str, body: Bytes, events: u64) {
    let header = ctx.topology.tenant_header(tenant);
    let mut throttled = 0u32;
    loop {
        let sent = Instant::now();
        out.stats.requests += 1;
        let resp = match ctx.api.post_json(path, header, body.clone()).send().await {
            Ok(resp) => resp,
            Err(err) => {
                out.stats
                    .error(transport_kind(&err), format!("{err:#}"), events);
                return;
            }
        };
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            out.stats.throttled_429 += 1;
            let wait = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
                .unwrap_or(DEFAULT_RETRY_AFTER);
            // Read the body so the connection goes back to the pool.
            let _ = resp.bytes().await;
            throttled += 1;
            if throttled > MAX_THROTTLED_RETRIES {
                out.stats.error(
                    "HTTP 429 (retries exhausted)".to_string(),
                    format!("still 429 after {MAX_THROTTLED_RETRIES} retries"),
                    events,
                );
                return;
            }
            tokio::time::sleep(wait).await;
            continue;
        }
        let bytes = match resp.bytes().await {
            Ok(bytes) => bytes,
            Err(err) => {
                out.stats
                    .error(transport_kind(&err), format!("{err:#}"), events);
                return;
            }
        };
        out.api_latency_us.push(sent.elapsed().as_micros() as u64);
        if !status.is_success() {
            let code = error_code(&bytes).unwrap_or_default();
            out.stats.error(
                format!("HTTP {} {code}", status.as_u16())
                    .trim_end()
                    .to_string(),
                crate::api::describe_error(&bytes),
                events,
            );
            return;
        }
        if ctx.cfg.batch == 0 {
            record_single(out, tenant, sent, &bytes);
        } else {
            record_batch(out, tenant, sent, &bytes, events);
        }
        return;
    }
}

fn record_single(out: &mut WorkerOut, tenant: u32, sent: Instant, bytes: &[u8]) {
    match serde_json::from_slice::<EmitAnswer>(bytes) {
        Ok(answer) if answer.duplicate => out.stats.duplicate_answers += 1,
        Ok(answer) => {
            out.stats.accepted += 1;
            out.accepted.push(Accepted {
                id: answer.id.into(),
                tenant,
                sent,
                deliveries: answer.deliveries,
            });
        }
        Err(err) => out.stats.error(
            "bad 2xx answer".to_string(),
            format!(
                "{err}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ),
            1,
        ),
    }
}

fn record_batch(out: &mut WorkerOut, tenant: u32, sent: Instant, bytes: &[u8], events: u64) {
    let answer = match serde_json::from_slice::<BatchAnswer>(bytes) {
        Ok(answer) => answer,
        Err(err) => {
            out.stats.error(
                "bad 2xx batch answer".to_string(),
                format!(
                    "{err}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ),
                events,
            );
            return;
        }
    };
    let answered = answer.results.len() as u64;
    for entry in answer.results.into_iter().take(events as usize) {
        match (entry.id, entry.error) {
            (Some(_), _) if entry.duplicate => out.stats.duplicate_answers += 1,
            (Some(id), None) => {
                out.stats.accepted += 1;
                out.accepted.push(Accepted {
                    id: id.into(),
                    tenant,
                    sent,
                    deliveries: entry.deliveries,
                });
            }
            (_, Some(err)) => out
                .stats
                .error(format!("batch entry {}", err.code), err.message, 1),
            (None, None) => out.stats.error(
                "batch entry without id".to_string(),
                "a batch result had neither id nor error".to_string(),
                1,
            ),
        }
    }
    if answered < events {
        out.stats.error(
            "batch answer too short".to_string(),
            format!("{answered} results for {events} events"),
            events - answered,
        );
    }
}

fn transport_kind(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_body() || err.is_decode() {
        "body"
    } else {
        "other"
    };
    format!("transport {what}")
}

/// `Retry-After` in seconds (integer or decimal); HTTP dates are not expected from hookrelay.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_schedule_is_absolute() {
        assert_eq!(tokens_due(100.0, Duration::ZERO, 1000), 1);
        assert_eq!(tokens_due(100.0, Duration::from_millis(995), 1000), 100);
        assert_eq!(tokens_due(100.0, Duration::from_secs(1), 1000), 101);
        assert_eq!(tokens_due(100.0, Duration::from_secs(60), 1000), 1000);
        assert_eq!(tokens_due(0.5, Duration::from_secs(3), 10), 2);
    }

    #[test]
    fn parses_retry_after() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("99999"), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn builds_event_bodies() {
        let one: serde_json::Value = serde_json::from_str(&event_json(7)).expect("json");
        assert_eq!(
            one,
            serde_json::json!({"type": "bench.tick", "data": {"seq": 7}})
        );
        let batch: serde_json::Value = serde_json::from_str(&batch_json(10, 3)).expect("json");
        let seqs: Vec<u64> = batch["events"]
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e["data"]["seq"].as_u64().expect("seq"))
            .collect();
        assert_eq!(seqs, [10, 11, 12]);
    }

    #[test]
    fn records_batch_results() {
        let mut out = WorkerOut {
            accepted: Vec::new(),
            stats: EmitStats::default(),
            api_latency_us: Vec::new(),
        };
        let body = br#"{"results":[
            {"id":"evt_a","deliveries":2,"duplicate":false},
            {"error":{"code":"validation_failed","message":"type: bad"}},
            {"id":"evt_b","deliveries":2,"duplicate":true}]}"#;
        record_batch(&mut out, 1, Instant::now(), body, 4);
        assert_eq!(out.accepted.len(), 1);
        assert_eq!(&*out.accepted[0].id, "evt_a");
        assert_eq!(out.accepted[0].tenant, 1);
        assert_eq!(out.stats.accepted, 1);
        assert_eq!(out.stats.duplicate_answers, 1);
        assert_eq!(out.stats.errors, 2);
        assert_eq!(out.stats.error_kinds["batch entry validation_failed"], 1);
        assert_eq!(out.stats.error_kinds["batch answer too short"], 1);
    }
}
