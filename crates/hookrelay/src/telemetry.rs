//! Logs and traces of a process: log lines on stderr (json or pretty, filtered by `RUST_LOG`)
//! and, when `HOOKRELAY_OTLP_ENDPOINT` is set, spans exported in batches over OTLP/HTTP.

// Cost. Our spans are `tracing` spans that only the OpenTelemetry layer is interested in: the
// log layer filters spans out (log lines stay as they were), so with no endpoint no layer wants
// them, every span call site is disabled once and for all, and a span costs one cached check.
// That is also why the helpers below test `is_disabled()` before doing any work of their own.
//
// Errors. The SDK's own diagnostics are compiled out (no `internal-logs` feature): export
// failures are reported by `Reporting` here instead, at most once a minute, so an unreachable
// collector neither floods the log nor slows anything (spans are queued without blocking and
// dropped when the queue is full).

use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::Request;
use axum::http::StatusCode;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing::field::Empty;
use tracing::{Instrument, Level, Metadata, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, FilterExt, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};
use url::Url;

use crate::config::LogFormat;
use crate::store::{AttemptRecord, NextState};

/// The instrumentation scope of our spans.
const SCOPE: &str = "hookrelay";
/// How long one export request may take (the client's timeout: the exporter sets none).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// While export keeps failing, one log line per this long.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Links a batch span keeps to the spans that caused it (the SDK's own limit is 128).
pub const MAX_LINKS: usize = 128;

/// Set once when OTLP export is installed; our direct OpenTelemetry spans use it.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("HOOKRELAY_OTLP_ENDPOINT: cannot set up the trace exporter: {0}")]
    Exporter(String),
    #[error("cannot install the log subscriber: {0}")]
    Subscriber(String),
}

/// What `init` installed; `shutdown` exports the spans still queued.
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Installs logging, and trace export to `otlp` when given. With `otlp`, this must run inside
/// a Tokio runtime, which then carries the batch exporter's task.
pub fn init(
    format: Option<LogFormat>,
    otlp: Option<&Url>,
    node_id: &str,
) -> Result<Telemetry, TelemetryError> {
    use std::io::IsTerminal;
    let env_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn"));
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let log_layer = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    }
    // Spans are for the trace exporter only: log lines do not carry them. The hint keeps the
    // filter's level ceiling known to `tracing` (a combined filter without one counts as
    // "anything", and every `debug!`, ours or a dependency's, including `log` records, would then
    // be evaluated against the filter instead of being skipped by one comparison).
    .with_filter(
        env_filter.and(filter_fn(|meta| !meta.is_span()).with_max_level_hint(LevelFilter::TRACE)),
    );

    let provider = otlp
        .map(|endpoint| provider(endpoint, node_id))
        .transpose()?;
    let otel_layer = provider.as_ref().map(|provider| {
        let tracer = provider.tracer(SCOPE);
        let _ = TRACER.set(tracer.clone());
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // Each of these costs per span or per poll and tells little here: file and line,
            // thread, busy/idle time (an `Instant::now()` on every enter and exit), target.
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_target(false)
            // Nothing reads OpenTelemetry's "current context" (we propagate explicitly).
            .with_context_activation(false)
            .with_filter(filter_fn(exported).with_max_level_hint(LevelFilter::INFO))
    });
    tracing_subscriber::registry()
        .with(log_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|e| TelemetryError::Subscriber(e.to_string()))?;
    if let Some(endpoint) = otlp {
        tracing::info!(endpoint = %traces_url(endpoint), "exporting traces over OTLP/HTTP");
    }
    Ok(Telemetry { provider })
}

/// What the trace exporter sees: our spans, and our warnings and errors (recorded as events of
/// the span they happen in; outside a span they are dropped). `RUST_LOG` does not apply: it is
/// about log lines.
fn exported(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("hookrelay")
        && if meta.is_span() {
            *meta.level() <= Level::INFO
        } else {
            *meta.level() <= Level::WARN
        }
}

