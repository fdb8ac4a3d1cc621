//! The exact ledger: joins accepted events with receiver arrivals, asks the server about every
//! missing (event, webhook) pair, and classifies it as pending or missing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::api::{event_deliveries, Api, DeliveryRow, Topology};
use crate::load::Accepted;
use crate::receiver::{Arrivals, Receiver};

/// Event lookups in flight while reconciling.
const QUERY_CONCURRENCY: usize = 16;

/// The ledger line, plus how many event lookups failed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// Sum of `deliveries` over accepted events.
    pub expected: u64,
    /// Expected (event, webhook) pairs that arrived at least once.
    pub delivered: u64,
    /// Not arrived; the server lists the delivery as pending.
    pub pending: u64,
    /// Not arrived and not pending (succeeded but never seen, failed, cancelled, absent).
    pub missing: u64,
    /// Arrivals beyond the first of a pair.
    pub duplicates: u64,
    /// Pairs the bench never expected: unknown eventId, or a webhook outside the event's tenant,
    /// or more webhooks than the server said it created deliveries for.
    pub unexpected: u64,
    /// Events whose lookup failed (their unarrived pairs count as missing).
    pub lookup_errors: u64,
}

impl Ledger {
    pub fn line(&self) -> String {
        format!(
            "ledger: expected={} delivered={} pending={} missing={} duplicates={} unexpected={}",
            self.expected,
            self.delivered,
            self.pending,
            self.missing,
            self.duplicates,
            self.unexpected
        )
    }
}

/// One delivery that arrived for an accepted event: offsets (µs) from the emit start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub sent_us: u64,
    pub arrived_us: u64,
}

impl Sample {
    pub fn latency_us(&self) -> u64 {
        self.arrived_us.saturating_sub(self.sent_us)
    }
}

/// Accepted events joined with arrivals.
#[derive(Debug, Default)]
pub struct Joined {
    pub expected: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub unexpected: u64,
    /// Indices (into the accepted list) of events with fewer arrivals than deliveries.
    pub deficient: Vec<usize>,
    /// One per arrived expected pair.
    pub samples: Vec<Sample>,
}

/// Joins `accepted` with `arrivals`; webhook `w` belongs to tenant `w / per_tenant`.
pub fn join(accepted: &[Accepted], arrivals: &Arrivals, per_tenant: u32, start: Instant) -> Joined {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(accepted.len());
    for (i, event) in accepted.iter().enumerate() {
        index.insert(&event.id, i);
    }
    let mut seen = vec![0u32; accepted.len()];
    let mut joined = Joined {
        expected: accepted.iter().map(|a| a.deliveries as u64).sum(),
        samples: Vec::with_capacity(arrivals.len()),
        ..Joined::default()
    };
    for ((event_id, webhook), arrival) in arrivals {
        joined.duplicates += arrival.count.saturating_sub(1) as u64;
        let Some(&i) = index.get(&**event_id) else {
            joined.unexpected += 1;
            continue;
        };
        let event = &accepted[i];
        if webhook / per_tenant.max(1) != event.tenant {
            joined.unexpected += 1;
            continue;
        }
        seen[i] += 1;
        joined.samples.push(Sample {
            sent_us: event.sent.saturating_duration_since(start).as_micros() as u64,
            arrived_us: arrival.first.saturating_duration_since(start).as_micros() as u64,
        });
    }
    for (i, event) in accepted.iter().enumerate() {
        joined.delivered += seen[i].min(event.deliveries) as u64;
        joined.unexpected += seen[i].saturating_sub(event.deliveries) as u64;
        if seen[i] < event.deliveries {
            joined.deficient.push(i);
        }
    }
    joined
}

/// A delivery row reduced to what classification needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowView {
    /// Global webhook index, None when the id is not one of the bench's webhooks.
    pub webhook: Option<u32>,
    pub pending: bool,
}

