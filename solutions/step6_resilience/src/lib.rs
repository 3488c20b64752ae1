//! Step 6 — resilience: degrade, don't collapse (reference solution).
//!
//! Failure is normal: at scale some upstream is always slow, failing or
//! down. This crate keeps the product page answering anyway:
//!
//! * a **circuit breaker** per upstream stops calling what is not working;
//! * **hedged requests** race the rare slow answer, and **retries** try
//!   again after an error that may pass, each attempt with a deadline of its
//!   own, both within one budget per upstream;
//! * a **bulkhead** per upstream caps the requests it receives;
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
//! * [`latency`], [`budget`]: recent latencies, and the budget that
//!   retries and hedges share (given).
//! * [`per_upstream`]: [`PerUpstream`], one value per upstream (given, as
//!   in step 3).
//! * [`hedge`]: hedged requests.
//! * [`retry`]: retries, each attempt with a deadline of its own.
//! * [`bulkhead`]: a cap on the requests in flight to one upstream (given,
//!   adapted from step 3).
//! * [`supervise`]: spawned calls that end when cancelled or dropped.
//! * [`service`]: every guard of an upstream composed in one place, in
//!   the order the chapter argues: breaker, budget, retries, hedge,
//!   bulkhead, deadline (given).
//! * [`page`]: the fan-out with partial responses.
//! * [`edge`]: the HTTP edge that serves the page (given): admission and
//!   shedding, the deadline, problem documents, request ids, metrics,
//!   graceful shutdown; the `product-page` binary runs it.
//! * [`telemetry`]: a span and a latency sample per upstream call, a span
//!   per HTTP request, the runtime's health and lag, JSON logs, and (cargo
//!   feature `otlp`) spans to an OpenTelemetry collector (given).
//! * [`batch`]: events to a dashboard in batches, a cancel-safe `select!`
//!   loop.
//!
//! # What this step leaves out
//!
//! This crate does not carry everything the earlier steps built, on purpose
//! (the chapter's "What this step leaves out" says why, and what it costs):
//!
//! * **no page-level admission in the library** (step 3's `admit_page`):
//!   the HTTP edge ([`edge`]) caps the pages in flight and sheds the rest,
//!   and each upstream's [`bulkhead`] caps its requests, but the library's
//!   [`fetch_product_page`], called directly (as the tests do), admits
//!   every page;
//! * **no retry budget with a time-to-live or a floor** (Finagle's and
//!   tower's have both): [`RetryBudget`] is a plain token bucket;
//! * **no `Retry-After`** from an upstream is honoured: a 429 or a 503
//!   asking for a pause is treated like any other 4xx or 5xx;
//! * **no adaptive concurrency limit**: a bulkhead's size is configured,
//!   not learned from the upstream's latency.

// GIVEN: modules_and_exports (given code, the same as in the reference solution)
pub mod batch;
pub mod breaker;
pub mod budget;
pub mod bulkhead;
pub mod deadline;
pub mod edge;
pub mod error;
pub mod fetch;
pub mod hedge;
pub mod latency;
pub mod page;
pub mod per_upstream;
pub mod product;
pub mod retry;
pub mod service;
pub mod supervise;
pub mod telemetry;
pub mod upstream;

pub use batch::{Batching, batch_events};
pub use breaker::{
    BreakerConfig, BreakerState, CallTimes, CircuitBreaker, FairTimeout, Permit, Verdict, verdict,
};
pub use budget::{BudgetConfig, RetryBudget};
pub use bulkhead::{Bulkhead, BulkheadConfig};
pub use deadline::Deadline;
pub use error::{ConfigError, FetchError};
pub use fetch::fetch_json;
pub use hedge::{Hedge, HedgeConfig, HedgeDelay, hedged};
pub use latency::LatencyTracker;
pub use page::fetch_product_page;
pub use per_upstream::PerUpstream;
pub use product::{Inventory, Price, ProductPage, ReviewStats};
pub use retry::{Retry, RetryConfig, retried};
pub use service::{ProductService, Resilience};
pub use supervise::{OwnedCall, spawn_call};
pub use upstream::{Upstream, UpstreamUrls};
// GIVEN_END: modules_and_exports
