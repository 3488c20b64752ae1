//! Step 6 — resilience: degrade, don't collapse (reference solution).
//!
//! Failure is normal: at scale some upstream is always slow, failing or
//! down. This crate keeps the product page answering anyway:
//!
//! * a **circuit breaker** per upstream stops calling what is not working;
//! * **hedged requests** race the rare slow answer, within a budget;
//! * **cancellation** runs end to end: when nobody wants the answer, every
//!   upstream request and spawned task for it ends;
//! * **partial responses**: a missing optional section degrades the page
//!   instead of failing it.
//!
//! # Layout
//!
//! * [`upstream`], [`product`], [`deadline`], [`error`], [`fetch`]: the
//!   earlier steps' foundations, condensed (given).
//! * [`breaker`]: the circuit breaker's state machine, and [`verdict`]: what
//!   an outcome says about the upstream.
//! * [`latency`], [`budget`]: recent latencies and a hedge budget (given).
//! * [`per_upstream`]: [`PerUpstream`], one value per upstream (given, as
//!   in step 3).
//! * [`hedge`]: hedged requests.
//! * [`supervise`]: spawned calls that end when cancelled or dropped.
//! * [`service`]: breaker + hedge + deadline around each upstream (given).
//! * [`page`]: the fan-out with partial responses.
//! * [`edge`]: the HTTP edge that serves the page (given): admission and
//!   shedding, the deadline, problem documents, request ids, metrics,
//!   graceful shutdown; the `product-page` binary runs it.
//! * [`telemetry`]: a span and a latency sample per upstream call, the
//!   runtime's health, JSON logs (given).
//! * [`batch`]: events to a dashboard in batches, a cancel-safe `select!`
//!   loop.
//!
//! # What this step leaves out
//!
//! This crate does not carry everything the earlier steps built, on purpose
//! (the chapter's "What this step leaves out" says why, and what it costs):
//!
//! * **no retries** (step 2): a failed section is not tried again; the
//!   hedge's backup is the only extra attempt, and only for slowness;
//! * **no bulkheads** (step 3): nothing caps the calls to one upstream.
//!   The HTTP edge ([`edge`]) caps the pages in flight and sheds the rest,
//!   but the library's [`fetch_product_page`], as the lab drives it, admits
//!   every page;
//! * **no per-attempt timeout** (step 2): every attempt may use the page's
//!   whole remaining deadline;
//! * **no OpenTelemetry export** (step 4's spans and metrics are here:
//!   [`telemetry`] gives each upstream call a span and a latency sample by
//!   outcome, and the edge shows them in `/metrics`; but only the JSON log
//!   layer consumes the spans), and the lab still calls
//!   [`fetch_product_page`] directly.
//!
//! The HTTP server is no longer left out: [`edge`] serves the page (the
//! `product-page` binary). Retries and the bulkhead are composed with it in
//! a later part of the capstone.

// GIVEN: modules_and_exports (given code, the same as in the reference solution)
pub mod batch;
pub mod breaker;
pub mod budget;
pub mod deadline;
pub mod edge;
pub mod error;
pub mod fetch;
pub mod hedge;
pub mod latency;
pub mod page;
pub mod per_upstream;
pub mod product;
pub mod service;
pub mod supervise;
pub mod telemetry;
pub mod upstream;

pub use batch::{Batching, batch_events};
pub use breaker::{
    BreakerConfig, BreakerState, CallTimes, CircuitBreaker, FairTimeout, Permit, Verdict, verdict,
};
pub use budget::HedgeBudget;
pub use deadline::Deadline;
pub use error::{ConfigError, FetchError};
pub use fetch::fetch_json;
pub use hedge::{Hedge, HedgeConfig, HedgeDelay, hedged};
pub use latency::LatencyTracker;
pub use page::fetch_product_page;
pub use per_upstream::PerUpstream;
pub use product::{Inventory, Price, ProductPage, ReviewStats};
pub use service::{ProductService, Resilience};
pub use supervise::{OwnedCall, spawn_call};
pub use upstream::{Upstream, UpstreamUrls};
// GIVEN_END: modules_and_exports
