//! One behavioural suite for the `Store` trait, run against both backends.
//!
//! Each scenario is written once, as `async fn scenario_x(store: &dyn Store)`, and `store_tests!`
//! turns it into `sqlite_x` (a fresh file in a temporary folder) and `postgres_x` (a fresh schema
//! in the database `HOOKRELAY_TEST_POSTGRES_URL` names; the tests fail when it is unset).
//!
//! ```sh
//! HOOKRELAY_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo test -p hookrelay --test store_suite
//! ```

mod store_suite {
    pub mod fixtures;
    pub mod harness;
    pub mod scenarios;
}

use store_suite::harness;
use store_suite::scenarios::*;

/// `store_tests!(scenario => sqlite_test, postgres_test; …)`: one test per backend.
macro_rules! store_tests {
    ($($scenario:ident => $sqlite:ident, $postgres:ident;)*) => {
        $(
            #[tokio::test]
            async fn $sqlite() {
                let h = harness::sqlite().await;
                $scenario(h.store()).await;
                h.finish().await;
            }

            #[tokio::test]
            async fn $postgres() {
                let h = harness::postgres().await;
                $scenario(h.store()).await;
                h.finish().await;
            }
        )*
    };
}

store_tests! {
    scenario_migrations_are_idempotent => sqlite_migrations_are_idempotent, postgres_migrations_are_idempotent;
    scenario_tenants => sqlite_tenants, postgres_tenants;
    scenario_api_keys => sqlite_api_keys, postgres_api_keys;
    scenario_webhook_round_trip => sqlite_webhook_round_trip, postgres_webhook_round_trip;
    scenario_webhook_lists => sqlite_webhook_lists, postgres_webhook_lists;
    scenario_ingest_fan_out => sqlite_ingest_fan_out, postgres_ingest_fan_out;
    scenario_idempotency => sqlite_idempotency, postgres_idempotency;
    scenario_claims => sqlite_claims, postgres_claims;
    scenario_ordered_claims => sqlite_ordered_claims, postgres_ordered_claims;
    scenario_claims_past_a_held_backlog => sqlite_claims_past_a_held_backlog, postgres_claims_past_a_held_backlog;
    scenario_release_waiting => sqlite_release_waiting, postgres_release_waiting;
    scenario_ingest_leasing => sqlite_ingest_leasing, postgres_ingest_leasing;
    scenario_large_batches => sqlite_large_batches, postgres_large_batches;
    scenario_record_attempts => sqlite_record_attempts, postgres_record_attempts;
    scenario_retry_paths => sqlite_retry_paths, postgres_retry_paths;
    scenario_pause_resume => sqlite_pause_resume, postgres_pause_resume;
    scenario_delete_webhook_cancels => sqlite_delete_webhook_cancels, postgres_delete_webhook_cancels;
    scenario_concurrent_claims => sqlite_concurrent_claims, postgres_concurrent_claims;
    scenario_event_lists => sqlite_event_lists, postgres_event_lists;
    scenario_event_pages_are_byte_budgeted => sqlite_event_pages_are_byte_budgeted, postgres_event_pages_are_byte_budgeted;
    scenario_delivery_lists => sqlite_delivery_lists, postgres_delivery_lists;
    scenario_queue_state => sqlite_queue_state, postgres_queue_state;
    scenario_webhook_stats => sqlite_webhook_stats, postgres_webhook_stats;
    scenario_delivery_stats => sqlite_delivery_stats, postgres_delivery_stats;
    scenario_delivery_stats_pruning => sqlite_delivery_stats_pruning, postgres_delivery_stats_pruning;
    scenario_queue_samples => sqlite_queue_samples, postgres_queue_samples;
    scenario_event_types => sqlite_event_types, postgres_event_types;
    scenario_payload_filters_at_fan_out => sqlite_payload_filters_at_fan_out, postgres_payload_filters_at_fan_out;
    scenario_sources => sqlite_sources, postgres_sources;
    scenario_inbound_requests => sqlite_inbound_requests, postgres_inbound_requests;
    scenario_users => sqlite_users, postgres_users;
    scenario_sessions => sqlite_sessions, postgres_sessions;
    scenario_login_failures => sqlite_login_failures, postgres_login_failures;
    scenario_rate_slot_leases => sqlite_rate_slot_leases, postgres_rate_slot_leases;
    scenario_portal_links => sqlite_portal_links, postgres_portal_links;
    scenario_replay_event => sqlite_replay_event, postgres_replay_event;
    scenario_replay_webhook => sqlite_replay_webhook, postgres_replay_webhook;
    scenario_replay_webhook_in_batches => sqlite_replay_webhook_in_batches, postgres_replay_webhook_in_batches;
    scenario_delivery_search_filters => sqlite_delivery_search_filters, postgres_delivery_search_filters;
    scenario_circuit_breaker => sqlite_circuit_breaker, postgres_circuit_breaker;
    scenario_gone_disables => sqlite_gone_disables, postgres_gone_disables;
    scenario_retention => sqlite_retention, postgres_retention;
    scenario_alert_crossings => sqlite_alert_crossings, postgres_alert_crossings;
    scenario_fan_out_index => sqlite_fan_out_index, postgres_fan_out_index;
    scenario_fan_out_reads_health_live => sqlite_fan_out_reads_health_live, postgres_fan_out_reads_health_live;
}

