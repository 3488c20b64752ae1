//! Observability for upstream calls: one span per call, and the RED metrics
//! (rate, errors, duration) per upstream.
//!
//! A span answers "what happened to *this* request?"; a metric answers "what
//! is happening to *all* of them?". Each upstream call gets both, from one
//! place, so they cannot disagree.
//!
//! The metrics go through the `metrics` facade: the code records into
//! whatever recorder was current when the handles were registered
//! ([`ServiceMetrics::register`], called by `AppState::new`). The binary
//! installs a Prometheus recorder globally; the tests give each test its own
//! with `metrics::set_default_local_recorder`, so tests cannot see each
//! other's numbers.

use std::future::Future;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio::time::Instant;
use tracing::{Instrument, Span, Subscriber, field};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;

use crate::error::FetchError;
use crate::fetch::Fetched;
use crate::upstream::Upstream;

/// Histogram: how long each upstream call took, in seconds, labelled
/// `upstream`.
pub const UPSTREAM_LATENCY: &str = "upstream_request_duration_seconds";
/// Counter: upstream calls, labelled `upstream` and `outcome`.
pub const UPSTREAM_CALLS: &str = "upstream_requests_total";
/// Gauge: upstream calls in flight right now, labelled `upstream`.
pub const UPSTREAM_IN_FLIGHT: &str = "upstream_requests_in_flight";
/// The name of every upstream call's span.
pub const UPSTREAM_SPAN: &str = "upstream_call";

/// Bucket bounds for [`UPSTREAM_LATENCY`], in seconds: fine around the
/// 200 ms budget, where the interesting tail lives.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0,
];

/// A Prometheus builder with this service's histogram buckets.
///
/// Without buckets the exporter renders histograms as summaries (quantiles
/// computed in the process), which cannot be aggregated across instances.
/// Call `.install_recorder()` on it in a binary, or `.build_recorder()` in
/// a test.
pub fn prometheus_builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(UPSTREAM_LATENCY.to_owned()), LATENCY_BUCKETS)
        .expect("LATENCY_BUCKETS is not empty")
}

/// The JSON log layer the binary installs (and the lab measures): one JSON
/// line per event, with every span it happened in.
///
/// Upstream call spans are kept out of this layer on purpose. The JSON
/// formatter stores a span's fields as a JSON string and, each time a field
/// is recorded, parses that string and writes it again: three recordings
/// per call, three calls per request, for spans that at the `info` level
/// contain no log line at all. Spans are for traces (an OpenTelemetry layer
/// would still see them, as the tests' capturing layer does); the log lines
/// written about an upstream call carry its fields themselves.
pub fn json_logs<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        // The span list holds the current span too; both would repeat it.
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(writer)
        .with_filter(filter_fn(|metadata| metadata.name() != UPSTREAM_SPAN))
}

/// How an upstream call ended: the `outcome` label and span field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer that decoded.
    Ok,
    /// The deadline passed first.
    Timeout,
    /// A bad status, no connection, or a body that did not decode.
    Error,
    /// Dropped before it ended: another call failed first, or the client left.
    Cancelled,
    /// Never sent: the upstream's bulkhead was full.
    Shed,
}

impl Outcome {
    /// The label value, e.g. `"timeout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
            Outcome::Shed => "shed",
        }
    }
}

impl Outcome {
    /// Every outcome, in the order of [`UpstreamMetrics`]' counters.
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Timeout,
        Outcome::Error,
        Outcome::Cancelled,
        Outcome::Shed,
    ];
}

/// One upstream's metric handles, registered once.
///
/// The `metrics!` macros look the series up in the recorder on every call:
/// build the key, hash the labels, take a read lock. On the hot path that is
/// a dozen lookups (and allocations) per request. Registering each series
/// once and keeping the handle makes recording one atomic operation; it
/// also makes every series show up in `/metrics` at 0 from the start, so a
/// dashboard can tell "no errors" from "no data".
#[derive(Debug)]
pub struct UpstreamMetrics {
    /// [`UPSTREAM_LATENCY`] for this upstream.
    pub latency: metrics::Histogram,
    /// [`UPSTREAM_IN_FLIGHT`] for this upstream.
    pub in_flight: metrics::Gauge,
    /// [`UPSTREAM_CALLS`] for this upstream, one per outcome, in
    /// [`Outcome::ALL`] order: use [`UpstreamMetrics::calls`].
    calls: [metrics::Counter; 5],
}

