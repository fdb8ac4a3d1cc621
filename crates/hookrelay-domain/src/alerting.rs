//! Alert thresholds and the rolling per-webhook attempt counters they are evaluated on: the
//! failure rate over a window, kept in a ring of buckets, never by scanning recorded attempts.

use std::time::Duration;

use crate::time::Millis;

/// Attempts a webhook needs in the window before its failure rate can alert.
pub const MIN_ATTEMPTS: u64 = 10;
/// Buckets per window: the window slides in steps of `window / BUCKETS`.
pub const BUCKETS: usize = 15;

/// `HOOKRELAY_ALERT_WINDOW`, `HOOKRELAY_ALERT_FAILURE_RATE`, `HOOKRELAY_ALERT_BACKLOG`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlertThresholds {
    pub window: Duration,
    pub failure_rate: f64,
    pub backlog_pending: u64,
    pub backlog_age: Duration,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(900),
            failure_rate: 0.5,
            backlog_pending: 10_000,
            backlog_age: Duration::from_secs(900),
        }
    }
}

/// Parses `pending=10000,age=15m` (either part may be left out: it keeps its default).
pub fn parse_backlog(raw: &str, mut pending: u64, mut age_ms: i64) -> Result<(u64, i64), String> {
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not name=value"))?;
        match name.trim() {
            "pending" => {
                pending = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{part}`: pending must be a whole number"))?
            }
            "age" => {
                age_ms = parse_duration_ms(value.trim())
                    .ok_or_else(|| format!("`{part}`: age must be like 30s, 15m or 1h"))?
            }
            other => {
                return Err(format!(
                    "unknown backlog threshold `{other}` (pending, age)"
                ))
            }
        }
    }
    Ok((pending, age_ms))
}

/// `30s`, `15m`, `1h`, `2d` → milliseconds.
pub fn parse_duration_ms(raw: &str) -> Option<i64> {
    let (num, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    n.checked_mul(match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    })
}

/// One webhook's attempts and failures over the last window, in `BUCKETS` slices.
#[derive(Clone, Debug, Default)]
pub struct Rolling {
    /// `(slice index since the epoch, attempts, failures)`.
    buckets: [(i64, u64, u64); BUCKETS],
}

impl Rolling {
    fn slice(at: Millis, window: Duration) -> i64 {
        let step = (window.as_millis() as i64 / BUCKETS as i64).max(1);
        at.div_euclid(step)
    }

    /// Counts one attempt finished at `at`.
    pub fn add(&mut self, at: Millis, failed: bool, window: Duration) {
        let slice = Self::slice(at, window);
        let b = &mut self.buckets[slice.rem_euclid(BUCKETS as i64) as usize];
        if b.0 != slice {
            *b = (slice, 0, 0);
        }
        b.1 += 1;
        b.2 += u64::from(failed);
    }

    /// `(attempts, failures)` within the window ending at `now`.
    pub fn totals(&self, now: Millis, window: Duration) -> (u64, u64) {
        let current = Self::slice(now, window);
        self.buckets
            .iter()
            .filter(|b| b.0 > current - BUCKETS as i64 && b.0 <= current)
            .fold((0, 0), |(a, f), b| (a + b.1, f + b.2))
    }
}

/// Whether `(attempts, failures)` is over the failure-rate threshold.
pub fn over_rate(attempts: u64, failures: u64, threshold: f64) -> bool {
    attempts >= MIN_ATTEMPTS && failures as f64 / attempts as f64 >= threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(900);

    #[test]
    fn rolling_counts_slide_out_of_the_window() {
        let mut r = Rolling::default();
        for i in 0..10 {
            r.add(i * 1000, i % 2 == 0, W);
        }
        assert_eq!(r.totals(10_000, W), (10, 5));
        // 15 minutes later, all of them have left the window.
        assert_eq!(r.totals(10_000 + 900_000, W), (0, 0));
        r.add(2_000_000, true, W);
        assert_eq!(r.totals(2_000_000, W), (1, 1));
    }

    #[test]
    fn the_rate_needs_enough_attempts() {
        assert!(!over_rate(9, 9, 0.5));
        assert!(over_rate(10, 5, 0.5));
        assert!(!over_rate(10, 4, 0.5));
    }

    #[test]
    fn backlog_thresholds_parse() {
        assert_eq!(
            parse_backlog("pending=10000,age=15m", 0, 0),
            Ok((10_000, 900_000))
        );
        assert_eq!(parse_backlog("pending=3", 1, 60_000), Ok((3, 60_000)));
        assert!(parse_backlog("depth=3", 1, 1).is_err());
        assert!(parse_backlog("age=soon", 1, 1).is_err());
    }
}
