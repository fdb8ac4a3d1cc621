//! Broker destinations end to end, on both stores, against the real brokers on this machine
//! (Redis 127.0.0.1:6379, NATS 127.0.0.1:4222 with JetStream, RabbitMQ 127.0.0.1:5672;
//! `scripts/test` refuses to run without them). Each test uses stream, subject and exchange
//! names of its own. A message arrives with the envelope and the signature headers (verified
//! here); a broker that refuses or cannot be reached fails the attempt, which is retried and
//! succeeds after recovery; retries exhausted end in the DLQ; save-time checks answer `422`
//! naming the field; credentials in broker URLs are sealed at rest and shown as `***`.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

both_backends!(
    redis_message_arrives_with_envelope_and_signature,
    redis_refusals_fail_retry_and_recover,
    redis_exhausted_retries_end_in_the_dlq,
    broker_webhooks_are_checked_and_credentials_sealed,
    nats_core_message_arrives_with_headers_and_signature,
    nats_jetstream_acks_refusals_and_recovery,
    rabbitmq_message_arrives_with_properties_and_signature,
    rabbitmq_refusals_fail_retry_and_recover,
);

pub(super) const WAIT: Duration = Duration::from_secs(30);
pub(super) const REDIS: &str = "redis://127.0.0.1:6379";
pub(super) const NATS: &str = "nats://127.0.0.1:4222";
pub(super) const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A name no other test (or earlier run) uses.
pub(super) fn unique(prefix: &str) -> String {
    format!(
        "hr-test-{prefix}-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

pub(super) async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis at 127.0.0.1:6379 (scripts/test checks it is running)")
}

/// A stream entry's fields, in order.
pub(super) type Fields = Vec<(String, Vec<u8>)>;

/// The entries of a stream: `(id, fields)`.
pub(super) async fn stream_entries(stream: &str) -> Vec<(String, Fields)> {
    let mut conn = redis().await;
    let raw: Vec<(String, Fields)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    raw
}

fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
        .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
}

fn text<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> &'a str {
    std::str::from_utf8(field(fields, name)).unwrap()
}

/// A port nothing listens on (bound, then let go).
pub(super) async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Forwards connections on 127.0.0.1:`port` to `upstream` until dropped: a broker that comes
/// back on the port a webhook names. Dropping it also severs the connections it carries, as a
/// broker that restarts does.
pub(super) struct Forwarder {
    stop: tokio_util::sync::CancellationToken,
}

impl Forwarder {
    pub(super) async fn start(port: u16, upstream: &'static str) -> Self {
        // A forwarder just dropped may still hold the port for a moment.
        let listener = eventually(WAIT, "the forwarder's port", || async {
            TcpListener::bind(("127.0.0.1", port)).await.ok()
        })
        .await;
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = tokio::select! {
                    _ = token.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => return,
                    },
                };
                let token = token.clone();
                tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        tokio::select! {
                            _ = token.cancelled() => {}
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        }
                    }
                });
            }
        });
        Self { stop }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The event's one delivery id.
