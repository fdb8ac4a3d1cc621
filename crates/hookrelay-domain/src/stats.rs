//! Delivery statistics as pre-aggregated counters: what one minute (or hour) of one webhook adds
//! up to, the fixed latency histogram it carries, and the ranges the overview charts offer.
//!
//! The counters are written with the attempts that cause them (one additive upsert per webhook,
//! row width and bucket per recorded batch), so a chart sums at most 1,440 minute rows or 168 hour
//! rows per webhook instead of scanning attempts; percentiles come from the histogram.

use std::collections::BTreeMap;

use crate::time::Millis;

/// Upper bounds (inclusive, in milliseconds) of the latency buckets; one more bucket holds
/// everything slower. Emit→delivery latency runs from milliseconds (healthy) to hours (retries),
/// so the bounds grow roughly ×2–2.5.
pub const LATENCY_BOUNDS_MS: [u64; 15] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 3_600_000,
];
/// Buckets in a histogram: one per bound and the overflow.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

const MINUTE_MS: Millis = 60_000;
const HOUR_MS: Millis = 3_600_000;

/// The widths counters are kept at, each with how long its rows are kept: minutes for the 1 h
/// and 24 h ranges, hours for 7 d (and a month of history at 24 rows a day per webhook).
pub const ROW_WIDTHS: [(Millis, Millis); 2] =
    [(MINUTE_MS, 2 * 24 * HOUR_MS), (HOUR_MS, 35 * 24 * HOUR_MS)];

/// How long queue samples (a tenant's pending count, a minute each) are kept.
pub const QUEUE_SAMPLE_RETENTION_MS: Millis = 35 * 24 * HOUR_MS;

/// The start of the `width`-wide bucket an instant falls in (milliseconds since the epoch).
pub fn bucket_of(at: Millis, width: Millis) -> Millis {
    at.div_euclid(width) * width
}

/// The minute an instant falls in.
pub fn minute_of(at: Millis) -> Millis {
    bucket_of(at, MINUTE_MS)
}

/// A fixed-bucket latency histogram: cheap to add up across minutes and nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram(pub [u64; LATENCY_BUCKETS]);

impl LatencyHistogram {
    /// The bucket a latency falls in.
    pub fn bucket_of(latency_ms: u64) -> usize {
        LATENCY_BOUNDS_MS
            .iter()
            .position(|&bound| latency_ms <= bound)
            .unwrap_or(LATENCY_BOUNDS_MS.len())
    }

    pub fn record(&mut self, latency_ms: u64) {
        self.0[Self::bucket_of(latency_ms)] += 1;
    }

    pub fn add(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `q`-quantile (0 < q ≤ 1) in milliseconds, interpolated linearly inside its bucket;
    /// `None` when empty. The overflow bucket answers its lower bound: "at least an hour".
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0);
        let mut below = 0u64;
        for (i, &n) in self.0.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (below + n) as f64 >= rank {
                let low = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] };
                let Some(&high) = LATENCY_BOUNDS_MS.get(i) else {
                    return Some(low);
                };
                let within = (rank - below as f64) / n as f64;
                return Some(low + ((high - low) as f64 * within).round() as u64);
            }
            below += n;
        }
        Some(*LATENCY_BOUNDS_MS.last().unwrap_or(&0))
    }
}

/// What one webhook's deliveries added up to in one bucket (or any sum of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatCounts {
    /// Attempts finished (each try counts once).
    pub attempts: u64,
    /// Attempts that failed and left the delivery pending for a retry.
    pub retried: u64,
    /// Deliveries that succeeded.
    pub succeeded: u64,
    /// Deliveries whose retries were exhausted (into the dead-letter queue).
    pub failed: u64,
    /// Emit→delivery latency of the deliveries that succeeded (from the delivery's creation).
    pub latency: LatencyHistogram,
}

impl StatCounts {
    pub fn add(&mut self, other: &Self) {
        self.attempts += other.attempts;
        self.retried += other.retried;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.latency.add(&other.latency);
    }

    /// Deliveries that finished one way or the other.
    pub fn finished(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// Successful attempts over all attempts (1.0 when there were none: nothing failed).
    pub fn success_rate(&self) -> f64 {
        if self.attempts == 0 {
            1.0
        } else {
            let failures = self.retried + self.failed;
            1.0 - failures as f64 / self.attempts as f64
        }
    }
}

/// How a finished attempt counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptTally {
    Succeeded { latency_ms: u64 },
    Retried,
    Failed,
}

/// Where a counter row belongs: tenant, webhook, row width, bucket start.
pub type StatsKey = (String, String, Millis, Millis);

/// The counters one batch of recorded attempts adds, keyed by `StatsKey` (every row width): the
/// store writes one upsert row per key, whatever the batch size. Ordered, so concurrent writers
/// lock rows in the same order.
#[derive(Debug, Default)]
pub struct StatsTally(pub BTreeMap<StatsKey, StatCounts>);

