//! Per-source rate limits: a source may send `per_min` requests a minute, with bursts up to
//! `per_min`. Token buckets in memory on one node (SQLite); tokens leased from the database
//! when nodes share one (PostgreSQL), a few at a time, so the limit holds for all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookrelay_domain::time::Millis;

use crate::store::{RateLease, Store};

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

/// How long leased tokens stay usable on this node: unused ones are given up (never owed).
const LEASED_TOKENS_LAST: Duration = Duration::from_secs(1);

/// Most tokens leased at once: about a second of the source's steady rate, so a node holds
/// little that another node could have used.
fn lease_size(per_min: u32) -> u32 {
    (per_min / 60).clamp(1, 50)
}

#[derive(Default)]
struct Leased {
    tokens: u32,
    expires: Option<Instant>,
    refused_until: Option<Instant>,
}

/// The source limits shared by every node on one database (`Store::lease_rate_slots`, one row
/// per source and limit). The store's clock decides, so nodes' clocks may differ. If the store
/// fails, this node's own buckets decide until it is back.
pub struct SharedRateLimiter {
    store: Arc<dyn Store>,
    leased: Mutex<HashMap<String, Leased>>,
    fallback: RateLimiter,
}

impl SharedRateLimiter {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            leased: Mutex::new(HashMap::new()),
            fallback: RateLimiter::default(),
        }
    }

    /// Takes one of `key`'s tokens, or says in how many seconds one will be there.
    pub async fn take(&self, key: &str, per_min: u32, now: Millis) -> Result<(), u64> {
        let per_min = per_min.max(1);
        // A changed limit is a new key: it starts full, as on one node.
        let key = format!("source:{key}:{per_min}");
        if let Some(answer) = self.take_leased(&key, Instant::now()) {
            return answer;
        }
        let interval_us = 60_000_000 / i64::from(per_min);
        let lease = RateLease {
            key: key.clone(),
            interval_us,
            // A burst of `per_min`: the last of them starts `per_min - 1` intervals ahead.
            horizon_us: interval_us * (i64::from(per_min) - 1),
            wanted: lease_size(per_min),
        };
        let grant = match self.store.lease_rate_slots(&[lease], now * 1000).await {
            Ok(grants) => grants.first().copied(),
            Err(e) => {
                tracing::warn!(error = %e, "leasing inbound rate-limit tokens failed; this node's own limit applies");
                None
            }
        };
        let Some(grant) = grant else {
            return self.fallback.take(&key, per_min, now);
        };
        let at = Instant::now();
        let mut leased = self.leased.lock().unwrap_or_else(|p| p.into_inner());
        if leased.len() >= MAX_BUCKETS && !leased.contains_key(&key) {
            leased.clear();
        }
        let entry = leased.entry(key).or_default();
        if grant.granted == 0 {
            let wait = Duration::from_micros(grant.first_in_us as u64);
            entry.refused_until = Some(at + wait);
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        // One token is this request's; the rest serve the next ones on this node for a while.
        entry.tokens = grant.granted - 1;
        entry.expires = Some(at + LEASED_TOKENS_LAST);
        entry.refused_until = None;
        Ok(())
    }

    /// Answers from tokens already leased or a refusal still running, if either applies.
    fn take_leased(&self, key: &str, now: Instant) -> Option<Result<(), u64>> {
        let mut leased = self.leased.lock().unwrap_or_else(|p| p.into_inner());
        let entry = leased.get_mut(key)?;
        if entry.tokens > 0 && entry.expires.is_some_and(|e| e > now) {
            entry.tokens -= 1;
            return Some(Ok(()));
        }
        let until = entry.refused_until.filter(|u| *u > now)?;
        Some(Err((until - now).as_secs_f64().ceil().max(1.0) as u64))
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
