//! Step 4 — ship it as a service (reference solution).
//!
//! Steps 1–3 built a fan-out *function*. A service is that function plus an
//! edge: a router, a deadline set when the request arrives, errors a client
//! can read (RFC 9457 problem documents), a request id on every log line, a
//! span per upstream call, Prometheus metrics, and a shutdown that lets
//! in-flight requests finish.
//!
//! # Layout
//!
//! * [`product`], [`upstream`], [`error`], [`config`], [`state`]: payloads,
//!   where the upstreams live, the typed [`FetchError`], the configuration
//!   and the shared state (given).
//! * [`fetch`], [`fanout`]: one upstream call under a deadline and a
//!   bulkhead, and the three of them at once (given).
//! * [`product_id`]: reading an id from the URL.
//! * [`problem`]: every error as an `application/problem+json` document.
//! * [`telemetry`]: a span and metrics per upstream call.
//! * [`routes`]: the router, its tower-http layers and its handlers.
//! * [`shutdown`]: serving with a bounded graceful shutdown.

pub mod config;
pub mod error;
pub mod fanout;
pub mod fetch;
pub mod problem;
pub mod product;
pub mod product_id;
pub mod routes;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod upstream;

pub use config::{ConfigError, ServiceConfig};
pub use error::FetchError;
pub use fanout::fetch_product;
pub use problem::{ApiError, PROBLEM_JSON, Problem, ProblemContext};
pub use product::{Inventory, Price, Product, ReviewStats};
pub use product_id::{InvalidProductId, parse_product_id};
pub use routes::{REQUEST_ID_HEADER, router};
pub use shutdown::{ServeError, bind_listener, serve, shutdown_signal};
pub use state::AppState;
pub use telemetry::{
    Outcome, ServiceMetrics, UpstreamMetrics, observe_upstream_call, prometheus_builder,
};
pub use upstream::{Upstream, UpstreamUrls};