impl StatsTally {
    pub fn count(&mut self, tenant: &str, webhook: &str, finished_at: Millis, tally: AttemptTally) {
        for (width, _) in ROW_WIDTHS {
            let key = (
                tenant.to_owned(),
                webhook.to_owned(),
                width,
                bucket_of(finished_at, width),
            );
            let c = self.0.entry(key).or_default();
            c.attempts += 1;
            match tally {
                AttemptTally::Succeeded { latency_ms } => {
                    c.succeeded += 1;
                    c.latency.record(latency_ms);
                }
                AttemptTally::Retried => c.retried += 1,
                AttemptTally::Failed => c.failed += 1,
            }
        }
    }
}

/// A range the overview offers: how far back it reaches and how wide one chart point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsRange {
    Hour,
    Day,
    Week,
}

impl StatsRange {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "1h" => Some(Self::Hour),
            "24h" => Some(Self::Day),
            "7d" => Some(Self::Week),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    pub fn span_ms(self) -> Millis {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 24 * 3_600_000,
            Self::Week => 7 * 24 * 3_600_000,
        }
    }

    /// The row width the range reads: minute rows, or hour rows for a week.
    pub fn row_width_ms(self) -> Millis {
        match self {
            Self::Hour | Self::Day => MINUTE_MS,
            Self::Week => HOUR_MS,
        }
    }

    /// One point per minute, ten minutes, or hour: 60, 144 or 168 points.
    pub fn step_ms(self) -> Millis {
        match self {
            Self::Hour => MINUTE_MS,
            Self::Day => 10 * MINUTE_MS,
            Self::Week => HOUR_MS,
        }
    }

    /// The points' start times, oldest first, ending with the step that holds `now`.
    pub fn points(self, now: Millis) -> Vec<Millis> {
        let step = self.step_ms();
        let last = now.div_euclid(step) * step;
        let n = self.span_ms() / step;
        (0..n).map(|i| last - (n - 1 - i) * step).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_of_their_bound() {
        assert_eq!(LatencyHistogram::bucket_of(0), 0);
        assert_eq!(LatencyHistogram::bucket_of(5), 0);
        assert_eq!(LatencyHistogram::bucket_of(6), 1);
        assert_eq!(LatencyHistogram::bucket_of(1_000), 7);
        assert_eq!(LatencyHistogram::bucket_of(3_600_001), 15);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let mut h = LatencyHistogram::default();
        for _ in 0..90 {
            h.record(20); // (10, 25]
        }
        for _ in 0..10 {
            h.record(400); // (250, 500]
        }
        // The 50th of 100 is the 50th of 90 in (10, 25].
        assert_eq!(
            h.quantile(0.5),
            Some(10 + (15.0_f64 * 50.0 / 90.0).round() as u64)
        );
        // The 95th is the 5th of 10 in (250, 500].
        assert_eq!(h.quantile(0.95), Some(375));
        assert_eq!(h.quantile(1.0), Some(500));
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
        let mut slow = LatencyHistogram::default();
        slow.record(10 * 3_600_000);
        assert_eq!(slow.quantile(0.5), Some(3_600_000));
    }

    #[test]
    fn tally_groups_by_webhook_width_and_bucket() {
        let mut t = StatsTally::default();
        t.count("t", "w1", 60_000, AttemptTally::Succeeded { latency_ms: 3 });
        t.count("t", "w1", 119_999, AttemptTally::Retried);
        t.count("t", "w1", 120_000, AttemptTally::Failed);
        t.count(
            "t",
            "w2",
            60_001,
            AttemptTally::Succeeded { latency_ms: 70 },
        );
        // Minutes: w1 60 000, w1 120 000, w2 60 000; hours: w1 0, w2 0.
        assert_eq!(t.0.len(), 5);
        let first = t.0[&("t".into(), "w1".into(), 60_000, 60_000)];
        assert_eq!(
            (first.attempts, first.succeeded, first.retried, first.failed),
            (2, 1, 1, 0)
        );
        assert_eq!(first.latency.count(), 1);
        assert_eq!(first.success_rate(), 0.5);
        assert_eq!(t.0[&("t".into(), "w1".into(), 60_000, 120_000)].failed, 1);
        let hour = t.0[&("t".into(), "w1".into(), 3_600_000, 0)];
        assert_eq!(
            (hour.attempts, hour.succeeded, hour.retried, hour.failed),
            (3, 1, 1, 1)
        );
    }

    #[test]
    fn ranges_end_with_the_current_step() {
        let now = 7 * 24 * 3_600_000 + 90_000; // 1.5 min into a day boundary
        let p = StatsRange::Hour.points(now);
        assert_eq!(p.len(), 60);
        assert_eq!(*p.last().unwrap(), minute_of(now));
        assert_eq!(p[1] - p[0], 60_000);
        assert_eq!(StatsRange::Day.points(now).len(), 144);
        assert_eq!(StatsRange::Week.points(now).len(), 168);
        assert_eq!(StatsRange::parse("24h"), Some(StatsRange::Day));
        assert_eq!(StatsRange::parse("2h"), None);
    }
}
