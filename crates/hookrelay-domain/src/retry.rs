//! The retry policy: how long to wait after a failed attempt, with jitter and the receiver's
//! `Retry-After` taken into account, and when to give up.

use std::time::Duration;

/// Seconds to wait after each failed attempt: entry `i` is the pause after attempt `i + 1`.
/// Its length is the number of retries; attempts in all are `len + 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays_secs: Vec<u32>,
}

/// The contract's default: 5 s, 1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 12 h, 24 h.
pub const DEFAULT_SCHEDULE: [u32; 9] = [5, 60, 300, 900, 3600, 10800, 21600, 43200, 86400];

/// At most this many retries, and no single pause longer than a week.
pub const MAX_RETRIES: usize = 50;
pub const MAX_DELAY_SECS: u32 = 7 * 24 * 3600;

/// Fraction of the delay by which jitter may move it either way.
pub const JITTER: f64 = 0.2;

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            delays_secs: DEFAULT_SCHEDULE.to_vec(),
        }
    }
}

impl RetrySchedule {
    pub fn new(delays_secs: Vec<u32>) -> Result<Self, String> {
        if delays_secs.len() > MAX_RETRIES {
            return Err(format!("must list at most {MAX_RETRIES} delays"));
        }
        if let Some(bad) = delays_secs.iter().find(|d| **d > MAX_DELAY_SECS) {
            return Err(format!(
                "delay {bad} exceeds the maximum of {MAX_DELAY_SECS} seconds"
            ));
        }
        Ok(Self { delays_secs })
    }

    /// Parses `"5,60,300"`; an empty string means "never retry".
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Self::new(Vec::new());
        }
        let delays = raw
            .split(',')
            .map(|part| {
                part.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("`{}` is not a whole number of seconds", part.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(delays)
    }

    pub fn delays_secs(&self) -> &[u32] {
        &self.delays_secs
    }

    /// The pause before the next attempt after `attempts_made` failed attempts, or `None` when
    /// the schedule is exhausted. `jitter` is a uniform sample in `[-1, 1]` supplied by the
    /// caller (so this stays pure); `retry_after` is what the receiver asked for, honoured as a
    /// lower bound.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        let base = *self.delays_secs.get(index)? as f64;
        let factor = 1.0 + JITTER * jitter.clamp(-1.0, 1.0);
        let scheduled = Duration::from_secs_f64((base * factor).max(0.0));
        Some(match retry_after {
            Some(asked) if asked > scheduled => asked,
            _ => scheduled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_spans_about_two_days() {
        let s = RetrySchedule::default();
        let total: u32 = s.delays_secs().iter().sum();
        assert!((40 * 3600..56 * 3600).contains(&total), "{total}");
        assert_eq!(s.next_delay(1, 0.0, None), Some(Duration::from_secs(5)));
        assert_eq!(s.next_delay(9, 0.0, None), Some(Duration::from_secs(86400)));
        assert_eq!(s.next_delay(10, 0.0, None), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let s = RetrySchedule::default();
        assert_eq!(s.next_delay(2, 1.0, None), Some(Duration::from_secs(72)));
        assert_eq!(s.next_delay(2, -1.0, None), Some(Duration::from_secs(48)));
        // Out-of-range samples are clamped rather than trusted.
        assert_eq!(s.next_delay(2, 7.0, None), Some(Duration::from_secs(72)));
    }

    #[test]
    fn retry_after_is_a_floor_not_a_ceiling() {
        let s = RetrySchedule::parse("5,60").unwrap();
        let asked = Some(Duration::from_secs(30));
        assert_eq!(s.next_delay(1, 0.0, asked), Some(Duration::from_secs(30)));
        assert_eq!(s.next_delay(2, 0.0, asked), Some(Duration::from_secs(60)));
        assert_eq!(
            s.next_delay(3, 0.0, asked),
            None,
            "exhausted even if the receiver asks"
        );
    }

    #[test]
    fn immediate_then_minutes_then_fail() {
        // "immediate, 1 min, 5 min, 15 min, then fail"
        let s = RetrySchedule::parse("0, 60,300,900").unwrap();
        let got: Vec<_> = (1..=5).map(|n| s.next_delay(n, 0.5, None)).collect();
        assert_eq!(got[0], Some(Duration::ZERO));
        assert_eq!(got[1], Some(Duration::from_secs(66)));
        assert_eq!(got[4], None);
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(RetrySchedule::parse("5,x").is_err());
        assert!(RetrySchedule::parse("-5").is_err());
        assert!(RetrySchedule::new(vec![MAX_DELAY_SECS + 1]).is_err());
        assert!(RetrySchedule::new(vec![1; MAX_RETRIES + 1]).is_err());
        assert_eq!(
            RetrySchedule::parse("").unwrap().next_delay(1, 0.0, None),
            None
        );
    }
}
