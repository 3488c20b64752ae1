//! One upstream call, observed: its own span, and its count, latency and
//! in-flight gauge in the metrics.
//!
//! Yours to write: [`observe_upstream_call`]. Given: [`UPSTREAM_SPAN`].

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
    todo!("observe_upstream_call: a span and metrics per call, cancelled calls included")
}
