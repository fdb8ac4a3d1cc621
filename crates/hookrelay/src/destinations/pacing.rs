//! Honours what a chat service told us about a webhook's rate limit: after a `429` or an
//! exhausted bucket, this process holds the webhook's next sends until the time it was given.
//!
//! This is reactive only (what the service said); the proactive per-webhook rate lives in the
//! worker's limiter, fed by `default_rate_limit`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest this process waits in place before a send. A longer pause (a global rate limit of
/// minutes) is not slept through while holding a worker slot: the send goes out, is answered
/// `429` again, and that delivery is rescheduled by the retry path instead.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Pacer {
    gates: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    /// How long a send to `webhook` should wait now (zero when it may go).
    pub fn wait_for(&self, webhook: &str) -> Duration {
        let Ok(gates) = self.gates.lock() else {
            return Duration::ZERO;
        };
        gates
            .get(webhook)
            .map(|at| at.saturating_duration_since(Instant::now()).min(MAX_WAIT))
            .unwrap_or(Duration::ZERO)
    }

    /// Waits until `webhook` may be sent to (at most `MAX_WAIT`).
    pub async fn wait_turn(&self, webhook: &str) {
        let wait = self.wait_for(webhook);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Records that the service asked `webhook` to pause for `delay` from now.
    pub fn hold(&self, webhook: &str, delay: Duration) {
        let Ok(mut gates) = self.gates.lock() else {
            return;
        };
        let now = Instant::now();
        if gates.len() > 10_000 {
            gates.retain(|_, at| *at > now);
        }
        let until = now + delay;
        let gate = gates.entry(webhook.to_owned()).or_insert(until);
        if *gate < until {
            *gate = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_only_the_named_webhook_and_only_until_told() {
        let p = Pacer::default();
        assert_eq!(p.wait_for("wh_a"), Duration::ZERO);
        p.hold("wh_a", Duration::from_millis(200));
        assert!(p.wait_for("wh_a") > Duration::from_millis(100));
        assert_eq!(p.wait_for("wh_b"), Duration::ZERO);
        // A shorter hold does not shorten a longer one.
        p.hold("wh_a", Duration::from_millis(1));
        assert!(p.wait_for("wh_a") > Duration::from_millis(100));
        let start = Instant::now();
        p.wait_turn("wh_a").await;
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert_eq!(p.wait_for("wh_a"), Duration::ZERO);
        p.hold("wh_c", Duration::from_secs(3600));
        assert_eq!(p.wait_for("wh_c"), MAX_WAIT);
    }
}
