//! `kind: redis`: each delivery is one `XADD` to `target.stream` (`redis://` or `rediss://`),
//! its headers as fields and the envelope in `body`; the entry id Redis answers is the
//! acknowledgement. `target.maxlen` optionally caps the stream (`MAXLEN ~ N`): trimming old
//! entries is not a failure.

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use async_trait::async_trait;
use hookrelay_domain::validate::FieldError;
use hookrelay_domain::{ErrorKind, WebhookKind};
use serde_json::Value;

use super::broker::{only_fields, target_str, Broker, Destination, Failure, Message, Pool};

/// The field of a stream entry that holds the body.
pub const BODY_FIELD: &str = "body";

#[derive(Default)]
pub struct RedisStreams {
    pool: Pool<ConnectionManager>,
}

fn failure(e: &::redis::RedisError) -> Failure {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        ErrorKind::Connect
    } else {
        ErrorKind::Broker
    };
    (kind, format!("redis: {e}"))
}

impl RedisStreams {
    async fn connection(&self, broker: &Broker<'_>) -> Result<ConnectionManager, Failure> {
        self.pool
            .get(broker.url.as_str(), || async {
                let tls = broker.url.scheme() == "rediss";
                let url = broker.connect_url(tls).await?;
                let client = ::redis::Client::open(url.as_str())
                    .map_err(|e| (ErrorKind::Other, format!("redis: {e}")))?;
                // The manager reconnects by itself (with backoff) when the connection drops;
                // each command stays bounded by the delivery timeout.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(broker.timeout))
                    .set_response_timeout(Some(broker.timeout))
                    .set_number_of_retries(3)
                    .set_max_delay(std::time::Duration::from_secs(5));
                ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(|e| failure(&e))
            })
            .await
    }
}

#[async_trait]
impl Destination for RedisStreams {
    fn kind(&self) -> WebhookKind {
        WebhookKind::Redis
    }

    fn schemes(&self) -> &'static [(&'static str, bool)] {
        &[("redis", false), ("rediss", true)]
    }

    fn check_target(&self, target: &Value) -> Result<(), FieldError> {
        only_fields(target, &["stream", "maxlen"])?;
        target_str(target, "stream")?;
        match target.get("maxlen") {
            None | Some(Value::Null) => Ok(()),
            Some(v) if v.as_u64().is_some_and(|n| n >= 1) => Ok(()),
            Some(_) => Err(FieldError::new(
                "target.maxlen",
                "must be a positive integer",
            )),
        }
    }

    async fn publish(
        &self,
        broker: &Broker<'_>,
        target: &Value,
        message: &Message<'_>,
    ) -> Result<String, Failure> {
        let stream = target
            .get("stream")
            .and_then(Value::as_str)
            .ok_or((ErrorKind::Render, "the target has no stream".to_owned()))?;
        let mut conn = self.connection(broker).await?;
        let mut cmd = ::redis::cmd("XADD");
        cmd.arg(stream);
        if let Some(max) = target.get("maxlen").and_then(Value::as_u64) {
            cmd.arg("MAXLEN").arg("~").arg(max);
        }
        cmd.arg("*");
        for (name, value) in message.headers {
            if name != BODY_FIELD {
                cmd.arg(name).arg(value);
            }
        }
        cmd.arg(BODY_FIELD).arg(message.body);
        let id: String = cmd.query_async(&mut conn).await.map_err(|e| failure(&e))?;
        Ok(format!("XADD {stream} {id}"))
    }
}
