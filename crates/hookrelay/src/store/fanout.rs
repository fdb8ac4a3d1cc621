//! The fan-out index: each tenant's webhooks decoded once (filters parsed, secrets opened) and
//! kept between ingest commits, with the webhooks each event type matches worked out once.
//!
//! An entry is valid for one `tenants.hooks_generation`, which triggers bump on every change to
//! a webhook's configuration or the tenant's quotas, on whichever node made it (migration 0049).
//! Each ingest transaction reads the generation, so a change is seen by the next commit on
//! every node. What changes on the delivery path (a circuit opening, auto-disable) does not bump
//! it: ingest reads those two columns live, so a failing webhook never churns the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hookrelay_domain::quota::Quotas;
use hookrelay_domain::{EventFilter, PayloadFilter, WebhookId};

use super::Webhook;

/// Webhooks held across all tenants at most (each decoded webhook is about a kilobyte). Past
/// it, entries are dropped at random; a dropped tenant is loaded again on its next emit.
const MAX_CACHED_HOOKS: usize = 50_000;

/// Event types whose matches one tenant keeps; past it the memo starts over (types are
/// usually a few dozen, but a tenant emitting unique types must not grow it without bound).
const MAX_TYPES_PER_TENANT: usize = 1_024;

/// One webhook as fan-out needs it.
pub(super) struct FanOutHook {
    pub id: WebhookId,
    pub filter: EventFilter,
    pub payload: Option<PayloadFilter>,
    /// The webhook whole, for deliveries ingest leases to its own node; `None` when it cannot
    /// be read whole (its deliveries are still made, and the claim path reports why).
    pub webhook: Option<Arc<Webhook>>,
}

/// A tenant's webhooks at one generation.
pub(super) struct TenantHooks {
    pub generation: i64,
    /// In id order; webhooks whose stored filters no longer parse are left out (they match
    /// nothing rather than everything).
    pub hooks: Vec<FanOutHook>,
    /// Webhook rows the load saw, left-out ones included: a check that the live rows are the
    /// same set.
    pub rows: usize,
    pub quotas: Quotas,
    by_type: Mutex<HashMap<String, Arc<[u32]>>>,
}

impl TenantHooks {
    pub fn new(generation: i64, hooks: Vec<FanOutHook>, rows: usize, quotas: Quotas) -> Self {
        Self {
            generation,
            hooks,
            rows,
            quotas,
            by_type: Mutex::new(HashMap::new()),
        }
    }

    /// Indices into `hooks` of those whose event-type patterns match `event_type`; the
    /// patterns are run once per type, not once per event.
    pub fn matching(&self, event_type: &str) -> Arc<[u32]> {
        let mut memo = self.by_type.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = memo.get(event_type) {
            return found.clone();
        }
        let found: Arc<[u32]> = self
            .hooks
            .iter()
            .enumerate()
            .filter(|(_, h)| h.filter.matches(event_type))
            .map(|(i, _)| i as u32)
            .collect();
        if memo.len() >= MAX_TYPES_PER_TENANT {
            memo.clear();
        }
        memo.insert(event_type.to_owned(), found.clone());
        found
    }
}

/// The decoded webhooks of recently emitting tenants, shared by every ingest of one store.
#[derive(Default)]
pub(super) struct HookCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    tenants: HashMap<String, Arc<TenantHooks>>,
    hooks: usize,
}

impl HookCache {
    /// The tenant's entry if it is of `generation`.
    pub fn get(&self, tenant: &str, generation: i64) -> Option<Arc<TenantHooks>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .tenants
            .get(tenant)
            .filter(|t| t.generation == generation)
            .cloned()
    }

    pub fn put(&self, tenant: &str, entry: Arc<TenantHooks>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let size = entry.hooks.len();
        if let Some(old) = inner.tenants.insert(tenant.to_owned(), entry) {
            inner.hooks -= old.hooks.len();
        }
        inner.hooks += size;
        while inner.hooks > MAX_CACHED_HOOKS && inner.tenants.len() > 1 {
            let Some(victim) = inner.tenants.keys().find(|k| k.as_str() != tenant).cloned() else {
                break;
            };
            if let Some(old) = inner.tenants.remove(&victim) {
                inner.hooks -= old.hooks.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(id: &str, patterns: &[&str]) -> FanOutHook {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        FanOutHook {
            id: WebhookId::from_trusted(id.to_owned()),
            filter: EventFilter::parse(&patterns).unwrap(),
            payload: None,
            webhook: None,
        }
    }

    fn tenant(generation: i64, hooks: Vec<FanOutHook>) -> Arc<TenantHooks> {
        let rows = hooks.len();
        Arc::new(TenantHooks::new(generation, hooks, rows, Quotas::default()))
    }

    #[test]
    fn matches_are_worked_out_per_event_type() {
        let t = tenant(
            1,
            vec![
                hook("wh_a", &["member.*"]),
                hook("wh_b", &["github.pr.opened"]),
                hook("wh_c", &[]),
            ],
        );
        assert_eq!(&*t.matching("member.created"), &[0, 2]);
        assert_eq!(&*t.matching("github.pr.opened"), &[1, 2]);
        assert_eq!(&*t.matching("billing.paid"), &[2]);
        // The memo answers the same the second time.
        assert_eq!(&*t.matching("member.created"), &[0, 2]);
    }

    #[test]
    fn an_entry_is_only_good_for_its_generation() {
        let cache = HookCache::default();
        cache.put("t1", tenant(3, vec![hook("wh_a", &[])]));
        assert!(cache.get("t1", 3).is_some());
        assert!(cache.get("t1", 4).is_none(), "a newer generation misses");
        assert!(cache.get("t2", 3).is_none());
        cache.put("t1", tenant(4, vec![]));
        assert!(cache.get("t1", 3).is_none(), "the old entry is replaced");
        assert_eq!(cache.get("t1", 4).unwrap().hooks.len(), 0);
    }

    #[test]
    fn the_cache_holds_a_bounded_number_of_webhooks() {
        let cache = HookCache::default();
        let per_tenant = 1_000;
        for t in 0..(MAX_CACHED_HOOKS / per_tenant + 10) {
            let hooks = (0..per_tenant)
                .map(|i| hook(&format!("wh_{t}_{i}"), &[]))
                .collect();
            cache.put(&format!("t{t}"), tenant(1, hooks));
        }
        let inner = cache.inner.lock().unwrap();
        assert!(inner.hooks <= MAX_CACHED_HOOKS, "{} cached", inner.hooks);
        let counted: usize = inner.tenants.values().map(|t| t.hooks.len()).sum();
        assert_eq!(counted, inner.hooks, "the running count is exact");
        let last = format!("t{}", MAX_CACHED_HOOKS / per_tenant + 9);
        assert!(inner.tenants.contains_key(&last), "the newest entry stays");
    }
}
