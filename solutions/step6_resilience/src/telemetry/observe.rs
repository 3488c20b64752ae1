//! One upstream call, observed: its own span, and its latency in seconds
//! under its upstream and its outcome; and inside it, one span per HTTP
//! request the call made (the first, retries, hedges' backups).
//!
//! A drop guard, `CallRecord`, does the bookkeeping, so a call whose future
//! is dropped (the client left, or the page no longer needs the section) is
//! still counted, under `cancelled`. Each request's span has a guard of its
//! own, so a request dropped mid-flight (the hedge's loser, an attempt cut
//! at its own deadline) is recorded as `cancelled` too.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step6_resilience/src/telemetry/observe.rs`.

use std::future::Future;

use metrics::Histogram;
use tokio::time::Instant;
use tracing::{Instrument, Span, field};

use crate::error::FetchError;
use crate::per_upstream::PerUpstream;
use crate::upstream::Upstream;

/// The name of every upstream call's span (the same as step 4's).
pub const UPSTREAM_SPAN: &str = "upstream_call";

/// The name of the span of each HTTP request inside a call, a child of the
/// call's [`UPSTREAM_SPAN`]. Its fields, stable for whoever reads them (the
/// lab draws its waterfall from them): `upstream`; `attempt`, the request's
/// number within its section call, from 1, in the order they started;
/// `kind`, one of [`AttemptKind::name`]; and, once it ends, `outcome` (one of
/// [`CALL_OUTCOMES`]; `cancelled` if it was dropped) and `latency_ms`, from
/// the request's start (a wait for a bulkhead permit included).
pub const UPSTREAM_ATTEMPT_SPAN: &str = "upstream_attempt";

/// Histogram: one section call through breaker and hedge, in seconds,
/// labelled `upstream` and `outcome` (one of [`CALL_OUTCOMES`]). The same
/// name as step 4's.
pub const UPSTREAM_LATENCY: &str = "upstream_request_duration_seconds";

/// The `outcome` label values. An error status is labelled by its class,
/// so a dashboard tells an upstream that refuses (`4xx`) from one that is
/// broken (`5xx`); `circuit_open` was never sent, nor was `overloaded` (its
/// bulkhead was full), and `cancelled` was dropped before it ended, so its
/// latency is how long it ran until then.
pub const CALL_OUTCOMES: [&str; 12] = [
    "ok",
    "1xx",
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "timeout",
    "transport",
    "decode",
    "circuit_open",
    "cancelled",
    "overloaded",
];

/// Index of `cancelled` in [`CALL_OUTCOMES`].
const CANCELLED: usize = 10;

/// The index in [`CALL_OUTCOMES`] of a call that ended with `result`.
///
/// Exhaustive on purpose: a new [`FetchError`] variant does not compile
/// until someone decides how it is counted.
pub fn call_outcome<T>(result: &Result<T, FetchError>) -> usize {
    match result {
        Ok(_) => 0,
        // 100..=999 → 1..=9; classes above 5xx are not HTTP's: count as 5xx.
        Err(FetchError::Status { status, .. }) => usize::from(status / 100).clamp(1, 5),
        Err(FetchError::Timeout { .. }) => 6,
        Err(FetchError::Transport { .. }) => 7,
        Err(FetchError::Decode { .. }) => 8,
        Err(FetchError::CircuitOpen { .. }) => 9,
        Err(FetchError::Cancelled { .. }) => CANCELLED,
        Err(FetchError::Overloaded { .. }) => 11,
    }
}

/// The latency histograms of the upstream calls: one per upstream and
/// outcome, registered once, so recording a call is one atomic operation
/// and no label lookup.
#[derive(Debug)]
pub struct UpstreamCallMetrics {
    latency: PerUpstream<[Histogram; CALL_OUTCOMES.len()]>,
}

impl UpstreamCallMetrics {
    /// Registers every series in the recorder in effect (the caller's
    /// `metrics::with_local_recorder`, or the global one).
    pub fn register() -> Self {
        metrics::describe_histogram!(
            UPSTREAM_LATENCY,
            metrics::Unit::Seconds,
            "One section call through its guards, by upstream and outcome"
        );
        UpstreamCallMetrics {
            latency: PerUpstream::from_fn(|upstream| {
                CALL_OUTCOMES.map(|outcome| {
                    metrics::histogram!(UPSTREAM_LATENCY, "upstream" => upstream.name(), "outcome" => outcome)
                })
            }),
        }
    }

    fn record(&self, upstream: Upstream, outcome: usize, seconds: f64) {
        self.latency[upstream][outcome].record(seconds);
    }
}

