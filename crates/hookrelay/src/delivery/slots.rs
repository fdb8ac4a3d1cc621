//! Rate limits shared by the nodes on one database: each webhook's and tenant's queue of send
//! times leased from the store (`Store::lease_rate_slots`), what to lease next, and when to ask.
//! One lease per limited key per claimed batch, never a round trip per delivery.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::store::{RateGrant, RateLease};

/// How far ahead a leased slot may start. A delivery holding a slot waits for it on its task
/// (holding its worker slot), so this bounds that wait; it also bounds the slots one node may
/// hold that another could have used.
pub const LEASE_HORIZON: Duration = Duration::from_millis(250);

/// Most slots asked for one key at once.
const MAX_LEASE: u32 = 512;

/// Spacing of slots for `rate` sends a second.
pub fn interval(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate.max(0.001))
}

#[derive(Debug)]
struct SlotQueue {
    interval: Duration,
    slots: VecDeque<Instant>,
    /// No slot can be leased before this (the store said so).
    refused_until: Option<Instant>,
}

impl SlotQueue {
    /// Forgets slots more than one interval in the past: sending on them now would bunch sends
    /// closer than the rate allows.
    fn drop_stale(&mut self, now: Instant) {
        while self.slots.front().is_some_and(|s| *s + self.interval < now) {
            self.slots.pop_front();
        }
    }

    fn refused(&self, now: Instant) -> Option<Duration> {
        self.refused_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }
}

/// The leased slots of one kind of key (`webhook:` or `tenant:`).
#[derive(Debug)]
pub struct SharedSlots {
    prefix: &'static str,
    queues: HashMap<String, SlotQueue>,
}

impl SharedSlots {
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            queues: HashMap::new(),
        }
    }

    /// Whether `key` in the store's table is one of these.
    pub fn owns(&self, store_key: &str) -> bool {
        store_key.starts_with(self.prefix)
    }

    /// What to lease so that `wanted` claims of `id`, limited to `rate`, each find a slot:
    /// nothing while the store has refused `id` or its held slots suffice.
    pub fn lease_for(
        &mut self,
        id: &str,
        rate: f64,
        wanted: u32,
        now: Instant,
    ) -> Option<RateLease> {
        let prefix = self.prefix;
        let queue = self.queue(id, rate);
        queue.drop_stale(now);
        if queue.refused(now).is_some() {
            return None;
        }
        let missing = (wanted as usize).saturating_sub(queue.slots.len());
        (missing > 0).then(|| RateLease {
            key: format!("{prefix}{id}"),
            interval_us: queue.interval.as_micros().max(1) as i64,
            horizon_us: LEASE_HORIZON.as_micros() as i64,
            wanted: (missing as u32).min(MAX_LEASE),
        })
    }

    /// Takes in what the store granted for `lease`, its answer read at `at`.
    pub fn grant(&mut self, lease: &RateLease, grant: RateGrant, at: Instant) {
        let Some(id) = lease.key.strip_prefix(self.prefix) else {
            return;
        };
        let Some(queue) = self.queues.get_mut(id) else {
            return;
        };
        let interval = Duration::from_micros(lease.interval_us as u64);
        let first = at + Duration::from_micros(grant.first_in_us as u64);
        queue
            .slots
            .extend((0..grant.granted).map(|i| first + interval * i));
        // Fewer than asked: the next slot only becomes grantable once it is within the horizon.
        // With none granted, `first` is already when one would be.
        queue.refused_until = (grant.granted < lease.wanted).then(|| {
            if grant.granted == 0 {
                first
            } else {
                let next = first + interval * grant.granted;
                next.checked_sub(LEASE_HORIZON).unwrap_or(at).max(at)
            }
        });
    }

    /// When `id`'s next slot starts, or how long until it may have one.
    pub fn next_slot(&mut self, id: &str, rate: f64, now: Instant) -> Result<Instant, Duration> {
        let queue = self.queue(id, rate);
        queue.drop_stale(now);
        match queue.slots.front() {
            Some(at) => Ok(*at),
            None => Err(queue.refused(now).unwrap_or(RETRY_UNLEASED_AFTER)),
        }
    }

    /// Uses up `id`'s next slot (after `next_slot` found one).
    pub fn take(&mut self, id: &str) {
        if let Some(queue) = self.queues.get_mut(id) {
            queue.slots.pop_front();
        }
    }

    /// Keys with no slot that the store refused until later: a claim should skip them.
    pub fn refused(&self, now: Instant) -> impl Iterator<Item = &String> {
        self.queues
            .iter()
            .filter(move |(_, q)| q.slots.is_empty() && q.refused(now).is_some())
            .map(|(id, _)| id)
    }

    /// Drops keys holding nothing current, so idle webhooks do not accumulate.
    pub fn tidy(&mut self, now: Instant) {
        self.queues.retain(|_, q| {
            q.drop_stale(now);
            !q.slots.is_empty() || q.refused(now).is_some()
        });
    }

    fn queue(&mut self, id: &str, rate: f64) -> &mut SlotQueue {
        let interval = interval(rate);
        let queue = self
            .queues
            .entry(id.to_owned())
            .or_insert_with(|| SlotQueue {
                interval,
                slots: VecDeque::new(),
                refused_until: None,
            });
        queue.interval = interval;
        queue
    }
}

