//! What `/metrics` shows, and the handles the edge records into.
//!
//! * How fast are we answering? [`REQUEST_DURATION`], every answer by route
//!   and status class, shed ones included; the 200 ms p99 is read from its
//!   buckets (one of them ends at 0.2 s exactly).
//! * Are we shedding? [`REQUESTS_SHED`], of which [`REQUESTS_SHED_LAGGING`]
//!   because the runtime ran behind ([`RUNTIME_LAG_NOW`] against the
//!   edge's `max_runtime_lag`), the rest because [`REQUESTS_IN_FLIGHT`]
//!   reached [`CONCURRENCY_LIMIT`], the limit learnt from the pages'
//!   latency (at most the hard cap, [`REQUESTS_IN_FLIGHT_LIMIT`]).
//! * What are the upstreams' guards doing? [`BREAKER_STATE`],
//!   [`HEDGES_SENT`] and [`RETRIES_SENT`] per upstream; and each bulkhead's
//!   [`BULKHEAD_PERMITS_IN_USE`] against [`BULKHEAD_PERMITS_MAX`], with
//!   [`BULKHEAD_WAITERS`], the requests queueing for a permit.
//! * How are the upstreams answering? [`UPSTREAM_LATENCY`], each section
//!   call by upstream and outcome, recorded by [`ProductService::fetch`].
//! * Is the runtime keeping up? [`RUNTIME_ALIVE_TASKS`],
//!   [`RUNTIME_GLOBAL_QUEUE_DEPTH`] and [`RUNTIME_WORKERS`], read from the
//!   runtime that serves the scrape, and [`EVENT_LOOP_LAG`], from the
//!   heartbeat that [`serve`](crate::edge::serve()) runs.
//!
//! What something else already knows is read when `/metrics` is scraped,
//! not recorded as it happens: the places taken and the limit in force come
//! from admission's counters, the breaker's state from the breaker, the hedges and retries
//! sent from their own counters, the permits and waiters from the bulkhead. The hot path pays nothing for them, and the numbers
//! cannot drift from the truth.
//!
//! The edge has a Prometheus recorder of its own (not the process-global
//! one): every series is registered once, into it, when the edge is built,
//! and each handle records with one atomic operation. Two edges in one
//! process (two tests at once) cannot see each other's numbers.
//!
//! Names follow Prometheus' conventions: base units (seconds), `_total` on
//! counters, the unit or the state's encoding said in the help.
//!
//! [`UPSTREAM_LATENCY`]: crate::telemetry::UPSTREAM_LATENCY
//! [`RUNTIME_ALIVE_TASKS`]: crate::telemetry::RUNTIME_ALIVE_TASKS
//! [`RUNTIME_GLOBAL_QUEUE_DEPTH`]: crate::telemetry::RUNTIME_GLOBAL_QUEUE_DEPTH
//! [`RUNTIME_WORKERS`]: crate::telemetry::RUNTIME_WORKERS
//! [`EVENT_LOOP_LAG`]: crate::telemetry::EVENT_LOOP_LAG
//! [`ProductService::fetch`]: crate::service::ProductService::fetch
//!
//! Given: this whole file; there is nothing to write in it.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use metrics::{Counter, Gauge, Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::breaker::BreakerState;
use crate::edge::admission::Admission;
use crate::per_upstream::PerUpstream;
use crate::service::ProductService;
use crate::telemetry::{
    EVENT_LOOP_LAG, LAG_BUCKETS, RuntimeGauges, UPSTREAM_LATENCY, UpstreamCallMetrics,
};

