//! Broker consumers of the bench (`--kind nats|rabbitmq|redis`): name each webhook's subject,
//! routing key or stream, read what the server published there, and feed the receiver's ledger.
//!
//! Each webhook's destination carries its index (`t<i>.w<j>` in a subject or routing key,
//! `t<i>:w<j>` in a stream key) and a run id, so runs never read each other's messages; the
//! message's headers are the HTTP delivery's (`webhook-id`, `webhook-signature`, …) and its
//! body the envelope, so the same ledger and signature check apply.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures::StreamExt;
use rand::Rng;
use serde_json::{json, Value};

use crate::cli::Kind;
use crate::receiver::{Delivered, SignatureHeaders, Sink};

/// A running consumer: reads until stopped, then removes what the run created on the broker.
pub struct Consumer {
    kind: Kind,
    url: String,
    run: String,
    task: tokio::task::JoinHandle<()>,
}

/// The names a run uses on the broker.
fn subject(run: &str, i: u32, j: u32) -> String {
    format!("hrbench.{run}.t{i}.w{j}")
}

fn exchange(run: &str) -> String {
    format!("hrbench-{run}")
}

fn stream(run: &str, i: u32, j: u32) -> String {
    format!("hrbench:{run}:t{i}:w{j}")
}

/// Every stream of a run, in webhook-index order.
fn streams(run: &str, tenants: u32, per_tenant: u32) -> Vec<String> {
    (0..tenants)
        .flat_map(|i| (0..per_tenant).map(move |j| stream(run, i, j)))
        .collect()
}

/// `…t<i><sep>w<j>` at the end of a name → the global webhook index, when both are in range.
fn webhook_index(name: &str, sep: char, tenants: u32, per_tenant: u32) -> Option<u32> {
    let (head, w) = name.rsplit_once(sep)?;
    let (_, t) = head.rsplit_once(sep).unwrap_or(("", head));
    let i: u32 = t.strip_prefix('t')?.parse().ok()?;
    let j: u32 = w.strip_prefix('w')?.parse().ok()?;
    (i < tenants && j < per_tenant).then(|| i * per_tenant + j)
}

impl Consumer {
    /// Prepares the broker (the exchange and a queue bound to it for RabbitMQ) and starts
    /// reading; webhooks are created after this, so nothing published is missed.
    pub async fn start(kind: Kind, url: &str, sink: Sink) -> Result<Consumer> {
        let run: String = {
            let mut rng = rand::thread_rng();
            (0..8)
                .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
                .collect()
        };
        let task = match kind {
            Kind::Http => return Err(anyhow!("http deliveries go to the receiver")),
            Kind::Nats => start_nats(url, &run, sink).await?,
            Kind::Rabbitmq => start_rabbitmq(url, &run, sink).await?,
            Kind::Redis => start_redis(url, &run, sink).await?,
        };
        Ok(Consumer {
            kind,
            url: url.to_owned(),
            run,
            task,
        })
    }

    /// The body that creates webhook `j` of tenant `i`, publishing where this consumer reads.
    pub fn webhook_body(&self, i: u32, j: u32) -> Value {
        let target = match self.kind {
            Kind::Http => Value::Null,
            Kind::Nats => json!({"subject": subject(&self.run, i, j)}),
            Kind::Rabbitmq => {
                json!({"exchange": exchange(&self.run), "routing_key": format!("t{i}.w{j}")})
            }
            Kind::Redis => json!({"stream": stream(&self.run, i, j)}),
        };
        json!({"kind": self.kind.name(), "url": self.url, "target": target, "events": ["bench.*"]})
    }

