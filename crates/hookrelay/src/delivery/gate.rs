//! Fairness and rate limits for one worker: caps on deliveries in flight per webhook and per
//! tenant, and a webhook's `rate_limit_per_sec` and a tenant's delivery rate — token buckets in
//! this process on SQLite, slots leased from the database when nodes share one (PostgreSQL).
//! A slow or flooding tenant fills its own caps, never the whole worker.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookrelay_domain::quota::Quotas;

use super::slots::SharedSlots;
use crate::store::{ClaimExclusions, DeliveryClaim, RateGrant, RateLease, Webhook};

/// What the gate decides for one claimed delivery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Admission {
    Send,
    /// Send it at this instant (a leased rate slot starting soon, see `slots::LEASE_HORIZON`).
    SendAt(Instant),
    /// Give it back unattempted; it may go again after this long.
    Later(Duration),
}

#[derive(Clone, Copy, Debug)]
pub struct GateLimits {
    pub per_webhook_inflight: usize,
    pub per_tenant_inflight: usize,
    /// The operator's default tenant delivery rate (`HOOKRELAY_DEFAULT_QUOTAS`).
    pub default_tenant_rate: Option<u64>,
    /// Rates are shared with other nodes through the store (`Store::lease_rate_slots`) rather
    /// than counted in this process: set on PostgreSQL, where several nodes may run.
    pub shared_rates: bool,
}

/// A token bucket holding up to one second of tokens (at least one).
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate.max(1.0),
            at: now,
        }
    }

    fn refill(&mut self, rate: f64, now: Instant) {
        self.rate = rate;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
        self.at = now;
    }

    /// Time until a token is available (zero when one is).
    fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }
}

/// How long before a gated webhook or tenant is worth asking the store about again.
const RETRY_GATED_AFTER: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct Gate {
    limits: GateLimits,
    inflight_webhook: HashMap<String, usize>,
    inflight_tenant: HashMap<String, usize>,
    webhook_buckets: HashMap<String, Bucket>,
    tenant_buckets: HashMap<String, Bucket>,
    /// With `shared_rates`: the slots leased from the store, in place of the buckets.
    shared: Option<(SharedSlots, SharedSlots)>,
}

impl Gate {
    pub fn new(limits: GateLimits) -> Self {
        Self {
            limits,
            inflight_webhook: HashMap::new(),
            inflight_tenant: HashMap::new(),
            webhook_buckets: HashMap::new(),
            tenant_buckets: HashMap::new(),
            shared: limits
                .shared_rates
                .then(|| (SharedSlots::new("webhook:"), SharedSlots::new("tenant:"))),
        }
    }