/// Histogram: how long the edge took to answer, in seconds, from the first
/// layer to the response's head, labelled `route` (one of [`ROUTES`], or
/// [`UNMATCHED_ROUTE`]) and `status_class` (`2xx`, `5xx`, ...). The same
/// name as step 4's.
pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Counter: page requests shed by admission (answered `503` at once).
pub const REQUESTS_SHED: &str = "http_server_requests_shed_total";
/// Counter: page requests shed because the runtime ran behind its schedule
/// (a part of [`REQUESTS_SHED`]).
pub const REQUESTS_SHED_LAGGING: &str = "http_server_requests_shed_lagging_total";
/// Gauge: how far behind its schedule the runtime runs, as admission reads
/// it (the heartbeat's smoothed lateness), in seconds, at the scrape.
pub const RUNTIME_LAG_NOW: &str = "tokio_event_loop_lag_now_seconds";
/// Gauge: page requests holding a place right now.
pub const REQUESTS_IN_FLIGHT: &str = "http_server_requests_in_flight";
/// Gauge: the most page requests that may hold a place at once, ever (the
/// hard cap).
pub const REQUESTS_IN_FLIGHT_LIMIT: &str = "http_server_requests_in_flight_limit";
/// Gauge: the most page requests that may hold a place at once now: the
/// limit learnt from the pages' latency, or the hard cap without one.
pub const CONCURRENCY_LIMIT: &str = "http_server_concurrency_limit";
/// Gauge: each upstream's circuit breaker, labelled `upstream`: 0 closed,
/// 1 half-open, 2 open. Only with breakers on.
pub const BREAKER_STATE: &str = "upstream_circuit_breaker_state";
/// Counter: backup (hedge) requests sent, labelled `upstream`. Only with
/// hedging on.
pub const HEDGES_SENT: &str = "upstream_hedges_total";
/// Counter: retries sent (attempts after the first of a section),
/// labelled `upstream`. Only with retries on.
pub const RETRIES_SENT: &str = "upstream_retries_total";
/// Gauge: bulkhead permits held right now (requests in flight to the
/// upstream), labelled `upstream`. Only with bulkheads on. The same name as
/// step 4's.
pub const BULKHEAD_PERMITS_IN_USE: &str = "upstream_bulkhead_permits_in_use";
/// Gauge: the bulkhead's size (permits in all), labelled `upstream`.
pub const BULKHEAD_PERMITS_MAX: &str = "upstream_bulkhead_permits_max";
/// Gauge: requests waiting for a bulkhead permit right now, labelled
/// `upstream`. Above zero for long, the upstream (or the cap) is the
/// bottleneck.
pub const BULKHEAD_WAITERS: &str = "upstream_bulkhead_waiters";

/// The `route` label values: the routes as written, never the raw path
/// (whose values are unbounded).
pub const ROUTES: [&str; 3] = ["/products/{id}", "/healthz", "/metrics"];
/// The `route` label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The `status_class` label values, in order.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Bucket bounds for [`REQUEST_DURATION`], in seconds: step 4's. Fine from
/// 100 to 300 ms, around the 200 ms budget, so a p99 read from the buckets
/// is off by at most one bucket's width there; the first bounds tell a shed
/// answer (microseconds) from a served one.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25,
    0.3, 0.5, 1.0, 2.5,
];

/// The edge's metric handles, and the handle that renders them.
#[derive(Debug)]
pub struct EdgeMetrics {
    render: PrometheusHandle,
    /// One histogram per route (the [`ROUTES`], then [`UNMATCHED_ROUTE`])
    /// and status class.
    requests: [[Histogram; 5]; 4],
    shed: Counter,
    shed_lagging: Counter,
    runtime_lag_now: Gauge,
    in_flight: Gauge,
    in_flight_limit: Gauge,
    concurrency_limit: Gauge,
    breaker_state: PerUpstream<Option<Gauge>>,
    hedges_sent: PerUpstream<Option<Counter>>,
    retries_sent: PerUpstream<Option<Counter>>,
    bulkheads: PerUpstream<Option<BulkheadGauges>>,
    upstream_calls: Arc<UpstreamCallMetrics>,
    runtime: RuntimeGauges,
}

