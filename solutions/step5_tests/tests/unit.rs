//! Unit tests of the orchestration logic: the reference solution.
//!
//! Every test here talks to [`FakeUpstreams`], an in-process fake, and runs
//! with tokio's clock paused (`start_paused = true`). With no socket and no
//! other thread, the runtime jumps straight to the next timer whenever every
//! task is waiting, so "this took exactly 100 ms" is a safe, exact assertion
//! that takes no real time. (Paused time with *real* sockets is not safe: the
//! clock races ahead while the OS moves bytes, and timeouts fire at once.)
//!
//! What the response cannot show (how many calls, how many at once, whether
//! they were cancelled), the fake's counters can.
//!
//! The tests come in two parts, one module each, in teaching order:
//! `deadlines_and_retries` (one request in time) and `failures_and_limits`
//! (what failures, drops and limits leave behind). Both reach the helpers
//! below with `use super::*`.

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
