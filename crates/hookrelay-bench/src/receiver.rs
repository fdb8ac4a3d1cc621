//! Local webhook receiver (hyper 1, HTTP/1.1 keep-alive) that the server delivers to.
//! Records the first arrival of each (eventId, webhook) pair, counts duplicates, checks signatures.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use sha2::Sha256;
use tokio::net::TcpListener;

type HmacSha256 = Hmac<Sha256>;

/// Largest delivery body the receiver reads.
const MAX_BODY: usize = 1 << 20;

/// Key of one delivery: the event id and the global webhook index (tenant * W + webhook).
pub type PairKey = (Box<str>, u32);

/// When a pair first arrived and how many times it arrived in all.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub first: Instant,
    pub count: u32,
}

pub type Arrivals = HashMap<PairKey, Arrival>;

pub struct ReceiverConfig {
    pub tenants: u32,
    pub webhooks_per_tenant: u32,
    /// Pre-sizes the arrival map.
    pub expected_pairs: usize,
    pub delay: Duration,
    pub verify_all: bool,
}

/// Counters kept by the receiver.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ReceiverCounts {
    pub requests: u64,
    /// Distinct (eventId, webhook) pairs seen.
    pub distinct: u64,
    /// Arrivals of a pair already seen.
    pub duplicates: u64,
    /// Requests whose X-Webhook-Attempt was above 1.
    pub retried_attempts: u64,
    pub signatures_checked: u64,
    pub signatures_failed: u64,
    /// Requests that were not a well-formed delivery (method, path, body, eventId).
    pub malformed: u64,
    /// Deliveries answered 503 because their tenant was refused (`Receiver::refuse`).
    pub refused: u64,
}

struct State {
    tenants: u32,
    per_tenant: u32,
    delay: Duration,
    verify_all: bool,
    /// Decoded signing keys by global webhook index, set once the webhooks exist.
    keys: OnceLock<Vec<Vec<u8>>>,
    arrivals: Mutex<Arrivals>,
    requests: AtomicU64,
    distinct: AtomicU64,
    duplicates: AtomicU64,
    retried: AtomicU64,
    sig_checked: AtomicU64,
    sig_failed: AtomicU64,
    malformed: AtomicU64,
    /// The tenant whose deliveries are answered 503 unrecorded (`NO_TENANT`: none).
    refusing: AtomicU32,
    refused: AtomicU64,
    /// Distinct pairs per tenant (`--backlog` follows each tenant's drain).
    distinct_by_tenant: Vec<AtomicU64>,
    first_failure: Mutex<Option<String>>,
}

const NO_TENANT: u32 = u32::MAX;

