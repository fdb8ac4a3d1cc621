//! Typed, prefixed identifiers (`evt_01J…`). ULIDs underneath, so ids sort by creation time and
//! cursor pagination can compare them as strings.

use std::fmt;
use std::sync::Mutex;

static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);

/// A new ULID string; monotonic within the process so ids created in the same millisecond still
/// sort in creation order.
fn next_ulid() -> String {
    let mut guard = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    match generator.generate() {
        Ok(id) => id.to_string(),
        // Overflow of the random part within one millisecond: fall back to a fresh random ULID.
        Err(_) => ulid::Ulid::new().to_string(),
    }
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, next_ulid()))
            }

            /// Accepts only well-formed ids of this type; anything else is "not found" to callers.
            pub fn parse(raw: &str) -> Option<Self> {
                let rest = raw.strip_prefix($prefix)?;
                let ok = !rest.is_empty()
                    && rest.len() <= 64
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                ok.then(|| Self(raw.to_owned()))
            }

            /// Wraps a value read back from our own store.
            pub fn from_trusted(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

prefixed_id!(/// A tenant.
    TenantId, "ten_");
prefixed_id!(/// An API key.
    KeyId, "key_");
prefixed_id!(/// An outbound webhook endpoint.
    WebhookId, "wh_");
prefixed_id!(/// An event in the immutable log.
    EventId, "evt_");
prefixed_id!(/// One event for one webhook.
    DeliveryId, "dlv_");
prefixed_id!(/// A portal link: a tenant's dashboard for someone without an account.
    PortalLinkId, "prt_");
prefixed_id!(/// An inbound source.
    SourceId, "src_");
prefixed_id!(/// A dashboard user.
    UserId, "usr_");
prefixed_id!(/// One request received on an inbound source (the requests log).
    InboundRequestId, "irq_");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_prefix_and_sort_by_creation() {
        let a = EventId::generate();
        let b = EventId::generate();
        assert!(a.as_str().starts_with("evt_"));
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn parse_refuses_other_types_and_junk() {
        let w = WebhookId::generate();
        assert!(WebhookId::parse(w.as_str()).is_some());
        assert!(EventId::parse(w.as_str()).is_none());
        assert!(WebhookId::parse("wh_").is_none());
        assert!(WebhookId::parse("wh_a'b").is_none());
    }
}