    /// Webhooks and tenants the next claim should skip: at their cap, or out of tokens.
    pub fn exclusions(&self, now: Instant) -> ClaimExclusions {
        let full = |m: &HashMap<String, usize>, cap: usize| -> Vec<String> {
            m.iter()
                .filter(|(_, n)| **n >= cap)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let mut webhooks = full(&self.inflight_webhook, self.limits.per_webhook_inflight);
        let mut tenants = full(&self.inflight_tenant, self.limits.per_tenant_inflight);
        let dry = |m: &HashMap<String, Bucket>| -> Vec<String> {
            m.iter()
                .filter(|(_, b)| {
                    let mut b2 = Bucket {
                        rate: b.rate,
                        tokens: b.tokens,
                        at: b.at,
                    };
                    b2.refill(b.rate, now);
                    b2.tokens < 1.0
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        webhooks.extend(dry(&self.webhook_buckets));
        tenants.extend(dry(&self.tenant_buckets));
        if let Some((w, t)) = &self.shared {
            webhooks.extend(w.refused(now).cloned());
            tenants.extend(t.refused(now).cloned());
        }
        ClaimExclusions {
            webhooks,
            tenants,
            max_per_webhook: Some(self.limits.per_webhook_inflight as u32),
        }
    }

    /// Whether no delivery rate applies to `webhook`'s deliveries in a tenant with `quotas`
    /// (only the in-flight caps do): no rate of its own, no chat default, no tenant rate.
    /// An ordered webhook is never handed off either: only the claim keeps its order.
    pub fn is_unmetered(limits: &GateLimits, webhook: &Webhook, quotas: &Quotas) -> bool {
        !webhook.ordered
            && webhook.rate_limit_per_sec.is_none()
            && crate::destinations::default_rate_limit(webhook.kind).is_none()
            && quotas.delivery_rate_per_sec.is_none()
            && limits.default_tenant_rate.is_none()
    }

    /// Decides for one claim; a `Send` counts it in flight until `finish`.
    pub fn admit(&mut self, claim: &DeliveryClaim, now: Instant) -> Admission {
        let webhook = claim.webhook.id.as_str();
        let tenant = claim.tenant_id.as_str();
        if self.inflight_webhook.get(webhook).copied().unwrap_or(0)
            >= self.limits.per_webhook_inflight
            || self.inflight_tenant.get(tenant).copied().unwrap_or(0)
                >= self.limits.per_tenant_inflight
        {
            return Admission::Later(RETRY_GATED_AFTER);
        }
        let (webhook_rate, tenant_rate) = self.rates(claim);
        if let Some((w, t)) = &mut self.shared {
            let admission = match Self::admit_shared(w, t, claim, (webhook_rate, tenant_rate), now)
            {
                Admission::Later(wait) if !wait.is_zero() => return Admission::Later(wait),
                // `Later(ZERO)`: no rate applies, only the caps did.
                Admission::Later(_) => Admission::Send,
                sent => sent,
            };
            self.count_in_flight(webhook, tenant);
            return admission;
        }
        let wait_w =
            webhook_rate.map(|r| Self::bucket(&mut self.webhook_buckets, webhook, r, now).wait());
        let wait_t =
            tenant_rate.map(|r| Self::bucket(&mut self.tenant_buckets, tenant, r, now).wait());
        let wait = wait_w.unwrap_or_default().max(wait_t.unwrap_or_default());
        if !wait.is_zero() {
            return Admission::Later(wait);
        }
        if webhook_rate.is_some() {
            if let Some(b) = self.webhook_buckets.get_mut(webhook) {
                b.tokens -= 1.0;
            }
        }
        if tenant_rate.is_some() {
            if let Some(b) = self.tenant_buckets.get_mut(tenant) {
                b.tokens -= 1.0;
            }
        }
        self.count_in_flight(webhook, tenant);
        Admission::Send
    }

    fn count_in_flight(&mut self, webhook: &str, tenant: &str) {
        *self.inflight_webhook.entry(webhook.to_owned()).or_default() += 1;
        *self.inflight_tenant.entry(tenant.to_owned()).or_default() += 1;
    }

    /// The webhook's and the tenant's delivery rates, where one applies. Chat services get a
    /// default pace under their documented limits unless the webhook sets one.
    fn rates(&self, claim: &DeliveryClaim) -> (Option<f64>, Option<f64>) {
        let webhook_rate = claim
            .webhook
            .rate_limit_per_sec
            .map(f64::from)
            .or_else(|| crate::destinations::default_rate_limit(claim.webhook.kind));
        let tenant_rate = claim
            .tenant_quotas
            .delivery_rate_per_sec
            .or(self.limits.default_tenant_rate)
            .map(|r| r as f64);
        (webhook_rate, tenant_rate)
    }

    /// The shared-rate half of `admit`: a slot of each applying rate, or wait for the later
    /// of them. `Later(ZERO)` means no rate applies.
    fn admit_shared(
        webhooks: &mut SharedSlots,
        tenants: &mut SharedSlots,
        claim: &DeliveryClaim,
        (webhook_rate, tenant_rate): (Option<f64>, Option<f64>),
        now: Instant,
    ) -> Admission {
        if webhook_rate.is_none() && tenant_rate.is_none() {
            return Admission::Later(Duration::ZERO);
        }
        let (webhook, tenant) = (claim.webhook.id.as_str(), claim.tenant_id.as_str());
        let slot_w = webhook_rate.map(|r| webhooks.next_slot(webhook, r, now));
        let slot_t = tenant_rate.map(|r| tenants.next_slot(tenant, r, now));
        let mut start = now;
        let mut wait = Duration::ZERO;
        for slot in [slot_w, slot_t].into_iter().flatten() {
            match slot {
                Ok(at) => start = start.max(at),
                Err(w) => wait = wait.max(w),
            }
        }
        if !wait.is_zero() {
            // Both slots or neither: a slot taken alone would be wasted.
            return Admission::Later(wait);
        }
        if webhook_rate.is_some() {
            webhooks.take(webhook);
        }
        if tenant_rate.is_some() {
            tenants.take(tenant);
        }
        if start > now {
            Admission::SendAt(start)
        } else {
            Admission::Send
        }
    }

    /// With shared rates: the slots to lease from the store so that `claims` (about to be
    /// admitted) find one each — one lease per limited webhook and tenant. Empty otherwise.
    pub fn rate_leases(&mut self, claims: &[DeliveryClaim], now: Instant) -> Vec<RateLease> {
        if self.shared.is_none() {
            return Vec::new();
        }
        let mut demand: HashMap<(bool, &str), (f64, u32)> = HashMap::new();
        for claim in claims {
            let (webhook_rate, tenant_rate) = self.rates(claim);
            if let Some(r) = webhook_rate {
                demand
                    .entry((true, claim.webhook.id.as_str()))
                    .or_insert((r, 0))
                    .1 += 1;
            }
            if let Some(r) = tenant_rate {
                demand
                    .entry((false, claim.tenant_id.as_str()))
                    .or_insert((r, 0))
                    .1 += 1;
            }
        }
        let Some((webhooks, tenants)) = &mut self.shared else {
            return Vec::new();
        };
        demand
            .into_iter()
            .filter_map(|((is_webhook, id), (rate, wanted))| {
                let slots = if is_webhook {
                    &mut *webhooks
                } else {
                    &mut *tenants
                };
                slots.lease_for(id, rate, wanted, now)
            })
            .collect()
    }

    /// Takes in the store's answer to `rate_leases`, read at `at`.
    pub fn grant_leases(&mut self, leases: &[RateLease], grants: &[RateGrant], at: Instant) {
        let Some((webhooks, tenants)) = &mut self.shared else {
            return;
        };
        for (lease, grant) in leases.iter().zip(grants) {
            let slots = if webhooks.owns(&lease.key) {
                &mut *webhooks
            } else {
                &mut *tenants
            };
            slots.grant(lease, *grant, at);
        }
    }

    fn bucket<'a>(
        map: &'a mut HashMap<String, Bucket>,
        key: &str,
        rate: f64,
        now: Instant,
    ) -> &'a mut Bucket {
        let b = map
            .entry(key.to_owned())
            .or_insert_with(|| Bucket::new(rate, now));
        b.refill(rate, now);
        b
    }

    /// A sent delivery finished (recorded or not): its slot is free again. Returns whether the
    /// webhook or tenant was at its cap, so the dispatcher (which skipped it) should look again.
    pub fn finish(&mut self, webhook: &str, tenant: &str) -> bool {
        let caps = [
            self.limits.per_webhook_inflight,
            self.limits.per_tenant_inflight,
        ];
        let mut was_full = false;
        for ((map, key), cap) in [
            (&mut self.inflight_webhook, webhook),
            (&mut self.inflight_tenant, tenant),
        ]
        .into_iter()
        .zip(caps)
        {
            if let Some(n) = map.get_mut(key) {
                was_full |= *n >= cap;
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
        was_full
    }

    /// Drops buckets that have refilled completely, so idle webhooks do not accumulate.
    pub fn tidy(&mut self, now: Instant) {
        if let Some((w, t)) = &mut self.shared {
            w.tidy(now);
            t.tidy(now);
        }
        for map in [&mut self.webhook_buckets, &mut self.tenant_buckets] {
            map.retain(|_, b| {
                let mut b2 = Bucket {
                    rate: b.rate,
                    tokens: b.tokens,
                    at: b.at,
                };
                b2.refill(b.rate, now);
                b2.tokens < b.rate.max(1.0)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoredSecret, Webhook};
    use hookrelay_domain::quota::Quotas;
    use hookrelay_domain::*;

    fn claim(
        webhook: &str,
        tenant: &str,
        rate: Option<u32>,
        tenant_rate: Option<u64>,
    ) -> DeliveryClaim {
        DeliveryClaim {
            delivery_id: DeliveryId::generate(),
            tenant_id: TenantId::from_trusted(tenant.into()),
            event_id: EventId::generate(),
            event_type: "a.b".into(),
            event_timestamp: 0,
            data: "{}".into(),
            attempts_made: 0,
            created_at: 0,
            webhook: std::sync::Arc::new(Webhook {
                ordered: false,
                id: WebhookId::from_trusted(webhook.into()),
                tenant_id: TenantId::from_trusted(tenant.into()),
                url: "https://example.com".into(),
                kind: WebhookKind::Http,
                description: None,
                active: true,
                events: vec![],
                headers: Default::default(),
                rate_limit_per_sec: rate,
                templates: Default::default(),
                retry_schedule: None,
                filter: None,
                transform: None,
                target: None,
                secrets: vec![StoredSecret {
                    secret: String::new(),
                    expires_at: None,
                }],
                health: Default::default(),
                created_at: 0,
                updated_at: 0,
            }),
            tenant_quotas: Quotas {
                delivery_rate_per_sec: tenant_rate,
                ..Default::default()
            },
        }
    }

    fn gate() -> Gate {
        Gate::new(GateLimits {
            per_webhook_inflight: 2,
            per_tenant_inflight: 3,
            default_tenant_rate: None,
            shared_rates: false,
        })
    }

    #[test]
    fn caps_in_flight_per_webhook_and_tenant() {
        let mut g = gate();
        let now = Instant::now();
        assert_eq!(
            g.admit(&claim("wh_a", "ten_a", None, None), now),
            Admission::Send
        );
        assert_eq!(
            g.admit(&claim("wh_a", "ten_a", None, None), now),
            Admission::Send
        );
        assert!(matches!(
            g.admit(&claim("wh_a", "ten_a", None, None), now),
            Admission::Later(_)
        ));
        assert_eq!(g.exclusions(now).webhooks, vec!["wh_a".to_string()]);
        assert_eq!(
            g.admit(&claim("wh_b", "ten_a", None, None), now),
            Admission::Send
        );
        assert!(
            matches!(
                g.admit(&claim("wh_c", "ten_a", None, None), now),
                Admission::Later(_)
            ),
            "tenant cap"
        );
        assert_eq!(g.exclusions(now).tenants, vec!["ten_a".to_string()]);
        // Another tenant is unaffected.
        assert_eq!(
            g.admit(&claim("wh_z", "ten_b", None, None), now),
            Admission::Send
        );
        assert!(
            g.finish("wh_a", "ten_a"),
            "freeing a capped webhook is reported"
        );
        assert!(g.exclusions(now).webhooks.is_empty());
        assert!(!g.finish("wh_z", "ten_b"));
        assert_eq!(
            g.admit(&claim("wh_a", "ten_a", None, None), now),
            Admission::Send
        );
    }

    #[test]
    fn webhook_rate_spreads_sends() {
        let mut g = Gate::new(GateLimits {
            per_webhook_inflight: 100,
            per_tenant_inflight: 100,
            default_tenant_rate: None,
            shared_rates: false,
        });
        let t0 = Instant::now();
        let sent = (0..10)
            .filter(|_| g.admit(&claim("wh_r", "ten_a", Some(4), None), t0) == Admission::Send)
            .count();
        assert_eq!(sent, 4, "a burst of one second's worth");
        match g.admit(&claim("wh_r", "ten_a", Some(4), None), t0) {
            Admission::Later(d) => assert!(
                d > Duration::ZERO && d <= Duration::from_millis(250),
                "{d:?}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(g.exclusions(t0).webhooks.contains(&"wh_r".to_string()));
        let later = t0 + Duration::from_millis(500);
        let sent = (0..10)
            .filter(|_| g.admit(&claim("wh_r", "ten_a", Some(4), None), later) == Admission::Send)
            .count();
        assert_eq!(sent, 2, "two tokens refilled in half a second");
    }

    #[test]
    fn tenant_rate_applies_across_webhooks_and_defaults() {
        let mut g = Gate::new(GateLimits {
            per_webhook_inflight: 100,
            per_tenant_inflight: 100,
            default_tenant_rate: Some(2),
            shared_rates: false,
        });
        let t0 = Instant::now();
        let sent = ["wh_1", "wh_2", "wh_3"]
            .iter()
            .filter(|w| g.admit(&claim(w, "ten_q", None, None), t0) == Admission::Send)
            .count();
        assert_eq!(
            sent, 2,
            "the default tenant rate caps all its webhooks together"
        );
        let sent = (0..5)
            .filter(|_| g.admit(&claim("wh_9", "ten_own", None, Some(5)), t0) == Admission::Send)
            .count();
        assert_eq!(sent, 5, "a tenant's own quota wins over the default");
    }

    #[test]
    fn shared_rates_send_on_leased_slots_only() {
        let mut g = Gate::new(GateLimits {
            per_webhook_inflight: 100,
            per_tenant_inflight: 100,
            default_tenant_rate: None,
            shared_rates: true,
        });
        let t0 = Instant::now();
        let claims: Vec<_> = (0..4)
            .map(|_| claim("wh_r", "ten_a", Some(10), None))
            .collect();
        let leases = g.rate_leases(&claims, t0);
        assert_eq!(leases.len(), 1, "one lease for the batch: {leases:?}");
        assert_eq!(
            (leases[0].key.as_str(), leases[0].wanted),
            ("webhook:wh_r", 4)
        );
        // The store grants the three slots starting within the horizon: 0, 100 and 200 ms.
        let grant = RateGrant {
            granted: 3,
            first_in_us: 0,
        };
        g.grant_leases(&leases, &[grant], t0);
        let ms = Duration::from_millis;
        assert_eq!(g.admit(&claims[0], t0), Admission::Send);
        assert_eq!(g.admit(&claims[1], t0), Admission::SendAt(t0 + ms(100)));
        assert_eq!(g.admit(&claims[2], t0), Admission::SendAt(t0 + ms(200)));
        assert_eq!(
            g.admit(&claims[3], t0),
            Admission::Later(ms(50)),
            "the slot at 300 ms may be leased in 50 ms"
        );
        assert_eq!(g.exclusions(t0).webhooks, vec!["wh_r".to_string()]);
        // No rate, no lease: only the caps apply.
        let free = claim("wh_f", "ten_a", None, None);
        assert!(g.rate_leases(std::slice::from_ref(&free), t0).is_empty());
        assert_eq!(g.admit(&free, t0), Admission::Send);
        // A tenant rate needs a tenant slot too: without one the webhook's slot is kept.
        let both = claim("wh_t", "ten_b", Some(10), Some(10));
        let leases = g.rate_leases(std::slice::from_ref(&both), t0);
        assert_eq!(leases.len(), 2);
        let grants: Vec<RateGrant> = leases
            .iter()
            .map(|l| RateGrant {
                granted: u32::from(l.key.starts_with("webhook:")),
                first_in_us: 0,
            })
            .collect();
        g.grant_leases(&leases, &grants, t0);
        assert!(matches!(g.admit(&both, t0), Admission::Later(_)));
        assert!(
            g.rate_leases(std::slice::from_ref(&both), t0).len() <= 1,
            "the webhook slot is still held"
        );
    }
}