/// Runs one section call inside its own span (named [`UPSTREAM_SPAN`], at
/// `INFO`, with `upstream` from the start and `outcome` and `latency_ms`
/// once it ends) and records its latency in `metrics`, if given, under its
/// upstream and outcome.
///
/// # Errors
///
/// Whatever `call` returns, unchanged.
///
/// # Cancel safety
///
/// Dropping the future mid-call records the call as `cancelled` (span and
/// histogram), so an abandoned call is never lost from the numbers nor
/// counted as the upstream's failure.
pub async fn observe_upstream_call<T>(
    metrics: Option<&UpstreamCallMetrics>,
    upstream: Upstream,
    call: impl Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    // Fields not known yet are declared `Empty`: a span's fields are fixed
    // when it is created.
    let span = tracing::info_span!(
        UPSTREAM_SPAN,
        upstream = upstream.name(),
        outcome = field::Empty,
        latency_ms = field::Empty,
    );
    let mut record = CallRecord {
        upstream,
        metrics,
        span: span.clone(),
        started: Instant::now(),
        finished: false,
    };
    let result = call.instrument(span).await;
    let outcome = call_outcome(&result);
    record.finish(outcome);
    if let Err(error) = &result {
        // The fields again, on the event: the JSON log layer leaves upstream
        // spans out (see `json_logs`).
        tracing::warn!(
            parent: &record.span,
            upstream = upstream.name(),
            outcome = CALL_OUTCOMES[outcome],
            %error,
            "upstream call failed"
        );
    }
    result
}

/// The bookkeeping of one call in flight. Its `Drop` is what catches a call
/// that never finished: async code is cancelled by dropping its future, and
/// a drop guard is the only code that runs then.
struct CallRecord<'a> {
    upstream: Upstream,
    metrics: Option<&'a UpstreamCallMetrics>,
    span: Span,
    started: Instant,
    finished: bool,
}

impl CallRecord<'_> {
    fn finish(&mut self, outcome: usize) {
        self.finished = true;
        let seconds = self.started.elapsed().as_secs_f64();
        self.span.record("outcome", CALL_OUTCOMES[outcome]);
        self.span.record("latency_ms", seconds * 1e3);
        if let Some(metrics) = self.metrics {
            metrics.record(self.upstream, outcome, seconds);
        }
        // One line per call, for `RUST_LOG=step6_resilience=debug`.
        tracing::debug!(
            parent: &self.span,
            upstream = self.upstream.name(),
            outcome = CALL_OUTCOMES[outcome],
            latency_ms = seconds * 1e3,
            "upstream call finished"
        );
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(CANCELLED);
        }
    }
}

/// Why a request inside a section call was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// The section's first request.
    First,
    /// A new try after an attempt failed.
    Retry,
    /// A hedge's backup, racing a late request.
    Hedge,
}

impl AttemptKind {
    /// The `kind` field of the request's span: `first`, `retry` or `hedge`.
    pub fn name(self) -> &'static str {
        match self {
            AttemptKind::First => "first",
            AttemptKind::Retry => "retry",
            AttemptKind::Hedge => "hedge",
        }
    }
}

/// Runs one HTTP request of a section call inside its own span (named
/// [`UPSTREAM_ATTEMPT_SPAN`], at `INFO`, a child of the span current when
/// it starts: the call's), recording its outcome and latency when it ends.
///
/// # Errors
///
/// Whatever `request` returns, unchanged.
///
/// # Cancel safety
///
/// Dropping the future mid-request records the request as `cancelled`.
pub async fn observe_attempt<T>(
    upstream: Upstream,
    attempt: u32,
    kind: AttemptKind,
    request: impl Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    let span = tracing::info_span!(
        UPSTREAM_ATTEMPT_SPAN,
        upstream = upstream.name(),
        attempt,
        kind = kind.name(),
        outcome = field::Empty,
        latency_ms = field::Empty,
    );
    let mut record = AttemptRecord {
        span: span.clone(),
        started: Instant::now(),
        finished: false,
    };
    let result = request.instrument(span).await;
    record.finish(call_outcome(&result));
    result
}

/// The bookkeeping of one request in flight; its `Drop` catches a request
/// whose future was dropped.
struct AttemptRecord {
    span: Span,
    started: Instant,
    finished: bool,
}

impl AttemptRecord {
    fn finish(&mut self, outcome: usize) {
        self.finished = true;
        self.span.record("outcome", CALL_OUTCOMES[outcome]);
        self.span
            .record("latency_ms", self.started.elapsed().as_secs_f64() * 1e3);
    }
}

impl Drop for AttemptRecord {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(CANCELLED);
        }
    }
}
