//! Broker destinations when things go wrong after the first message, on both stores: a broker
//! connection that drops (the broker restarts) fails the next attempt, which is retried and
//! succeeds once the broker is back, on a connection made again; and the credentials in a broker
//! URL appear in no API answer, attempt error, metric, log line (at debug level) or store file.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::brokers::{
    amqp, bound_queue, cleanup, declare_exchange, first_failure, free_port, nats, only_delivery,
    stream_entries, unique, Forwarder, WAIT,
};
use crate::support::process::ServerProcess;
use crate::support::server::fresh_database_url;
use crate::support::*;

both_backends!(
    connections_are_made_again_after_the_broker_restarts,
    broker_credentials_are_never_shown_logged_or_stored_in_clear,
);

#[derive(Clone, Copy, Debug)]
enum Kind {
    Redis,
    Nats,
    RabbitMq,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Nats => "nats",
            Kind::RabbitMq => "rabbitmq",
        }
    }

    fn upstream(self) -> &'static str {
        match self {
            Kind::Redis => "127.0.0.1:6379",
            Kind::Nats => "127.0.0.1:4222",
            Kind::RabbitMq => "127.0.0.1:5672",
        }
    }

    /// The broker's URL through 127.0.0.1:`port`.
    fn url(self, port: u16) -> String {
        match self {
            Kind::Redis => format!("redis://127.0.0.1:{port}"),
            Kind::Nats => format!("nats://127.0.0.1:{port}"),
            Kind::RabbitMq => format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        }
    }
}

/// Where a scenario's messages land, read straight from the broker: the delivery ids seen.
enum Sink {
    Redis {
        stream: String,
    },
    Nats {
        subject: String,
        sub: async_nats::Subscriber,
    },
    RabbitMq {
        channel: lapin::Channel,
        exchange: String,
        queue: String,
    },
}

impl Sink {
    async fn open(kind: Kind) -> Self {
        match kind {
            Kind::Redis => Sink::Redis {
                stream: unique("reconnect"),
            },
            Kind::Nats => {
                let subject = unique("reconnect").replace('-', "_");
                let client = nats().await;
                let sub = client.subscribe(subject.clone()).await.unwrap();
                client.flush().await.unwrap();
                Sink::Nats { subject, sub }
            }
            Kind::RabbitMq => {
                let channel = amqp().await;
                let exchange = unique("reconnect");
                declare_exchange(&channel, &exchange).await;
                let queue = bound_queue(&channel, &exchange, "rk").await;
                Sink::RabbitMq {
                    channel,
                    exchange,
                    queue,
                }
            }
        }
    }

    fn target(&self) -> Value {
        match self {
            Sink::Redis { stream } => json!({"stream": stream}),
            Sink::Nats { subject, .. } => json!({"subject": subject}),
            Sink::RabbitMq { exchange, .. } => json!({"exchange": exchange, "routing_key": "rk"}),
        }
    }

