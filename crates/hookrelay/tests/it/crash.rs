//! Crash safety: the real binary is SIGKILLed while events are being emitted and delivered; after
//! a restart on the same store, every event that was answered `202` is delivered (at least once)
//! and ends `succeeded`. Both stores.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hookrelay::auth::keys::generate_api_key;
use serde_json::json;

use crate::support::process::{prometheus_samples, ServerProcess};
use crate::support::server::fresh_database_url;
use crate::support::*;

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_loses_nothing_accepted() {
        super::sigkill_loses_nothing_accepted(crate::support::Backend::Sqlite).await
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_loses_nothing_accepted() {
        super::sigkill_loses_nothing_accepted(crate::support::Backend::Postgres).await
    }
}

const EVENTS: usize = 400;
const EMITTERS: usize = 4;
/// The kill lands once this many emits were accepted (emission is then still going) and the
/// receiver has seen at least `KILL_AFTER_RECEIVED` requests (deliveries are in flight: each
/// reply is held back by `REPLY_DELAY`). Few worker slots keep delivery slower than emission,
/// so a backlog of accepted, undelivered events is stored when the process dies.
const KILL_AFTER_ACCEPTED: usize = 150;
const KILL_AFTER_RECEIVED: usize = 10;
const REPLY_DELAY: Duration = Duration::from_millis(40);
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// Short lease (2 s timeout + 0.5 s grace) so the dead process's leases come back quickly; fast
/// retries so nothing waits on the schedule.
const SETTINGS: &[(&str, &str)] = &[
    ("HOOKRELAY_DELIVERY_TIMEOUT_MS", "2000"),
    ("HOOKRELAY_LEASE_GRACE_MS", "500"),
    ("HOOKRELAY_RETRY_SCHEDULE", "0,1,1,1,1"),
    ("HOOKRELAY_WORKER_CONCURRENCY", "8"),
    ("HOOKRELAY_CLAIM_BATCH", "4"),
];

#[derive(Default)]
struct Emitted {
    accepted: Vec<String>,
    /// Transport errors: the server died before answering. Not accepted, not counted.
    lost: usize,
    /// Any HTTP answer other than 202 (there should be none).
    unexpected: Vec<(u16, serde_json::Value)>,
}

