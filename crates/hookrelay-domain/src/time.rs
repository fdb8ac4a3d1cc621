//! Time as the store keeps it: integer milliseconds since the Unix epoch, rendered as RFC 3339
//! with milliseconds in UTC at the API edge.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

pub fn to_rfc3339(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        _ => String::from("1970-01-01T00:00:00.000Z"),
    }
}

pub fn parse_rfc3339(raw: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_millis_in_utc() {
        let ms = parse_rfc3339("2026-11-23T11:00:00.123+01:00").unwrap();
        assert_eq!(to_rfc3339(ms), "2026-11-23T10:00:00.123Z");
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