impl EdgeMetrics {
    /// A recorder of its own, with every series of the edge in front of
    /// `service` registered (at 0, so a dashboard tells "none yet" from "no
    /// data").
    pub fn register(service: &ProductService) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), LATENCY_BUCKETS)
            .expect("LATENCY_BUCKETS is not empty")
            .set_buckets_for_metric(Matcher::Full(UPSTREAM_LATENCY.to_owned()), LATENCY_BUCKETS)
            .expect("LATENCY_BUCKETS is not empty")
            .set_buckets_for_metric(Matcher::Full(EVENT_LOOP_LAG.to_owned()), LAG_BUCKETS)
            .expect("LAG_BUCKETS is not empty")
            .build_recorder();
        let render = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            let routes = [ROUTES[0], ROUTES[1], ROUTES[2], UNMATCHED_ROUTE];
            EdgeMetrics {
                render,
                requests: routes.map(|route| {
                    STATUS_CLASSES.map(|class| {
                        metrics::histogram!(REQUEST_DURATION, "route" => route, "status_class" => class)
                    })
                }),
                shed: metrics::counter!(REQUESTS_SHED),
                shed_lagging: metrics::counter!(REQUESTS_SHED_LAGGING),
                runtime_lag_now: metrics::gauge!(RUNTIME_LAG_NOW),
                in_flight: metrics::gauge!(REQUESTS_IN_FLIGHT),
                in_flight_limit: metrics::gauge!(REQUESTS_IN_FLIGHT_LIMIT),
                concurrency_limit: metrics::gauge!(CONCURRENCY_LIMIT),
                breaker_state: PerUpstream::from_fn(|upstream| {
                    service
                        .breaker(upstream)
                        .map(|_| metrics::gauge!(BREAKER_STATE, "upstream" => upstream.name()))
                }),
                hedges_sent: PerUpstream::from_fn(|upstream| {
                    service
                        .hedge(upstream)
                        .map(|_| metrics::counter!(HEDGES_SENT, "upstream" => upstream.name()))
                }),
                retries_sent: PerUpstream::from_fn(|upstream| {
                    service
                        .retry(upstream)
                        .map(|_| metrics::counter!(RETRIES_SENT, "upstream" => upstream.name()))
                }),
                bulkheads: PerUpstream::from_fn(|upstream| {
                    service.bulkhead(upstream).map(|_| BulkheadGauges {
                        in_use: metrics::gauge!(BULKHEAD_PERMITS_IN_USE, "upstream" => upstream.name()),
                        max: metrics::gauge!(BULKHEAD_PERMITS_MAX, "upstream" => upstream.name()),
                        waiters: metrics::gauge!(BULKHEAD_WAITERS, "upstream" => upstream.name()),
                    })
                }),
                upstream_calls: Arc::new(UpstreamCallMetrics::register()),
                runtime: RuntimeGauges::register(),
            }
        })
    }

    /// Records one answer: `route` as the router matched it (`None`: no
    /// route matched), its status, and how long it took.
    pub fn record_request(&self, route: Option<&str>, status: StatusCode, took: Duration) {
        let route_index = route
            .and_then(|route| ROUTES.iter().position(|known| *known == route))
            .unwrap_or(ROUTES.len());
        // 100..=999: the class index is 0..=8, and classes above 5xx are
        // not HTTP's, so they count as 5xx.
        let class_index = usize::from(status.as_u16() / 100)
            .saturating_sub(1)
            .min(STATUS_CLASSES.len() - 1);
        self.requests[route_index][class_index].record(took.as_secs_f64());
    }

    /// The upstream calls' histograms, for
    /// [`ProductService::recording_calls`].
    pub fn upstream_calls(&self) -> Arc<UpstreamCallMetrics> {
        Arc::clone(&self.upstream_calls)
    }

    /// The heartbeat's histogram, for [`heartbeat`](crate::telemetry::heartbeat).
    pub fn event_loop_lag(&self) -> Histogram {
        self.runtime.event_loop_lag.clone()
    }

    /// Counts one shed request.
    pub fn record_shed(&self) {
        self.shed.increment(1);
    }

    /// Every series in Prometheus' text format, after reading what the
    /// admission, the breakers, the hedges, the retries, the bulkheads and
    /// the current runtime (if called on one) know right now.
    pub fn render(&self, service: &ProductService, admission: &Admission) -> String {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.runtime.sample(&runtime.metrics());
        }
        self.in_flight.set(admission.in_flight() as f64);
        self.shed_lagging.absolute(admission.shed_lagging());
        self.runtime_lag_now
            .set(admission.runtime_lag().as_secs_f64());
        self.in_flight_limit.set(admission.max_in_flight() as f64);
        self.concurrency_limit.set(admission.limit() as f64);
        for upstream in crate::upstream::Upstream::ALL {
            if let (Some(gauge), Some(breaker)) =
                (&self.breaker_state[upstream], service.breaker(upstream))
            {
                gauge.set(breaker_state_value(breaker.state()));
            }
            if let (Some(counter), Some(hedge)) =
                (&self.hedges_sent[upstream], service.hedge(upstream))
            {
                counter.absolute(hedge.hedges_sent());
            }
            if let (Some(counter), Some(retry)) =
                (&self.retries_sent[upstream], service.retry(upstream))
            {
                counter.absolute(retry.retries_sent());
            }
            if let (Some(gauges), Some(bulkhead)) =
                (&self.bulkheads[upstream], service.bulkhead(upstream))
            {
                gauges.in_use.set(bulkhead.permits_in_use() as f64);
                gauges.max.set(bulkhead.max_in_flight() as f64);
                gauges.waiters.set(bulkhead.waiters() as f64);
            }
        }
        self.render.render()
    }

    /// Keeps the histograms' memory bounded between scrapes: call it every
    /// few seconds in a process that may go long without being scraped.
    pub fn run_upkeep(&self) {
        self.render.run_upkeep();
    }
}