#[tokio::test]
async fn sqlite_fan_out_sees_other_nodes() {
    let h = harness::sqlite().await;
    let other = h.second_store().await;
    scenario_fan_out_sees_other_nodes(h.store(), &*other).await;
    drop(other);
    h.finish().await;
}

#[tokio::test]
async fn postgres_fan_out_sees_other_nodes() {
    let h = harness::postgres().await;
    let other = h.second_store().await;
    scenario_fan_out_sees_other_nodes(h.store(), &*other).await;
    drop(other);
    h.finish().await;
}

/// Columns of `webhooks` that the delivery path or bookkeeping writes, and that fan-out reads
/// live or not at all: writing them must not invalidate the fan-out cache. Every other column
/// is configuration, and writing it must (migration 0049's trigger lists them). A new column
/// fails `*_every_webhook_column_is_classified` until it is put on one side.
const NOT_FAN_OUT_CONFIG: &[&str] = &[
    "id",
    "active",
    "circuit_state",
    "consecutive_failures",
    "circuit_open_until",
    "circuit_opens",
    "failing_since",
    "disabled_reason",
    "disabled_at",
    "rate_alerting",
    "created_at",
    "updated_at",
];

/// Writes each column of one webhook to itself and reports whether the tenant's
/// `hooks_generation` moved, then the same for the tenant's quotas.
macro_rules! generation_bumps {
    ($conn:expr, $columns_sql:expr, $hook:expr, $tenant:expr) => {{
        let conn = $conn;
        let columns: Vec<String> = sqlx::query_scalar($columns_sql)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert!(
            columns.len() > 20,
            "the webhooks table's columns: {columns:?}"
        );
        macro_rules! generation {
            ($c:expr) => {
                sqlx::query_scalar::<_, i64>("SELECT hooks_generation FROM tenants WHERE id = $1")
                    .bind($tenant)
                    .fetch_one(&mut *$c)
                    .await
                    .unwrap()
            };
        }
        let mut bumps = Vec::new();
        for column in columns {
            let before = generation!(conn);
            sqlx::query(&format!(
                "UPDATE webhooks SET {column} = {column} WHERE id = $1"
            ))
            .bind($hook)
            .execute(&mut *conn)
            .await
            .unwrap();
            bumps.push((column, generation!(conn) != before));
        }
        let before = generation!(conn);
        sqlx::query("UPDATE tenants SET quotas = quotas WHERE id = $1")
            .bind($tenant)
            .execute(&mut *conn)
            .await
            .unwrap();
        assert_ne!(generation!(conn), before, "a quota change invalidates");
        bumps
    }};
}

fn assert_classified(bumps: Vec<(String, bool)>) {
    for (column, bumped) in bumps {
        let config = !NOT_FAN_OUT_CONFIG.contains(&column.as_str());
        assert_eq!(
            bumped,
            config,
            "webhooks.{column}: writing it {} the fan-out cache; {}",
            if bumped {
                "invalidates"
            } else {
                "does not invalidate"
            },
            if config {
                "add it to migration 0049's trigger (a new configuration column) or to NOT_FAN_OUT_CONFIG"
            } else {
                "it is listed as not configuration"
            }
        );
    }
}

async fn fixture_hook(store: &dyn hookrelay::store::Store) -> (String, String) {
    let t = store_suite::fixtures::tenant(store, "t").await;
    let hook = store_suite::fixtures::create_webhook(store, &t.id, &["a.*"]).await;
    (t.id.to_string(), hook.id.to_string())
}

#[tokio::test]
async fn sqlite_every_webhook_column_is_classified() {
    use sqlx::Connection;
    let h = harness::sqlite().await;
    let (tenant, hook) = fixture_hook(h.store()).await;
    let mut conn = sqlx::SqliteConnection::connect(h.url()).await.unwrap();
    let bumps = generation_bumps!(
        &mut conn,
        "SELECT name FROM pragma_table_info('webhooks')",
        &hook,
        &tenant
    );
    assert_classified(bumps);
    drop(conn);
    h.finish().await;
}

#[tokio::test]
async fn postgres_every_webhook_column_is_classified() {
    use sqlx::Connection;
    let h = harness::postgres().await;
    let (tenant, hook) = fixture_hook(h.store()).await;
    let mut conn = sqlx::PgConnection::connect(h.url()).await.unwrap();
    let bumps = generation_bumps!(
        &mut conn,
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'webhooks'",
        &hook,
        &tenant
    );
    assert_classified(bumps);
    drop(conn);
    h.finish().await;
}
