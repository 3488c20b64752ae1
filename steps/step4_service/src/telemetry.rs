//! Observability for upstream calls: one span per call, and the RED metrics
//! (rate, errors, duration) per upstream.
//!
//! A span answers "what happened to *this* request?"; a metric answers "what
//! is happening to *all* of them?". Each upstream call gets both, from one
//! place ([`observe_upstream_call`]), so they cannot disagree.
//!
//! * [`series`]: the metric names, the histogram buckets, the Prometheus
//!   builder, and each upstream's metric handles ([`UpstreamMetrics`]).
//! * [`outcome`]: [`Outcome`], how a call ended: the `outcome` label.
//! * [`observe`]: [`observe_upstream_call`], the span and the metrics of
//!   one call.
//! * [`logs`]: [`json_logs`], the JSON log layer the binary installs.
//!
//! Given: this file, the module list; and all of [`series`] and [`logs`].
//! Yours to write: [`Outcome::of_error`] in [`outcome`] and
//! [`observe_upstream_call`] in [`observe`].

pub mod logs;
pub mod observe;
pub mod outcome;
pub mod series;

pub use logs::json_logs;
pub use observe::{UPSTREAM_SPAN, observe_upstream_call};
pub use outcome::Outcome;
pub use series::{
    LATENCY_BUCKETS, UPSTREAM_CALLS, UPSTREAM_IN_FLIGHT, UPSTREAM_LATENCY, UpstreamMetrics,
    prometheus_builder,
};
