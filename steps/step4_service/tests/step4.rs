//! Step 4's tests: what "done" means for shipping the fan-out as a service.
//!
//! The same tests run against your exercise (`cargo xtask verify step4`) and
//! against the reference solution (`cargo xtask verify step4 --solution`).
//!
//! The step comes in five parts, one module each, in the order to work
//! through them; `verify` shows how many tests of each part pass:
//!
//! 1. `problems`: ids and problem documents (`parse_product_id` in
//!    `src/product_id.rs`, `ApiError::to_problem` and `Problem::into_response`
//!    in `src/problem.rs`, and a first `router` with `get_product` in
//!    `src/routes.rs`);
//! 2. `telemetry`: spans and metrics (`Outcome::of_error` and
//!    `observe_upstream_call` in `src/telemetry/`, `metrics` in
//!    `src/routes.rs`), and the problem documents of calls that fail, time
//!    out or are shed: the given fan-out runs every call inside
//!    `observe_upstream_call`, so no test with a valid id can pass before;
//! 3. `routes`: the rest of `router` (fallbacks, request ids, the request
//!    span, timing) and `backstop` (`src/routes.rs`), and the request's
//!    deadline;
//! 4. `shutdown`: graceful shutdown on a real socket (`src/shutdown.rs`);
//! 5. `send`: three snippets that must hold only `Send` things across an
//!    `.await` (`send/`), built and run with trybuild.
//!
//! Most tests drive the router in process with `tower::ServiceExt::oneshot`:
//! no socket on the service side, just a request in and a response out. The
//! upstreams are `FastUpstream` fakes on the test's own runtime, in real
//! time, and timing checks keep wide margins (never tighter than 150 ms).
//! The shutdown and disconnect tests bind a real loopback socket, because
//! connections are the point there.
//!
//! Each test installs its own span-capturing subscriber and its own metrics
//! recorder (both thread-local, and a `#[tokio::test]` runs everything on one
//! thread), so tests running side by side never see each other's spans or
//! numbers. The two multi-thread tests read only metrics, whose handles are
//! registered on the test's thread and then work from any thread.
//!
//! Problem documents are compared with insta snapshots in `tests/snapshots/`;
//! the request id and the `instance` differ on every run, so they are
//! redacted (after checking that `instance` is a `urn:uuid:` URI).
//!
//! A crate root's `mod name;` looks for `tests/name.rs`, which cargo would
//! build as a test target of its own: the parts' files live in `tests/step4/`
//! and are named here with `#[path]`.

#[path = "support/capture.rs"]
mod capture;

#[path = "step4/common.rs"]
mod common;

// ---------------------------------------------------------------------------
// Parts 1 to 4: the service
// ---------------------------------------------------------------------------

#[path = "step4/problems.rs"]
mod problems;

#[path = "step4/telemetry.rs"]
mod telemetry;

#[path = "step4/routes.rs"]
mod routes;

#[path = "step4/shutdown.rs"]
mod shutdown;

// ---------------------------------------------------------------------------
// Part "send": the Send snippets in `send/`, built and run with trybuild
// ---------------------------------------------------------------------------

#[path = "step4/send.rs"]
mod send;
