//! `hookrelay listen`: reuses or creates a `relay` webhook, holds one stream from the server,
//! forwards each delivery as sent to a local URL, prints a line and reports the answer back.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::delivery::relay::{RelayAnswer, RelayMessage};

/// How much of the local answer is reported (the attempt keeps 4 KiB).
const BODY_HEAD: usize = 4096;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What `hookrelay listen` was asked to do.
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// The hookrelay server, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// An API key (or session token) of the tenant, with the editor or admin role.
    pub key: String,
    /// Event-type patterns; empty means every event.
    pub events: Vec<String>,
    /// The local receiver.
    pub forward_to: url::Url,
    /// Use this relay webhook rather than the one found by `forward_to` (or a new one).
    pub webhook: Option<String>,
    /// How long the local receiver may take.
    pub timeout: Duration,
}

/// Runs until `shutdown` (or a refusal that reconnecting cannot fix).
pub async fn run(opts: ListenOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let api = Api {
        base: opts.server.trim_end_matches('/').to_owned(),
        key: opts.key.clone(),
        client: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?,
    };
    // The local receiver may redirect or be slow: answer as a receiver would be judged.
    let local = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(opts.timeout)
        .build()?;
    let webhook_id = match &opts.webhook {
        Some(id) => use_webhook(&api, id).await?,
        None => find_or_create(&api, &opts).await?,
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = listen_once(&api, &local, &webhook_id, &opts.forward_to) => r,
        };
        match outcome {
            Err(Fatal(e)) => return Err(e),
            Ok(Held::Connected) => backoff = Duration::from_secs(1),
            Ok(Held::NeverConnected(why)) => eprintln!("hookrelay listen: {why}"),
        }
        eprintln!(
            "hookrelay listen: disconnected; reconnecting in {}s",
            backoff.as_secs()
        );
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The API, as the listener's credential.
struct Api {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// The error message of a contract error body, or the status.
fn describe(status: StatusCode, body: &Value) -> String {
    match body["error"]["message"].as_str() {
        Some(m) => format!("{status}: {m}"),
        None => status.to_string(),
    }
}

/// The webhook `id`, which must exist and be a relay webhook (its own `events` apply).
async fn use_webhook(api: &Api, id: &str) -> anyhow::Result<String> {
    let (status, w) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/webhooks/{id}"),
            None,
        )
        .await?;
    if !status.is_success() {
        bail!("reading webhook {id} failed: {}", describe(status, &w));
    }
    if w["kind"] != "relay" {
        bail!("webhook {id} is of kind {}, not relay", w["kind"]);
    }
    eprintln!(
        "hookrelay listen: using relay webhook {id} (events {})",
        w["events"]
    );
    Ok(id.to_owned())
}

/// The relay webhook forwarding to `forward_to`: an existing one (its `events` updated to the
/// ones asked for, and re-activated) or a new one, whose signing secret is printed this once.
async fn find_or_create(api: &Api, opts: &ListenOptions) -> anyhow::Result<String> {
    let target = opts.forward_to.as_str();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/webhooks?limit=1000&cursor={c}"),
            None => "/api/v1/webhooks?limit=1000".to_owned(),
        };
        let (status, page) = api.call(reqwest::Method::GET, &path, None).await?;
        if !status.is_success() {
            bail!("listing webhooks failed: {}", describe(status, &page));
        }
        let found = page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["kind"] == "relay" && w["url"].as_str() == Some(target));
        if let Some(w) = found {
            let id = w["id"].as_str().unwrap_or_default().to_owned();
            let events: Vec<String> =
                serde_json::from_value(w["events"].clone()).unwrap_or_default();
            if events != opts.events || w["active"] != true {
                let (status, body) = api
                    .call(
                        reqwest::Method::PATCH,
                        &format!("/api/v1/webhooks/{id}"),
                        Some(json!({"events": opts.events, "active": true})),
                    )
                    .await?;
                if !status.is_success() {
                    bail!("updating webhook {id} failed: {}", describe(status, &body));
                }
            }
            eprintln!(
                "hookrelay listen: reusing relay webhook {id} (its signing secret was printed when it was created; POST /api/v1/webhooks/{id}/rotate-secret makes a new one)"
            );
            return Ok(id);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let (status, created) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/webhooks",
            Some(
                json!({"kind": "relay", "url": target, "events": opts.events,
                        "description": "hookrelay listen"}),
            ),
        )
        .await?;
    if status != StatusCode::CREATED {
        bail!(
            "creating the relay webhook failed: {}",
            describe(status, &created)
        );
    }
    let id = created["id"]
        .as_str()
        .ok_or_else(|| anyhow!("the server's answer has no webhook id"))?
        .to_owned();
    eprintln!("hookrelay listen: created relay webhook {id}");
    if let Some(secret) = created["secret"].as_str() {
        eprintln!("hookrelay listen: signing secret (shown once, verify webhook-signature with it): {secret}");
    }
    Ok(id)
}

