//! Session tokens (`hrs_` + 43 base62 characters) and the login throttle. Tokens are stored as
//! SHA-256 hashes like API keys; this throttle counts failures per account and per client
//! address in memory (one node, SQLite); nodes on PostgreSQL count them in the store instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::keys::{hash_api_key, random_base62};

const TOKEN_CHARS: usize = 43;

pub fn generate_session_token() -> String {
    format!("hrs_{}", random_base62(TOKEN_CHARS))
}

pub fn looks_like_session_token(token: &str) -> bool {
    token
        .strip_prefix("hrs_")
        .is_some_and(|b| b.len() == TOKEN_CHARS && b.bytes().all(|c| c.is_ascii_alphanumeric()))
}

pub fn hash_session_token(token: &str) -> String {
    hash_api_key(token)
}

/// Failures counted in a fixed window that starts at the first failure.
#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

/// Refuses logins after `max_failures` failed attempts for one account or from one address
/// within `window`, until the window has passed. A success clears the account's count (not
/// the address's: an attacker holding one valid account must not reset a spraying budget).
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    accounts: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<IpAddr, Failures>>,
}

/// Entries kept per map before stale ones are swept, bounding memory under a spray of emails.
const MAX_TRACKED: usize = 100_000;

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            accounts: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when either the account or the address is locked out now.
    pub fn check(&self, email: &str, addr: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let account = Self::locked(&self.accounts, email, self.max_failures, self.window, now);
        let address = addr.and_then(|a| {
            Self::locked(&self.addresses, &a, self.max_failures * 4, self.window, now)
        });
        match account.into_iter().chain(address).max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, email: &str, addr: Option<IpAddr>) {
        let now = Instant::now();
        Self::bump(&self.accounts, email.to_owned(), self.window, now);
        if let Some(a) = addr {
            Self::bump(&self.addresses, a, self.window, now);
        }
    }

    pub fn record_success(&self, email: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(email);
    }

    fn locked<K, Q>(
        map: &Mutex<HashMap<K, Failures>>,
        key: &Q,
        max: u32,
        window: Duration,
        now: Instant,
    ) -> Option<Duration>
    where
        K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let map = map.lock().unwrap_or_else(|p| p.into_inner());
        let f = map.get(key)?;
        let elapsed = now.duration_since(f.since);
        (f.count >= max && elapsed < window).then(|| window - elapsed)
    }

    fn bump<K: std::hash::Hash + Eq>(
        map: &Mutex<HashMap<K, Failures>>,
        key: K,
        window: Duration,
        now: Instant,
    ) {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, f| now.duration_since(f.since) < window);
        }
        let entry = map.entry(key).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now.duration_since(entry.since) >= window {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_distinct() {
        let t = generate_session_token();
        assert!(looks_like_session_token(&t), "{t}");
        assert_ne!(t, generate_session_token());
        assert!(!looks_like_session_token("hr_abc"));
        assert!(!looks_like_session_token(&format!(
            "hrs_{}!",
            "a".repeat(42)
        )));
    }

    #[test]
    fn an_account_locks_after_max_failures_and_success_clears_it() {
        let t = LoginThrottle::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..2 {
            t.record_failure("a@x", Some(ip));
        }
        assert!(t.check("a@x", Some(ip)).is_ok());
        t.record_success("a@x");
        for _ in 0..3 {
            t.record_failure("a@x", Some(ip));
        }
        let wait = t.check("a@x", None).unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        // Another account from another address is unaffected.
        assert!(t.check("b@x", Some("10.0.0.2".parse().unwrap())).is_ok());
    }

    #[test]
    fn an_address_locks_after_spraying_many_accounts() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        for i in 0..8 {
            t.record_failure(&format!("user{i}@x"), Some(ip));
        }
        assert!(t.check("fresh@x", Some(ip)).is_err());
        assert!(t
            .check("fresh@x", Some("10.0.0.10".parse().unwrap()))
            .is_ok());
    }

    #[test]
    fn a_lockout_ends_with_its_window() {
        let t = LoginThrottle::new(1, Duration::from_millis(1));
        t.record_failure("a@x", None);
        std::thread::sleep(Duration::from_millis(5));
        assert!(t.check("a@x", None).is_ok());
    }
}
