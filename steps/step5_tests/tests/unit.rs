//! Unit tests of the orchestration logic: yours to write.
//!
//! Given: this file (the imports, `within_time_limit`, `roomy_config` and
//! `orchestrator`, which both parts reach with `use super::*`). Yours: the
//! body of every test in the two parts, in place of its `todo!()`:
//!
//! 1. `deadlines_and_retries` (`tests/unit/deadlines_and_retries.rs`): the
//!    calls overlap, the deadline and the attempt timeout, what is retried
//!    and the backoff between retries;
//! 2. `failures_and_limits` (`tests/unit/failures_and_limits.rs`): partial
//!    pages, cancellation, permits and shedding, configurations refused.
//!
//! `verify` counts each part on its own.
//!
//! These tests talk to [`FakeUpstreams`], the in-process fake, with tokio's
//! clock paused (`#[tokio::test(start_paused = true)]`): no socket and no
//! other thread, so durations are exact. Each test's `///` line says what it
//! must show; how to set that up is your decision (the chapter explains the
//! tools, and `cargo xtask hint step5` climbs a hint ladder when you ask).
//!
//! `cargo xtask verify step5` runs these on the correct orchestrator (they
//! must pass), then on broken copies of it (each must make one fail).

// The helpers and imports below are there for the tests you write; until
// you use them, the compiler would warn about each one.
#![allow(dead_code, unused_imports)]

use std::future::Future;
use std::time::Duration;

use step5_tests::{Config, ConfigError, FakeUpstreams, FetchError, Orchestrator, Upstream};
use tokio::time::Instant;

// GIVEN: test_helpers (given code, the same as in the reference solution)
/// Every test gets at most this long (on tokio's clock, which paused time
/// advances instantly), so a future that never completes fails with a message.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Runs `test`, failing it with a clear message if it outlives the limit.
async fn within_time_limit<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIME_LIMIT, test)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the test did not finish within {TEST_TIME_LIMIT:?}: is a future waiting forever?"
            )
        })
}

/// A budget and an attempt timeout of one second: long enough that nothing
/// times out in tests that are not about time.
fn roomy_config() -> Config {
    Config {
        budget: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

/// An orchestrator over (a clone of) `fake`, which the test keeps to script
/// and inspect.
fn orchestrator(fake: &FakeUpstreams, config: Config) -> Orchestrator<FakeUpstreams> {
    Orchestrator::new(fake.clone(), config).expect("a valid configuration")
}
// GIVEN_END: test_helpers

// The parts, in the order to work through them. A crate root's `mod name;`
// would look for `tests/name.rs`, which cargo would build as a test target
// of its own, so the parts' files live in `tests/unit/`, named by `#[path]`.

#[path = "unit/deadlines_and_retries.rs"]
mod deadlines_and_retries;

#[path = "unit/failures_and_limits.rs"]
mod failures_and_limits;
