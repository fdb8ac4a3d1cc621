//! Per-source token buckets, in memory on each node: a source may send `per_min` requests a
//! minute, with bursts up to `per_min`. Time is passed in, so the arithmetic is testable.

use std::collections::HashMap;
use std::sync::Mutex;

use hookrelay_domain::time::Millis;

struct Bucket {
    tokens: f64,
    at: Millis,
    per_min: u32,
}

/// Buckets beyond this many are dropped wholesale (they refill to full anyway when idle).
const MAX_BUCKETS: usize = 100_000;

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket, or says in how many seconds one will be there.
    pub fn take(&self, key: &str, per_min: u32, now: Millis) -> Result<(), u64> {
        let per_min = per_min.max(1);
        let rate_per_ms = f64::from(per_min) / 60_000.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            buckets.clear();
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: f64::from(per_min),
            at: now,
            per_min,
        });
        if bucket.per_min != per_min {
            // The limit was changed: start over at the new size rather than carry odd debt.
            *bucket = Bucket {
                tokens: f64::from(per_min),
                at: now,
                per_min,
            };
        }
        let elapsed = (now - bucket.at).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * rate_per_ms).min(f64::from(per_min));
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = (1.0 - bucket.tokens) / rate_per_ms;
            Err(((wait_ms / 1000.0).ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let rl = RateLimiter::default();
        let t0 = 1_000_000;
        for i in 0..100 {
            assert!(rl.take("s", 100, t0).is_ok(), "request {i} of the burst");
        }
        // 100/min is one token every 600 ms.
        assert_eq!(rl.take("s", 100, t0), Err(1));
        assert_eq!(rl.take("s", 100, t0 + 599), Err(1));
        assert!(rl.take("s", 100, t0 + 600).is_ok());
        assert!(rl.take("s", 100, t0 + 700).is_err());
        // Sources do not share buckets.
        assert!(rl.take("other", 100, t0).is_ok());
    }

    #[test]
    fn retry_after_reflects_slow_limits() {
        let rl = RateLimiter::default();
        assert!(rl.take("s", 1, 0).is_ok());
        assert_eq!(rl.take("s", 1, 0), Err(60));
        assert_eq!(rl.take("s", 1, 30_000), Err(30));
        assert!(rl.take("s", 1, 60_000).is_ok());
    }

    #[test]
    fn a_changed_limit_applies_at_once() {
        let rl = RateLimiter::default();
        assert!(rl.take("s", 1, 0).is_ok());
        assert!(rl.take("s", 1, 0).is_err());
        assert!(rl.take("s", 1000, 0).is_ok());
    }
}
