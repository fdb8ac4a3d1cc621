//! A Server-Sent Events reader for `GET /api/v1/stream`: frames parsed from the raw body as a
//! browser would, each an event name and its JSON data, waited for with deadlines.

use std::time::{Duration, Instant};

use serde_json::Value;

pub struct SseReader {
    body: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// Opens the stream with `token`; panics unless it answers 200 `text/event-stream`.
    pub async fn open(base: &str, token: &str) -> Self {
        let resp = reqwest::Client::new()
            .get(format!("{base}/api/v1/stream"))
            .bearer_auth(token)
            .send()
            .await
            .expect("open the stream");
        assert_eq!(resp.status(), 200, "stream status");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        Self {
            body: resp,
            buffer: String::new(),
        }
    }

    /// The next frame with an event name (comments are skipped), or `None` at the deadline or
    /// when the stream ends.
    pub async fn next(&mut self, deadline: Instant) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                match name {
                    Some(name) => {
                        let value = serde_json::from_str(&data)
                            .unwrap_or_else(|e| panic!("frame {name}: bad JSON {data:?}: {e}"));
                        return Some((name, value));
                    }
                    None => continue,
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.body.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Err(e)) => panic!("stream broke: {e}"),
                Ok(Ok(None)) | Err(_) => return None,
            }
        }
    }

    /// Reads frames until one satisfies `wanted`; panics with `what` after `within`.
    pub async fn until(
        &mut self,
        within: Duration,
        what: &str,
        mut wanted: impl FnMut(&str, &Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while let Some((name, data)) = self.next(deadline).await {
            if wanted(&name, &data) {
                return data;
            }
            seen.push(format!("{name} {data}"));
        }
        panic!(
            "no {what} on the stream within {within:?}; saw {} frames: {:?}",
            seen.len(),
            &seen[seen.len().saturating_sub(10)..]
        );
    }
}
