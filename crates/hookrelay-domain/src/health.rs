//! Endpoint health: the per-webhook circuit breaker and the auto-disable rules, as pure state
//! transitions the store applies to each recorded attempt (no I/O, no clock: times come in).

use std::time::Duration;

use crate::time::Millis;

/// First cooldown of an opened circuit; it doubles on each re-open, up to `MAX_COOLDOWN`.
pub const FIRST_COOLDOWN: Duration = Duration::from_secs(30);
pub const MAX_COOLDOWN: Duration = Duration::from_secs(600);
/// Auto-disable for `failing` needs at least this many failed attempts in a row, whatever the
/// time they span (a webhook attempted twice in five days is not "continuously failing").
pub const AUTO_DISABLE_MIN_ATTEMPTS: u32 = 20;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CircuitState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "closed" => Self::Closed,
            "open" => Self::Open,
            "half_open" => Self::HalfOpen,
            _ => return None,
        })
    }
}

/// Why hookrelay disabled a webhook by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisabledReason {
    /// The receiver answered `410 Gone`.
    Gone,
    /// Every attempt failed for the auto-disable period.
    Failing,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Failing => "failing",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "gone" => Self::Gone,
            "failing" => Self::Failing,
            _ => return None,
        })
    }
}

/// The settings the transitions follow (`HOOKRELAY_CIRCUIT_FAILURES`,
/// `HOOKRELAY_AUTO_DISABLE_AFTER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive failed attempts that open the circuit.
    pub circuit_failures: u32,
    /// How long all attempts must have failed before the webhook is disabled as `failing`.
    pub auto_disable_after: Duration,
    /// The first cooldown of an opened circuit (30 s; shorter only in tests).
    pub first_cooldown: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            circuit_failures: 10,
            auto_disable_after: Duration::from_secs(5 * 86_400),
            first_cooldown: FIRST_COOLDOWN,
        }
    }
}

/// A webhook's health as stored with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    /// Open: no attempt before this. Half-open: when the probe's lease ends (another probe
    /// may go then, should the first one's worker have died).
    pub open_until: Option<Millis>,
    /// Times the circuit opened since it last closed (the cooldown doubles with each).
    pub opens: u32,
    /// When the first failed attempt of the current unbroken run of failures started.
    pub failing_since: Option<Millis>,
    pub disabled_reason: Option<DisabledReason>,
    pub disabled_at: Option<Millis>,
}

/// What one attempt says about its receiver's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure,
    /// `410 Gone`: the receiver says the endpoint no longer exists.
    Gone,
    /// A pause the receiver asked for (`429`): neither healthy nor failing.
    Neutral,
}

impl Verdict {
    /// `succeeded`: the attempt counted as delivered; `status`: the receiver's HTTP status.
    pub fn of(succeeded: bool, status: Option<u16>) -> Self {
        match (succeeded, status) {
            (true, _) => Self::Success,
            (false, Some(410)) => Self::Gone,
            (false, Some(429)) => Self::Neutral,
            (false, _) => Self::Failure,
        }
    }
}

/// A change worth telling the tenant about (see the operational events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthChange {
    /// The circuit opened from closed.
    Opened,
    /// A failed probe re-opened it (the same outage: nothing new to tell).
    Reopened,
    /// The first success after the circuit had opened.
    Recovered,
    /// hookrelay disabled the webhook.
    Disabled(DisabledReason),
}

/// The cooldown after the `opens`-th opening since the circuit last closed: `first`, doubling
/// with each re-open, at most `MAX_COOLDOWN` (or `first`, should that be longer).
pub fn cooldown(opens: u32, first: Duration) -> Duration {
    let doublings = opens.saturating_sub(1).min(16);
    (first * 2u32.pow(doublings)).min(MAX_COOLDOWN.max(first))
}

impl Health {
    /// The state a reader sees at `now`: an open circuit whose cooldown is over waits for its
    /// probe, which is what half-open means.
    pub fn state_at(&self, now: Millis) -> CircuitState {
        match (self.state, self.open_until) {
            (CircuitState::Open, Some(until)) if until <= now => CircuitState::HalfOpen,
            (state, _) => state,
        }
    }

    /// Whether this is the state of a webhook nothing has gone wrong with.
    pub fn is_clear(&self) -> bool {
        *self == Self::default()
    }

