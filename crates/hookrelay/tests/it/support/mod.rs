//! Test harness: start servers on a fresh store, run receivers, call the API, wait by polling.

pub mod collector;
pub mod pgcluster;
pub mod process;
pub mod receiver;
pub mod server;
pub mod sse;

use std::future::Future;
use std::time::{Duration, Instant};

pub use receiver::{Receiver, Reply};
pub use server::{Backend, TestServer};

/// Polls `check` until it returns `Some`, or panics after `deadline` with `what`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Verifies a `webhook-signature` header the way a receiver using Standard Webhooks would:
/// HMAC-SHA256 over `{id}.{timestamp}.{body}` with the base64-decoded secret; any entry may match.
pub fn verify_standard_signature(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> bool {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let engine = base64::engine::general_purpose::STANDARD;
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| engine.decode(k).ok())
    else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = engine.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .any(|entry| entry.strip_prefix("v1,") == Some(expected.as_str()))
}

/// Verifies the `v1a` (ed25519) entries of a `webhook-signature` header with Node's built-in
/// crypto, an implementation independent of ours: for each `whpk_` key, whether any entry
/// verifies over `{id}.{timestamp}.{body}`. Node 20+ is required (scripts/test checks for it).
pub fn node_verify_ed25519(
    public_keys: &[&str],
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> Vec<bool> {
    use base64::Engine;
    use std::io::Write;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/support/ed25519_verifier.js"
    );
    let mut child = std::process::Command::new("node")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("Node.js (20 or later) must be installed for the ed25519 verification test");
    let input = serde_json::json!({
        "public_keys": public_keys, "id": msg_id, "timestamp": timestamp,
        "body_b64": base64::engine::general_purpose::STANDARD.encode(body), "signature": header,
    });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write to node");
    let out = child.wait_with_output().expect("node runs");
    assert!(out.status.success(), "the node verifier failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("the node verifier prints a JSON list")
}

/// Serves HTTP/1.1 on a fresh 127.0.0.1 port with `handle`, one task per connection, for as
/// long as the test runs; returns the address. Receivers and the OTLP collector sit on it.
pub async fn serve_http<F, Fut>(handle: F) -> std::net::SocketAddr
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a test HTTP server");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let reply = handle(req);
                    async move { Ok::<_, std::convert::Infallible>(reply.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}
