//! Shared rate limits: leases of time slots that never overlap, whichever caller takes them,
//! and that say how long to wait when none is free. Times are real (PostgreSQL reads its clock).

use std::time::{SystemTime, UNIX_EPOCH};

use hookrelay::store::*;

const SECOND_US: i64 = 1_000_000;

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

fn lease(key: &str, interval_us: i64, horizon_us: i64, wanted: u32) -> RateLease {
    RateLease {
        key: key.into(),
        interval_us,
        horizon_us,
        wanted,
    }
}

async fn one(store: &dyn Store, l: RateLease) -> RateGrant {
    let grants = store.lease_rate_slots(&[l], wall_us()).await.unwrap();
    assert_eq!(grants.len(), 1);
    grants[0]
}

/// `a` is `b` within the time this test may take between two calls.
fn about(a: i64, b: i64) -> bool {
    (a - b).abs() < 300_000
}

pub async fn scenario_rate_slot_leases(store: &dyn Store) {
    // One slot a second, granted while it starts within 2.5 s: slots at 0, 1 and 2 s.
    let g = one(store, lease("webhook:a", SECOND_US, 2_500_000, 5)).await;
    assert_eq!(g.granted, 3, "{g:?}");
    assert!(about(g.first_in_us, 0), "a fresh key starts now: {g:?}");
    let g = one(store, lease("webhook:a", SECOND_US, 2_500_000, 5)).await;
    assert_eq!(
        g.granted, 0,
        "the next slot (3 s) is past the horizon: {g:?}"
    );
    assert!(
        about(g.first_in_us, 500_000),
        "it starts by the horizon in about 0.5 s: {g:?}"
    );
    // A longer horizon reaches it, after the slots already leased.
    let g = one(store, lease("webhook:a", SECOND_US, 10 * SECOND_US, 1)).await;
    assert_eq!(g.granted, 1);
    assert!(about(g.first_in_us, 3 * SECOND_US), "{g:?}");

    // Keys are independent, and several leases go in one call, answered in order.
    let grants = store
        .lease_rate_slots(
            &[
                lease("tenant:t", SECOND_US / 10, 0, 4),
                lease("source:s", SECOND_US, 0, 2),
            ],
            wall_us(),
        )
        .await
        .unwrap();
    assert_eq!(
        grants[0].granted, 1,
        "horizon 0: only the slot starting now"
    );
    assert_eq!(grants[1].granted, 1);
    assert!(about(grants[0].first_in_us, 0) && about(grants[1].first_in_us, 0));

    // Leases taken at once (as on several nodes) share the slots: five slots a second apart
    // start within 4.5 s, and ten callers wanting one each get exactly those five, each its own.
    let wanted = lease("webhook:shared", SECOND_US, 4_500_000, 1);
    let grants = futures::future::join_all((0..10).map(|_| one(store, wanted.clone()))).await;
    let mut starts: Vec<i64> = grants
        .iter()
        .filter(|g| g.granted == 1)
        .map(|g| g.first_in_us)
        .collect();
    assert_eq!(starts.len(), 5, "{grants:?}");
    starts.sort();
    for (i, start) in starts.iter().enumerate() {
        assert!(
            about(*start, i as i64 * SECOND_US),
            "slot {i} starts {start} µs from its lease: {grants:?}"
        );
    }
    // A slot left unused in the past is not owed: an idle key starts again from now.
    let g = one(store, lease("webhook:idle", SECOND_US / 100, 0, 1)).await;
    assert_eq!(g.granted, 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let g = one(store, lease("webhook:idle", SECOND_US / 100, 0, 1)).await;
        if g.granted == 1 {
            assert!(about(g.first_in_us, 0), "{g:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no slot after 2 s");
        tokio::time::sleep(std::time::Duration::from_micros(g.first_in_us as u64)).await;
    }
}