/// Splits the `expected - seen` unarrived pairs of one event into (pending, missing).
/// `rows` is None when the event could not be read: then all are missing.
pub fn classify(expected: u32, seen: &[u32], rows: Option<&[RowView]>) -> (u64, u64) {
    let unarrived = expected.saturating_sub(seen.len() as u32) as u64;
    let Some(rows) = rows else {
        return (0, unarrived);
    };
    let mut pending_webhooks: Vec<u32> = rows
        .iter()
        .filter(|r| r.pending)
        .filter_map(|r| r.webhook)
        .filter(|w| !seen.contains(w))
        .collect();
    pending_webhooks.sort_unstable();
    pending_webhooks.dedup();
    let pending = (pending_webhooks.len() as u64).min(unarrived);
    (pending, unarrived - pending)
}

/// Webhooks of `event`'s tenant that have an arrival for it.
fn seen_webhooks(event: &Accepted, arrivals: &Arrivals, per_tenant: u32) -> Vec<u32> {
    let first = event.tenant * per_tenant;
    (first..first + per_tenant)
        .filter(|w| arrivals.contains_key(&(event.id.clone(), *w)))
        .collect()
}

/// The final ledger and the joined samples. Looks up every event still short of deliveries,
/// then re-reads the arrivals so that anything delivered meanwhile counts as delivered.
pub async fn reconcile(
    api: &Api,
    topology: &Topology,
    accepted: &[Accepted],
    receiver: &Receiver,
    start: Instant,
) -> Result<(Ledger, Joined)> {
    let per_tenant = topology.per_tenant;
    let deficient = join(accepted, &receiver.arrivals(), per_tenant, start).deficient;

    let sem = Arc::new(Semaphore::new(QUERY_CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for &i in &deficient {
        let api = api.clone();
        let sem = sem.clone();
        let id = accepted[i].id.to_string();
        let tenant = topology
            .tenant_header(accepted[i].tenant)
            .map(str::to_owned);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, event_deliveries(&api, &id, tenant.as_deref()).await)
        });
    }
    let mut details: HashMap<usize, Vec<DeliveryRow>> = HashMap::with_capacity(deficient.len());
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, Ok(rows))) => {
                details.insert(i, rows);
            }
            Ok((_, Err(err))) => {
                first_error.get_or_insert_with(|| format!("{err:#}"));
            }
            Err(err) => {
                first_error.get_or_insert_with(|| format!("event lookup task failed: {err}"));
            }
        }
    }
    if let Some(err) = &first_error {
        eprintln!("warning: some event lookups failed (their pairs count as missing): {err}");
    }

    let webhook_index = topology.webhook_index();
    let arrivals = receiver.arrivals();
    let joined = join(accepted, &arrivals, per_tenant, start);
    let mut ledger = Ledger {
        expected: joined.expected,
        delivered: joined.delivered,
        duplicates: joined.duplicates,
        unexpected: joined.unexpected,
        ..Ledger::default()
    };
    for &i in &joined.deficient {
        let event = &accepted[i];
        let seen = seen_webhooks(event, &arrivals, per_tenant);
        let views: Option<Vec<RowView>> = details.get(&i).map(|rows| {
            rows.iter()
                .map(|r| RowView {
                    webhook: webhook_index.get(r.webhook_id.as_str()).copied(),
                    pending: r.status == "pending",
                })
                .collect()
        });
        if views.is_none() {
            ledger.lookup_errors += 1;
        }
        let (pending, missing) = classify(event.deliveries, &seen, views.as_deref());
        ledger.pending += pending;
        ledger.missing += missing;
    }
    drop(arrivals);
    Ok((ledger, joined))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::Arrival;
    use std::time::Duration;

    fn event(id: &str, tenant: u32, deliveries: u32, sent: Instant) -> Accepted {
        Accepted {
            id: id.into(),
            tenant,
            sent,
            deliveries,
        }
    }

    fn arrive(map: &mut Arrivals, id: &str, webhook: u32, at: Instant, count: u32) {
        map.insert((id.into(), webhook), Arrival { first: at, count });
    }

    #[test]
    fn classifies_unarrived_pairs() {
        let pending = |w| RowView {
            webhook: Some(w),
            pending: true,
        };
        let done = |w| RowView {
            webhook: Some(w),
            pending: false,
        };
        // Two of three arrived; the third is pending on the server.
        assert_eq!(
            classify(3, &[0, 1], Some(&[done(0), done(1), pending(2)])),
            (1, 0)
        );
        // Succeeded on the server but never seen: missing.
        assert_eq!(
            classify(3, &[0, 1], Some(&[done(0), done(1), done(2)])),
            (0, 1)
        );
        // Absent from the server's list: missing.
        assert_eq!(classify(2, &[0], Some(&[done(0)])), (0, 1));
        // Lookup failed: all unarrived are missing.
        assert_eq!(classify(2, &[], None), (0, 2));
        // A pending row for a webhook that did arrive does not hide a missing one.
        assert_eq!(classify(2, &[0], Some(&[pending(0)])), (0, 1));
        // Unknown webhook ids cannot be pending for us; duplicate rows count once.
        let unknown = RowView {
            webhook: None,
            pending: true,
        };
        assert_eq!(
            classify(3, &[], Some(&[unknown, pending(1), pending(1)])),
            (1, 2)
        );
        // Nothing unarrived.
        assert_eq!(classify(1, &[0], Some(&[])), (0, 0));
    }

    #[test]
    fn joins_events_with_arrivals() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Two tenants with two webhooks each: tenant 1 owns webhooks 2 and 3.
        let accepted = vec![
            event("evt_a", 0, 2, t0),
            event("evt_b", 1, 2, t0 + ms(10)),
            event("evt_c", 1, 2, t0 + ms(20)),
        ];
        let mut arrivals = Arrivals::new();
        arrive(&mut arrivals, "evt_a", 0, t0 + ms(5), 1);
        arrive(&mut arrivals, "evt_a", 1, t0 + ms(7), 3);
        arrive(&mut arrivals, "evt_b", 2, t0 + ms(40), 1);
        arrive(&mut arrivals, "evt_b", 0, t0 + ms(40), 1); // wrong tenant
        arrive(&mut arrivals, "evt_zzz", 0, t0 + ms(40), 2); // never accepted
        let joined = join(&accepted, &arrivals, 2, t0);
        assert_eq!(joined.expected, 6);
        assert_eq!(joined.delivered, 3);
        assert_eq!(joined.duplicates, 3);
        assert_eq!(joined.unexpected, 2);
        assert_eq!(joined.deficient, vec![1, 2]);
        let mut latencies: Vec<u64> = joined.samples.iter().map(Sample::latency_us).collect();
        latencies.sort_unstable();
        assert_eq!(latencies, vec![5_000, 7_000, 30_000]);
        assert_eq!(seen_webhooks(&accepted[1], &arrivals, 2), vec![2]);
        assert!(seen_webhooks(&accepted[2], &arrivals, 2).is_empty());
    }

    #[test]
    fn extra_webhooks_beyond_the_answer_are_unexpected() {
        let t0 = Instant::now();
        let accepted = vec![event("evt_a", 0, 1, t0)];
        let mut arrivals = Arrivals::new();
        arrive(&mut arrivals, "evt_a", 0, t0, 1);
        arrive(&mut arrivals, "evt_a", 1, t0, 1);
        let joined = join(&accepted, &arrivals, 2, t0);
        assert_eq!((joined.delivered, joined.unexpected), (1, 1));
        assert!(joined.deficient.is_empty());
    }

    #[test]
    fn ledger_line_format() {
        let ledger = Ledger {
            expected: 10,
            delivered: 7,
            pending: 2,
            missing: 1,
            duplicates: 3,
            unexpected: 0,
            lookup_errors: 0,
        };
        assert_eq!(
            ledger.line(),
            "ledger: expected=10 delivered=7 pending=2 missing=1 duplicates=3 unexpected=0"
        );
    }
}