fn provider(endpoint: &Url, node_id: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .use_rustls_tls()
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(client)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    // The batch settings come from the standard OTEL_BSP_* variables (delay 5 s, queue 2048,
    // batches of 512 by default).
    let processor =
        BatchSpanProcessor::builder(Reporting::new(exporter), opentelemetry_sdk::runtime::Tokio)
            .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource(node_id))
        .build())
}

/// `service.name` (`hookrelay` unless `OTEL_SERVICE_NAME` says otherwise), `service.version`,
/// `service.instance.id` (the node id that also owns this process's leases), plus whatever
/// `OTEL_RESOURCE_ATTRIBUTES` adds.
fn resource(node_id: &str) -> Resource {
    let mut builder = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|v| v.is_empty()) {
        builder = builder.with_service_name(SCOPE);
    }
    builder
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", node_id.to_owned()),
        ])
        .build()
}

/// Where spans are posted: the OTLP/HTTP base URL plus `/v1/traces` (the rule of the OTLP
/// exporter specification for `OTEL_EXPORTER_OTLP_ENDPOINT`); a URL already ending so is used
/// as it is.
pub fn traces_url(endpoint: &Url) -> String {
    let base = endpoint.as_str().trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

impl Telemetry {
    /// Exports the spans still queued (waiting at most a few seconds for the collector).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK's shutdown blocks its thread until the last batch is sent: not a runtime
        // worker, which the batch task itself may need.
        let flush = tokio::task::spawn_blocking(move || provider.shutdown());
        match tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(1), flush).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "exporting the last spans failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "exporting the last spans failed"),
            Err(_) => tracing::warn!("exporting the last spans timed out; they are lost"),
        }
    }
}

/// `fut` run in `span`; with a disabled span (no export), `fut` as it is, without the per-poll
/// enter and exit. (An `Either`, not an `async fn`: that would hold `fut` twice, its argument
/// and the awaited copy, and a spawned attempt's future would be copied at twice its size.)
pub fn in_span<F: std::future::Future>(
    span: &Span,
    fut: F,
) -> futures::future::Either<F, tracing::instrument::Instrumented<F>> {
    if span.is_disabled() {
        futures::future::Either::Left(fut)
    } else {
        futures::future::Either::Right(fut.instrument(span.clone()))
    }
}

/// Whether spans are exported (hot paths skip work that only a span would use).
pub fn enabled() -> bool {
    TRACER.get().is_some()
}

/// The span of one API request, named `METHOD /route` and continuing the caller's trace when
/// the request has a W3C `traceparent`. `route` is `None` when nothing matched.
pub fn http_server_span(req: &Request, route: Option<&str>, request_id: &str) -> Span {
    let method = req.method();
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %SpanName(method.as_str(), route),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method.as_str(),
        http.route = route,
        url.path = req.uri().path(),
        http.response.status_code = Empty,
        hookrelay.request_id = request_id,
    );
    if !span.is_disabled() {
        let parent = TraceContextPropagator::new()
            .extract(&opentelemetry_http::HeaderExtractor(req.headers()));
        if parent.span().span_context().is_valid() {
            // Fails only when the span was already started, which a fresh span is not.
            let _ = span.set_parent(parent);
        }
    }
    span
}

/// `POST /api/v1/events`, or the bare method when no route matched (the HTTP conventions).
struct SpanName<'a>(&'a str, Option<&'a str>);

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(route) => write!(f, "{} {route}", self.0),
            None => f.write_str(self.0),
        }
    }
}

