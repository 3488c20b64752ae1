//! The metric series of upstream calls: their names, the latency histogram's
//! buckets, the Prometheus builder that knows them, and the handles each
//! upstream records into.
//!
//! The metrics go through the `metrics` facade: the code records into
//! whatever recorder was current when the handles were registered
//! ([`UpstreamMetrics::register`], called by `AppState::new`). The binary
//! installs a Prometheus recorder globally; the tests give each test its own
//! with `metrics::set_default_local_recorder`, so tests cannot see each
//! other's numbers.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step4_service/src/telemetry/series.rs`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use super::outcome::Outcome;
use crate::upstream::Upstream;

/// Histogram: how long each upstream call took, in seconds, labelled
/// `upstream`.
pub const UPSTREAM_LATENCY: &str = "upstream_request_duration_seconds";
/// Counter: upstream calls, labelled `upstream` and `outcome`.
pub const UPSTREAM_CALLS: &str = "upstream_requests_total";
/// Gauge: upstream calls in flight right now, labelled `upstream`.
pub const UPSTREAM_IN_FLIGHT: &str = "upstream_requests_in_flight";

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
