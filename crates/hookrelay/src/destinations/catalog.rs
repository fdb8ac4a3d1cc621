//! The event catalog: the platform's built-in types (defined here, in code) merged with each
//! tenant's own rows, and the compiled JSON Schemas that `POST /api/v1/events` validates against.
//!
//! Built-ins are not rows: every tenant sees them from its first moment, a release can add one
//! without a data migration, and a tenant customises one (description, schema, example) by
//! writing a row of the same name, which then wins. Deleting that row restores the built-in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hookrelay_domain::validate::FieldError;
use hookrelay_domain::{EventFilter, TenantId};
use serde_json::{json, Value};

use crate::store::{EventType, Store, StoreResult};

/// One built-in type: its name, what it means, and an example `data`.
pub struct BuiltIn {
    pub name: &'static str,
    pub description: &'static str,
    example: &'static str,
    /// JSON Schema of `data`, for the types hookrelay itself emits.
    schema: Option<&'static str>,
}

impl BuiltIn {
    pub fn example(&self) -> Value {
        // The examples are literals checked by a unit test; `null` is never reached.
        serde_json::from_str(self.example).unwrap_or(Value::Null)
    }

    pub fn schema(&self) -> Option<Value> {
        // Literals checked by a unit test, like the examples.
        self.schema.and_then(|s| serde_json::from_str(s).ok())
    }
}

