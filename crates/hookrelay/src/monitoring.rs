//! The metrics hookrelay exposes on `/metrics`, registered once at start so a fresh server's
//! first scrape already has every delivery series (counters at 0, histograms with empty buckets).

/// Deliveries that reached an end state, by `status` (`succeeded`, `failed`).
pub const DELIVERIES: &str = "hookrelay_deliveries_total";
/// Attempts by `outcome` (`success`, `retry`, `failed`).
pub const ATTEMPTS: &str = "hookrelay_attempts_total";
pub const RETRIES: &str = "hookrelay_retries_total";
pub const ATTEMPT_DURATION: &str = "hookrelay_attempt_duration_seconds";
/// From a delivery's creation to the receiver's 2xx, retries included.
pub const DELIVERY_LATENCY: &str = "hookrelay_delivery_latency_seconds";
pub const EVENTS_INGESTED: &str = "hookrelay_events_ingested_total";
pub const HANDED_OFF: &str = "hookrelay_deliveries_handed_off_total";
pub const QUEUE_DEPTH: &str = "hookrelay_queue_depth";
pub const OLDEST_PENDING_AGE: &str = "hookrelay_oldest_pending_age_seconds";
/// Deliveries in the dead-letter queue (status `failed`), all tenants.
pub const DLQ_SIZE: &str = "hookrelay_dlq_size";
/// Webhooks whose circuit is open or half-open: a count, so its cardinality stays one series.
pub const CIRCUIT_OPEN: &str = "hookrelay_circuit_open";
/// Store operations that failed, by `op` (`api`, `claim`, `record`): a bounded label set.
pub const STORE_ERRORS: &str = "hookrelay_store_errors_total";
pub const INBOUND_REQUESTS: &str = "hookrelay_inbound_requests_total";
pub const HTTP_REQUESTS: &str = "hookrelay_http_requests_total";
pub const HTTP_DURATION: &str = "hookrelay_http_request_duration_seconds";

/// The `op` labels of `STORE_ERRORS`.
pub const STORE_OPS: [&str; 3] = ["api", "claim", "record"];

/// Describes every metric and creates its series at zero. Label values that are known up front
/// (outcomes, statuses) get their series; per-source and per-route series appear with use.
pub fn register() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        DELIVERIES,
        "Deliveries that reached an end state, by status"
    );
    describe_counter!(ATTEMPTS, "Delivery attempts, by outcome");
    describe_counter!(RETRIES, "Attempts that scheduled a retry");
    describe_histogram!(ATTEMPT_DURATION, Unit::Seconds, "Duration of one attempt");
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "From a delivery's creation to its receiver's 2xx, retries included"
    );
    describe_counter!(EVENTS_INGESTED, "Events stored in the event log");
    describe_counter!(HANDED_OFF, "Deliveries sent straight from the ingest path");
    describe_gauge!(
        QUEUE_DEPTH,
        "Pending deliveries (due or waiting for a retry)"
    );
    describe_gauge!(
        OLDEST_PENDING_AGE,
        Unit::Seconds,
        "How long the oldest due delivery has waited"
    );
    describe_gauge!(DLQ_SIZE, "Deliveries in the dead-letter queue");
    describe_gauge!(
        CIRCUIT_OPEN,
        "Webhooks whose circuit breaker is open or half-open"
    );
    describe_counter!(STORE_ERRORS, "Store operations that failed, by op");
    describe_counter!(INBOUND_REQUESTS, "Inbound requests, by source and outcome");
    describe_counter!(HTTP_REQUESTS, "API requests, by method, route and status");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "API request duration, by route"
    );

    for status in ["succeeded", "failed"] {
        metrics::counter!(DELIVERIES, "status" => status).absolute(0);
    }
    for outcome in ["success", "retry", "failed"] {
        metrics::counter!(ATTEMPTS, "outcome" => outcome).absolute(0);
    }
    for op in STORE_OPS {
        metrics::counter!(STORE_ERRORS, "op" => op).absolute(0);
    }
    for name in [RETRIES, EVENTS_INGESTED, HANDED_OFF] {
        metrics::counter!(name).absolute(0);
    }
    // Registering a histogram is enough for the exporter to render its (empty) buckets.
    let _ = metrics::histogram!(ATTEMPT_DURATION);
    let _ = metrics::histogram!(DELIVERY_LATENCY);
    for name in [QUEUE_DEPTH, OLDEST_PENDING_AGE, DLQ_SIZE, CIRCUIT_OPEN] {
        metrics::gauge!(name).set(0.0);
    }
}

/// Counts one failed store operation.
pub fn store_error(op: &'static str) {
    metrics::counter!(STORE_ERRORS, "op" => op).increment(1);
}