/// The running receiver; the accept loop stops when this is dropped.
pub struct Receiver {
    state: Arc<State>,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(cfg: ReceiverConfig) -> Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the receiver on 127.0.0.1:0")?;
        let addr = listener.local_addr().context("receiver address")?;
        let state = Arc::new(State {
            tenants: cfg.tenants,
            per_tenant: cfg.webhooks_per_tenant,
            delay: cfg.delay,
            verify_all: cfg.verify_all,
            keys: OnceLock::new(),
            arrivals: Mutex::new(HashMap::with_capacity(cfg.expected_pairs.min(1 << 24))),
            requests: AtomicU64::new(0),
            distinct: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            sig_checked: AtomicU64::new(0),
            sig_failed: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            refusing: AtomicU32::new(NO_TENANT),
            refused: AtomicU64::new(0),
            distinct_by_tenant: (0..cfg.tenants).map(|_| AtomicU64::new(0)).collect(),
            first_failure: Mutex::new(None),
        });
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Receiver { state, addr, task })
    }

    /// Answers every delivery to `tenant` with 503 and records none of them, as a receiver that
    /// is down would; `None` brings it back.
    pub fn refuse(&self, tenant: Option<u32>) {
        self.state
            .refusing
            .store(tenant.unwrap_or(NO_TENANT), Ordering::Relaxed);
    }

    /// Registers the signing key of every webhook (index = tenant * W + webhook).
    pub fn set_keys(&self, keys: Vec<Vec<u8>>) -> Result<()> {
        self.state
            .keys
            .set(keys)
            .map_err(|_| anyhow!("receiver keys were already set"))
    }

    pub fn counts(&self) -> ReceiverCounts {
        let s = &self.state;
        ReceiverCounts {
            requests: s.requests.load(Ordering::Relaxed),
            distinct: s.distinct.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            retried_attempts: s.retried.load(Ordering::Relaxed),
            signatures_checked: s.sig_checked.load(Ordering::Relaxed),
            signatures_failed: s.sig_failed.load(Ordering::Relaxed),
            malformed: s.malformed.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
        }
    }

    /// Where broker consumers deliver.
    pub fn sink(&self) -> Sink {
        Sink(self.state.clone())
    }

    pub fn distinct(&self) -> u64 {
        self.state.distinct.load(Ordering::Relaxed)
    }

    /// Distinct pairs that arrived for one tenant's webhooks.
    pub fn distinct_of(&self, tenant: u32) -> u64 {
        self.state
            .distinct_by_tenant
            .get(tenant as usize)
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }

    /// The first anomaly seen (bad signature, malformed request), for the report.
    pub fn first_failure(&self) -> Option<String> {
        lock(&self.state.first_failure).clone()
    }

    /// Locks the arrival map; deliveries wait while the guard is held, so keep it short.
    pub fn arrivals(&self) -> MutexGuard<'_, Arrivals> {
        lock(&self.state.arrivals)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("receiver: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), req));
            // Connection errors (peer reset, shutdown) end only that connection.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[derive(Deserialize)]
struct DeliveryBody<'a> {
    #[serde(rename = "eventId", borrow)]
    event_id: &'a str,
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // The head has been parsed: this is the first-byte arrival as far as the bench can tell.
    let arrived = Instant::now();
    let verify = state.count_arrival();
    let Some(widx) = parse_path(req.uri().path(), state.tenants, state.per_tenant)
        .filter(|_| req.method() == Method::POST)
    else {
        let what = format!("unexpected request {} {}", req.method(), req.uri());
        state.malformed(what);
        return Ok(empty(StatusCode::NOT_FOUND));
    };
    if widx / state.per_tenant.max(1) == state.refusing.load(Ordering::Relaxed) {
        state.refused.fetch_add(1, Ordering::Relaxed);
        return Ok(empty(StatusCode::SERVICE_UNAVAILABLE));
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let attempt = header("x-webhook-attempt").and_then(|v| v.parse::<u32>().ok());
    let signature = verify.then(|| SignatureHeaders {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
    });
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            state.malformed(format!("reading a delivery body failed: {err}"));
            return Ok(empty(StatusCode::BAD_REQUEST));
        }
    };
    state.accept(Delivered {
        widx,
        arrived,
        attempt,
        signature,
        body: &body,
    });
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    Ok(empty(StatusCode::OK))
}

/// The signature headers of a delivery, as they arrived.
pub struct SignatureHeaders {
    pub id: Option<String>,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
}

/// One delivery as it arrived, over HTTP or from a broker: what the ledger and the signature
/// check need.
pub struct Delivered<'a> {
    /// The global webhook index (tenant * W + webhook).
    pub widx: u32,
    pub arrived: Instant,
    /// `x-webhook-attempt`, when present.
    pub attempt: Option<u32>,
    /// Present when this delivery's signature is to be checked (`Sink::verify_next`).
    pub signature: Option<SignatureHeaders>,
    pub body: &'a [u8],
}

/// A handle broker consumers feed deliveries into: the same ledger and checks as HTTP.
#[derive(Clone)]
pub struct Sink(Arc<State>);

impl Sink {
    /// Counts one arrival; whether its signature is to be checked (every 100th, or all).
    pub fn verify_next(&self) -> bool {
        self.0.count_arrival()
    }

    pub fn accept(&self, delivery: Delivered<'_>) {
        self.0.accept(delivery);
    }

    /// Something arrived that is not a well-formed delivery.
    pub fn malformed(&self, what: String) {
        self.0.malformed(what);
    }

    pub fn tenants(&self) -> u32 {
        self.0.tenants
    }

    pub fn per_tenant(&self) -> u32 {
        self.0.per_tenant
    }
}

impl State {
    /// Counts one arrival; whether its signature is to be checked (every 100th, or all).
    fn count_arrival(&self) -> bool {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        self.verify_all || n % 100 == 0
    }

