//! Fault injection with the real binary: one API process and three worker processes on one
//! (throwaway) PostgreSQL deliver 10,000 events to a receiver that fails 20 % at random. Midway
//! one worker is SIGKILLed, one is stopped with SIGTERM and started again, and PostgreSQL itself
//! is restarted. At the end every accepted event was delivered at least once, no delivery was
//! ever in flight twice at the same time, and the duplicates are counted and printed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookrelay::auth::keys::generate_api_key;
use http_body_util::{BodyExt, Full};
use rand::Rng;
use serde_json::{json, Value};

use crate::support::pgcluster::PgCluster;
use crate::support::process::ServerProcess;
use crate::support::serve_http;

const EVENTS: usize = 10_000;
const BATCH: usize = 200;
const FAILURE_RATE: f64 = 0.2;
const DEADLINE: Duration = Duration::from_secs(300);

/// Short leases so the killed worker's deliveries come back quickly; retries one second apart,
/// enough of them that 20 % random failures never exhaust one.
const SETTINGS: &[(&str, &str)] = &[
    ("HOOKRELAY_DELIVERY_TIMEOUT_MS", "2000"),
    ("HOOKRELAY_LEASE_GRACE_MS", "1000"),
    ("HOOKRELAY_RETRY_SCHEDULE", "0,1,1,1,1,1,1,1,1,1,1,1,1,1,1"),
    ("HOOKRELAY_WORKER_CONCURRENCY", "32"),
    ("HOOKRELAY_CLAIM_BATCH", "32"),
    ("HOOKRELAY_SHUTDOWN_GRACE", "5s"),
    ("HOOKRELAY_CIRCUIT_FAILURES", "1000"),
];

/// What the receiver saw, per event sequence number.
#[derive(Default)]
struct Ledger {
    /// Requests answered 2xx.
    succeeded: HashMap<u64, u32>,
    /// Requests in flight right now.
    in_flight: HashMap<u64, u32>,
    /// Sequence numbers that were ever in flight twice at once.
    overlaps: HashSet<u64>,
    requests: u64,
}

/// Leaves the in-flight count when the request ends, even when the sender hangs up (a killed
/// worker drops its connection and hyper drops the handler).
struct InFlight {
    ledger: Arc<Mutex<Ledger>>,
    seq: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut l = self.ledger.lock().unwrap();
        if let Some(n) = l.in_flight.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                l.in_flight.remove(&self.seq);
            }
        }
    }
}

async fn start_receiver(ledger: Arc<Mutex<Ledger>>) -> String {
    let addr = serve_http(move |req: hyper::Request<hyper::body::Incoming>| {
        let ledger = ledger.clone();
        async move {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let seq = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["data"]["seq"].as_u64());
            let Some(seq) = seq else {
                return reply(400);
            };
            let guard = {
                let mut l = ledger.lock().unwrap();
                l.requests += 1;
                let n = l.in_flight.entry(seq).or_default();
                *n += 1;
                if *n > 1 {
                    l.overlaps.insert(seq);
                }
                InFlight {
                    ledger: ledger.clone(),
                    seq,
                }
            };
            // Long enough for a second, concurrent attempt of the same delivery to be seen.
            tokio::time::sleep(Duration::from_millis(2)).await;
            let fail = rand::thread_rng().gen_bool(FAILURE_RATE);
            if !fail {
                *ledger.lock().unwrap().succeeded.entry(seq).or_default() += 1;
            }
            drop(guard);
            reply(if fail { 500 } else { 200 })
        }
    })
    .await;
    format!("http://{addr}/faults")
}

fn reply(status: u16) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(b"ok")))
        .expect("a response")
}