    /// Stops reading and deletes the run's exchange or streams.
    pub async fn stop(self, tenants: u32, per_tenant: u32) -> Result<()> {
        self.task.abort();
        match self.kind {
            Kind::Rabbitmq => {
                let conn =
                    lapin::Connection::connect(&self.url, lapin::ConnectionProperties::default())
                        .await?;
                let ch = conn.create_channel().await?;
                ch.exchange_delete(
                    exchange(&self.run).as_str().into(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await?;
                let _ = conn.close(200, "bench done".into()).await;
            }
            Kind::Redis => {
                let client = redis::Client::open(self.url.as_str())?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                let keys = streams(&self.run, tenants, per_tenant);
                let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
            }
            Kind::Nats | Kind::Http => {}
        }
        Ok(())
    }
}

/// Feeds one message to the ledger: `header` looks a delivery header up by its name.
fn deliver(
    sink: &Sink,
    widx: Option<u32>,
    where_: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
) {
    let arrived = Instant::now();
    let verify = sink.verify_next();
    let Some(widx) = widx else {
        sink.malformed(format!(
            "a message on {where_}, which names no webhook of the run"
        ));
        return;
    };
    sink.accept(Delivered {
        widx,
        arrived,
        attempt: header("x-webhook-attempt").and_then(|v| v.parse().ok()),
        signature: verify.then(|| SignatureHeaders {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
        }),
        body,
    });
}

async fn start_nats(url: &str, run: &str, sink: Sink) -> Result<tokio::task::JoinHandle<()>> {
    let client = async_nats::connect(url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    let mut sub = client
        .subscribe(format!("hrbench.{run}.>"))
        .await
        .context("subscribing")?;
    // The subscription is registered on the server before any webhook exists.
    client.flush().await.context("flushing the subscription")?;
    Ok(tokio::spawn(async move {
        let _client = client;
        while let Some(m) = sub.next().await {
            let header = |name: &str| {
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_owned())
            };
            let widx = webhook_index(m.subject.as_str(), '.', sink.tenants(), sink.per_tenant());
            deliver(&sink, widx, m.subject.as_str(), header, &m.payload);
        }
    }))
}

async fn start_rabbitmq(url: &str, run: &str, sink: Sink) -> Result<tokio::task::JoinHandle<()>> {
    use lapin::options::{
        BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    };
    use lapin::types::{AMQPValue, FieldTable};
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let ch = conn.create_channel().await?;
    let exchange = exchange(run);
    ch.exchange_declare(
        exchange.as_str().into(),
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .context("declaring the bench's exchange")?;
    let queue = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("declaring the bench's queue")?;
    ch.queue_bind(
        queue.name().clone(),
        exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let mut consumer = ch
        .basic_consume(
            queue.name().clone(),
            "hookrelay-bench".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("consuming")?;
    Ok(tokio::spawn(async move {
        let _keep = (conn, ch);
        while let Some(Ok(d)) = consumer.next().await {
            let headers = d.properties.headers().clone().unwrap_or_default();
            let header = |name: &str| match headers.inner().get(name) {
                Some(AMQPValue::LongString(s)) => {
                    Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                }
                _ => None,
            };
            let key = d.routing_key.as_str();
            let widx = webhook_index(key, '.', sink.tenants(), sink.per_tenant());
            deliver(&sink, widx, key, header, &d.data);
        }
    }))
}

async fn start_redis(url: &str, run: &str, sink: Sink) -> Result<tokio::task::JoinHandle<()>> {
    let client = redis::Client::open(url).with_context(|| format!("the Redis URL {url}"))?;
    // A connection of its own: XREAD BLOCK holds it while it waits.
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to Redis at {url}"))?;
    let keys = streams(run, sink.tenants(), sink.per_tenant());
    Ok(tokio::spawn(async move {
        let mut last: Vec<String> = vec!["0-0".to_owned(); keys.len()];
        loop {
            let reply: redis::RedisResult<Option<redis::streams::StreamReadReply>> =
                redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(1000)
                    .arg("BLOCK")
                    .arg(200)
                    .arg("STREAMS")
                    .arg(&keys)
                    .arg(&last)
                    .query_async(&mut conn)
                    .await;
            let reply = match reply {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    sink.malformed(format!("XREAD failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            for key in reply.keys {
                let widx = webhook_index(&key.key, ':', sink.tenants(), sink.per_tenant());
                let Some(pos) = keys.iter().position(|k| *k == key.key) else {
                    continue;
                };
                for entry in &key.ids {
                    let field = |name: &str| match entry.map.get(name) {
                        Some(redis::Value::BulkString(b)) => Some(b.as_slice()),
                        _ => None,
                    };
                    let header =
                        |name: &str| field(name).map(|b| String::from_utf8_lossy(b).into_owned());
                    deliver(&sink, widx, &key.key, header, field("body").unwrap_or(b""));
                }
                if let Some(entry) = key.ids.last() {
                    last[pos] = entry.id.clone();
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_run_and_the_webhook_index() {
        assert_eq!(subject("abc", 2, 7), "hrbench.abc.t2.w7");
        assert_eq!(stream("abc", 0, 3), "hrbench:abc:t0:w3");
        assert_eq!(exchange("abc"), "hrbench-abc");
    }

    #[test]
    fn a_name_maps_back_to_its_webhook_index() {
        assert_eq!(webhook_index("hrbench.abc.t2.w7", '.', 3, 10), Some(27));
        assert_eq!(webhook_index("t0.w1", '.', 1, 2), Some(1));
        assert_eq!(webhook_index("hrbench:abc:t1:w0", ':', 2, 1), Some(1));
        assert_eq!(webhook_index("hrbench.abc.t3.w0", '.', 3, 10), None);
        assert_eq!(webhook_index("hrbench.abc.t0.w10", '.', 3, 10), None);
        assert_eq!(webhook_index("hrbench.abc.x.y", '.', 3, 10), None);
    }
}
