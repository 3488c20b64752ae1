//! The HTTP edge: step 6's page served as `GET /products/{id}`.
//!
//! Everything a request meets before [`fetch_product_page`] runs, and
//! everything it gets back, is decided here, outermost first:
//!
//! 1. the request is **timed** (every answer, a shed one included, lands in
//!    the request latency histogram);
//! 2. it gets a **request id** (the caller's `x-request-id`, or a fresh
//!    UUID) and a span that carries it; the id goes back on the response;
//! 3. **admission**: at most `max_in_flight` page requests are handled at
//!    once, fewer while recent pages are slower than the latency target
//!    (a limit learnt from their latency), and fewer while the runtime runs
//!    behind its schedule (past `max_runtime_lag`); one more is **shed** at
//!    once with a `503`,
//!    `Retry-After` and a problem document, without waiting for a place;
//! 4. the **deadline** is set (the request budget, 200 ms by default) and
//!    handed to the page, which spends from it and never extends it;
//! 5. the page's error, if any, becomes a **problem document** with the
//!    status [`FetchError::http_status`] chose.
//!
//! A client that goes away drops the handler's future (hyper drops it when
//! the connection closes), and with it the page: its spawned sections are
//! aborted and their upstream requests dropped. Nothing here has to do
//! anything for that; it is the page's cancellation, end to end.
//!
//! # Layout
//!
//! * [`config`]: [`EdgeConfig`], the edge's settings and their defaults.
//! * [`admission`]: [`Admission`], the in-flight limit that sheds, and
//!   [`LatencyLimit`], which learns it.
//! * [`problem`]: [`EdgeError`] and [`Problem`], errors as RFC 9457
//!   documents.
//! * [`series`]: the Prometheus series and [`EdgeMetrics`].
//! * [`state`]: [`EdgeState`], what every handler shares.
//! * [`routes`]: [`router`], the layers and the handlers.
//! * [`serve`](mod@serve): [`bind_listener`], [`serve()`] with a bounded
//!   drain, and [`shutdown_signal`].
//!
//! Given: this whole module; there is nothing to write in it. It is how the
//! `product-page` binary (`src/main.rs`) and the `service` tests reach your
//! page over HTTP.
//!
//! [`fetch_product_page`]: crate::page::fetch_product_page
//! [`FetchError::http_status`]: crate::error::FetchError::http_status
//!
//! Given code: a copy of `steps/step6_resilience/src/edge.rs`.

pub mod admission;
pub mod config;
pub mod problem;
pub mod routes;
pub mod series;
pub mod serve;
pub mod state;

pub use admission::{Admission, Admitted, LatencyLimit};
pub use config::{
    DEFAULT_LATENCY_TARGET, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_RUNTIME_LAG, DEFAULT_MIN_IN_FLIGHT,
    DEFAULT_REQUEST_BUDGET, DEFAULT_RETRY_AFTER, EdgeConfig, EdgeConfigError,
    breaker_timer_tolerance,
};
pub use problem::{EdgeError, PROBLEM_JSON, Problem};
pub use routes::{REQUEST_ID_HEADER, router};
pub use series::{
    BREAKER_STATE, BULKHEAD_PERMITS_IN_USE, BULKHEAD_PERMITS_MAX, BULKHEAD_WAITERS,
    CONCURRENCY_LIMIT, EdgeMetrics, HEDGES_SENT, LATENCY_BUCKETS, REQUEST_DURATION,
    REQUESTS_IN_FLIGHT, REQUESTS_IN_FLIGHT_LIMIT, REQUESTS_SHED, RETRIES_SENT, ROUTES,
    STATUS_CLASSES, UNMATCHED_ROUTE,
};
pub use serve::{ServeError, bind_listener, serve, shutdown_signal};
pub use state::EdgeState;