pub const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        name: "member.created",
        description: "A new member joined a community.",
        example: r#"{"id": 42, "name": "Ada Lovelace", "email": "ada@example.org", "community": "Rustaceans"}"#,
        schema: None,
    },
    BuiltIn {
        name: "member.activated",
        description: "A member confirmed their account and is now active.",
        example: r#"{"id": 42, "name": "Ada Lovelace", "community": "Rustaceans"}"#,
        schema: None,
    },
    BuiltIn {
        name: "event.created",
        description: "A community event (meetup, talk, workshop) was scheduled.",
        example: r#"{"id": 7, "title": "Rust meetup #12", "starts_at": "2026-12-01T18:00:00Z", "location": "Paris", "url": "https://example.org/events/7"}"#,
        schema: None,
    },
    BuiltIn {
        name: "hackathon.created",
        description: "A hackathon was launched.",
        example: r#"{"id": 3, "name": "Winter Hack 2026", "starts_at": "2026-12-05T09:00:00Z", "ends_at": "2026-12-07T18:00:00Z", "url": "https://example.org/hackathons/3"}"#,
        schema: None,
    },
    BuiltIn {
        name: "community.approved",
        description: "A community was reviewed and approved.",
        example: r#"{"id": 9, "name": "Rustaceans", "url": "https://example.org/c/rustaceans"}"#,
        schema: None,
    },
    BuiltIn {
        name: "github.push",
        description: "Commits were pushed to a GitHub repository (the GitHub `push` payload).",
        example: r#"{"ref": "refs/heads/main", "repository": {"full_name": "acme/app"}, "pusher": {"name": "ada"}, "commits": [{"id": "a1b2c3d", "message": "Fix the flux capacitor\n\nLonger explanation."}, {"id": "e4f5a6b", "message": "Add tests"}], "compare": "https://github.com/acme/app/compare/a1b2c3d...e4f5a6b"}"#,
        schema: None,
    },
    BuiltIn {
        name: "github.pr.opened",
        description:
            "A pull request was opened (the GitHub `pull_request` payload, action `opened`).",
        example: r#"{"action": "opened", "number": 12, "pull_request": {"number": 12, "title": "Add dark mode", "html_url": "https://github.com/acme/app/pull/12", "user": {"login": "ada"}}, "repository": {"full_name": "acme/app"}, "sender": {"login": "ada"}}"#,
        schema: None,
    },
    BuiltIn {
        name: "github.issues.opened",
        description: "An issue was opened (the GitHub `issues` payload, action `opened`).",
        example: r#"{"action": "opened", "issue": {"number": 34, "title": "Crash on start", "html_url": "https://github.com/acme/app/issues/34", "user": {"login": "grace"}}, "repository": {"full_name": "acme/app"}, "sender": {"login": "grace"}}"#,
        schema: None,
    },
    BuiltIn {
        name: "github.release.published",
        description: "A release was published (the GitHub `release` payload, action `published`).",
        example: r#"{"action": "published", "release": {"tag_name": "v1.2.0", "name": "v1.2.0", "html_url": "https://github.com/acme/app/releases/tag/v1.2.0"}, "repository": {"full_name": "acme/app"}}"#,
        schema: None,
    },
    BuiltIn {
        name: "hookrelay.webhook.disabled",
        description: "hookrelay disabled a webhook by itself: its receiver answered 410 Gone (`gone`), or every attempt failed for HOOKRELAY_AUTO_DISABLE_AFTER (`failing`). Never delivered to that webhook; only to webhooks naming `hookrelay.` types explicitly.",
        example: r#"{"webhook_id": "wh_01JD5Q3V6M3N8X2Y7Z9A0B1C2D", "url": "https://crm.example.com/hooks", "reason": "gone"}"#,
        schema: Some(r#"{"type": "object", "required": ["webhook_id", "url", "reason"], "properties": {"webhook_id": {"type": "string"}, "url": {"type": "string"}, "reason": {"enum": ["gone", "failing"]}}}"#),
    },
    BuiltIn {
        name: "hookrelay.webhook.failing",
        description: "A webhook's circuit breaker opened: HOOKRELAY_CIRCUIT_FAILURES attempts in a row failed, so hookrelay pauses attempts to it and probes it with backoff.",
        example: r#"{"webhook_id": "wh_01JD5Q3V6M3N8X2Y7Z9A0B1C2D", "url": "https://crm.example.com/hooks", "reason": "circuit_open", "failure_rate": 1.0, "attempts": 10, "window_seconds": 95, "open_until": "2026-11-23T10:00:30.000Z"}"#,
        schema: Some(r#"{"type": "object", "required": ["webhook_id", "url", "failure_rate", "attempts", "window_seconds"], "properties": {"webhook_id": {"type": "string"}, "url": {"type": "string"}, "failure_rate": {"type": "number"}, "attempts": {"type": "integer"}, "window_seconds": {"type": "integer"}}}"#),
    },
    BuiltIn {
        name: "hookrelay.webhook.recovered",
        description: "The first successful attempt to a webhook after its circuit had opened.",
        example: r#"{"webhook_id": "wh_01JD5Q3V6M3N8X2Y7Z9A0B1C2D", "url": "https://crm.example.com/hooks"}"#,
        schema: Some(r#"{"type": "object", "required": ["webhook_id", "url"], "properties": {"webhook_id": {"type": "string"}, "url": {"type": "string"}}}"#),
    },
    BuiltIn {
        name: "hookrelay.delivery.exhausted",
        description: "A delivery used up its retries and entered the dead-letter queue.",
        example: r#"{"delivery_id": "dlv_01JD5Q3V6M3N8X2Y7Z9A0B1C2E", "webhook_id": "wh_01JD5Q3V6M3N8X2Y7Z9A0B1C2D", "event_id": "evt_01JD5Q3V6M3N8X2Y7Z9A0B1C2F", "event_type": "member.created", "attempts": 10, "last_error": "receiver answered HTTP 503"}"#,
        schema: Some(r#"{"type": "object", "required": ["delivery_id", "webhook_id", "event_id", "event_type", "attempts"], "properties": {"delivery_id": {"type": "string"}, "webhook_id": {"type": "string"}, "event_id": {"type": "string"}, "event_type": {"type": "string"}, "attempts": {"type": "integer"}, "last_error": {"type": ["string", "null"]}}}"#),
    },
    BuiltIn {
        name: "hookrelay.queue.backlog",
        description: "The tenant's pending deliveries or oldest pending age crossed HOOKRELAY_ALERT_BACKLOG; sent again only after it fell back below.",
        example: r#"{"pending": 12000, "oldest_pending_age_seconds": 960}"#,
        schema: Some(r#"{"type": "object", "required": ["pending", "oldest_pending_age_seconds"], "properties": {"pending": {"type": "integer"}, "oldest_pending_age_seconds": {"type": "integer"}}}"#),
    },
    BuiltIn {
        name: "webhook.test",
        description: "Sent by `POST /api/v1/webhooks/{id}/test`.",
        example: r#"{"webhook_id": "wh_01JD5Q3V6M3N8X2Y7Z9A0B1C2D", "message": "Test event from hookrelay"}"#,
        schema: None,
    },
];

pub fn built_in(name: &str) -> Option<&'static BuiltIn> {
    BUILT_INS.iter().find(|b| b.name == name)
}

/// A tenant may define at most this many types of its own (overrides included).
pub const MAX_TENANT_TYPES: usize = 1000;
/// Stored size of a schema or an example.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// One entry of a tenant's catalog as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogEntry {
    pub name: String,
    pub description: String,
    pub schema: Option<Value>,
    pub example: Option<Value>,
    pub built_in: bool,
    /// `None` for a built-in the tenant has not customised.
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

impl CatalogEntry {
    fn of_built_in(b: &BuiltIn) -> Self {
        Self {
            name: b.name.to_owned(),
            description: b.description.to_owned(),
            schema: b.schema(),
            example: Some(b.example()),
            built_in: true,
            created_at: None,
            updated_at: None,
        }
    }

    fn of_row(t: EventType) -> Self {
        Self {
            built_in: built_in(&t.name).is_some(),
            name: t.name,
            description: t.description,
            schema: t.schema,
            example: t.example,
            created_at: Some(t.created_at),
            updated_at: Some(t.updated_at),
        }
    }
}

/// The tenant's whole catalog, by name: built-ins overlaid with its rows.
pub async fn load(
    store: &dyn Store,
    tenant: &TenantId,
) -> StoreResult<BTreeMap<String, CatalogEntry>> {
    let mut all: BTreeMap<String, CatalogEntry> = BUILT_INS
        .iter()
        .map(|b| (b.name.to_owned(), CatalogEntry::of_built_in(b)))
        .collect();
    for row in store.list_event_types(tenant).await? {
        all.insert(row.name.clone(), CatalogEntry::of_row(row));
    }
    Ok(all)
}

/// One entry: the tenant's row, else the built-in.
pub async fn get(
    store: &dyn Store,
    tenant: &TenantId,
    name: &str,
) -> StoreResult<Option<CatalogEntry>> {
    Ok(match store.get_event_type(tenant, name).await? {
        Some(row) => Some(CatalogEntry::of_row(row)),
        None => built_in(name).map(CatalogEntry::of_built_in),
    })
}

/// Patterns of a webhook's `events` that match no type of the catalog, as warnings
/// (`events[i]`). `*` and an empty list match everything and never warn.
pub fn unknown_patterns(events: &[String], names: &[&str]) -> Vec<FieldError> {
    events
        .iter()
        .enumerate()
        .filter(|(_, pattern)| {
            EventFilter::parse(std::slice::from_ref(*pattern))
                .map(|f| !names.iter().any(|n| f.matches(n)))
                .unwrap_or(false)
        })
        .map(|(i, pattern)| {
            FieldError::new(
                format!("events[{i}]"),
                format!(
                    "`{pattern}` matches no event type in the catalog (GET /api/v1/event-types)"
                ),
            )
        })
        .collect()
}

/// Compiles a schema; the message says why it is not a valid JSON Schema. Remote `$ref`s are
/// refused: this build has no HTTP or file resolver, so a schema can never fetch anything.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err("must be a JSON Schema (an object)".into());
    }
    jsonschema::validator_for(schema).map_err(|e| format!("is not a valid JSON Schema: {e}"))
}

/// Every way `instance` fails `validator`, as `details` entries under `prefix`
/// (`data.amount`, `data.items.0.name`; `data` itself for the root).
pub fn errors(
    validator: &jsonschema::Validator,
    instance: &Value,
    prefix: &str,
) -> Vec<FieldError> {
    validator
        .iter_errors(instance)
        .take(50)
        .map(|e| {
            let mut field = prefix.to_owned();
            for segment in e.instance_path().iter() {
                field.push('.');
                field.push_str(&segment.to_string());
            }
            // A missing property is best reported at the property itself.
            if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind() {
                if let Some(name) = property.as_str() {
                    field.push('.');
                    field.push_str(name);
                }
            }
            FieldError::new(field, e.to_string())
        })
        .collect()
}

/// The compiled schemas of one tenant's types that have one.
#[derive(Default)]
pub struct TenantSchemas {
    validators: HashMap<String, Arc<jsonschema::Validator>>,
}

impl TenantSchemas {
    /// `Ok` when `event_type` has no schema or `data` satisfies it; else one entry per failure.
    pub fn validate(&self, event_type: &str, data: &Value) -> Result<(), Vec<FieldError>> {
        let Some(validator) = self.validators.get(event_type) else {
            return Ok(());
        };
        let errs = errors(validator, data, "data");
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// `validate` for data kept as raw JSON text: parsed only when its type has a schema, so
    /// emits of schemaless types never pay for a parse.
    pub fn validate_raw(&self, event_type: &str, data: &str) -> Result<(), Vec<FieldError>> {
        if !self.validators.contains_key(event_type) {
            return Ok(());
        }
        match serde_json::from_str::<Value>(data) {
            Ok(value) => self.validate(event_type, &value),
            Err(e) => Err(vec![FieldError::new(
                "data",
                format!("is not valid JSON: {e}"),
            )]),
        }
    }
}

/// Compiled schemas per tenant, so an emit costs a map lookup: a tenant's schemas are loaded
/// and compiled once, kept for `ttl`, and dropped at once on this node when its catalog changes
/// (other nodes notice within `ttl`).
pub struct SchemaCache {
    ttl: Duration,
    tenants: RwLock<HashMap<TenantId, (Instant, Arc<TenantSchemas>)>>,
}

impl SchemaCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    pub async fn for_tenant(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
    ) -> StoreResult<Arc<TenantSchemas>> {
        if let Ok(map) = self.tenants.read() {
            if let Some((at, schemas)) = map.get(tenant) {
                if at.elapsed() < self.ttl {
                    return Ok(schemas.clone());
                }
            }
        }
        let mut validators = HashMap::new();
        for row in store.list_event_types(tenant).await? {
            if let Some(schema) = &row.schema {
                match compile(schema) {
                    Ok(v) => {
                        validators.insert(row.name, Arc::new(v));
                    }
                    // Checked when it was stored; an unreadable one must not block emits.
                    Err(e) => {
                        tracing::warn!(event_type = %row.name, error = %e, "stored schema does not compile; not enforced")
                    }
                }
            }
        }
        let schemas = Arc::new(TenantSchemas { validators });
        if let Ok(mut map) = self.tenants.write() {
            if map.len() > 10_000 {
                map.retain(|_, (at, _)| at.elapsed() < self.ttl);
            }
            map.insert(tenant.clone(), (Instant::now(), schemas.clone()));
        }
        Ok(schemas)
    }

    pub fn invalidate(&self, tenant: &TenantId) {
        if let Ok(mut map) = self.tenants.write() {
            map.remove(tenant);
        }
    }
}

/// The envelope a template or filter sees for an example, for checks and previews.
pub fn example_envelope(event_type: &str, data: Value) -> Value {
    json!({"event": event_type, "timestamp": "2026-11-23T10:00:00.000Z",
           "eventId": "evt_01JD5Q3V6M3N8X2Y7Z9A0B1C2D", "data": data})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_are_valid_and_unique() {
        let mut names: Vec<_> = BUILT_INS.iter().map(|b| b.name).collect();
        for b in BUILT_INS {
            assert!(hookrelay_domain::validate::is_valid_event_type(b.name));
            assert!(b.example().is_object(), "{} example", b.name);
            assert_eq!(
                b.schema.is_some(),
                b.schema().is_some(),
                "{} schema",
                b.name
            );
            // hookrelay's own events carry a schema, and their examples satisfy it.
            if let Some(schema) = b.schema() {
                let compiled = compile(&schema).expect("the schema compiles");
                assert!(
                    errors(&compiled, &b.example(), "data").is_empty(),
                    "{} example",
                    b.name
                );
            }
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUILT_INS.len());
    }

    #[test]
    fn unknown_patterns_warn_per_index() {
        let names = ["member.created", "github.push"];
        let events: Vec<String> = [
            "member.created",
            "membr.created",
            "github.*",
            "gitlab.*",
            "*",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let w = unknown_patterns(&events, &names);
        let fields: Vec<_> = w.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["events[1]", "events[3]"]);
    }

    #[test]
    fn schemas_compile_and_report_paths() {
        assert!(compile(&json!({"type": "nope"})).is_err());
        assert!(compile(&json!([1])).is_err());
        assert!(compile(&json!({"$ref": "https://example.com/schema.json"})).is_err());
        let v = compile(&json!({"type": "object", "required": ["name"],
            "properties": {"amount": {"type": "number", "minimum": 0},
                           "items": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}}}}))
        .unwrap();
        assert!(errors(&v, &json!({"name": "x", "amount": 3}), "data").is_empty());
        let errs = errors(&v, &json!({"amount": -1, "items": [{"sku": 5}]}), "data");
        let mut fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["data.amount", "data.items.0.sku", "data.name"]);
    }
}
