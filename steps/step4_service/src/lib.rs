//! Step 4 — ship it as a service.
//!
//! Steps 1–3 built a fan-out *function*. A service is that function plus an
//! edge: a router, a deadline set when the request arrives, errors a client
//! can read (RFC 9457 problem documents), a request id on every log line, a
//! span per upstream call, Prometheus metrics, and a shutdown that lets
//! in-flight requests finish.
//!
//! Run `cargo xtask verify step4` to see which tests pass, and
//! `cargo run -p step4_service --bin product-service` to try the service.
//!
//! # Layout
//!
//! * [`product`], [`upstream`], [`error`], [`config`], [`state`]: payloads,
//!   where the upstreams live, the typed [`FetchError`], the configuration
//!   and the shared state (given).
//! * [`fetch`], [`fanout`]: one upstream call under a deadline and a
//!   bulkhead, and the three of them at once (given).
//! * [`product_id`]: reading an id from the URL (**TODO**).
//! * [`problem`]: every error as an `application/problem+json` document (**TODO**).
//! * [`telemetry`]: a span and metrics per upstream call (**TODO**; the
//!   Prometheus set-up is given).
//! * [`routes`]: the router, its tower-http layers and its handlers (**TODO**).
//! * [`shutdown`]: serving with a bounded graceful shutdown (**TODO**).
//! * `src/main.rs`: the `product-service` binary (given).

// Until every TODO is filled in, some parameters, imports and handlers are unused.
// Delete this line once you are done: the compiler's warnings will help then.
#![allow(unused_variables, unused_imports, dead_code)]

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
