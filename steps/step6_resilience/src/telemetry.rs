//! Observability below the edge: one span and one latency sample per
//! upstream call, the runtime's health, and the JSON log layer.
//!
//! A span answers "what happened to *this* call?"; the histogram answers
//! "what is happening to *all* of them?". Both come from one place,
//! [`observe_upstream_call`], which [`ProductService::fetch`] runs every
//! section call through, so they cannot disagree and the page (yours) has
//! nothing to add.
//!
//! * [`observe`]: [`observe_upstream_call`], [`UpstreamCallMetrics`] and
//!   the `outcome` label of each [`FetchError`]; [`observe_attempt`], a
//!   span per HTTP request inside a call.
//! * [`runtime`]: tokio's stable gauges, read at scrape time, and the
//!   [`heartbeat`] that measures event-loop lag.
//! * [`logs`]: [`json_logs`], the JSON log layer the binary installs
//!   (step 4's, unchanged).
//! * [`otlp`]: [`OtlpExport`], the spans to an OpenTelemetry collector
//!   over OTLP/HTTP (`product-page --otlp-endpoint URL`), compiled only
//!   with the cargo feature `otlp`.
//!
//! Given: this whole module; there is nothing to write in it.
//!
//! [`ProductService::fetch`]: crate::service::ProductService::fetch
//! [`FetchError`]: crate::error::FetchError

pub mod logs;
pub mod observe;
pub mod otlp;
pub mod runtime;

pub use logs::json_logs;
pub use observe::{
    AttemptKind, CALL_OUTCOMES, UPSTREAM_ATTEMPT_SPAN, UPSTREAM_LATENCY, UPSTREAM_SPAN,
    UpstreamCallMetrics, call_outcome, observe_attempt, observe_upstream_call,
};
pub use otlp::{OtlpError, OtlpExport};
pub use runtime::{
    EVENT_LOOP_LAG, HEARTBEAT_PERIOD, LAG_BUCKETS, LagMark, RECENT_BEATS, RUNTIME_ALIVE_TASKS,
    RUNTIME_GLOBAL_QUEUE_DEPTH, RUNTIME_WORKERS, RuntimeGauges, RuntimeLag, heartbeat,
};