/// Records the answer on a request's span; a 5xx marks it failed.
pub fn record_response(span: &Span, status: StatusCode) {
    if span.is_disabled() {
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// Sets an attribute on the current span (e.g. the event an emit created), when exporting.
pub fn annotate_current(key: &'static str, value: impl fmt::Display) {
    if enabled() {
        let span = Span::current();
        if !span.is_disabled() {
            span.set_attribute(key, value.to_string());
        }
    }
}

/// The current span, for a batch span to link back to; a disabled span when not exporting.
pub fn current_for_link() -> Span {
    if enabled() {
        Span::current()
    } else {
        Span::none()
    }
}

/// A batch span's identity, for the spans it starts to link to.
pub fn span_context(span: &Span) -> Option<SpanContext> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// The semantic-convention name of a store backend (`db.system.name`).
pub fn db_system(backend: &str) -> &'static str {
    match backend {
        "postgres" => "postgresql",
        "sqlite" => "sqlite",
        _ => "other_sql",
    }
}

/// When exporting, the time a batch operation starts (for `batch_span`).
pub fn started() -> Option<SystemTime> {
    enabled().then(SystemTime::now)
}

/// Exports a finished batch operation that began at `started` as a root span, and returns its
/// identity. Used where the span is only worth having once the outcome is known (a claim that
/// found nothing is not exported: the idle loop would send one every second).
pub fn batch_span(
    name: &'static str,
    started: SystemTime,
    attributes: Vec<KeyValue>,
) -> Option<SpanContext> {
    use opentelemetry::trace::Span as _;
    let tracer = TRACER.get()?;
    let mut span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Internal)
        .with_start_time(started)
        .with_attributes(attributes)
        .start_with_context(tracer, &Context::new());
    let cx = span.span_context().clone();
    span.end();
    Some(cx)
}

/// The span of one delivery attempt: a root span (an attempt may happen hours after the
/// request, on another node) linked to the claim or ingest commit that started it.
pub fn attempt_span(
    claim: &crate::store::DeliveryClaim,
    n: u32,
    started_by: Option<&SpanContext>,
) -> Span {
    let span = tracing::info_span!(
        parent: None,
        "delivery.attempt",
        otel.kind = "client",
        otel.status_code = Empty,
        hookrelay.delivery_id = %claim.delivery_id,
        hookrelay.webhook_id = %claim.webhook.id,
        hookrelay.event_id = %claim.event_id,
        hookrelay.event_type = claim.event_type.as_str(),
        hookrelay.attempt = n,
        hookrelay.outcome = Empty,
        http.request.method = "POST",
        server.address = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
    );
    if !span.is_disabled() {
        if let Some(link) = started_by {
            span.add_link(link.clone());
        }
        // The host only: a webhook URL's path or query may hold a token (Discord's do).
        if let Some(host) = Url::parse(&claim.webhook.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        {
            span.record("server.address", host);
        }
    }
    span
}

/// Records what an attempt came to on its span: the status, the error kind (never the error
/// text, which may quote the URL) and the outcome.
pub fn record_attempt(span: &Span, record: &AttemptRecord) {
    if span.is_disabled() {
        return;
    }
    span.record("hookrelay.outcome", attempt_outcome(record.next));
    if let Some(status) = record.attempt.response_status {
        span.record("http.response.status_code", status);
    }
    if let Some(kind) = record.attempt.error_kind.as_deref() {
        match (kind, record.attempt.response_status) {
            // The conventions name a failed HTTP answer by its status code.
            ("http_status", Some(status)) => span.record("error.type", status.to_string()),
            _ => span.record("error.type", kind),
        };
        span.record("otel.status_code", "ERROR");
    }
}

pub fn attempt_outcome(next: NextState) -> &'static str {
    match next {
        NextState::Succeeded => "succeeded",
        NextState::RetryAt(_) => "retry",
        NextState::Failed => "failed",
    }
}

/// The OTLP exporter with failures reported in our log, rate-limited (see `FailureLog`).
#[derive(Debug)]
struct Reporting<E> {
    inner: E,
    failures: Mutex<FailureLog>,
}