async fn sigkill_loses_nothing_accepted(backend: Backend) {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(backend, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).delay(REPLY_DELAY));

    let mut first =
        ServerProcess::start("first", "all", &db_url, &admin_key, dir.path(), SETTINGS).await;
    first.webhook(json!({"url": rx.url("/crash")})).await;

    // Emit from a few tasks at once, recording every id answered 202.
    let emitted = Arc::new(Mutex::new(Emitted::default()));
    let mut emitters = tokio::task::JoinSet::new();
    for task in 0..EMITTERS {
        let (client, base, key) = (first.client.clone(), first.base.clone(), admin_key.clone());
        let emitted = emitted.clone();
        emitters.spawn(async move {
            for seq in (task..EVENTS).step_by(EMITTERS) {
                let sent = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .json(&json!({"type": "crash.test", "data": {"seq": seq}}))
                    .send()
                    .await;
                let answer = match sent {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        r.json::<serde_json::Value>().await.map(|v| (status, v))
                    }
                    Err(e) => Err(e),
                };
                {
                    let mut e = emitted.lock().unwrap();
                    match answer {
                        Ok((202, v)) => e.accepted.push(v["id"].as_str().expect("event id").into()),
                        Ok((status, v)) => e.unexpected.push((status, v)),
                        Err(_) => e.lost += 1,
                    }
                }
            }
        });
    }

    // Kill mid-emission, with deliveries in flight and a backlog. Poll tightly: requests seen
    // by the receiver are still being held (unanswered) when the kill lands.
    let wait_start = Instant::now();
    while emitted.lock().unwrap().accepted.len() < KILL_AFTER_ACCEPTED
        || rx.count() < KILL_AFTER_RECEIVED
    {
        assert!(
            wait_start.elapsed() < Duration::from_secs(30),
            "no kill point: {} emits accepted, {} requests received",
            emitted.lock().unwrap().accepted.len(),
            rx.count()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Fresh deliveries went from the ingest commit straight to the worker (leased, not
    // claimed): the crash must lose none of those either.
    let metrics = first.get_text("/metrics").await;
    let (handed_off, _) = prometheus_samples(&metrics, "hookrelay_deliveries_handed_off_total");
    assert!(
        handed_off > 0.0,
        "no delivery was handed off before the kill"
    );
    let pid = first.pid();
    first.kill();
    let killed_at = Instant::now();
    let received_at_kill = rx.count();
    let accepted_at_kill = emitted.lock().unwrap().accepted.len();
    eprintln!("SIGKILLed pid {pid}: receiver had {received_at_kill} requests, {accepted_at_kill} emits accepted");
    while let Some(r) = emitters.join_next().await {
        r.expect("emitter task");
    }
    let Emitted {
        accepted,
        lost,
        unexpected,
    } = std::mem::take(&mut *emitted.lock().unwrap());
    assert!(
        unexpected.is_empty(),
        "emits answered something other than 202: {unexpected:?}"
    );
    assert!(
        lost > 0,
        "the kill landed after emission had finished ({} accepted): not a mid-flight crash",
        accepted.len()
    );
    assert_eq!(accepted.len() + lost, EVENTS);
    let accepted_set: HashSet<String> = accepted.iter().cloned().collect();
    assert_eq!(accepted_set.len(), accepted.len(), "event ids are unique");

    // Restart: same binary, same store, a new port.
    let second = ServerProcess::start(
        "restarted",
        "all",
        &db_url,
        &admin_key,
        dir.path(),
        SETTINGS,
    )
    .await;
    let restarted_at = Instant::now();

    // Every accepted event reaches the receiver at least once.
    let mut missing: Vec<String>;
    loop {
        let seen: HashSet<String> = rx
            .requests()
            .iter()
            .filter_map(|r| r.json()["eventId"].as_str().map(String::from))
            .collect();
        missing = accepted_set.difference(&seen).cloned().collect();
        if missing.is_empty() {
            break;
        }
        if restarted_at.elapsed() > RECOVERY_DEADLINE {
            missing.sort();
            panic!(
                "{} of {} accepted events were never delivered within {RECOVERY_DEADLINE:?} of the restart, e.g. {:?}",
                missing.len(),
                accepted.len(),
                &missing[..missing.len().min(5)]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered_in = restarted_at.elapsed();

    // The API agrees: every accepted event exists and its one delivery ends `succeeded`.
    let mut unsettled: Vec<String> = accepted.clone();
    let mut last_seen: HashMap<String, String> = HashMap::new();
    while !unsettled.is_empty() {
        let answers: Vec<(String, u16, serde_json::Value)> =
            futures::stream::iter(unsettled.iter().cloned())
                .map(|id| {
                    let second = &second;
                    async move {
                        let (status, v) = second.get(&format!("/api/v1/events/{id}")).await;
                        (id, status, v)
                    }
                })
                .buffer_unordered(8)
                .collect()
                .await;
        unsettled.clear();
        for (id, status, v) in answers {
            assert_eq!(
                status, 200,
                "accepted event {id} is missing after the crash: {v}"
            );
            let deliveries = v["deliveries"].as_array().expect("deliveries");
            assert_eq!(deliveries.len(), 1, "event {id}: {v}");
            let state = deliveries[0]["status"].as_str().unwrap_or("?").to_owned();
            match state.as_str() {
                "succeeded" => {}
                "pending" => unsettled.push(id.clone()),
                other => panic!("event {id}: its delivery ended {other}: {v}"),
            }
            last_seen.insert(id, state);
        }
        if !unsettled.is_empty() {
            assert!(
                restarted_at.elapsed() < RECOVERY_DEADLINE,
                "{} deliveries still pending, e.g. {:?}",
                unsettled.len(),
                &unsettled[..unsettled.len().min(5)]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(last_seen.values().all(|s| s == "succeeded"));

    // Report: at-least-once allows duplicates; count them.
    let requests = rx.requests();
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for r in &requests {
        if let Some(id) = r.json()["eventId"].as_str() {
            *per_event.entry(id.to_owned()).or_default() += 1;
        }
    }
    let duplicates: usize = per_event.values().map(|n| n - 1).sum();
    let events_duplicated = per_event.values().filter(|n| **n > 1).count();
    let unacknowledged = per_event
        .keys()
        .filter(|id| !accepted_set.contains(*id))
        .count();
    let before_kill: HashSet<String> = requests
        .iter()
        .filter(|r| r.at < killed_at)
        .filter_map(|r| r.json()["eventId"].as_str().map(String::from))
        .collect();
    let backlog = accepted_set.difference(&before_kill).count();
    let after_restart = requests.iter().filter(|r| r.at >= killed_at).count();
    eprintln!(
        "crash/{backend:?}: {} accepted, {lost} emits lost to the kill; at the kill the receiver had \
         {received_at_kill} requests and {backlog} accepted events were undelivered; {after_restart} \
         requests after the restart; {duplicates} duplicate requests over {events_duplicated} events; \
         {unacknowledged} delivered events whose 202 never arrived; all delivered {recovered_in:?} \
         after the restart; total {:?}",
        accepted.len(),
        started.elapsed()
    );
    // The crash interrupted real work: accepted events waited undelivered in the store, and the
    // restarted server delivered them.
    assert!(
        backlog > 0,
        "every accepted event had been delivered before the kill: the crash interrupted nothing"
    );
    assert!(after_restart >= backlog);
    drop(second);
}
