//! The raw-receiver ceiling (`--ceiling`): bare keep-alive HTTP/1 connections post 200-byte
//! signed bodies straight to the bench's own receiver, with no hookrelay in between.
//! It is what this machine does at best, so every delivery figure can be read as a fraction of it.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::cli::Cli;
use crate::receiver::{sign, Receiver, ReceiverConfig};
use crate::report::summarize_us;

/// The one webhook the receiver knows (tenant 0, webhook 0) and its signing key.
const PATH: &str = "/t0/w0";
const KEY: &[u8] = b"ceiling-signing-key-32-bytes-lng";
const BODY_BYTES: usize = 200;

/// Posts `--events` requests over `--concurrency` connections and prints what the receiver took.
/// Every request carries the same body and signature: the client does no per-request work
/// beyond writing them, and the receiver does all it does for a delivery (parse, ledger, the
/// signature check of every 100th).
pub async fn run(cli: &Cli) -> Result<()> {
    let receiver = Receiver::start(ReceiverConfig {
        tenants: 1,
        webhooks_per_tenant: 1,
        expected_pairs: 1,
        delay: Duration::ZERO,
        verify_all: cli.verify_all,
    })
    .await?;
    receiver.set_keys(vec![KEY.to_vec()])?;
    let (body, signature) = signed_body();
    let connections = cli.concurrency.min(cli.events as u32).max(1) as u64;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections as usize);
    for i in 0..connections {
        // Spread the requests evenly; the first connections take the remainder.
        let share = cli.events / connections + u64::from(i < cli.events % connections);
        let (body, signature) = (body.clone(), signature.clone());
        let addr = receiver.addr;
        tasks.push(tokio::spawn(async move {
            post_many(addr, share, body, signature).await
        }));
    }
    let mut round_trips = Vec::with_capacity(cli.events as usize);
    for task in tasks {
        round_trips.extend(task.await.context("a ceiling connection panicked")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let counts = receiver.counts();
    if counts.requests != cli.events || counts.malformed > 0 || counts.signatures_failed > 0 {
        bail!(
            "the receiver saw {counts:?} for {} requests sent",
            cli.events
        );
    }
    let lat = summarize_us(&mut round_trips).context("no request was sent")?;
    println!("## hookrelay-bench: raw-receiver ceiling (no hookrelay)\n");
    println!(
        "client:   {connections} keep-alive HTTP/1 connections, {} requests of {BODY_BYTES}-byte signed bodies",
        cli.events
    );
    println!(
        "ceiling:  {} requests in {elapsed:.3} s = {:.1} requests/s",
        cli.events,
        cli.events as f64 / elapsed
    );
    println!(
        "round trip: p50={:.3} p95={:.3} p99={:.3} max={:.3} ms",
        lat.p50_ms, lat.p95_ms, lat.p99_ms, lat.max_ms
    );
    println!(
        "receiver: requests={} signatures checked={} failed={}",
        counts.requests, counts.signatures_checked, counts.signatures_failed
    );
    Ok(())
}

/// A delivery-shaped JSON body padded to `BODY_BYTES`, and its Standard Webhooks signature.
fn signed_body() -> (Bytes, (String, String, String)) {
    let head = r#"{"type":"bench.ceiling","timestamp":"2026-01-01T00:00:00Z","eventId":"evt_ceiling","data":{"pad":""#;
    let tail = r#""}}"#;
    let pad = "x".repeat(BODY_BYTES.saturating_sub(head.len() + tail.len()));
    let body = format!("{head}{pad}{tail}");
    let (id, ts) = ("msg_ceiling".to_owned(), "1767225600".to_owned());
    let signature = sign(KEY, &id, &ts, body.as_bytes());
    (Bytes::from(body), (id, ts, signature))
}

/// `n` requests one after another on one connection; each one's round trip in µs.
async fn post_many(
    addr: std::net::SocketAddr,
    n: u64,
    body: Bytes,
    (id, ts, signature): (String, String, String),
) -> Result<Vec<u64>> {
    let stream = TcpStream::connect(addr)
        .await
        .context("connecting to the receiver")?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let host = addr.to_string();
    let mut round_trips = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let req = Request::post(PATH)
            .header("host", &host)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", &ts)
            .header("webhook-signature", &signature)
            .body(Full::new(body.clone()))?;
        sender.ready().await?;
        let sent = Instant::now();
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        if !status.is_success() {
            bail!("the receiver answered {status}");
        }
        round_trips.push(sent.elapsed().as_micros() as u64);
    }
    Ok(round_trips)
}
