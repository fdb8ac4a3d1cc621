//! Classifies one delivery attempt — a response status or a transport error — into success,
//! a retry (with the receiver's `Retry-After` when it may ask for one) or a permanent failure.

use std::time::Duration;

/// Why an attempt failed, as recorded on the attempt and shown to operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The receiver answered with a non-2xx status.
    HttpStatus,
    Timeout,
    Connect,
    Tls,
    Dns,
    /// The target resolved to an address we refuse to connect to (SSRF defence).
    BlockedAddress,
    /// The message could not be rendered (templates of chat destinations).
    Render,
    /// An http webhook's `transform` failed to render, or rendered something that is not JSON.
    TemplateError,
    /// A message broker refused or did not acknowledge the message (no stream bound, an
    /// unknown exchange, an unroutable message, a negative confirm, a rejected `XADD`).
    Broker,
    Other,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpStatus => "http_status",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Dns => "dns",
            Self::BlockedAddress => "blocked_address",
            Self::Render => "render",
            Self::TemplateError => "template_error",
            Self::Broker => "broker",
            Self::Other => "other",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// Try again per the schedule, no earlier than `not_before` when the receiver asked.
    Retry {
        not_before: Option<Duration>,
    },
    /// Retrying cannot help (blocked address, unrenderable message): fail the delivery now.
    GiveUp,
}

/// Longest `Retry-After` we honour; a receiver cannot park a delivery for longer than this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Classifies an attempt. `retry_after` is the raw header, read only on `429` and `503`. No
/// status and no error is a broker destination's acknowledgement (a JetStream ack, a publisher
/// confirm, an `XADD` id): a success.
pub fn classify(
    status: Option<u16>,
    error: Option<ErrorKind>,
    retry_after: Option<&str>,
    now_unix_secs: i64,
) -> AttemptOutcome {
    match (status, error) {
        // A render depends only on the template and the event: retrying renders the same thing.
        (_, Some(ErrorKind::BlockedAddress | ErrorKind::Render | ErrorKind::TemplateError)) => {
            AttemptOutcome::GiveUp
        }
        (Some(s), None) if (200..300).contains(&s) => AttemptOutcome::Succeeded,
        (None, None) => AttemptOutcome::Succeeded,
        (Some(429 | 503), _) => AttemptOutcome::Retry {
            not_before: retry_after.and_then(|h| parse_retry_after(h, now_unix_secs)),
        },
        _ => AttemptOutcome::Retry { not_before: None },
    }
}

/// Like [`classify`], with a delay the destination asked for by other means than `Retry-After`:
/// Discord's JSON `retry_after` on a `429`, or an exhausted rate-limit bucket
/// (`X-RateLimit-Remaining: 0` with `X-RateLimit-Reset-After`). The caller parses the hint so
/// this stays pure; the longer of the two delays is honoured (capped), only when retrying.
pub fn classify_with_hint(
    status: Option<u16>,
    error: Option<ErrorKind>,
    retry_after: Option<&str>,
    hint: Option<Duration>,
    now_unix_secs: i64,
) -> AttemptOutcome {
    match classify(status, error, retry_after, now_unix_secs) {
        AttemptOutcome::Retry { not_before } => AttemptOutcome::Retry {
            not_before: match (not_before, hint.map(|h| h.min(MAX_RETRY_AFTER))) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        },
        other => other,
    }
}

/// `Retry-After` is either delta-seconds or an HTTP date; both are capped.
pub fn parse_retry_after(raw: &str, now_unix_secs: i64) -> Option<Duration> {
    let raw = raw.trim();
    let secs = if let Ok(secs) = raw.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        secs
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?.timestamp();
        (at - now_unix_secs).max(0) as f64
    };
    Some(Duration::from_secs_f64(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_2xx_succeeds_everything_else_retries() {
        assert_eq!(
            classify(Some(200), None, None, 0),
            AttemptOutcome::Succeeded
        );
        assert_eq!(
            classify(Some(204), None, None, 0),
            AttemptOutcome::Succeeded
        );
        for s in [301, 400, 404, 500, 502] {
            assert_eq!(
                classify(Some(s), None, None, 0),
                AttemptOutcome::Retry { not_before: None }
            );
        }
        let timeout = classify(None, Some(ErrorKind::Timeout), None, 0);
        assert_eq!(timeout, AttemptOutcome::Retry { not_before: None });
        let refused = classify(None, Some(ErrorKind::Broker), None, 0);
        assert_eq!(refused, AttemptOutcome::Retry { not_before: None });
        // A broker's acknowledgement: no HTTP status, no error.
        assert_eq!(classify(None, None, None, 0), AttemptOutcome::Succeeded);
    }

    #[test]
    fn retry_after_only_counts_on_429_and_503() {
        let asked = Some(Duration::from_secs(7));
        assert_eq!(
            classify(Some(429), None, Some("7"), 0),
            AttemptOutcome::Retry { not_before: asked }
        );
        assert_eq!(
            classify(Some(503), None, Some("7"), 0),
            AttemptOutcome::Retry { not_before: asked }
        );
        assert_eq!(
            classify(Some(500), None, Some("7"), 0),
            AttemptOutcome::Retry { not_before: None }
        );
    }

    #[test]
    fn retry_after_as_http_date_and_capped() {
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .timestamp();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn a_hint_is_a_floor_only_when_retrying() {
        let hint = Some(Duration::from_millis(1500));
        assert_eq!(
            classify_with_hint(Some(429), None, None, hint, 0),
            AttemptOutcome::Retry { not_before: hint }
        );
        // The longer of header and hint wins, and the hint is capped like the header.
        assert_eq!(
            classify_with_hint(Some(429), None, Some("2"), hint, 0),
            AttemptOutcome::Retry {
                not_before: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            classify_with_hint(
                Some(500),
                None,
                None,
                Some(Duration::from_secs(10 * 86400)),
                0
            ),
            AttemptOutcome::Retry {
                not_before: Some(MAX_RETRY_AFTER)
            }
        );
        assert_eq!(
            classify_with_hint(Some(204), None, None, hint, 0),
            AttemptOutcome::Succeeded
        );
        assert_eq!(
            classify_with_hint(None, Some(ErrorKind::Render), None, hint, 0),
            AttemptOutcome::GiveUp
        );
        assert_eq!(
            classify_with_hint(Some(502), None, None, None, 0),
            AttemptOutcome::Retry { not_before: None }
        );
    }

    #[test]
    fn blocked_and_unrenderable_give_up() {
        assert_eq!(
            classify(None, Some(ErrorKind::BlockedAddress), None, 0),
            AttemptOutcome::GiveUp
        );
        assert_eq!(
            classify(None, Some(ErrorKind::Render), None, 0),
            AttemptOutcome::GiveUp
        );
        assert_eq!(
            classify(None, Some(ErrorKind::TemplateError), None, 0),
            AttemptOutcome::GiveUp
        );
    }
}