pub(super) async fn only_delivery(server: &TestServer, event: &Value) -> String {
    let ids = server.delivery_ids(event["id"].as_str().unwrap()).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

/// Waits for the delivery's first failed attempt; returns it.
pub(super) async fn first_failure(server: &TestServer, delivery: &str) -> Value {
    eventually(WAIT, "a failed attempt", || async {
        let (_, d) = server.get(&format!("/api/v1/deliveries/{delivery}")).await;
        d["attempts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| !a["error"].is_null()).cloned())
    })
    .await
}

async fn redis_message_arrives_with_envelope_and_signature(backend: Backend) {
    let server = TestServer::start(backend).await;
    let stream = unique("redis");
    let hook = server
        .webhook(
            json!({"kind": "redis", "url": REDIS, "target": {"stream": stream},
                        "events": ["member.created"], "headers": {"X-Team": "crm"}}),
        )
        .await;
    assert_eq!(hook["kind"], "redis");
    assert_eq!(hook["target"], json!({"stream": stream}));
    let ev = server
        .emit(json!({"type": "member.created", "data": {"id": 42, "name": "Ada 🦀"}}))
        .await;
    let delivery = only_delivery(&server, &ev).await;
    let done = server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    let entries = stream_entries(&stream).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (entry_id, fields) = &entries[0];
    let body = field(fields, "body");
    let envelope: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(envelope["event"], "member.created");
    assert_eq!(envelope["eventId"], ev["id"]);
    assert_eq!(envelope["data"], json!({"id": 42, "name": "Ada 🦀"}));
    assert_eq!(text(fields, "webhook-id"), delivery);
    assert_eq!(text(fields, "x-webhook-event"), "member.created");
    assert_eq!(text(fields, "x-team"), "crm");
    assert_eq!(text(fields, "content-type"), "application/json");
    assert!(verify_standard_signature(
        hook["secret"].as_str().unwrap(),
        text(fields, "webhook-id"),
        text(fields, "webhook-timestamp"),
        body,
        text(fields, "webhook-signature"),
    ));
    // The attempt records the acknowledgement (the entry id) and no HTTP status.
    let attempt = &done["attempts"][0];
    assert_eq!(attempt["response_status"], Value::Null);
    assert_eq!(attempt["error"], Value::Null);
    assert_eq!(
        attempt["response_body"],
        format!("XADD {stream} {entry_id}")
    );
    assert_eq!(
        attempt["request_headers"]["webhook-signature"],
        "[redacted]"
    );
    // The /test action goes through the same path.
    let (status, tested) = server
        .post(
            &format!("/api/v1/webhooks/{}/test", hook["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, tested["status"].as_str()),
        (200, Some("succeeded")),
        "{tested}"
    );
    assert_eq!(stream_entries(&stream).await.len(), 2);
    let (_, stats) = server
        .get(&format!(
            "/api/v1/webhooks/{}/stats",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (stats["successes"].as_u64(), stats["failures"].as_u64()),
        (Some(2), Some(0)),
        "{stats}"
    );
    server.stop().await;
}

async fn redis_refusals_fail_retry_and_recover(backend: Backend) {
    let server = TestServer::start(backend).await;
    let quick = json!([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);

    // Nothing listens on the port: the attempt fails to connect and is retried; once a broker
    // answers there, the next attempt reconnects and succeeds.
    let port = free_port().await;
    let stream = unique("down");
    server
        .webhook(
            json!({"kind": "redis", "url": format!("redis://127.0.0.1:{port}"),
                        "target": {"stream": stream}, "events": ["down.*"],
                        "retry_schedule_seconds": quick}),
        )
        .await;
    let ev = server.emit(json!({"type": "down.one", "data": {}})).await;
    let delivery = only_delivery(&server, &ev).await;
    let failed = first_failure(&server, &delivery).await;
    assert_eq!(failed["error_kind"], "connect", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().starts_with("redis:"),
        "{failed}"
    );
    let (_, d) = server.get(&format!("/api/v1/deliveries/{delivery}")).await;
    assert_eq!(d["status"], "pending", "a failed attempt is retried: {d}");
    let _up = Forwarder::start(port, "127.0.0.1:6379").await;
    server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    assert_eq!(stream_entries(&stream).await.len(), 1);

    // The key exists but is not a stream: Redis refuses the XADD (WRONGTYPE). Once the key is
    // gone the retry appends.
    let stream = unique("wrongtype");
    let mut conn = redis().await;
    let _: () = redis::cmd("SET")
        .arg(&stream)
        .arg("not a stream")
        .query_async(&mut conn)
        .await
        .unwrap();
    server
        .webhook(
            json!({"kind": "redis", "url": REDIS, "target": {"stream": stream},
                        "events": ["wrong.*"], "retry_schedule_seconds": quick}),
        )
        .await;
    let ev = server.emit(json!({"type": "wrong.type", "data": {}})).await;
    let delivery = only_delivery(&server, &ev).await;
    let failed = first_failure(&server, &delivery).await;
    assert_eq!(failed["error_kind"], "broker", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("WRONGTYPE"),
        "{failed}"
    );
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    assert_eq!(stream_entries(&stream).await.len(), 1);

    // MAXLEN pressure is not a failure: old entries are trimmed, every XADD is acknowledged.
    let stream = unique("maxlen");
    server
        .webhook(
            json!({"kind": "redis", "url": REDIS, "target": {"stream": stream, "maxlen": 2},
                        "events": ["capped.*"]}),
        )
        .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let ev = server
            .emit(json!({"type": "capped.one", "data": {"i": i}}))
            .await;
        ids.push(only_delivery(&server, &ev).await);
    }
    for id in &ids {
        let d = server.delivery_with_status(id, "succeeded", WAIT).await;
        assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{d}");
    }
    server.stop().await;
}

async fn redis_exhausted_retries_end_in_the_dlq(backend: Backend) {
    let server = TestServer::start(backend).await;
    let port = free_port().await;
    let hook = server
        .webhook(
            json!({"kind": "redis", "url": format!("redis://127.0.0.1:{port}"),
                        "target": {"stream": unique("dlq")}, "retry_schedule_seconds": [0, 0]}),
        )
        .await;
    let ev = server.emit(json!({"type": "lost.one", "data": {}})).await;
    let delivery = only_delivery(&server, &ev).await;
    let d = server.delivery_with_status(&delivery, "failed", WAIT).await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 3, "{d}");
    let (_, dlq) = server
        .get(&format!(
            "/api/v1/dlq?webhook_id={}",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(dlq["data"][0]["delivery_id"], delivery.as_str(), "{dlq}");
    assert!(
        dlq["data"][0]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("redis:"),
        "{dlq}"
    );
    server.stop().await;
}

/// The stored `url` and `url_sealed` columns of a webhook, read straight from the database.
async fn stored_url(server: &TestServer, backend: Backend, id: &str) -> (String, Option<String>) {
    let sql = "SELECT url, url_sealed FROM webhooks WHERE id = $1";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&server.db_url).await.unwrap();
            let v = sqlx::query_as(sql).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            v
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server.db_url).await.unwrap();
            let v = sqlx::query_as(sql).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            v
        }
    }
}

async fn broker_webhooks_are_checked_and_credentials_sealed(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (body, field, needle) in [
        (
            json!({"kind": "redis", "url": "http://127.0.0.1:6379", "target": {"stream": "s"}}),
            "url",
            "redis://",
        ),
        (
            json!({"kind": "nats", "url": "redis://127.0.0.1:4222", "target": {"subject": "s"}}),
            "url",
            "nats://",
        ),
        (
            json!({"kind": "nats", "url": NATS, "target": {"stream": "s"}}),
            "target.stream",
            "unknown",
        ),
        (
            json!({"kind": "nats", "url": NATS, "target": {"subject": "a.*"}}),
            "target.subject",
            "wildcards",
        ),
        (
            json!({"kind": "rabbitmq", "url": "nats://127.0.0.1", "target": {"exchange": "x", "routing_key": "k"}}),
            "url",
            "amqp://",
        ),
        (
            json!({"kind": "rabbitmq", "url": AMQP, "target": {"exchange": "x"}}),
            "target.routing_key",
            "required",
        ),
        (json!({"kind": "redis", "url": REDIS}), "target", "required"),
        (
            json!({"kind": "redis", "url": REDIS, "target": {}}),
            "target.stream",
            "required",
        ),
        (
            json!({"kind": "redis", "url": REDIS, "target": {"stream": "s", "maxlen": 0}}),
            "target.maxlen",
            "positive",
        ),
        (
            json!({"kind": "redis", "url": REDIS, "target": {"stream": "s", "subject": "x"}}),
            "target.subject",
            "unknown",
        ),
        (
            json!({"kind": "redis", "url": "redis://10.1.2.3:6379", "target": {"stream": "s"}}),
            "url",
            "private",
        ),
        (
            json!({"url": "http://127.0.0.1:9/h", "target": {"stream": "s"}}),
            "target",
            "only",
        ),
        (
            json!({"kind": "redis", "url": REDIS, "target": {"stream": "s"}, "transform": "{}"}),
            "transform",
            "only",
        ),
    ] {
        let (status, err) = server.post("/api/v1/webhooks", body.clone()).await;
        assert_eq!(status, 422, "{body} → {err}");
        let detail = &err["error"]["details"][0];
        assert_eq!(detail["field"], field, "{body} → {err}");
        assert!(
            detail["message"].as_str().unwrap().contains(needle),
            "{body} → {err}"
        );
    }

    // A password in a broker URL is sealed at rest and never shown; PATCHing the shown form
    // back keeps it.
    let secret_url = "redis://hooks:pa55word@127.0.0.1:6379/0";
    let hook = server
        .webhook(
            json!({"kind": "redis", "url": secret_url, "target": {"stream": "s"}, "active": false}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    let shown = "redis://hooks:***@127.0.0.1:6379/0";
    assert_eq!(hook["url"], shown);
    let (_, read) = server.get(&format!("/api/v1/webhooks/{id}")).await;
    let (_, list) = server.get("/api/v1/webhooks").await;
    assert_eq!(read["url"], shown);
    assert!(!format!("{hook}{read}{list}").contains("pa55word"));
    let (url, sealed) = stored_url(&server, backend, id).await;
    assert_eq!(url, shown);
    let sealed = sealed.expect("the whole URL is sealed");
    assert!(
        sealed.starts_with("enc:v1:") && !sealed.contains("pa55word"),
        "{sealed}"
    );
    let (status, patched) = server
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            json!({"url": shown, "description": "x"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        stored_url(&server, backend, id)
            .await
            .1
            .as_deref()
            .map(|s| s.starts_with("enc:v1:")),
        Some(true)
    );
    // Without credentials nothing is sealed.
    let (status, patched) = server
        .patch(&format!("/api/v1/webhooks/{id}"), json!({"url": REDIS}))
        .await;
    assert_eq!(
        (status, patched["url"].as_str()),
        (200, Some(REDIS)),
        "{patched}"
    );
    assert_eq!(
        stored_url(&server, backend, id).await,
        (REDIS.to_owned(), None)
    );
    server.stop().await;
}

pub(super) async fn nats() -> async_nats::Client {
    async_nats::connect(NATS)
        .await
        .expect("NATS at 127.0.0.1:4222 (scripts/test checks it is running)")
}

fn nats_header(m: &async_nats::Message, name: &str) -> String {
    m.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_else(|| panic!("no header {name} in {:?}", m.headers))
}

async fn nats_core_message_arrives_with_headers_and_signature(backend: Backend) {
    use futures::StreamExt;
    let server = TestServer::start(backend).await;
    let subject = unique("core").replace('-', "_");
    let nc = nats().await;
    let mut sub = nc.subscribe(subject.clone()).await.unwrap();
    nc.flush().await.unwrap();
    let hook = server
        .webhook(
            json!({"kind": "nats", "url": NATS, "target": {"subject": subject},
                        "events": ["member.created"]}),
        )
        .await;
    let ev = server
        .emit(json!({"type": "member.created", "data": {"id": 7, "name": "Grace"}}))
        .await;
    let delivery = only_delivery(&server, &ev).await;
    let got = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    let envelope: Value = serde_json::from_slice(&got.payload).unwrap();
    assert_eq!(envelope["eventId"], ev["id"]);
    assert_eq!(envelope["data"], json!({"id": 7, "name": "Grace"}));
    assert_eq!(nats_header(&got, "webhook-id"), delivery);
    assert_eq!(nats_header(&got, "x-webhook-event"), "member.created");
    assert!(verify_standard_signature(
        hook["secret"].as_str().unwrap(),
        &nats_header(&got, "webhook-id"),
        &nats_header(&got, "webhook-timestamp"),
        &got.payload,
        &nats_header(&got, "webhook-signature"),
    ));
    let done = server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    assert_eq!(
        done["attempts"][0]["response_body"],
        format!("published to {subject}")
    );
    server.stop().await;
}

async fn nats_jetstream_acks_refusals_and_recovery(backend: Backend) {
    use async_nats::jetstream::stream::{Config, DiscardPolicy};
    let server = TestServer::start(backend).await;
    let js = async_nats::jetstream::new(nats().await);
    let quick = json!([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);

    // A stream binds the subject: the publish is acknowledged with the stream's sequence. The
    // stream takes one message only (discard new): the second is refused until it is purged.
    let name = unique("js").replace('-', "_").to_uppercase();
    let subject = format!("{}.orders", name.to_lowercase());
    let mut stream = js
        .create_stream(Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            max_messages: 1,
            discard: DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .unwrap();
    let hook = server
        .webhook(
            json!({"kind": "nats", "url": NATS, "target": {"subject": subject},
                        "events": ["order.*"], "retry_schedule_seconds": quick}),
        )
        .await;
    let ev = server
        .emit(json!({"type": "order.paid", "data": {"n": 1}}))
        .await;
    let first = only_delivery(&server, &ev).await;
    let done = server.delivery_with_status(&first, "succeeded", WAIT).await;
    assert_eq!(
        done["attempts"][0]["response_body"],
        format!("JetStream {name} seq 1")
    );
    let stored = stream.get_raw_message(1).await.unwrap();
    let headers = stored.headers;
    let header = |n: &str| headers.get(n).unwrap().as_str().to_owned();
    assert_eq!(header("webhook-id"), first);
    assert!(verify_standard_signature(
        hook["secret"].as_str().unwrap(),
        &header("webhook-id"),
        &header("webhook-timestamp"),
        &stored.payload,
        &header("webhook-signature"),
    ));
    let ev = server
        .emit(json!({"type": "order.paid", "data": {"n": 2}}))
        .await;
    let second = only_delivery(&server, &ev).await;
    let failed = first_failure(&server, &second).await;
    assert_eq!(failed["error_kind"], "broker", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("JetStream refused"),
        "{failed}"
    );
    stream.purge().await.unwrap();
    server
        .delivery_with_status(&second, "succeeded", WAIT)
        .await;
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    js.delete_stream(&name).await.unwrap();

    // `jetstream: true` and no stream binds the subject: refused until one is created.
    let name = unique("late").replace('-', "_").to_uppercase();
    let subject = format!("{}.events", name.to_lowercase());
    server
        .webhook(
            json!({"kind": "nats", "url": NATS, "target": {"subject": subject, "jetstream": true},
                        "events": ["late.*"], "retry_schedule_seconds": quick}),
        )
        .await;
    let ev = server.emit(json!({"type": "late.one", "data": {}})).await;
    let delivery = only_delivery(&server, &ev).await;
    let failed = first_failure(&server, &delivery).await;
    assert_eq!(failed["error_kind"], "broker", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("no JetStream stream"),
        "{failed}"
    );
    let mut stream = js
        .create_stream(Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    js.delete_stream(&name).await.unwrap();

    // Nothing listens on the port: connecting fails and is retried until a server answers.
    let port = free_port().await;
    let subject = unique("down").replace('-', "_");
    server
        .webhook(
            json!({"kind": "nats", "url": format!("nats://127.0.0.1:{port}"),
                        "target": {"subject": subject}, "events": ["down.*"],
                        "retry_schedule_seconds": quick}),
        )
        .await;
    let ev = server.emit(json!({"type": "down.one", "data": {}})).await;
    let delivery = only_delivery(&server, &ev).await;
    let failed = first_failure(&server, &delivery).await;
    assert_eq!(failed["error_kind"], "connect", "{failed}");
    let _up = Forwarder::start(port, "127.0.0.1:4222").await;
    server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    server.stop().await;
}

pub(super) async fn amqp() -> lapin::Channel {
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ at 127.0.0.1:5672 (scripts/test checks it is running)");
    // The connection lives as long as the channel's test: leak it rather than close it early.
    let conn = Box::leak(Box::new(conn));
    conn.create_channel().await.unwrap()
}

pub(super) async fn declare_exchange(ch: &lapin::Channel, name: &str) {
    ch.exchange_declare(
        name.into(),
        lapin::ExchangeKind::Direct,
        lapin::options::ExchangeDeclareOptions {
            auto_delete: false,
            ..Default::default()
        },
        lapin::types::FieldTable::default(),
    )
    .await
    .unwrap();
}

/// A queue bound to `exchange` with `key`.
pub(super) async fn bound_queue(ch: &lapin::Channel, exchange: &str, key: &str) -> String {
    let name = unique("q");
    ch.queue_declare(
        name.as_str().into(),
        lapin::options::QueueDeclareOptions::default(),
        lapin::types::FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        name.as_str().into(),
        exchange.into(),
        key.into(),
        lapin::options::QueueBindOptions::default(),
        lapin::types::FieldTable::default(),
    )
    .await
    .unwrap();
    name
}

async fn get_message(ch: &lapin::Channel, queue: &str) -> lapin::message::BasicGetMessage {
    eventually(WAIT, "a message in the queue", || async {
        ch.basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    })
    .await
}

fn amqp_header(m: &lapin::message::Delivery, name: &str) -> String {
    let headers = m.properties.headers().as_ref().expect("headers");
    match headers.inner().get(name) {
        Some(lapin::types::AMQPValue::LongString(s)) => {
            String::from_utf8_lossy(s.as_bytes()).into_owned()
        }
        other => panic!("header {name}: {other:?}"),
    }
}

pub(super) async fn cleanup(ch: &lapin::Channel, exchange: &str, queues: &[&str]) {
    for q in queues {
        let _ = ch
            .queue_delete((*q).into(), lapin::options::QueueDeleteOptions::default())
            .await;
    }
    let _ = ch
        .exchange_delete(
            exchange.into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await;
}

async fn rabbitmq_message_arrives_with_properties_and_signature(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ch = amqp().await;
    let exchange = unique("x");
    declare_exchange(&ch, &exchange).await;
    let queue = bound_queue(&ch, &exchange, "member.created").await;
    let hook = server
        .webhook(json!({"kind": "rabbitmq", "url": AMQP,
                        "target": {"exchange": exchange, "routing_key": "member.created"},
                        "events": ["member.created"]}))
        .await;
    // guest:guest is sealed at rest and shown redacted, and still used to connect.
    assert_eq!(hook["url"], "amqp://guest:***@127.0.0.1:5672/%2f");
    let ev = server
        .emit(json!({"type": "member.created", "data": {"id": 1, "name": "Lin"}}))
        .await;
    let delivery = only_delivery(&server, &ev).await;
    let got = get_message(&ch, &queue).await;
    let m = &got.delivery;
    let envelope: Value = serde_json::from_slice(&m.data).unwrap();
    assert_eq!(envelope["eventId"], ev["id"]);
    assert_eq!(envelope["data"], json!({"id": 1, "name": "Lin"}));
    assert_eq!(
        m.properties.message_id().as_ref().unwrap().as_str(),
        delivery
    );
    assert_eq!(
        m.properties.kind().as_ref().unwrap().as_str(),
        "member.created"
    );
    assert_eq!(
        m.properties.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(m.properties.delivery_mode(), &Some(2));
    assert_eq!(amqp_header(m, "x-webhook-event"), "member.created");
    assert!(verify_standard_signature(
        hook["secret"].as_str().unwrap(),
        &amqp_header(m, "webhook-id"),
        &amqp_header(m, "webhook-timestamp"),
        &m.data,
        &amqp_header(m, "webhook-signature"),
    ));
    let done = server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    assert_eq!(
        done["attempts"][0]["response_body"],
        format!("confirmed by {exchange} (routing key member.created)")
    );
    cleanup(&ch, &exchange, &[&queue]).await;
    server.stop().await;
}

async fn rabbitmq_refusals_fail_retry_and_recover(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ch = amqp().await;
    let quick = json!([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);

    // The exchange does not exist: the broker closes the channel (404); once it is declared
    // and a queue bound, the retry is confirmed.
    let exchange = unique("missing");
    server
        .webhook(json!({"kind": "rabbitmq", "url": AMQP,
                        "target": {"exchange": exchange, "routing_key": "k"},
                        "events": ["missing.*"], "retry_schedule_seconds": quick}))
        .await;
    let ev = server
        .emit(json!({"type": "missing.one", "data": {}}))
        .await;
    let delivery = only_delivery(&server, &ev).await;
    let failed = first_failure(&server, &delivery).await;
    assert_eq!(failed["error_kind"], "broker", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("NOT_FOUND"),
        "{failed}"
    );
    declare_exchange(&ch, &exchange).await;
    let queue = bound_queue(&ch, &exchange, "k").await;
    server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    get_message(&ch, &queue).await;
    cleanup(&ch, &exchange, &[&queue]).await;

    // The exchange exists but no queue takes the routing key: mandatory makes it unroutable,
    // a failure, until a queue is bound.
    let exchange = unique("noroute");
    declare_exchange(&ch, &exchange).await;
    server
        .webhook(json!({"kind": "rabbitmq", "url": AMQP,
                        "target": {"exchange": exchange, "routing_key": "paid"},
                        "events": ["noroute.*"], "retry_schedule_seconds": quick}))
        .await;
    let ev = server
        .emit(json!({"type": "noroute.one", "data": {}}))
        .await;
    let delivery = only_delivery(&server, &ev).await;
    let failed = first_failure(&server, &delivery).await;
    assert_eq!(failed["error_kind"], "broker", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("unroutable"),
        "{failed}"
    );
    let queue = bound_queue(&ch, &exchange, "paid").await;
    server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    get_message(&ch, &queue).await;

    // Nothing listens on the port: connecting fails and is retried until a broker answers.
    let port = free_port().await;
    server
        .webhook(
            json!({"kind": "rabbitmq", "url": format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
                        "target": {"exchange": exchange, "routing_key": "paid"},
                        "events": ["down.*"], "retry_schedule_seconds": quick}),
        )
        .await;
    let ev = server.emit(json!({"type": "down.one", "data": {}})).await;
    let delivery = only_delivery(&server, &ev).await;
    let failed = first_failure(&server, &delivery).await;
    assert_eq!(failed["error_kind"], "connect", "{failed}");
    let _up = Forwarder::start(port, "127.0.0.1:5672").await;
    server
        .delivery_with_status(&delivery, "succeeded", WAIT)
        .await;
    get_message(&ch, &queue).await;
    cleanup(&ch, &exchange, &[&queue]).await;
    server.stop().await;
}