    /// Applies one attempt that started at `started_at` and finished at `at`.
    pub fn apply(
        &mut self,
        verdict: Verdict,
        started_at: Millis,
        at: Millis,
        policy: &HealthPolicy,
    ) -> Option<HealthChange> {
        if self.disabled_reason.is_some() {
            // Already disabled: late results of attempts in flight change nothing.
            return None;
        }
        match verdict {
            Verdict::Success => {
                let recovered = self.state != CircuitState::Closed;
                *self = Self::default();
                recovered.then_some(HealthChange::Recovered)
            }
            Verdict::Neutral => {
                if self.state == CircuitState::HalfOpen {
                    // The probe was told to wait: wait the same cooldown again.
                    self.state = CircuitState::Open;
                    self.open_until =
                        Some(at + millis(cooldown(self.opens.max(1), policy.first_cooldown)));
                }
                None
            }
            Verdict::Gone => {
                self.note_failure(started_at);
                self.disable(DisabledReason::Gone, at);
                Some(HealthChange::Disabled(DisabledReason::Gone))
            }
            Verdict::Failure => {
                self.note_failure(started_at);
                let failing_for = at - self.failing_since.unwrap_or(started_at);
                if self.consecutive_failures >= AUTO_DISABLE_MIN_ATTEMPTS
                    && failing_for >= millis(policy.auto_disable_after)
                {
                    self.disable(DisabledReason::Failing, at);
                    return Some(HealthChange::Disabled(DisabledReason::Failing));
                }
                let opens = match self.state {
                    CircuitState::HalfOpen => true,
                    CircuitState::Closed => {
                        self.consecutive_failures >= policy.circuit_failures.max(1)
                    }
                    // Results of attempts that were in flight when it opened.
                    CircuitState::Open => false,
                };
                if opens {
                    let first = self.state == CircuitState::Closed;
                    self.opens += 1;
                    self.state = CircuitState::Open;
                    self.open_until =
                        Some(at + millis(cooldown(self.opens, policy.first_cooldown)));
                    return Some(if first {
                        HealthChange::Opened
                    } else {
                        HealthChange::Reopened
                    });
                }
                None
            }
        }
    }

    fn note_failure(&mut self, started_at: Millis) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.failing_since.get_or_insert(started_at);
    }

    fn disable(&mut self, reason: DisabledReason, at: Millis) {
        self.disabled_reason = Some(reason);
        self.disabled_at = Some(at);
    }
}

/// The prefix of the operational events hookrelay emits about itself.
pub const OPERATIONAL_PREFIX: &str = "hookrelay.";

