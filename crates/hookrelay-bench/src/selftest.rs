//! Test-only: a throwaway stand-in for the hookrelay API (a few routes, in memory) that drives
//! the real setup, emitter, receiver and ledger end to end. It is not a mock server product.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::*;
use crate::receiver::sign;

const ADMIN_KEY: &str = "hr_selftestselftestselftestselftestselftest1";

/// How the fake misbehaves on the event whose `data.seq` is `seq`.
#[derive(Clone, Copy)]
struct Withhold {
    seq: u64,
    /// Status the fake reports for the withheld deliveries.
    status: &'static str,
}

struct FakeWebhook {
    id: String,
    tenant: Option<String>,
    url: String,
    key: Vec<u8>,
}

/// Event id → (tenant header, [(webhook id, delivery status)]).
type FakeEvents = HashMap<String, (Option<String>, Vec<(String, String)>)>;

struct Fake {
    webhooks: Mutex<Vec<FakeWebhook>>,
    events: Mutex<FakeEvents>,
    ids: AtomicU64,
    throttle_next: AtomicBool,
    withhold: Option<Withhold>,
    duplicate_seq: u64,
    client: reqwest::Client,
}

fn json_response(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp
}

impl Fake {
    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}_{:06}", self.ids.fetch_add(1, Ordering::Relaxed))
    }

    /// Creates the event, starts its deliveries, returns (id, deliveries).
    fn accept(self: &Arc<Self>, tenant: Option<String>, event: &Value) -> (String, usize) {
        let id = self.next_id("evt");
        let seq = event["data"]["seq"].as_u64().unwrap_or(u64::MAX);
        let targets: Vec<(String, String, Vec<u8>)> = self
            .webhooks
            .lock()
            .expect("lock")
            .iter()
            .filter(|w| w.tenant == tenant)
            .map(|w| (w.id.clone(), w.url.clone(), w.key.clone()))
            .collect();
        let mut rows = Vec::new();
        for (webhook_id, url, key) in targets {
            let withheld = self.withhold.filter(|w| w.seq == seq);
            let status = withheld.map_or("succeeded", |w| w.status);
            rows.push((webhook_id, status.to_string()));
            if withheld.is_some() {
                continue;
            }
            let times = if seq == self.duplicate_seq { 2 } else { 1 };
            let body = json!({"event": "bench.tick", "timestamp": "2026-11-23T10:00:00.000Z",
                              "eventId": id, "data": event["data"]})
            .to_string();
            let fake = self.clone();
            let delivery = self.next_id("dlv");
            tokio::spawn(async move {
                for attempt in 1..=times {
                    let ts = "1700000000";
                    let _ = fake
                        .client
                        .post(&url)
                        .header("webhook-id", &delivery)
                        .header("webhook-timestamp", ts)
                        .header(
                            "webhook-signature",
                            sign(&key, &delivery, ts, body.as_bytes()),
                        )
                        .header("x-webhook-attempt", attempt.to_string())
                        .body(body.clone())
                        .send()
                        .await;
                }
            });
        }
        let n = rows.len();
        self.events
            .lock()
            .expect("lock")
            .insert(id.clone(), (tenant, rows));
        (id, n)
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let auth_ok = req
            .headers()
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == format!("Bearer {ADMIN_KEY}").as_bytes());
        if !auth_ok {
            return json_response(
                StatusCode::UNAUTHORIZED,
                json!({"error": {"code": "unauthorized", "message": "no"}}),
            );
        }
        let tenant = req
            .headers()
            .get("x-tenant-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match (method, path.as_str()) {
            (Method::POST, "/api/v1/tenants") => json_response(
                StatusCode::CREATED,
                json!({"id": self.next_id("ten"), "name": body["name"]}),
            ),
            (Method::POST, "/api/v1/webhooks") => {
                let mut raw = [0u8; 24];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
                let secret = format!(
                    "whsec_{}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                );
                let id = self.next_id("wh");
                self.webhooks.lock().expect("lock").push(FakeWebhook {
                    id: id.clone(),
                    tenant,
                    url: body["url"].as_str().unwrap_or_default().to_string(),
                    key: raw.to_vec(),
                });
                json_response(
                    StatusCode::CREATED,
                    json!({"id": id, "url": body["url"], "secret": secret}),
                )
            }
            (Method::POST, "/api/v1/events") | (Method::POST, "/api/v1/events/batch") => {
                if self.throttle_next.swap(false, Ordering::Relaxed) {
                    let mut resp = json_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({"error": {"code": "rate_limited", "message": "later"}}),
                    );
                    resp.headers_mut()
                        .insert("retry-after", hyper::header::HeaderValue::from_static("0"));
                    return resp;
                }
                if path.ends_with("/batch") {
                    let results: Vec<Value> = body["events"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(|e| {
                            let (id, n) = self.accept(tenant.clone(), e);
                            json!({"id": id, "deliveries": n, "duplicate": false})
                        })
                        .collect();
                    json_response(StatusCode::ACCEPTED, json!({ "results": results }))
                } else {
                    let (id, n) = self.accept(tenant, &body);
                    json_response(StatusCode::ACCEPTED, json!({"id": id, "deliveries": n}))
                }
            }
            (Method::GET, p) if p.starts_with("/api/v1/events/") => {
                let id = &p["/api/v1/events/".len()..];
                let events = self.events.lock().expect("lock");
                match events.get(id).filter(|(t, _)| *t == tenant) {
                    Some((_, rows)) => {
                        let rows: Vec<Value> = rows
                            .iter()
                            .map(|(w, s)| json!({"id": "dlv_x", "webhook_id": w, "status": s}))
                            .collect();
                        json_response(StatusCode::OK, json!({"id": id, "deliveries": rows}))
                    }
                    None => json_response(
                        StatusCode::NOT_FOUND,
                        json!({"error": {"code": "not_found", "message": id}}),
                    ),
                }
            }
            _ => json_response(
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "not_found", "message": path}}),
            ),
        }
    }
}