    /// Records a delivery's arrival, counts retries, and checks its signature when asked.
    fn accept(&self, d: Delivered<'_>) {
        if d.attempt.is_some_and(|a| a > 1) {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        match serde_json::from_slice::<DeliveryBody<'_>>(d.body) {
            Ok(parsed) => self.record(parsed.event_id, d.widx, d.arrived),
            Err(err) => self.malformed(format!("delivery body without a string eventId: {err}")),
        }
        let Some(sig) = d.signature else {
            return;
        };
        self.sig_checked.fetch_add(1, Ordering::Relaxed);
        let ok = match (self.keys.get(), sig.id, sig.timestamp, sig.signature) {
            (Some(keys), Some(id), Some(ts), Some(sig)) => keys
                .get(d.widx as usize)
                .is_some_and(|key| verify_signature(key, &id, &ts, d.body, &sig)),
            _ => false,
        };
        if !ok {
            self.sig_failed.fetch_add(1, Ordering::Relaxed);
            self.note_failure(format!(
                "signature check failed on a delivery to webhook #{}",
                d.widx
            ));
        }
    }

    fn record(&self, event_id: &str, widx: u32, arrived: Instant) {
        let mut map = lock(&self.arrivals);
        match map.entry((event_id.into(), widx)) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                e.get_mut().count += 1;
                drop(map);
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Arrival {
                    first: arrived,
                    count: 1,
                });
                drop(map);
                self.distinct.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = self
                    .distinct_by_tenant
                    .get((widx / self.per_tenant.max(1)) as usize)
                {
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn malformed(&self, what: String) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        self.note_failure(what);
    }

    fn note_failure(&self, what: String) {
        let mut first = lock(&self.first_failure);
        if first.is_none() {
            *first = Some(what);
        }
    }
}

/// `/t<i>/w<j>` → `i * per_tenant + j`, when both are in range.
pub fn parse_path(path: &str, tenants: u32, per_tenant: u32) -> Option<u32> {
    let rest = path.strip_prefix("/t")?;
    let (t, w) = rest.split_once("/w")?;
    let t: u32 = t.parse().ok()?;
    let w: u32 = w.parse().ok()?;
    (t < tenants && w < per_tenant).then(|| t * per_tenant + w)
}

/// The HMAC key of a `whsec_<base64>` secret.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .context("webhook secret is not whsec_ followed by base64")
}

/// Standard Webhooks check: does any `v1,<base64>` entry of `header` equal
/// HMAC-SHA256(key, "{id}.{timestamp}.{body}")? Compared in constant time.
pub fn verify_signature(key: &[u8], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    header.split_whitespace().any(|entry| {
        entry
            .strip_prefix("v1,")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .is_some_and(|sig| mac.clone().verify_slice(&sig).is_ok())
    })
}