/// Emits every event in batches with client event ids, retrying a batch until it is answered
/// `202` (a batch whose answer was lost to the outage is retried; the ids make it idempotent).
async fn emit_all(
    api: (reqwest::Client, String, String),
    accepted: Arc<AtomicU64>,
    retried: Arc<AtomicU64>,
) {
    let (client, base, key) = api;
    for start in (0..EVENTS).step_by(BATCH) {
        let events: Vec<Value> = (start..(start + BATCH).min(EVENTS))
            .map(|seq| json!({"type": "faults.test", "event_id": format!("fi-{seq}"), "data": {"seq": seq}}))
            .collect();
        let body = json!({ "events": events });
        let began = Instant::now();
        loop {
            let answer = client
                .post(format!("{base}/api/v1/events/batch"))
                .bearer_auth(&key)
                .timeout(Duration::from_secs(20))
                .json(&body)
                .send()
                .await;
            match answer {
                Ok(r) if r.status().as_u16() == 202 => {
                    let v: Value = r.json().await.expect("batch answer");
                    let results = v["results"].as_array().expect("results");
                    for r in results {
                        assert!(r["id"].is_string(), "a batch entry was refused: {r}");
                    }
                    accepted.fetch_add(results.len() as u64, Ordering::Relaxed);
                    break;
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    assert_eq!(status, 503, "emit answered {status}: {text}");
                }
                Err(_) => {}
            }
            retried.fetch_add(1, Ordering::Relaxed);
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "a batch was refused for a minute"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn delivered(ledger: &Mutex<Ledger>) -> usize {
    ledger.lock().unwrap().succeeded.len()
}

async fn wait_delivered(ledger: &Mutex<Ledger>, at_least: usize, what: &str) {
    let start = Instant::now();
    while delivered(ledger) < at_least {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: only {} of {at_least} events delivered",
            delivered(ledger)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_stopped_and_database_restarted_lose_nothing() {
    let started = Instant::now();
    let cluster = PgCluster::start();
    let db = cluster.url();
    let dir = tempfile::tempdir().expect("temp dir");
    let key = generate_api_key();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let url = start_receiver(ledger.clone()).await;

    let api = ServerProcess::start("api", "api", &db, &key, dir.path(), SETTINGS).await;
    let mut w1 = ServerProcess::start("w1", "worker", &db, &key, dir.path(), SETTINGS).await;
    let mut w2 = ServerProcess::start("w2", "worker", &db, &key, dir.path(), SETTINGS).await;
    let _w3 = ServerProcess::start("w3", "worker", &db, &key, dir.path(), SETTINGS).await;
    api.webhook(json!({"url": url})).await;

    let accepted = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let emitter = tokio::spawn(emit_all(
        (api.client.clone(), api.base.clone(), key.clone()),
        accepted.clone(),
        retried.clone(),
    ));

    wait_delivered(&ledger, EVENTS / 5, "before the SIGKILL").await;
    w1.kill();
    eprintln!("faults: w1 SIGKILLed at {} delivered", delivered(&ledger));

    wait_delivered(&ledger, 2 * EVENTS / 5, "before the SIGTERM").await;
    let status = w2.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "w2 exits 0 on SIGTERM, got {status}");
    let _w2 = ServerProcess::start("w2-again", "worker", &db, &key, dir.path(), SETTINGS).await;
    eprintln!(
        "faults: w2 stopped (exit 0) and restarted at {} delivered",
        delivered(&ledger)
    );

    wait_delivered(&ledger, 3 * EVENTS / 5, "before the database restart").await;
    cluster.stop();
    let stopped_at = delivered(&ledger);
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start_again();
    eprintln!("faults: PostgreSQL restarted at {stopped_at} delivered");

    emitter.await.expect("the emitter");
    assert_eq!(accepted.load(Ordering::Relaxed), EVENTS as u64);
    wait_delivered(&ledger, EVENTS, "at the end").await;

    let l = ledger.lock().unwrap();
    let missing: Vec<u64> = (0..EVENTS as u64)
        .filter(|s| !l.succeeded.contains_key(s))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    let duplicates: u32 = l.succeeded.values().map(|n| n - 1).sum();
    let duplicated = l.succeeded.values().filter(|n| **n > 1).count();
    eprintln!(
        "faults: {EVENTS} events accepted ({} emit retries), all delivered in {:?}; {} requests \
         (20 % failed at random); {duplicates} duplicate deliveries over {duplicated} events; \
         {} deliveries in flight twice at once",
        retried.load(Ordering::Relaxed),
        started.elapsed(),
        l.requests,
        l.overlaps.len()
    );
    assert!(
        l.overlaps.is_empty(),
        "deliveries attempted by two nodes at the same time: {:?}",
        l.overlaps.iter().take(10).collect::<Vec<_>>()
    );
}
