//! The metric series of the service: their names, the histograms' buckets,
//! the Prometheus builder that knows them, and the handles the code records
//! into.
//!
//! What `/metrics` shows, by question:
//!
//! * How fast are we answering? [`REQUEST_LATENCY`], every response by
//!   route and status class; the 200 ms p99 is read from its buckets.
//! * How are the upstreams doing? [`UPSTREAM_LATENCY`] by upstream *and*
//!   outcome (a timeout's 70 ms is not mixed into the answers' latency),
//!   [`UPSTREAM_CALLS`] by outcome, [`UPSTREAM_IN_FLIGHT`].
//! * How full are the bulkheads? [`BULKHEAD_PERMITS_IN_USE`] against
//!   [`BULKHEAD_PERMITS_MAX`]. There is no waiters gauge: this bulkhead
//!   never queues (a page that cannot have its permits now is shed), so
//!   what would wait is counted as `outcome="shed"` in [`UPSTREAM_CALLS`].
//! * Is the process itself keeping up? [`RUNTIME_ALIVE_TASKS`],
//!   [`RUNTIME_GLOBAL_QUEUE_DEPTH`], [`RUNTIME_WORKERS`] (tokio's stable
//!   runtime metrics) and [`EVENT_LOOP_LAG`], from a heartbeat task.
//!
//! The metrics go through the `metrics` facade: the code records into
//! whatever recorder was current when the handles were registered (by
//! `AppState::new`). The binary installs a Prometheus recorder globally; the
//! tests give each test its own with `metrics::set_default_local_recorder`,
//! so tests cannot see each other's numbers.
//!
//! Names follow Prometheus' conventions: base units (seconds, never
//! milliseconds) named in the suffix, `_total` on counters, and one metric
//! per quantity, so that summing over any label still means something.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step4_service/src/telemetry/series.rs`.

use std::time::Duration;

use axum::http::StatusCode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use super::outcome::Outcome;
use crate::per_upstream::PerUpstream;
use crate::upstream::Upstream;

/// Histogram: how long the service took to answer, in seconds, from the
/// first layer that sees the request to the response's head (the body's
/// bytes are not counted), labelled `route` (one of [`ROUTES`]) and
/// `status_class` (`2xx`, `4xx`, `5xx`, ...).
pub const REQUEST_LATENCY: &str = "http_server_request_duration_seconds";
/// Histogram: how long each upstream call took, in seconds, labelled
/// `upstream` and `outcome`. Only calls that were sent and ended are in it,
/// so `outcome` is `ok`, `timeout` or `error` (a shed call was never sent,
/// a cancelled one never ended: [`UPSTREAM_CALLS`] counts those).
pub const UPSTREAM_LATENCY: &str = "upstream_request_duration_seconds";
/// Counter: upstream calls, labelled `upstream` and `outcome`.
pub const UPSTREAM_CALLS: &str = "upstream_requests_total";
/// Gauge: upstream calls in flight right now, labelled `upstream`.
pub const UPSTREAM_IN_FLIGHT: &str = "upstream_requests_in_flight";
/// Gauge: bulkhead permits held right now, labelled `upstream`. Sampled
/// when `/metrics` is rendered.
pub const BULKHEAD_PERMITS_IN_USE: &str = "upstream_bulkhead_permits_in_use";
/// Gauge: the bulkhead's size (permits in all), labelled `upstream`.
pub const BULKHEAD_PERMITS_MAX: &str = "upstream_bulkhead_permits_max";
/// Gauge: tasks alive on the runtime that serves `/metrics`. Sampled when
/// `/metrics` is rendered.
pub const RUNTIME_ALIVE_TASKS: &str = "tokio_alive_tasks";
/// Gauge: tasks waiting in the runtime's global (injection) queue: work
/// that no worker has picked up yet. Sampled when `/metrics` is rendered.
pub const RUNTIME_GLOBAL_QUEUE_DEPTH: &str = "tokio_global_queue_depth";
/// Gauge: the runtime's worker threads.
pub const RUNTIME_WORKERS: &str = "tokio_workers";
/// Histogram: how late the heartbeat task woke up, in seconds. A task that
/// asks to wake at `t` and runs at `t + lag` waited `lag` for a worker: the
/// time any ready task waits while something hogs the workers.
pub const EVENT_LOOP_LAG: &str = "tokio_event_loop_lag_seconds";

/// The `route` label values: the router's routes as written (never the raw
/// path, whose values are unbounded), and [`UNMATCHED_ROUTE`].
pub const ROUTES: [&str; 3] = ["/products/{id}", "/healthz", "/metrics"];
/// The `route` label of a request that matched no route (a `404`).
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The `status_class` label values, in order.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Bucket bounds for the latency histograms, in seconds (the upper bound of
/// each bucket, `le`). Fine from 100 to 300 ms, around the 200 ms budget,
/// so a p99 read from the buckets is off by at most the width of the bucket
/// it falls in (25 ms there, 50 ms just above the budget); coarse
/// elsewhere, where the only question is "far from it". The first bounds
/// resolve a shed answer (microseconds) from a real one.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25,
    0.3, 0.5, 1.0, 2.5,
];

