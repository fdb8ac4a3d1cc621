//! `kind: nats`: each delivery is published to `target.subject` (`nats://`, `tls://`) with its
//! headers as NATS headers. When a JetStream stream binds the subject the publish goes through
//! JetStream and the stream's ack (`Nats-Msg-Id` = the delivery id, so a retried publish is
//! deduplicated) is the acknowledgement; otherwise it is a core publish acknowledged by a flush
//! (the server has read it). `"jetstream": true` in the target requires a stream: a subject no
//! stream binds is then a failed attempt. Credentials: `nats://user:pass@…`, or a token as the
//! user (`nats://token@…`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_trait::async_trait;
use hookrelay_domain::validate::FieldError;
use hookrelay_domain::{ErrorKind, WebhookKind};
use serde_json::Value;

use super::broker::{only_fields, target_str, Broker, Destination, Failure, Message, Pool};

/// How long which stream binds a subject (or that none does) is remembered before asking the
/// server again: a stream created or removed is noticed within this.
const BINDING_TTL: Duration = Duration::from_secs(2);

/// `(broker URL, subject)` → the stream binding it (`None`: none), and when that was learnt.
type Bindings = HashMap<(String, String), (Option<String>, Instant)>;

#[derive(Default)]
pub struct Nats {
    pool: Pool<async_nats::Client>,
    bindings: Mutex<Bindings>,
}

fn broker_err(what: &str, e: impl std::fmt::Display) -> Failure {
    (ErrorKind::Broker, format!("nats: {what}: {e}"))
}

impl Nats {
    async fn client(&self, broker: &Broker<'_>) -> Result<async_nats::Client, Failure> {
        self.pool
            .get(broker.url.as_str(), || async {
                let tls = broker.url.scheme() == "tls";
                let mut url = broker.connect_url(tls).await?;
                let mut options = async_nats::ConnectOptions::new()
                    // Servers a cluster advertises were never checked against the address policy.
                    .ignore_discovered_servers()
                    .connection_timeout(broker.timeout)
                    .request_timeout(Some(broker.timeout))
                    .reconnect_delay_callback(|n| {
                        Duration::from_millis(100u64.saturating_mul(1 << n.min(6)))
                            .min(Duration::from_secs(5))
                    });
                let user = percent_decode(url.username());
                match (user.is_empty(), url.password().map(percent_decode)) {
                    (false, Some(pass)) => options = options.user_and_password(user, pass),
                    (false, None) => options = options.token(user),
                    _ => {}
                }
                let _ = url.set_username("");
                let _ = url.set_password(None);
                if tls {
                    options = options.require_tls(true);
                    let _ = url.set_scheme("tls");
                }
                options
                    .connect(url.as_str())
                    .await
                    .map_err(|e| (ErrorKind::Connect, format!("nats: connecting: {e}")))
            })
            .await
    }

    /// The stream bound to `subject`, from the cache or the server.
    async fn binding(
        &self,
        key: &str,
        js: &async_nats::jetstream::Context,
        subject: &str,
    ) -> Result<Option<String>, Failure> {
        let cache_key = (key.to_owned(), subject.to_owned());
        if let Some((stream, at)) = self
            .bindings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
        {
            if at.elapsed() < BINDING_TTL {
                return Ok(stream.clone());
            }
        }
        use async_nats::jetstream::context::GetStreamByNameErrorKind as K;
        let found = match js.stream_by_subject(subject).await {
            Ok(name) => Some(name),
            Err(e) if e.kind() == K::NotFound => None,
            // A server without JetStream answers no one: core publishing only.
            Err(e) if e.to_string().contains("no responders") => None,
            Err(e) => return Err(broker_err("looking up the stream of the subject", e)),
        };
        self.bindings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cache_key, (found.clone(), Instant::now()));
        Ok(found)
    }
}

/// Decodes `%XX` escapes of a URL's user or password.
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait]
impl Destination for Nats {
    fn kind(&self) -> WebhookKind {
        WebhookKind::Nats
    }

    fn schemes(&self) -> &'static [(&'static str, bool)] {
        &[("nats", false), ("tls", true)]
    }

    fn check_target(&self, target: &Value) -> Result<(), FieldError> {
        only_fields(target, &["subject", "jetstream"])?;
        let subject = target_str(target, "subject")?;
        let ok = subject
            .split('.')
            .all(|t| !t.is_empty() && t != "*" && t != ">" && !t.contains(['*', '>']));
        if !ok {
            return Err(FieldError::new(
                "target.subject",
                "must be a NATS subject of dot-separated tokens, without wildcards",
            ));
        }
        match target.get("jetstream") {
            None | Some(Value::Null | Value::Bool(_)) => Ok(()),
            Some(_) => Err(FieldError::new("target.jetstream", "must be a boolean")),
        }
    }

    async fn publish(
        &self,
        broker: &Broker<'_>,
        target: &Value,
        message: &Message<'_>,
    ) -> Result<String, Failure> {
        let subject = target
            .get("subject")
            .and_then(Value::as_str)
            .ok_or((ErrorKind::Render, "the target has no subject".to_owned()))?;
        let required = target.get("jetstream").and_then(Value::as_bool) == Some(true);
        let client = self.client(broker).await?;
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in message.headers {
            headers.insert(name.as_str(), value.as_str());
        }
        let payload = bytes::Bytes::copy_from_slice(message.body);
        let mut js = async_nats::jetstream::new(client.clone());
        js.set_timeout(broker.timeout);
        match self.binding(broker.url.as_str(), &js, subject).await? {
            Some(_) => {
                headers.insert("Nats-Msg-Id", message.delivery_id);
                let ack = js
                    .publish_with_headers(subject.to_owned(), headers, payload)
                    .await
                    .map_err(|e| broker_err("publishing", e))?
                    .await
                    .map_err(|e| {
                        let kind = match e.kind() {
                            PublishErrorKind::TimedOut => ErrorKind::Timeout,
                            PublishErrorKind::BrokenPipe => ErrorKind::Connect,
                            _ => ErrorKind::Broker,
                        };
                        (kind, format!("nats: JetStream refused the message: {e}"))
                    })?;
                Ok(format!(
                    "JetStream {} seq {}{}",
                    ack.stream,
                    ack.sequence,
                    if ack.duplicate { " (duplicate)" } else { "" }
                ))
            }
            None if required => Err((
                ErrorKind::Broker,
                format!("nats: no JetStream stream binds the subject {subject}"),
            )),
            None => {
                client
                    .publish_with_headers(subject.to_owned(), headers, payload)
                    .await
                    .map_err(|e| (ErrorKind::Connect, format!("nats: publishing: {e}")))?;
                client
                    .flush()
                    .await
                    .map_err(|e| (ErrorKind::Connect, format!("nats: flushing: {e}")))?;
                Ok(format!("published to {subject}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        let n = Nats::default();
        assert!(n
            .check_target(&serde_json::json!({"subject": "orders.created"}))
            .is_ok());
        assert!(n
            .check_target(&serde_json::json!({"subject": "a", "jetstream": true}))
            .is_ok());
        for bad in ["orders.*", "a..b", ">", "a.>"] {
            let e = n
                .check_target(&serde_json::json!({"subject": bad}))
                .unwrap_err();
            assert_eq!(e.field, "target.subject", "{bad}");
        }
        assert_eq!(
            n.check_target(&serde_json::json!({"subject": "a", "jetstream": "yes"}))
                .unwrap_err()
                .field,
            "target.jetstream"
        );
        assert_eq!(percent_decode("p%40ss%3Aw"), "p@ss:w");
        assert_eq!(percent_decode("50%"), "50%");
    }
}