/// Starts the fake; returns its base URL.
async fn start_fake(withhold: Option<Withhold>, duplicate_seq: u64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = Arc::new(Fake {
        webhooks: Mutex::new(Vec::new()),
        events: Mutex::new(HashMap::new()),
        ids: AtomicU64::new(1),
        throttle_next: AtomicBool::new(true),
        withhold,
        duplicate_seq,
        client: reqwest::Client::new(),
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fake = fake.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let fake = fake.clone();
                    async move { Ok::<_, Infallible>(fake.handle(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

async fn run_against_fake(args: &[&str], withhold: Option<Withhold>) -> Report {
    let mut argv = vec!["hookrelay-bench"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("valid args");
    cli.validate().expect("valid");
    let base = start_fake(withhold, 5).await;
    let receiver = Receiver::start(receiver_config(&cli))
        .await
        .expect("receiver");
    let api = Api::new(&base, ADMIN_KEY, cli.concurrency as usize).expect("api");
    let phase = Arc::new(PhaseCell::default());
    let measured = drive(&cli, &api, &receiver, &phase, None, &[])
        .await
        .expect("run completes");
    let report = assemble(&cli, &measured);
    // The text rendering must not panic on any of these shapes.
    let text = report::render_text(&report);
    assert!(text.contains("ledger: expected="));
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_emits_with_pending_delivery() {
    let report = run_against_fake(
        &[
            "--events",
            "60",
            "--tenants",
            "2",
            "--webhooks",
            "2",
            "--concurrency",
            "8",
            "--warmup-secs",
            "0.01",
            "--drain-timeout-secs",
            "1",
            "--verify-all",
        ],
        Some(Withhold {
            seq: 7,
            status: "pending",
        }),
    )
    .await;
    let l = report.ledger;
    assert_eq!(l.expected, 120);
    assert_eq!(l.delivered, 118);
    assert_eq!((l.pending, l.missing, l.unexpected), (2, 0, 0));
    assert_eq!(l.duplicates, 2, "seq 5 is delivered twice to both webhooks");
    assert_eq!(report.emit.stats.throttled_429, 1);
    assert_eq!(report.emit.stats.accepted, 60);
    assert_eq!(report.emit.stats.errors, 0);
    assert_eq!(report.deliveries.receiver.signatures_checked, 120);
    assert_eq!(report.deliveries.receiver.signatures_failed, 0);
    assert!(!report.drain.complete);
    assert!(!report.void, "{:?}", report.void_reasons);
    let phase_deliveries: u64 = report.phases.iter().map(|p| p.deliveries).sum();
    assert_eq!(phase_deliveries, 118);
    assert_eq!(
        report.phases.iter().map(|p| p.accepted).sum::<u64>(),
        60,
        "every accepted event falls in warm-up or steady"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_emits_with_a_lost_delivery_void_the_run() {
    let report = run_against_fake(
        &[
            "--events",
            "50",
            "--webhooks",
            "3",
            "--batch",
            "7",
            "--rate",
            "2000",
            "--drain-timeout-secs",
            "1",
        ],
        Some(Withhold {
            seq: 12,
            status: "succeeded",
        }),
    )
    .await;
    let l = report.ledger;
    assert_eq!(l.expected, 150);
    assert_eq!(l.delivered, 147);
    assert_eq!((l.pending, l.missing), (0, 3));
    assert_eq!(
        report.emit.stats.requests,
        8 + 1,
        "8 batches plus one 429 retry"
    );
    assert!(report.void);
    assert!(report.void_reasons.iter().any(|r| r.contains("missing")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_run_is_valid_and_paced() {
    let started = Instant::now();
    let report = run_against_fake(
        &[
            "--events",
            "40",
            "--rate",
            "200",
            "--concurrency",
            "4",
            "--warmup-secs",
            "0.05",
        ],
        None,
    )
    .await;
    // 40 events at 200/s take about 195 ms (the first token is released at once).
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert!(report.emit.duration_s >= 0.19, "{}", report.emit.duration_s);
    let l = report.ledger;
    assert_eq!(
        (l.expected, l.delivered, l.pending, l.missing),
        (40, 40, 0, 0)
    );
    assert!(report.drain.complete);
    assert!(!report.void, "{:?}", report.void_reasons);
    assert!(report.deliveries.latency.is_some());
}