/// One bulkhead's gauges, set at each scrape.
#[derive(Debug)]
struct BulkheadGauges {
    in_use: Gauge,
    max: Gauge,
    waiters: Gauge,
}

/// The gauge's encoding of a breaker state: 0 closed, 1 half-open, 2 open
/// (the more calls it refuses, the higher).
pub fn breaker_state_value(state: BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    }
}

/// The `# HELP` lines (and units) of the edge's series.
fn describe() {
    metrics::describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer, from the first layer to the response's head"
    );
    metrics::describe_counter!(
        REQUESTS_SHED,
        "Page requests shed by admission (503 at once)"
    );
    metrics::describe_counter!(
        REQUESTS_SHED_LAGGING,
        "Page requests shed because the runtime ran behind its schedule"
    );
    metrics::describe_gauge!(
        RUNTIME_LAG_NOW,
        Unit::Seconds,
        "How far behind its schedule the runtime runs, as admission reads it"
    );
    metrics::describe_gauge!(REQUESTS_IN_FLIGHT, "Page requests holding a place");
    metrics::describe_gauge!(
        REQUESTS_IN_FLIGHT_LIMIT,
        "The most page requests that may hold a place at once, ever (the hard cap)"
    );
    metrics::describe_gauge!(
        CONCURRENCY_LIMIT,
        "The most page requests that may hold a place at once now, learnt from their latency"
    );
    metrics::describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open"
    );
    metrics::describe_counter!(HEDGES_SENT, "Backup (hedge) requests sent per upstream");
    metrics::describe_counter!(RETRIES_SENT, "Retries sent per upstream");
    metrics::describe_gauge!(
        BULKHEAD_PERMITS_IN_USE,
        "Bulkhead permits held per upstream: requests in flight to it"
    );
    metrics::describe_gauge!(BULKHEAD_PERMITS_MAX, "Bulkhead permits in all per upstream");
    metrics::describe_gauge!(
        BULKHEAD_WAITERS,
        "Requests waiting for a bulkhead permit per upstream"
    );
}
