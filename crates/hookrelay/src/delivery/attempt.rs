//! Turns what the receiver did into the attempt row and the delivery's next state, using the
//! domain's pure `classify` and `RetrySchedule::next_delay`.

use hookrelay_domain::time::now_millis;
use hookrelay_domain::{classify_with_hint, AttemptOutcome, RetrySchedule};
use rand::Rng;

use super::sender::SendResult;
use crate::store::{Attempt, AttemptRecord, DeliveryClaim, NextState};

/// Builds the record of attempt `n` of `claim`.
pub fn record_for(
    claim: &DeliveryClaim,
    n: u32,
    sent: SendResult,
    global_schedule: &RetrySchedule,
    lease_owner: &str,
) -> AttemptRecord {
    let finished_at = now_millis();
    let (error_kind, error_message) = match &sent.error {
        Some((kind, message)) => (Some(*kind), Some(message.clone())),
        None => (None, None),
    };
    // Chat destinations may ask for a pause in their own way (Discord's JSON `retry_after`).
    let outcome = classify_with_hint(
        sent.status,
        error_kind,
        sent.retry_after.as_deref(),
        sent.retry_hint,
        finished_at / 1000,
    );
    let error = match (&error_message, sent.status) {
        (Some(m), _) => Some(m.clone()),
        (None, Some(s)) if !(200..300).contains(&s) => Some(format!("receiver answered HTTP {s}")),
        _ => None,
    };
    let error_kind = match (error_kind, sent.status) {
        (Some(k), _) => Some(k.as_str().to_owned()),
        (None, Some(s)) if !(200..300).contains(&s) => Some("http_status".to_owned()),
        _ => None,
    };
    let next = match outcome {
        AttemptOutcome::Succeeded => NextState::Succeeded,
        AttemptOutcome::GiveUp => NextState::Failed,
        AttemptOutcome::Retry { not_before } => {
            let own;
            let schedule = match &claim.webhook.retry_schedule {
                Some(delays) => {
                    own = RetrySchedule::new(delays.clone()).unwrap_or_default();
                    &own
                }
                None => global_schedule,
            };
            let jitter = rand::thread_rng().gen_range(-1.0..=1.0);
            match schedule.next_delay(n, jitter, not_before) {
                Some(delay) => NextState::RetryAt(finished_at + delay.as_millis() as i64),
                None => NextState::Failed,
            }
        }
    };
    AttemptRecord {
        lease_owner: lease_owner.to_owned(),
        attempt: Attempt {
            delivery_id: claim.delivery_id.clone(),
            n,
            started_at: sent.started_at,
            duration_ms: sent.duration.as_millis().min(u32::MAX as u128) as u32,
            request_headers: sent.request_headers,
            response_status: sent.status,
            response_body: sent.body,
            error,
            error_kind,
        },
        next,
        finished_at,
    }
}
