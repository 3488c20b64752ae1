//! Step 2's tests: what "done" means for deadlines and jittered retries.
//!
//! The same tests run against your exercise (`cargo xtask verify step2`) and
//! against the reference solution (`cargo xtask verify step2 --solution`).
//!
//! The step comes in three parts, one module each, in the order to work
//! through them; `verify` shows how many tests of each part pass:
//!
//! 1. `policy`: what is worth retrying, and the policy's arithmetic
//!    (`FetchError::is_retryable` in `src/error.rs`, `RetryPolicy` in
//!    `src/policy.rs`);
//! 2. `retry_loop`: the loop itself (`retry` in `src/retry.rs`);
//! 3. `http`: the loop around real requests, and the fan-out under one
//!    deadline (`fetch_with_retry` in `src/fetch.rs`, `fetch_product` in
//!    `src/fanout.rs`).
//!
//! Three kinds of clock, on purpose. The policy tests use none: they call
//! plain functions. The retry-loop tests drive `retry` with an in-process
//! fake on tokio's *paused* clock, so every instant is exact. The HTTP tests
//! talk to wiremock on loopback in *real* time with wide margins: a paused
//! clock would jump ahead while a request waits on a socket. Each part's
//! file says more.
//!
//! A crate root's `mod name;` looks for `tests/name.rs`, which cargo would
//! build as a test target of its own: the parts' files live in `tests/step2/`
//! and are named here with `#[path]`.

#[path = "step2/common.rs"]
mod common;

#[path = "step2/policy.rs"]
mod policy;

#[path = "step2/retry_loop.rs"]
mod retry_loop;

#[path = "step2/http.rs"]
mod http;
