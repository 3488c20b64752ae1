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
//! # What it carries from steps 1–3
//!
//! * Step 1: the three calls overlap (`try_join!`) and the first error ends
//!   the page at once.
//! * Step 2: one deadline per request, set at the edge; each attempt gets
//!   `min(attempt_timeout, remaining - margin)` of it, so no call is handed
//!   the whole deadline and the answer leaves before the deadline; bounded
//!   retries with full-jitter backoff for the errors worth retrying.
//! * Step 3: a bulkhead per upstream and whole-page admission: a page takes
//!   all three permits or none, *without waiting* (so no hold-and-wait, and
//!   no queue: a 200 ms budget has no time to queue), and a shed page sends
//!   nothing.
//!
//! # Layout
//!
//! * [`product`], [`upstream`], [`error`], [`config`], [`state`]: payloads,
//!   where the upstreams live, the typed [`FetchError`], the configuration
//!   (budget, attempts, caps) and the shared state (given).
//! * [`per_upstream`]: [`PerUpstream`], one value per upstream, as in step 3
//!   (given).
//! * [`fetch`], [`retry`], [`fanout`]: one attempt under its deadline, the
//!   retry loop around it, and the admitted page of three calls (given).
//! * [`product_id`]: reading an id from the URL (**TODO**).
//! * [`problem`]: every error as an `application/problem+json` document
//!   (**TODO**).
//! * [`telemetry`]: a span and metrics per upstream call: metric series,
//!   [`Outcome`], the observed call and the JSON log layer (**TODO**:
//!   [`Outcome::of_error`] and [`observe_upstream_call`]; the rest is given).
//! * [`routes`]: the router, its layers, the backstop and the handlers
//!   (**TODO**; the request-id helpers and the fallbacks are given).
//! * [`shutdown`]: serving with a bounded graceful shutdown (**TODO**).
//! * `src/main.rs`: the `product-service` binary (given).
//!
//! Given: this file, the crate's module list; the **TODO** marks above show
//! where your work is.

// Until every TODO is filled in, some parameters, imports and handlers are unused.
// Delete this line once you are done: the compiler's warnings will help then.
#![allow(unused_variables, unused_imports, dead_code)]

// GIVEN: modules (given code, the same as in the reference solution)
pub mod config;
pub mod error;
pub mod fanout;
pub mod fetch;
pub mod per_upstream;
pub mod problem;
pub mod product;
pub mod product_id;
pub mod retry;
pub mod routes;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod upstream;
// GIVEN_END: modules

// GIVEN: exports (given code, the same as in the reference solution)
pub use config::{ConfigError, ServiceConfig};
pub use error::FetchError;
pub use fanout::fetch_product;
pub use per_upstream::PerUpstream;
pub use problem::{ApiError, PROBLEM_JSON, Problem, ProblemContext, new_instance};
pub use product::{Inventory, Price, Product, ReviewStats};
pub use product_id::{InvalidProductId, parse_product_id};
pub use routes::{MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER, router};
pub use shutdown::{ServeError, bind_listener, serve, shutdown_signal};
pub use state::AppState;
pub use telemetry::{Outcome, UpstreamMetrics, observe_upstream_call, prometheus_builder};
pub use upstream::{Upstream, UpstreamUrls};
// GIVEN_END: exports
