//! Criterion micro-benchmarks of the pure functions the ingest and delivery paths call per event
//! or per attempt: signing, event-type and payload filters, the http envelope, the retry delay.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use hookrelay_domain::envelope::http_body;
use hookrelay_domain::signing::{signature_header, SignatureScheme, SigningKey, WebhookSecret};
use hookrelay_domain::time::to_rfc3339;
use hookrelay_domain::{EventFilter, PayloadFilter, RetrySchedule};
use serde_json::{json, Value};

const MSG_ID: &str = "dlv_01JDQ6Z8Y4W3V2T1S0R9Q8P7N6";
const EVENT_ID: &str = "evt_01JDQ6Z8Y4W3V2T1S0R9Q8P7N6";
const TIMESTAMP_MS: i64 = 1_795_000_000_123;

/// About 1 KiB of event data as an emitter would send it (compact JSON).
fn data_1kib() -> String {
    let items: Vec<Value> = (0..21)
        .map(|i| json!({"sku": format!("SKU-{i:05}"), "qty": i + 1, "price": 1999 + i}))
        .collect();
    let data = json!({
        "order_id": "ord_4f1c2a9e",
        "amount": 12_450,
        "currency": "EUR",
        "country": "DE",
        "customer": {"id": 42, "email": "ada@example.com", "name": "Ada Lovelace"},
        "items": items,
    });
    let s = serde_json::to_string(&data).unwrap();
    assert!((900..1300).contains(&s.len()), "data is {} bytes", s.len());
    s
}

fn body_1kib() -> Vec<u8> {
    http_body(
        "order.paid",
        &to_rfc3339(TIMESTAMP_MS),
        EVENT_ID,
        &data_1kib(),
    )
}

fn signing(c: &mut Criterion) {
    let body = body_1kib();
    let ts = TIMESTAMP_MS / 1000;
    let hmac = [SigningKey::Hmac(
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
    )];
    let ed25519 = [SigningKey::generate(SignatureScheme::Ed25519)];
    let mut g = c.benchmark_group("signing");
    // What the sender puts in `webhook-signature` (one key, no rotation in progress).
    g.bench_function("hmac_v1_signature_header_1kib", |b| {
        b.iter(|| signature_header(black_box(&hmac), MSG_ID, ts, black_box(&body)))
    });
    // `X-Webhook-Signature`, which an HMAC webhook's attempt also carries.
    let SigningKey::Hmac(secret) = &hmac[0] else {
        unreachable!()
    };
    g.bench_function("hmac_legacy_x_webhook_signature_1kib", |b| {
        b.iter(|| secret.sign_legacy(black_box(&body)))
    });
    g.bench_function("ed25519_v1a_signature_header_1kib", |b| {
        b.iter(|| signature_header(black_box(&ed25519), MSG_ID, ts, black_box(&body)))
    });
    g.finish();
}

fn event_filter(c: &mut Criterion) {
    // A webhook subscribed to a handful of exact types and prefixes, as fan-out holds it.
    let filter = EventFilter::parse(&[
        "member.created",
        "member.deleted",
        "order.refunded",
        "invoice.*",
        "github.*",
        "stripe.charge.*",
        "order.paid",
        "order.shipped",
    ])
    .unwrap();
    let mut g = c.benchmark_group("event_filter");
    g.bench_function("8_patterns_exact_hit", |b| {
        b.iter(|| filter.matches(black_box("order.paid")))
    });
    g.bench_function("8_patterns_prefix_hit", |b| {
        b.iter(|| filter.matches(black_box("stripe.charge.succeeded")))
    });
    g.bench_function("8_patterns_miss", |b| {
        b.iter(|| filter.matches(black_box("hackathon.created")))
    });
    g.finish();
}

fn payload_filter(c: &mut Criterion) {
    let filter = PayloadFilter::parse(&json!({
        "event": {"$startsWith": "order."},
        "data.amount": {"$gte": 10_000},
        "$or": [
            {"data.currency": "EUR"},
            {"data.country": {"$in": ["US", "CA", "GB"]}},
        ],
        "data.customer.email": {"$exists": true},
    }))
    .unwrap();
    let data = data_1kib();
    let envelope = |data: &str| -> Value {
        let data: Value = serde_json::from_str(data).unwrap();
        json!({"event": "order.paid", "timestamp": to_rfc3339(TIMESTAMP_MS), "eventId": EVENT_ID, "data": data})
    };
    let built = envelope(&data);
    assert!(filter.matches(&built));
    let mut g = c.benchmark_group("payload_filter");
    g.bench_function("4_entries_match_prebuilt_envelope", |b| {
        b.iter(|| filter.matches(black_box(&built)))
    });
    // Fan-out parses the stored data and builds the envelope once per event before matching.
    g.bench_function("parse_1kib_data_build_envelope_and_match", |b| {
        b.iter(|| filter.matches(&envelope(black_box(&data))))
    });
    g.finish();
}

fn envelope(c: &mut Criterion) {
    let data = data_1kib();
    let mut g = c.benchmark_group("envelope");
    g.bench_function("http_body_1kib", |b| {
        b.iter(|| {
            http_body(
                black_box("order.paid"),
                &to_rfc3339(black_box(TIMESTAMP_MS)),
                EVENT_ID,
                black_box(&data),
            )
        })
    });
    g.finish();
}

fn retry(c: &mut Criterion) {
    let schedule = RetrySchedule::default();
    let own = vec![0, 60, 300, 900];
    let mut g = c.benchmark_group("retry");
    g.bench_function("next_delay_default_schedule", |b| {
        b.iter(|| schedule.next_delay(black_box(3), black_box(0.37), None))
    });
    g.bench_function("next_delay_with_retry_after", |b| {
        b.iter(|| {
            schedule.next_delay(
                black_box(3),
                black_box(-0.5),
                black_box(Some(Duration::from_secs(600))),
            )
        })
    });
    // A webhook with its own schedule: the attempt path builds it from the stored delays first.
    g.bench_function("next_delay_own_schedule_built_per_attempt", |b| {
        b.iter(|| {
            RetrySchedule::new(black_box(&own).clone())
                .unwrap_or_default()
                .next_delay(black_box(2), black_box(0.37), None)
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = hot;
    config = config();
    targets = signing, event_filter, payload_filter, envelope, retry
}
criterion_main!(hot);
