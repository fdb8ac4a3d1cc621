//! Scale-out on PostgreSQL: one `--role api` process and two `--role worker` processes share a
//! store. Leases must keep them apart: no delivery is ever attempted by both at once, none is
//! attempted twice, and both take a share of the work.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use hookrelay::auth::keys::generate_api_key;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::support::process::{prometheus_samples, ServerProcess};
use crate::support::server::fresh_database_url;
use crate::support::Backend;

const EVENTS: usize = 500;
const EMITTERS: usize = 5;
const REPLY_DELAY: Duration = Duration::from_millis(40);
const DEADLINE: Duration = Duration::from_secs(60);

/// Few slots per worker and small claims, so that neither worker can swallow the whole queue
/// and their claims interleave; a short lease, so a lease bug would show within the test.
const SETTINGS: &[(&str, &str)] = &[
    ("HOOKRELAY_WORKER_CONCURRENCY", "16"),
    ("HOOKRELAY_CLAIM_BATCH", "8"),
    ("HOOKRELAY_DELIVERY_TIMEOUT_MS", "5000"),
    ("HOOKRELAY_LEASE_GRACE_MS", "1000"),
    ("HOOKRELAY_RETRY_SCHEDULE", "1,1,1"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_attempt_the_same_delivery_at_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = fresh_database_url(Backend::Postgres, dir.path()).await;
    let admin_key = generate_api_key();
    let rx = ConcurrencyReceiver::start(REPLY_DELAY).await;

    // The api process first: it applies the schema and registers the admin key.
    let api = ServerProcess::start("api", "api", &db_url, &admin_key, dir.path(), SETTINGS).await;
    let (w1, w2) = tokio::join!(
        ServerProcess::start(
            "worker-1",
            "worker",
            &db_url,
            &admin_key,
            dir.path(),
            SETTINGS
        ),
        ServerProcess::start(
            "worker-2",
            "worker",
            &db_url,
            &admin_key,
            dir.path(),
            SETTINGS
        ),
    );
    let workers = [&w1, &w2];
    // Workers serve health and metrics only.
    for w in workers {
        let (status, _) = w.get("/api/v1/webhooks").await;
        assert_eq!(status, 404, "{}: a worker does not serve the API", w.name);
        w.get_text("/metrics").await;
    }

    api.webhook(json!({"url": rx.url("/multi")})).await;

    // Emit through the api process only.
    let answers: Vec<(u16, serde_json::Value)> = futures::stream::iter(0..EVENTS)
        .map(|seq| {
            let api = &api;
            async move {
                api.post(
                    "/api/v1/events",
                    json!({"type": "workers.test", "data": {"seq": seq}}),
                )
                .await
            }
        })
        .buffer_unordered(EMITTERS)
        .collect()
        .await;
    let mut event_ids = HashSet::new();
    for (status, v) in answers {
        assert_eq!(status, 202, "emit: {v}");
        assert_eq!(v["deliveries"], 1, "emit: {v}");
        event_ids.insert(v["id"].as_str().expect("event id").to_owned());
    }
    assert_eq!(event_ids.len(), EVENTS);
    let emitted_in = started.elapsed();

    // Every delivery reaches the receiver.
    let wait_start = Instant::now();
    while rx.distinct() < EVENTS {
        assert!(
            wait_start.elapsed() < DEADLINE,
            "only {} of {EVENTS} deliveries arrived within {DEADLINE:?}",
            rx.distinct()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The store agrees: EVENTS deliveries, all succeeded (recording follows the reply).
    let deliveries = loop {
        let all = list_deliveries(&api).await;
        if all.len() == EVENTS && all.values().all(|s| s == "succeeded") {
            break all;
        }
        assert!(
            wait_start.elapsed() < DEADLINE,
            "deliveries not all succeeded: {} listed, {} succeeded",
            all.len(),
            all.values().filter(|s| *s == "succeeded").count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Each worker process counts the attempts it made; wait until both counts add up.
    let attempts = |text: &str| prometheus_samples(text, "hookrelay_attempts_total");
    let per_worker = loop {
        let mut per_worker = Vec::new();
        for w in workers {
            per_worker.push(attempts(&w.get_text("/metrics").await));
        }
        let total: f64 = per_worker.iter().map(|(t, _)| t).sum();
        if total >= EVENTS as f64 {
            break per_worker;
        }
        assert!(
            wait_start.elapsed() < DEADLINE,
            "the workers' metrics count only {total} attempts: {per_worker:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (api_attempts, _) = attempts(&api.get_text("/metrics").await);

    let tally = rx.tally();
    eprintln!(
        "workers: emitted {EVENTS} in {emitted_in:?}; attempts per worker {:?}; peak {} requests in flight at the receiver; total {:?}",
        per_worker.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        tally.peak_in_flight,
        started.elapsed()
    );

    // No delivery was ever in flight twice.
    assert!(
        tally.overlaps.is_empty(),
        "deliveries attempted concurrently by two workers: {:?}",
        tally.overlaps
    );
    // Each delivery was sent exactly once, as attempt 1, and they are exactly the store's.
    let twice: Vec<_> = tally.received.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "deliveries received more than once: {twice:?}"
    );
    assert!(
        tally.not_first_attempt.is_empty(),
        "retries happened although every reply was 200: {:?}",
        tally.not_first_attempt
    );
    let received: HashSet<&String> = tally.received.keys().collect();
    let stored: HashSet<&String> = deliveries.keys().collect();
    assert_eq!(
        received, stored,
        "webhook-id headers vs the store's deliveries"
    );
    // Both workers did some of the work, and together exactly one attempt per delivery.
    for ((total, samples), w) in per_worker.iter().zip(workers) {
        assert!(
            *total > 0.0,
            "{} made no attempts: {samples:?}\n{}",
            w.name,
            w.log_tail(20)
        );
        for (key, v) in samples {
            assert!(
                key.contains("outcome=\"success\"") || *v == 0.0,
                "{}: {key} = {v}",
                w.name
            );
        }
    }
    let total: f64 = per_worker.iter().map(|(t, _)| t).sum();
    assert_eq!(total, EVENTS as f64, "attempts across both workers");
    assert_eq!(api_attempts, 0.0, "the api process made delivery attempts");
}

/// The receiver itself: two overlapping requests with one `webhook-id` are noticed, sequential
/// ones are not (otherwise the test above could pass vacuously).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_notices_overlapping_requests() {
    let rx = ConcurrencyReceiver::start(Duration::from_millis(100)).await;
    let client = reqwest::Client::new();
    let send = |id: &'static str| {
        client
            .post(rx.url("/"))
            .header("webhook-id", id)
            .header("x-webhook-attempt", "1")
            .body("{}")
            .send()
    };
    let (a, b) = tokio::join!(send("dlv_same"), send("dlv_same"));
    assert_eq!(a.unwrap().status(), 200);
    assert_eq!(b.unwrap().status(), 200);
    send("dlv_other").await.unwrap();
    send("dlv_other").await.unwrap();
    let tally = rx.tally();
    assert_eq!(tally.overlaps, vec!["dlv_same".to_owned()]);
    assert_eq!(tally.received["dlv_same"], 2);
    assert_eq!(tally.received["dlv_other"], 2);
    assert_eq!(tally.in_flight_total, 0);
}

/// Every delivery of the default tenant: id → status.
async fn list_deliveries(api: &ServerProcess) -> HashMap<String, String> {
    let mut all = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/deliveries?limit=1000&cursor={c}"),
            None => "/api/v1/deliveries?limit=1000".to_owned(),
        };
        let (status, page) = api.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for d in page["data"].as_array().expect("data") {
            all.insert(
                d["id"].as_str().expect("id").to_owned(),
                d["status"].as_str().expect("status").to_owned(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

/// What the receiver saw, per `webhook-id` (the delivery id).
#[derive(Clone, Default, Debug)]
struct Tally {
    in_flight: HashMap<String, u32>,
    received: HashMap<String, u32>,
    /// A delivery id that arrived while a request with the same id was still unanswered.
    overlaps: Vec<String>,
    not_first_attempt: Vec<(String, String)>,
    in_flight_total: usize,
    peak_in_flight: usize,
}

/// A receiver on 127.0.0.1:0 that answers `200` after a delay and tracks, per delivery id, how
/// many requests are in flight. A request counts as in flight from its arrival until its reply
/// has been handed to the connection (or the connection is dropped).
#[derive(Clone)]
struct ConcurrencyReceiver {
    addr: SocketAddr,
    tally: Arc<Mutex<Tally>>,
}

impl ConcurrencyReceiver {
    async fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let tally = Arc::new(Mutex::new(Tally::default()));
        let shared = tally.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let tally = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let tally = tally.clone();
                        async move { Ok::<_, Infallible>(handle(tally, delay, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, tally }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn distinct(&self) -> usize {
        self.tally.lock().unwrap().received.len()
    }

    fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }
}

async fn handle(
    tally: Arc<Mutex<Tally>>,
    delay: Duration,
    req: Request<Incoming>,
) -> Response<TrackedBody> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("<none>")
            .to_owned()
    };
    let id = header("webhook-id");
    let attempt = header("x-webhook-attempt");
    let guard = {
        let mut t = tally.lock().unwrap();
        let now = {
            let n = t.in_flight.entry(id.clone()).or_default();
            *n += 1;
            *n
        };
        if now > 1 {
            t.overlaps.push(id.clone());
        }
        *t.received.entry(id.clone()).or_default() += 1;
        if attempt != "1" {
            t.not_first_attempt.push((id.clone(), attempt));
        }
        t.in_flight_total += 1;
        t.peak_in_flight = t.peak_in_flight.max(t.in_flight_total);
        InFlight {
            tally: tally.clone(),
            id,
        }
    };
    let _ = req.into_body().collect().await;
    tokio::time::sleep(delay).await;
    Response::new(TrackedBody {
        inner: Full::new(Bytes::from_static(b"ok")),
        _in_flight: guard,
    })
}

/// Marks one request in flight until dropped.
struct InFlight {
    tally: Arc<Mutex<Tally>>,
    id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut t = self.tally.lock().unwrap();
        if let Some(n) = t.in_flight.get_mut(&self.id) {
            *n -= 1;
        }
        t.in_flight_total -= 1;
    }
}

/// The reply body; it carries the in-flight mark, so the request stops counting only once
/// hyper has written the reply and dropped the body.
struct TrackedBody {
    inner: Full<Bytes>,
    _in_flight: InFlight,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