    /// Reads what arrived since the last call into `seen`.
    async fn collect(&mut self, seen: &mut BTreeSet<String>) {
        match self {
            Sink::Redis { stream } => {
                for (_, fields) in stream_entries(stream).await {
                    if let Some((_, v)) = fields.iter().find(|(n, _)| n == "webhook-id") {
                        seen.insert(String::from_utf8_lossy(v).into_owned());
                    }
                }
            }
            Sink::Nats { sub, .. } => {
                while let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_millis(5), sub.next()).await
                {
                    if let Some(id) = m.headers.as_ref().and_then(|h| h.get("webhook-id")) {
                        seen.insert(id.as_str().to_owned());
                    }
                }
            }
            Sink::RabbitMq { channel, queue, .. } => {
                while let Some(m) = channel
                    .basic_get(
                        queue.as_str().into(),
                        lapin::options::BasicGetOptions { no_ack: true },
                    )
                    .await
                    .unwrap()
                {
                    if let Some(id) = m.delivery.properties.message_id() {
                        seen.insert(id.to_string());
                    }
                }
            }
        }
    }

    /// Waits until every one of `ids` has arrived, adding to `seen` what did (a core NATS
    /// publish that timed out may still arrive once the client reconnects: at least once, so a
    /// set; NATS and AMQP messages are consumed when read, so `seen` is kept across calls).
    async fn wait_for(&mut self, seen: &mut BTreeSet<String>, ids: &[&String]) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.collect(seen).await;
            if ids.iter().all(|id| seen.contains(*id)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {ids:?} at the broker; seen {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn close(self) {
        if let Sink::RabbitMq {
            channel,
            exchange,
            queue,
        } = self
        {
            cleanup(&channel, &exchange, &[&queue]).await;
        }
    }
}

async fn connections_are_made_again_after_the_broker_restarts(backend: Backend) {
    // Short attempts: a publish into a connection that is gone waits at most this long.
    let server =
        TestServer::start_with(backend, |c| c.delivery_timeout = Duration::from_secs(3)).await;
    for kind in [Kind::Redis, Kind::Nats, Kind::RabbitMq] {
        restart_scenario(&server, kind).await;
    }
    server.stop().await;
}

/// One broker, reached through a forwarder: the first message goes through (the pooled
/// connection is made), the forwarder is dropped with its connections (the broker restarted),
/// the next delivery fails and stays pending, and succeeds once the broker answers again.
async fn restart_scenario(server: &TestServer, kind: Kind) {
    let event_type = format!("restart.{}", kind.name());
    let mut sink = Sink::open(kind).await;
    let mut seen = BTreeSet::new();
    let port = free_port().await;
    let broker = Forwarder::start(port, kind.upstream()).await;
    server
        .webhook(json!({"kind": kind.name(), "url": kind.url(port), "target": sink.target(),
                        "events": [event_type], "retry_schedule_seconds": [1, 1, 1, 1, 1, 1, 1, 1]}))
        .await;
    let emit = || async {
        let ev = server.emit(json!({"type": event_type, "data": {}})).await;
        only_delivery(server, &ev).await
    };

    let first = emit().await;
    server.delivery_with_status(&first, "succeeded", WAIT).await;
    sink.wait_for(&mut seen, &[&first]).await;

    drop(broker);
    let second = emit().await;
    let failed = first_failure(server, &second).await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!("{}:", kind.name()))
            || failed["error_kind"] == "timeout"
            || failed["error_kind"] == "connect",
        "{kind:?}: {failed}"
    );
    let (_, d) = server.get(&format!("/api/v1/deliveries/{second}")).await;
    assert_eq!(
        d["status"], "pending",
        "{kind:?}: retried, not given up: {d}"
    );

    let _back = Forwarder::start(port, kind.upstream()).await;
    let done = server
        .delivery_with_status(&second, "succeeded", WAIT)
        .await;
    assert!(
        done["attempts"].as_array().unwrap().len() >= 2,
        "{kind:?}: {done}"
    );
    // The connection made again serves the next delivery at its first attempt.
    let third = emit().await;
    let done = server.delivery_with_status(&third, "succeeded", WAIT).await;
    assert_eq!(
        done["attempts"].as_array().unwrap().len(),
        1,
        "{kind:?}: {done}"
    );
    sink.wait_for(&mut seen, &[&first, &second, &third]).await;
    sink.close().await;
}

/// A password no other text contains.
const SECRET: &str = "Zq7sekritPW";