/// Bucket bounds for [`EVENT_LOOP_LAG`], in seconds: a healthy runtime
/// wakes its heartbeat within a millisecond; tens of milliseconds is a
/// runtime whose workers are blocked or saturated.
pub const LAG_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// How often the heartbeat wakes (see `telemetry::heartbeat`).
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(100);

/// A Prometheus builder with this service's histogram buckets.
///
/// Without buckets the exporter renders histograms as summaries (quantiles
/// computed in the process), which cannot be aggregated across instances.
/// Call `.install_recorder()` on it in a binary, or `.build_recorder()` in
/// a test.
pub fn prometheus_builder() -> PrometheusBuilder {
    let latency = [REQUEST_LATENCY, UPSTREAM_LATENCY];
    latency
        .into_iter()
        .fold(PrometheusBuilder::new(), |builder, name| {
            builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), LATENCY_BUCKETS)
                .expect("LATENCY_BUCKETS is not empty")
        })
        .set_buckets_for_metric(Matcher::Full(EVENT_LOOP_LAG.to_owned()), LAG_BUCKETS)
        .expect("LAG_BUCKETS is not empty")
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
    /// [`UPSTREAM_IN_FLIGHT`] for this upstream.
    pub in_flight: metrics::Gauge,
    /// [`UPSTREAM_LATENCY`] for this upstream, one per outcome of a call
    /// that ended, in [`Outcome::ENDED`] order: use
    /// [`UpstreamMetrics::latency`].
    latency: [metrics::Histogram; 3],
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
            in_flight: metrics::gauge!(UPSTREAM_IN_FLIGHT, "upstream" => name),
            latency: Outcome::ENDED.map(|outcome| {
                metrics::histogram!(UPSTREAM_LATENCY, "upstream" => name, "outcome" => outcome.as_str())
            }),
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

    /// The latency histogram for calls that ended with `outcome`; `None`
    /// for an outcome that has no latency ([`Outcome::Shed`]: never sent;
    /// [`Outcome::Cancelled`]: never ended).
    pub fn latency(&self, outcome: Outcome) -> Option<&metrics::Histogram> {
        let index = Outcome::ENDED
            .iter()
            .position(|candidate| *candidate == outcome)?;
        Some(&self.latency[index])
    }
}

/// The service-wide handles: request latency, bulkhead and runtime gauges,
/// and the heartbeat's lag, registered once.
#[derive(Debug)]
pub struct ServiceMetrics {
    /// [`REQUEST_LATENCY`], one per route (the [`ROUTES`], then
    /// [`UNMATCHED_ROUTE`]) and status class: use
    /// [`ServiceMetrics::record_request`].
    requests: [[metrics::Histogram; 5]; 4],
    /// [`BULKHEAD_PERMITS_IN_USE`] per upstream.
    pub permits_in_use: PerUpstream<metrics::Gauge>,
    /// [`BULKHEAD_PERMITS_MAX`] per upstream.
    pub permits_max: PerUpstream<metrics::Gauge>,
    /// [`RUNTIME_ALIVE_TASKS`].
    pub alive_tasks: metrics::Gauge,
    /// [`RUNTIME_GLOBAL_QUEUE_DEPTH`].
    pub global_queue_depth: metrics::Gauge,
    /// [`RUNTIME_WORKERS`].
    pub workers: metrics::Gauge,
    /// [`EVENT_LOOP_LAG`]: the heartbeat records into it.
    pub event_loop_lag: metrics::Histogram,
}

impl ServiceMetrics {
    /// Registers the service-wide series with the current recorder.
    pub fn register() -> Self {
        let routes = [ROUTES[0], ROUTES[1], ROUTES[2], UNMATCHED_ROUTE];
        let per_upstream = |name: &'static str| {
            PerUpstream::from_fn(|upstream| metrics::gauge!(name, "upstream" => upstream.name()))
        };
        Self {
            requests: routes.map(|route| {
                STATUS_CLASSES.map(|class| {
                    metrics::histogram!(REQUEST_LATENCY, "route" => route, "status_class" => class)
                })
            }),
            permits_in_use: per_upstream(BULKHEAD_PERMITS_IN_USE),
            permits_max: per_upstream(BULKHEAD_PERMITS_MAX),
            alive_tasks: metrics::gauge!(RUNTIME_ALIVE_TASKS),
            global_queue_depth: metrics::gauge!(RUNTIME_GLOBAL_QUEUE_DEPTH),
            workers: metrics::gauge!(RUNTIME_WORKERS),
            event_loop_lag: metrics::histogram!(EVENT_LOOP_LAG),
        }
    }

    /// Records one answered request: `route` as the router matched it
    /// (`None`: no route matched), its status, and how long it took.
    pub fn record_request(&self, route: Option<&str>, status: StatusCode, took: Duration) {
        let route_index = route
            .and_then(|route| ROUTES.iter().position(|known| *known == route))
            .unwrap_or(ROUTES.len());
        // A status is 100..=999; classes above 5xx do not exist in HTTP.
        let class_index = usize::from(status.as_u16() / 100)
            .saturating_sub(1)
            .min(STATUS_CLASSES.len() - 1);
        self.requests[route_index][class_index].record(took.as_secs_f64());
    }
}