/// A refusal that reconnecting cannot fix (bad key, no such webhook).
struct Fatal(anyhow::Error);

enum Held {
    /// The stream was open, then ended.
    Connected,
    /// Could not connect for a reason that may pass (server down, restarting).
    NeverConnected(String),
}

/// Holds one connection until it ends, forwarding each delivery on its own task.
async fn listen_once(
    api: &Api,
    local: &reqwest::Client,
    webhook_id: &str,
    forward_to: &url::Url,
) -> Result<Held, Fatal> {
    let response = api
        .client
        .get(format!("{}/api/v1/relay/{webhook_id}/connect", api.base))
        .bearer_auth(&api.key)
        .header("accept", "text/event-stream")
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return Ok(Held::NeverConnected(format!(
                "cannot reach {}: {e}",
                api.base
            )))
        }
    };
    let status = response.status();
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let why = describe(status, &body);
        return if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Ok(Held::NeverConnected(why))
        } else {
            Err(Fatal(anyhow!("the server refused the connection: {why}")))
        };
    }
    let mut response = response;
    // Bytes, not text: a chunk may end inside a multi-byte character.
    let mut buf: Vec<u8> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buf.drain(..end + 2).collect();
            let (event, data) = parse_sse(&String::from_utf8_lossy(&block));
            match event.as_deref() {
                Some("ready") => {
                    let ready: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    eprintln!(
                        "hookrelay listen: connected as a listener of {webhook_id} ({} connected); forwarding to {forward_to}",
                        ready["listeners"]
                    );
                }
                Some("delivery") => match serde_json::from_str::<RelayMessage>(&data) {
                    Ok(message) => {
                        let (local, forward_to) = (local.clone(), forward_to.clone());
                        let report = ReportTo {
                            client: api.client.clone(),
                            url: format!("{}/api/v1/relay/{webhook_id}/results", api.base),
                            key: api.key.clone(),
                        };
                        tasks.spawn(async move {
                            let answer = forward(&local, &forward_to, &message).await;
                            print_line(&message, &answer);
                            report.send(answer).await;
                        });
                    }
                    Err(e) => eprintln!("hookrelay listen: unreadable delivery ({e})"),
                },
                _ => {}
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    // Answers being forwarded still get reported.
    while tasks.join_next().await.is_some() {}
    Ok(Held::Connected)
}

/// `event:` and `data:` of one Server-Sent Event block (comments ignored).
fn parse_sse(block: &str) -> (Option<String>, String) {
    let mut event = None;
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    (event, data.join("\n"))
}

/// POSTs the delivery to the local receiver exactly as the server would have.
async fn forward(local: &reqwest::Client, to: &url::Url, m: &RelayMessage) -> RelayAnswer {
    let mut req = local.post(to.clone()).body(m.body.clone());
    for (name, value) in &m.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let started = Instant::now();
    let mut answer = RelayAnswer {
        token: m.token.clone(),
        ..Default::default()
    };
    match req.send().await {
        Ok(resp) => {
            answer.status = Some(resp.status().as_u16());
            let body = resp.bytes().await.unwrap_or_default();
            let head = &body[..body.len().min(BODY_HEAD)];
            answer.body = Some(String::from_utf8_lossy(head).into_owned());
        }
        Err(e) => {
            answer.error = Some(if e.is_timeout() {
                "timed out waiting for the local receiver".to_owned()
            } else {
                error_chain(&e)
            })
        }
    }
    answer.duration_ms = Some(started.elapsed().as_millis().min(u32::MAX as u128) as u32);
    answer
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// One line per delivery: time, event type, delivery id, status (or error), duration.
fn print_line(m: &RelayMessage, a: &RelayAnswer) {
    use std::io::Write;
    let time = hookrelay_domain::time::to_rfc3339(hookrelay_domain::time::now_millis());
    let outcome = match (a.status, &a.error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => format!("error: {e}"),
        (None, None) => "no answer".to_owned(),
    };
    let line = format!(
        "{time}  {:<28} {}  #{}  {outcome}  {} ms",
        m.event_type,
        m.delivery_id,
        m.attempt,
        a.duration_ms.unwrap_or(0)
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Where a local answer is reported.
struct ReportTo {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl ReportTo {
    async fn send(&self, answer: RelayAnswer) {
        let sent = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(30))
            .json(&answer)
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == StatusCode::NO_CONTENT => {}
            Ok(r) if r.status() == StatusCode::NOT_FOUND => eprintln!(
                "hookrelay listen: the answer came too late: the server had already timed the attempt out"
            ),
            Ok(r) => eprintln!("hookrelay listen: reporting the answer failed: {}", r.status()),
            Err(e) => eprintln!("hookrelay listen: reporting the answer failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks() {
        assert_eq!(
            parse_sse("event: delivery\ndata: {\"a\":1}\n\n"),
            (Some("delivery".to_owned()), "{\"a\":1}".to_owned())
        );
        assert_eq!(parse_sse(": keep-alive\n\n"), (None, String::new()));
    }
}