impl<E> Reporting<E> {
    fn new(inner: E) -> Self {
        Self {
            inner,
            failures: Mutex::new(FailureLog::default()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, FailureLog> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<E: SpanExporter> SpanExporter for Reporting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                metrics::counter!("hookrelay_otlp_spans_total", "result" => "exported")
                    .increment(spans);
                if let Some(lost) = self.failures().succeeded() {
                    tracing::info!(
                        lost_spans = lost.spans,
                        "trace export to HOOKRELAY_OTLP_ENDPOINT works again"
                    );
                }
            }
            Err(e) => {
                metrics::counter!("hookrelay_otlp_spans_total", "result" => "failed")
                    .increment(spans);
                let report = self.failures().failed(spans, Instant::now());
                if let Some(lost) = report {
                    tracing::warn!(
                        error = %e,
                        failed_batches = lost.batches,
                        lost_spans = lost.spans,
                        "cannot export traces to HOOKRELAY_OTLP_ENDPOINT; the service is unaffected (logged at most once a minute)"
                    );
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Export failures since the last report.
#[derive(Debug, Default)]
struct FailureLog {
    failing: bool,
    last_report: Option<Instant>,
    batches: u64,
    spans: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct Lost {
    batches: u64,
    spans: u64,
}

impl FailureLog {
    /// Counts a failed batch; returns what to report when a report is due (the first failure,
    /// then at most one every `REPORT_EVERY`).
    fn failed(&mut self, spans: u64, now: Instant) -> Option<Lost> {
        self.failing = true;
        self.batches += 1;
        self.spans += spans;
        if self
            .last_report
            .is_some_and(|at| now.duration_since(at) < REPORT_EVERY)
        {
            return None;
        }
        self.last_report = Some(now);
        Some(self.take())
    }

    /// After failures, a success is reported once, with the spans lost since the last report.
    fn succeeded(&mut self) -> Option<Lost> {
        if !self.failing {
            return None;
        }
        self.failing = false;
        Some(self.take())
    }

    fn take(&mut self) -> Lost {
        let lost = Lost {
            batches: self.batches,
            spans: self.spans,
        };
        self.batches = 0;
        self.spans = 0;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_go_to_v1_traces_under_the_base_url() {
        let url = |s: &str| traces_url(&Url::parse(s).unwrap());
        assert_eq!(
            url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            url("http://127.0.0.1:4318/"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            url("https://otel.example.com/otlp"),
            "https://otel.example.com/otlp/v1/traces"
        );
        assert_eq!(
            url("http://collector:4318/v1/traces"),
            "http://collector:4318/v1/traces"
        );
    }

    #[test]
    fn export_failures_are_reported_once_a_minute_and_recovery_once() {
        let t0 = Instant::now();
        let mut log = FailureLog::default();
        assert_eq!(log.succeeded(), None, "nothing to report while all is well");
        assert_eq!(
            log.failed(10, t0),
            Some(Lost {
                batches: 1,
                spans: 10
            })
        );
        for i in 1..100 {
            assert_eq!(log.failed(5, t0 + Duration::from_millis(i * 100)), None);
        }
        assert_eq!(
            log.failed(1, t0 + REPORT_EVERY),
            Some(Lost {
                batches: 100,
                spans: 99 * 5 + 1
            }),
            "a minute later, one report counting everything since the last"
        );
        log.failed(7, t0 + REPORT_EVERY + Duration::from_secs(1));
        assert_eq!(
            log.succeeded(),
            Some(Lost {
                batches: 1,
                spans: 7
            })
        );
        assert_eq!(log.succeeded(), None, "recovery is reported once");
        assert_eq!(
            log.failed(3, t0 + REPORT_EVERY + Duration::from_secs(2)),
            None,
            "a new failure soon after the last report waits for the next minute"
        );
    }

    #[test]
    fn only_our_spans_and_warnings_are_exported() {
        use tracing::callsite::{Callsite, Identifier};
        use tracing::field::FieldSet;
        use tracing::metadata::Kind;
        struct Site;
        impl Callsite for Site {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                unreachable!()
            }
        }
        static SITE: Site = Site;
        let meta = |target: &'static str, level: Level, kind: Kind| {
            Metadata::new(
                "x",
                target,
                level,
                None,
                None,
                None,
                FieldSet::new(&[], Identifier(&SITE)),
                kind,
            )
        };
        assert!(exported(&meta("hookrelay::api", Level::INFO, Kind::SPAN)));
        assert!(!exported(&meta("hookrelay::api", Level::DEBUG, Kind::SPAN)));
        assert!(!exported(&meta("h2::proto", Level::INFO, Kind::SPAN)));
        assert!(exported(&meta(
            "hookrelay::ingest",
            Level::ERROR,
            Kind::EVENT
        )));
        assert!(!exported(&meta(
            "hookrelay::ingest",
            Level::INFO,
            Kind::EVENT
        )));
        assert!(!exported(&meta("sqlx::query", Level::WARN, Kind::EVENT)));
    }
}