/// How long before a key with no slot and no refusal (its lease failed) is tried again.
const RETRY_UNLEASED_AFTER: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(granted: u32, first_in_us: i64) -> RateGrant {
        RateGrant {
            granted,
            first_in_us,
        }
    }

    #[test]
    fn leases_what_claims_lack_and_hands_out_slots_in_order() {
        let mut s = SharedSlots::new("webhook:");
        let t0 = Instant::now();
        let lease = s.lease_for("wh_a", 10.0, 5, t0).expect("nothing held yet");
        assert_eq!(lease.key, "webhook:wh_a");
        assert_eq!(lease.interval_us, 100_000);
        assert_eq!(lease.wanted, 5);
        // 250 ms of slots at 10/s: three (0, 100, 200 ms).
        s.grant(&lease, granted(3, 0), t0);
        assert!(
            s.lease_for("wh_a", 10.0, 3, t0).is_none(),
            "held slots suffice"
        );
        for i in 0..3 {
            let at = s.next_slot("wh_a", 10.0, t0).unwrap();
            assert_eq!(at, t0 + Duration::from_millis(100 * i));
            s.take("wh_a");
        }
        // Out of slots, and refused until the next one (300 ms) is within the horizon (50 ms).
        let wait = s.next_slot("wh_a", 10.0, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(50));
        assert_eq!(s.refused(t0).collect::<Vec<_>>(), vec!["wh_a"]);
        assert!(
            s.lease_for("wh_a", 10.0, 1, t0).is_none(),
            "refused: not asked"
        );
        let later = t0 + Duration::from_millis(60);
        assert!(s.refused(later).next().is_none());
        assert!(s.lease_for("wh_a", 10.0, 1, later).is_some());
    }

    #[test]
    fn nothing_granted_waits_as_the_store_says() {
        let mut s = SharedSlots::new("tenant:");
        let t0 = Instant::now();
        let lease = s.lease_for("ten_a", 1.0, 2, t0).unwrap();
        s.grant(&lease, granted(0, 700_000), t0);
        assert_eq!(
            s.next_slot("ten_a", 1.0, t0),
            Err(Duration::from_millis(700))
        );
        s.tidy(t0);
        assert!(s.refused(t0).any(|k| k == "ten_a"), "a refusal is kept");
        s.tidy(t0 + Duration::from_secs(1));
        assert!(s.refused(t0).next().is_none(), "and dropped once over");
    }

    #[test]
    fn stale_slots_are_not_used() {
        let mut s = SharedSlots::new("webhook:");
        let t0 = Instant::now();
        let lease = s.lease_for("wh_a", 10.0, 2, t0).unwrap();
        s.grant(&lease, granted(2, 0), t0);
        // At 250 ms the slot at 0 is more than an interval old; the one at 100 ms is not.
        let now = t0 + Duration::from_millis(150);
        assert_eq!(
            s.next_slot("wh_a", 10.0, now),
            Ok(t0 + Duration::from_millis(100))
        );
        let now = t0 + Duration::from_millis(250);
        assert!(s.next_slot("wh_a", 10.0, now).is_err());
    }
}