/// Computes the `v1,<base64>` signature (tests, the self-test fake and the ceiling client).
pub fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: &str = "1649367553";
    const BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn standard_webhooks_test_vector_verifies() {
        let key = decode_secret(SECRET).expect("valid secret");
        assert!(verify_signature(&key, ID, TS, BODY.as_bytes(), SIG));
        assert_eq!(sign(&key, ID, TS, BODY.as_bytes()), SIG);
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let key = decode_secret(SECRET).expect("valid secret");
        let rotated = format!("v1,Zm9vYmFy {SIG}");
        assert!(verify_signature(&key, ID, TS, BODY.as_bytes(), &rotated));
    }

    #[test]
    fn tampering_fails_verification() {
        let key = decode_secret(SECRET).expect("valid secret");
        assert!(!verify_signature(
            &key,
            ID,
            "1649367554",
            BODY.as_bytes(),
            SIG
        ));
        assert!(!verify_signature(
            &key,
            "msg_other",
            TS,
            BODY.as_bytes(),
            SIG
        ));
        assert!(!verify_signature(&key, ID, TS, b"{}", SIG));
        assert!(!verify_signature(&key, ID, TS, BODY.as_bytes(), ""));
        assert!(!verify_signature(
            &key,
            ID,
            TS,
            BODY.as_bytes(),
            "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        ));
        assert!(!verify_signature(&key, ID, TS, BODY.as_bytes(), "v1,!!!"));
        let other = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        assert!(!verify_signature(&other, ID, TS, BODY.as_bytes(), SIG));
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert!(decode_secret("whsec_not base64!").is_err());
    }

    #[test]
    fn parses_webhook_paths() {
        assert_eq!(parse_path("/t0/w0", 1, 1), Some(0));
        assert_eq!(parse_path("/t2/w3", 3, 4), Some(11));
        assert_eq!(parse_path("/t3/w0", 3, 4), None);
        assert_eq!(parse_path("/t0/w4", 3, 4), None);
        assert_eq!(parse_path("/t0/wx", 3, 4), None);
        assert_eq!(parse_path("/health", 3, 4), None);
    }

    #[tokio::test]
    async fn records_first_arrivals_duplicates_and_signatures() {
        let rx = Receiver::start(ReceiverConfig {
            tenants: 1,
            webhooks_per_tenant: 2,
            expected_pairs: 8,
            delay: Duration::ZERO,
            verify_all: true,
        })
        .await
        .expect("receiver starts");
        let key = decode_secret(SECRET).expect("valid secret");
        rx.set_keys(vec![key.clone(), key.clone()])
            .expect("keys set");
        let client = reqwest::Client::new();
        let body = r#"{"event":"bench.tick","timestamp":"2026-11-23T10:00:00.000Z","eventId":"evt_1","data":{"seq":0}}"#;
        let post = |path: &str, sig: String| {
            client
                .post(format!("http://{}{path}", rx.addr))
                .header("webhook-id", "dlv_1")
                .header("webhook-timestamp", "1700000000")
                .header("webhook-signature", sig)
                .header("x-webhook-attempt", "1")
                .body(body)
                .send()
        };
        let good = sign(&key, "dlv_1", "1700000000", body.as_bytes());
        for path in ["/t0/w0", "/t0/w0", "/t0/w1"] {
            let resp = post(path, good.clone()).await.expect("delivered");
            assert_eq!(resp.status(), 200);
        }
        let resp = post("/t0/w1", "v1,AAAA".to_string()).await.expect("sent");
        assert_eq!(resp.status(), 200);
        let resp = post("/t5/w0", good.clone()).await.expect("sent");
        assert_eq!(resp.status(), 404);
        let counts = rx.counts();
        assert_eq!(counts.requests, 5);
        assert_eq!(counts.distinct, 2);
        assert_eq!(counts.duplicates, 2);
        assert_eq!(counts.signatures_checked, 4);
        assert_eq!(counts.signatures_failed, 1);
        assert_eq!(counts.malformed, 1);
        let arrivals = rx.arrivals();
        assert_eq!(arrivals[&("evt_1".into(), 0)].count, 2);
        assert_eq!(arrivals[&("evt_1".into(), 1)].count, 2);
    }

    #[tokio::test]
    async fn a_refused_tenant_gets_503_and_nothing_is_recorded_until_it_is_back() {
        let rx = Receiver::start(ReceiverConfig {
            tenants: 2,
            webhooks_per_tenant: 1,
            expected_pairs: 8,
            delay: Duration::ZERO,
            verify_all: false,
        })
        .await
        .expect("receiver starts");
        let key = decode_secret(SECRET).expect("valid secret");
        rx.set_keys(vec![key.clone(), key]).expect("keys set");
        let client = reqwest::Client::new();
        let post = |path: &str, event: &str| {
            let body = format!(r#"{{"event":"bench.tick","eventId":"{event}","data":{{}}}}"#);
            client
                .post(format!("http://{}{path}", rx.addr))
                .body(body)
                .send()
        };
        rx.refuse(Some(0));
        assert_eq!(post("/t0/w0", "evt_a").await.expect("sent").status(), 503);
        assert_eq!(post("/t1/w0", "evt_b").await.expect("sent").status(), 200);
        assert_eq!((rx.distinct_of(0), rx.distinct_of(1)), (0, 1));
        rx.refuse(None);
        assert_eq!(post("/t0/w0", "evt_a").await.expect("sent").status(), 200);
        assert_eq!((rx.distinct_of(0), rx.distinct_of(1)), (1, 1));
        let counts = rx.counts();
        assert_eq!((counts.refused, counts.distinct), (1, 2));
    }
}
