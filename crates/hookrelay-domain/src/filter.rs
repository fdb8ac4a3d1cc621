//! Event-type filters of a webhook: exact types (`member.created`), prefix wildcards
//! (`github.*`) and `*`. Empty means every event. Parsed once, matched on the ingest hot path.

use crate::validate::{is_valid_event_type, FieldError};

/// A parsed, validated list of event-type patterns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    all: bool,
    exact: Vec<String>,
    /// Prefixes including the trailing dot (`github.` for `github.*`).
    prefixes: Vec<String>,
}

impl EventFilter {
    /// Parses the patterns as a client sent them; the error names the offending entry.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, FieldError> {
        let mut filter = Self::default();
        if patterns.is_empty() {
            filter.all = true;
        }
        for (i, raw) in patterns.iter().enumerate() {
            let raw = raw.as_ref();
            let field = format!("events[{i}]");
            if raw == "*" {
                filter.all = true;
            } else if let Some(prefix) = raw.strip_suffix(".*") {
                if !is_valid_event_type(prefix) {
                    return Err(FieldError::new(
                        field,
                        "must be an event type, `prefix.*` or `*`",
                    ));
                }
                filter.prefixes.push(format!("{prefix}."));
            } else if is_valid_event_type(raw) {
                filter.exact.push(raw.to_owned());
            } else {
                return Err(FieldError::new(
                    field,
                    "must be an event type, `prefix.*` or `*`",
                ));
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, event_type: &str) -> bool {
        self.all
            || self.exact.iter().any(|e| e == event_type)
            || self
                .prefixes
                .iter()
                .any(|p| event_type.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &[&str]) -> EventFilter {
        EventFilter::parse(p).unwrap()
    }

    #[test]
    fn empty_and_star_match_everything() {
        assert!(f(&[]).matches("member.created"));
        assert!(f(&["*"]).matches("anything.at.all"));
    }

    #[test]
    fn exact_matches_only_itself() {
        let filter = f(&["member.created"]);
        assert!(filter.matches("member.created"));
        assert!(!filter.matches("member.created.extra"));
        assert!(!filter.matches("member.activated"));
    }

    #[test]
    fn prefix_wildcard_matches_below_the_dot_only() {
        let filter = f(&["github.*"]);
        assert!(filter.matches("github.push"));
        assert!(filter.matches("github.pr.opened"));
        assert!(!filter.matches("github"));
        assert!(!filter.matches("githubx.push"));
    }

    #[test]
    fn malformed_patterns_are_refused_with_their_index() {
        let err = EventFilter::parse(&["ok.type", "bad type"]).unwrap_err();
        assert_eq!(err.field, "events[1]");
        assert!(EventFilter::parse(&["gith*"]).is_err());
        assert!(EventFilter::parse(&[""]).is_err());
        assert!(EventFilter::parse(&[".*"]).is_err());
    }
}