/// Whether a webhook's `events` patterns name the operational event `event_type` explicitly:
/// the exact type, or a prefix wildcard within `hookrelay.` (`hookrelay.*`,
/// `hookrelay.webhook.*`). `*` alone, and an empty list (all events), do not.
pub fn subscribes_explicitly(patterns: &[String], event_type: &str) -> bool {
    patterns.iter().any(|p| {
        p == event_type
            || p.strip_suffix('*').is_some_and(|prefix| {
                prefix.starts_with(OPERATIONAL_PREFIX) && event_type.starts_with(prefix)
            })
    })
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: HealthPolicy = HealthPolicy {
        circuit_failures: 3,
        auto_disable_after: Duration::from_secs(100),
        first_cooldown: FIRST_COOLDOWN,
    };

    fn fail(h: &mut Health, at: Millis) -> Option<HealthChange> {
        h.apply(Verdict::Failure, at, at, &P)
    }

    #[test]
    fn cooldown_doubles_up_to_ten_minutes() {
        let secs: Vec<u64> = (1..=7)
            .map(|n| cooldown(n, FIRST_COOLDOWN).as_secs())
            .collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(cooldown(0, FIRST_COOLDOWN).as_secs(), 30);
        assert_eq!(cooldown(u32::MAX, FIRST_COOLDOWN).as_secs(), 600);
        assert_eq!(cooldown(2, Duration::from_secs(1)).as_secs(), 2);
    }

    #[test]
    fn consecutive_failures_open_then_a_failed_probe_reopens_longer() {
        let mut h = Health::default();
        assert_eq!(fail(&mut h, 1_000), None);
        assert_eq!(fail(&mut h, 2_000), None);
        assert_eq!(fail(&mut h, 3_000), Some(HealthChange::Opened));
        assert_eq!(h.state, CircuitState::Open);
        assert_eq!(h.open_until, Some(33_000));
        assert_eq!(h.state_at(32_999), CircuitState::Open);
        assert_eq!(h.state_at(33_000), CircuitState::HalfOpen);
        // Late results of attempts in flight neither extend nor re-open it.
        assert_eq!(fail(&mut h, 4_000), None);
        assert_eq!(h.open_until, Some(33_000));
        // The store marks the probe; its failure re-opens with twice the cooldown.
        h.state = CircuitState::HalfOpen;
        assert_eq!(fail(&mut h, 40_000), Some(HealthChange::Reopened));
        assert_eq!(h.open_until, Some(100_000));
        assert_eq!(h.opens, 2);
    }

    #[test]
    fn a_success_closes_and_forgets() {
        let mut h = Health::default();
        fail(&mut h, 1);
        assert_eq!(
            h.apply(Verdict::Success, 2, 2, &P),
            None,
            "closed: nothing to tell"
        );
        assert!(h.is_clear());
        for t in 0..3 {
            fail(&mut h, t);
        }
        h.state = CircuitState::HalfOpen;
        assert_eq!(
            h.apply(Verdict::Success, 50_000, 50_000, &P),
            Some(HealthChange::Recovered)
        );
        assert!(h.is_clear());
    }

    #[test]
    fn gone_disables_at_once() {
        let mut h = Health::default();
        assert_eq!(
            h.apply(Verdict::Gone, 5, 7, &P),
            Some(HealthChange::Disabled(DisabledReason::Gone))
        );
        assert_eq!(h.disabled_reason, Some(DisabledReason::Gone));
        assert_eq!(h.disabled_at, Some(7));
        // A disabled webhook's late results change nothing.
        assert_eq!(h.apply(Verdict::Success, 8, 8, &P), None);
        assert_eq!(h.disabled_reason, Some(DisabledReason::Gone));
    }

    #[test]
    fn failing_for_long_enough_with_enough_attempts_disables() {
        let policy = HealthPolicy {
            circuit_failures: 1000,
            auto_disable_after: Duration::from_secs(100),
            first_cooldown: FIRST_COOLDOWN,
        };
        let mut h = Health::default();
        // Many attempts within the period: not yet.
        for i in 0..30 {
            assert_eq!(h.apply(Verdict::Failure, i, i, &policy), None);
        }
        // The period has passed since the first failure.
        assert_eq!(
            h.apply(Verdict::Failure, 100_000, 100_000, &policy),
            Some(HealthChange::Disabled(DisabledReason::Failing))
        );
        // Long enough but too few attempts: not disabled.
        let mut few = Health::default();
        few.apply(Verdict::Failure, 0, 0, &policy);
        assert_eq!(few.apply(Verdict::Failure, 200_000, 200_000, &policy), None);
    }

    #[test]
    fn only_explicit_patterns_subscribe_to_operational_events() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t = "hookrelay.webhook.disabled";
        assert!(subscribes_explicitly(&p(&["hookrelay.*"]), t));
        assert!(subscribes_explicitly(&p(&["hookrelay.webhook.*"]), t));
        assert!(subscribes_explicitly(&p(&["member.*", t]), t));
        assert!(!subscribes_explicitly(&p(&["*"]), t));
        assert!(!subscribes_explicitly(&p(&[]), t));
        assert!(!subscribes_explicitly(&p(&["hookrelay.delivery.*"]), t));
        assert!(!subscribes_explicitly(&p(&["hook*"]), t));
    }

    #[test]
    fn a_pause_asked_for_is_neither() {
        let mut h = Health::default();
        for t in 0..2 {
            fail(&mut h, t);
        }
        assert_eq!(h.apply(Verdict::Neutral, 3, 3, &P), None);
        assert_eq!(h.consecutive_failures, 2);
        assert_eq!(Verdict::of(false, Some(429)), Verdict::Neutral);
        assert_eq!(Verdict::of(false, Some(410)), Verdict::Gone);
        assert_eq!(Verdict::of(false, None), Verdict::Failure);
        assert_eq!(Verdict::of(true, Some(200)), Verdict::Success);
    }
}
