//! One upstream call, observed: its own span, and its count, latency and
//! in-flight gauge in the metrics.
//!
//! A drop guard, `CallRecord`, does the bookkeeping, so a call that is
//! cancelled (its future dropped) is counted too.

use std::future::Future;

use tokio::time::Instant;
use tracing::{Instrument, Span, field};

use super::outcome::Outcome;
use super::series::UpstreamMetrics;
use crate::error::FetchError;
use crate::fetch::Fetched;
use crate::upstream::Upstream;

// GIVEN: upstream_span (given code, the same as in the reference solution)
/// The name of every upstream call's span.
pub const UPSTREAM_SPAN: &str = "upstream_call";
// GIVEN_END: upstream_span

// ANCHOR: observe
/// Runs one upstream call inside its own span and records its metrics.
///
/// The span is named [`UPSTREAM_SPAN`], at `INFO` (so it exists under the
/// binary's default `info` filter, for a tracing backend), and carries
/// `upstream` and `attempt` from the start, then, when the call ends,
/// `outcome` (an [`Outcome::as_str`]), `status` (the HTTP status of a
/// success or of a `Status` error; none otherwise: a timeout, a transport
/// error or an undecodable body carries no status) and `latency_ms` (in
/// milliseconds).
/// `call` runs inside the span, so whatever it logs is inside it too.
///
/// In `metrics` (this upstream's handles): the call counter goes up once
/// per call, under its outcome; every call that was sent and ended (`ok`,
/// `timeout` or `error`) records its latency, *in seconds*, in the latency
/// histogram of its own outcome ([`UpstreamMetrics::latency`]), so a
/// timeout's wait never blurs the latency of the answers; a shed call
/// (never sent) and a cancelled one (never ended) have no latency; the
/// in-flight gauge is up by one while the call runs, however it ends.
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
    // Fields not known yet are declared `Empty` and recorded later: a span's
    // set of fields is fixed when it is created.
    let span = tracing::info_span!(
        UPSTREAM_SPAN,
        upstream = upstream.name(),
        attempt,
        outcome = field::Empty,
        status = field::Empty,
        latency_ms = field::Empty,
    );
    let mut record = CallRecord::start(upstream, metrics, span.clone());

    let result = call.instrument(span.clone()).await;

    let (outcome, status) = match &result {
        Ok(fetched) => (Outcome::Ok, Some(fetched.status)),
        Err(error @ FetchError::Status { status, .. }) => (Outcome::of_error(error), Some(*status)),
        Err(error) => (Outcome::of_error(error), None),
    };
    record.finish(outcome, status);
    if let Err(error) = &result {
        // The fields again, on the event: the JSON log layer leaves upstream
        // spans out (see `json_logs`).
        tracing::warn!(
            parent: &span,
            upstream = upstream.name(),
            outcome = outcome.as_str(),
            %error,
            "upstream call failed"
        );
    }
    result.map(|fetched| fetched.body)
}

/// The bookkeeping of one call in flight. Its `Drop` is what catches a call
/// that never finished: async code is cancelled by dropping its future, and
/// a drop guard is the only code that runs then.
struct CallRecord<'a> {
    upstream: Upstream,
    metrics: &'a UpstreamMetrics,
    span: Span,
    started: Instant,
    finished: bool,
}

impl<'a> CallRecord<'a> {
    fn start(upstream: Upstream, metrics: &'a UpstreamMetrics, span: Span) -> Self {
        metrics.in_flight.increment(1.0);
        Self {
            upstream,
            metrics,
            span,
            started: Instant::now(),
            finished: false,
        }
    }

    fn finish(&mut self, outcome: Outcome, status: Option<u16>) {
        self.finished = true;
        let elapsed = self.started.elapsed();
        let latency_ms = elapsed.as_secs_f64() * 1e3;
        self.span.record("outcome", outcome.as_str());
        if let Some(status) = status {
            self.span.record("status", status);
        }
        self.span.record("latency_ms", latency_ms);

        self.metrics.calls(outcome).increment(1);
        // Each outcome has its own histogram: a timeout's 70 ms is not an
        // answer's latency. A shed call was never sent, so it has none: its
        // "latency" would only drag the histogram towards zero.
        if let Some(latency) = self.metrics.latency(outcome) {
            latency.record(elapsed.as_secs_f64());
        }
        // One line per call, for `RUST_LOG=step4_service=debug`.
        tracing::debug!(
            parent: &self.span,
            upstream = self.upstream.name(),
            outcome = outcome.as_str(),
            status,
            latency_ms,
            "upstream call finished"
        );
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Cancelled: not the upstream's fault, so not an error, and not
            // in the latency histogram (the call never ended).
            self.span.record("outcome", Outcome::Cancelled.as_str());
            self.span
                .record("latency_ms", self.started.elapsed().as_secs_f64() * 1e3);
            self.metrics.calls(Outcome::Cancelled).increment(1);
        }
        self.metrics.in_flight.decrement(1.0);
    }
}
// ANCHOR_END: observe