async fn broker_credentials_are_never_shown_logged_or_stored_in_clear(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database_url(backend, dir.path()).await;
    let key = hookrelay::auth::keys::generate_api_key();
    // Every crate at debug level: the broker clients' own logs are audited too.
    let server = ServerProcess::start(
        "creds",
        "all",
        &db_url,
        &key,
        dir.path(),
        &[
            ("RUST_LOG", "debug"),
            ("HOOKRELAY_DELIVERY_TIMEOUT_MS", "3000"),
        ],
    )
    .await;
    let dead = free_port().await;
    let exchange = unique("creds");
    let channel = amqp().await;
    declare_exchange(&channel, &exchange).await;
    // Each fails at every attempt: nothing listens, or the broker refuses the credentials.
    let urls = [
        ("redis", format!("redis://hr:{SECRET}@127.0.0.1:{dead}")),
        ("redis", format!("redis://hr:{SECRET}@127.0.0.1:6379")),
        ("nats", format!("nats://hr:{SECRET}@127.0.0.1:{dead}")),
        ("nats", format!("nats://{SECRET}@127.0.0.1:{dead}")),
        (
            "rabbitmq",
            format!("amqp://guest:{SECRET}@127.0.0.1:{dead}/%2f"),
        ),
        (
            "rabbitmq",
            format!("amqp://guest:{SECRET}@127.0.0.1:5672/%2f"),
        ),
    ];
    let mut hooks = Vec::new();
    for (i, (kind, url)) in urls.iter().enumerate() {
        let target = match *kind {
            "redis" => json!({"stream": unique("creds")}),
            "nats" => json!({"subject": format!("creds.{i}"), "jetstream": true}),
            _ => json!({"exchange": exchange, "routing_key": "rk"}),
        };
        let hook = server
            .webhook(json!({"kind": kind, "url": url, "target": target,
                            "events": [format!("creds.e{i}")],
                            "retry_schedule_seconds": [1, 1, 1, 1, 1, 1, 1, 1]}))
            .await;
        hooks.push(hook);
    }
    let mut deliveries = Vec::new();
    for i in 0..urls.len() {
        let (status, ev) = server
            .post(
                "/api/v1/events",
                json!({"type": format!("creds.e{i}"), "data": {}}),
            )
            .await;
        assert_eq!(status, 202, "{ev}");
        let event = ev["id"].as_str().unwrap().to_owned();
        let delivery = eventually(WAIT, "the event's delivery", || async {
            let (_, list) = server
                .get(&format!("/api/v1/deliveries?event_id={event}"))
                .await;
            list["data"][0]["id"].as_str().map(str::to_owned)
        })
        .await;
        deliveries.push(delivery);
    }
    // Two failed attempts each: the first connects, the second meets the pool's backoff.
    let mut shown = String::new();
    for (i, id) in deliveries.iter().enumerate() {
        let d = eventually(WAIT, "two failed attempts", || async {
            let (_, d) = server.get(&format!("/api/v1/deliveries/{id}")).await;
            let failed = d["attempts"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|a| !a["error"].is_null()).count());
            (failed >= 2).then_some(d)
        })
        .await;
        let error = d["attempts"][0]["error"].as_str().unwrap().to_owned();
        assert!(
            error.starts_with(&format!("{}:", urls[i].0)) || error.contains("timed out"),
            "{}: {error}",
            urls[i].1
        );
        shown.push_str(&d.to_string());
    }
    let (_, list) = server.get("/api/v1/deliveries?limit=100").await;
    let (_, webhooks) = server.get("/api/v1/webhooks").await;
    let (_, stats) = server.get("/api/v1/stats?range=1h").await;
    shown.push_str(&format!("{list}{webhooks}{stats}"));
    for hook in &hooks {
        let id = hook["id"].as_str().unwrap();
        let (_, read) = server.get(&format!("/api/v1/webhooks/{id}")).await;
        let (_, tested) = server
            .post(&format!("/api/v1/webhooks/{id}/test"), json!({}))
            .await;
        assert!(
            read["url"].as_str().unwrap().contains("***"),
            "shown redacted: {read}"
        );
        shown.push_str(&format!("{hook}{read}{tested}"));
    }
    shown.push_str(&server.get_text("/metrics").await);
    assert!(
        !shown.contains(SECRET),
        "a credential in an answer: {shown}"
    );

    let log = server.log_text();
    assert!(log.contains("DEBUG"), "the log is at debug level");
    assert!(
        !log.contains(SECRET),
        "a credential in the log: {}",
        log.lines()
            .filter(|l| l.contains(SECRET))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(server);
    if backend == Backend::Sqlite {
        // The store's files hold the URLs redacted and sealed, never in clear.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("hookrelay.db") {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                    "a credential in clear in {}",
                    path.display()
                );
            }
        }
    }
    cleanup(&channel, &exchange, &[]).await;
}