impl UpstreamMetrics {
    /// Registers `upstream`'s series with the current recorder (the global
    /// one, or a test's local one).
    pub fn register(upstream: Upstream) -> Self {
        let name = upstream.name();
        Self {
            latency: metrics::histogram!(UPSTREAM_LATENCY, "upstream" => name),
            in_flight: metrics::gauge!(UPSTREAM_IN_FLIGHT, "upstream" => name),
            calls: Outcome::ALL.map(|outcome| {
                metrics::counter!(UPSTREAM_CALLS, "upstream" => name, "outcome" => outcome.as_str())
            }),
        }
    }

    /// The call counter for `outcome`.
    pub fn calls(&self, outcome: Outcome) -> &metrics::Counter {
        let index = Outcome::ALL
            .iter()
            .position(|candidate| *candidate == outcome)
            .expect("Outcome::ALL lists every outcome");
        &self.calls[index]
    }
}

/// The metric handles of all three upstreams.
#[derive(Debug)]
pub struct ServiceMetrics {
    inventory: UpstreamMetrics,
    pricing: UpstreamMetrics,
    reviews: UpstreamMetrics,
}

impl ServiceMetrics {
    /// Registers every series with the current recorder.
    pub fn register() -> Self {
        Self {
            inventory: UpstreamMetrics::register(Upstream::Inventory),
            pricing: UpstreamMetrics::register(Upstream::Pricing),
            reviews: UpstreamMetrics::register(Upstream::Reviews),
        }
    }

    /// The handles for `upstream`.
    pub fn of(&self, upstream: Upstream) -> &UpstreamMetrics {
        match upstream {
            Upstream::Inventory => &self.inventory,
            Upstream::Pricing => &self.pricing,
            Upstream::Reviews => &self.reviews,
        }
    }
}

impl Outcome {
    /// The outcome a failed call is counted under: a timeout is
    /// [`Outcome::Timeout`] (worth its own line on a dashboard); a bad
    /// status, no connection or an undecodable body is [`Outcome::Error`];
    /// a shed call is [`Outcome::Shed`] (not an upstream error: the
    /// upstream never saw it).
    pub fn of_error(error: &FetchError) -> Outcome {
        // TODO: exhaustive on purpose: a new `FetchError` variant should not
        // compile until someone decides how it is counted.
        todo!("Outcome::of_error: which outcome each FetchError is counted under")
    }
}

/// Runs one upstream call inside its own span and records its metrics.
///
/// The span is named [`UPSTREAM_SPAN`] and carries `upstream` and `attempt`
/// from the start, then, when the call ends, `outcome` (an
/// [`Outcome::as_str`]), `status` (when there was an HTTP answer, a
/// `Status` error included) and `latency_ms` (in milliseconds). `call` runs
/// inside the span, so whatever it logs is inside it too.
///
/// In `metrics` (this upstream's handles): the call counter goes up once
/// per call, under its outcome; the latency histogram records, *in
/// seconds*, every call that was sent and ended (not a shed one, which was
/// never sent, and not a cancelled one, which never ended); the in-flight
/// gauge is up by one while the call runs, however it ends.
///
/// The returned future must be `Send`, like everything axum serves and
/// `tokio::spawn` runs: it may move between worker threads at any `.await`.
///
/// # Errors
///
/// Whatever `call` returns, unchanged.
///
/// # Cancel safety
///
/// Dropping the future mid-call records the call as
/// [`Outcome::Cancelled`] (span and counter) and brings the gauge back
/// down, so an abandoned call is never lost from the numbers nor counted as
/// the upstream's failure.
pub async fn observe_upstream_call<T>(
    metrics: &UpstreamMetrics,
    upstream: Upstream,
    attempt: u32,
    call: impl Future<Output = Result<Fetched<T>, FetchError>>,
) -> Result<T, FetchError> {
    // TODO: a span whose fields are all declared when it is created (a
    // span's set of fields is fixed then; values can be filled in later).
    //
    // TODO: the call, inside the span; then its outcome, on the span and
    // in the metrics.
    //
    // TODO: cancellation. A dropped future runs no more of its own code;
    // only destructors run. Make sure the bookkeeping still happens.
    todo!(
        "observe_upstream_call: a span per call, its fields, its metrics, and a drop guard for cancellation"
    )
}
