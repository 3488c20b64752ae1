//! Observability: one span per upstream call, the RED metrics (rate,
//! errors, duration) per upstream and per route, and the health of the
//! bulkheads and of the runtime.
//!
//! A span answers "what happened to *this* request?"; a metric answers "what
//! is happening to *all* of them?". Each upstream call gets both, from one
//! place ([`observe_upstream_call`]), so they cannot disagree.
//!
//! * [`series`]: the metric names, the histogram buckets, the Prometheus
//!   builder, each upstream's metric handles ([`UpstreamMetrics`]) and the
//!   service's ([`ServiceMetrics`]).
//! * [`outcome`]: [`Outcome`], how a call ended: the `outcome` label.
//! * [`observe`]: [`observe_upstream_call`], the span and the metrics of
//!   one call.
//! * [`runtime`]: the runtime's gauges ([`sample_runtime`]) and the
//!   [`heartbeat`] that measures event-loop lag.
//! * [`logs`]: [`json_logs`], the JSON log layer the binary installs.
//!
//! Given: this file, the module list; and all of [`series`], [`runtime`]
//! and [`logs`].
//! Yours to write: [`Outcome::of_error`] in [`outcome`] and
//! [`observe_upstream_call`] in [`observe`].

pub mod logs;
pub mod observe;
pub mod outcome;
pub mod runtime;
pub mod series;

pub use logs::json_logs;
pub use observe::{UPSTREAM_SPAN, observe_upstream_call};
pub use outcome::Outcome;
pub use runtime::{heartbeat, sample_runtime};
pub use series::{
    BULKHEAD_PERMITS_IN_USE, BULKHEAD_PERMITS_MAX, EVENT_LOOP_LAG, HEARTBEAT_PERIOD, LAG_BUCKETS,
    LATENCY_BUCKETS, REQUEST_LATENCY, ROUTES, RUNTIME_ALIVE_TASKS, RUNTIME_GLOBAL_QUEUE_DEPTH,
    RUNTIME_WORKERS, STATUS_CLASSES, ServiceMetrics, UNMATCHED_ROUTE, UPSTREAM_CALLS,
    UPSTREAM_IN_FLIGHT, UPSTREAM_LATENCY, UpstreamMetrics, prometheus_builder,
};
