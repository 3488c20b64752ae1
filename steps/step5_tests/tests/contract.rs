//! Contract tests of the response's JSON shape: yours to write.
//!
//! Given: the imports and `within_time_limit` below. Yours: the body of
//! every test, in place of its `todo!()`.
//!
//! Clients parse what `GET /products/{id}` sends, so the body is a contract.
//! Snapshot tests write `tests/snapshots/*.snap.new` on their first run:
//! review it (`cargo insta review`, or read it and rename it to `.snap`).

// The helpers and imports below are there for the tests you write; until
// you use them, the compiler would warn about each one.
#![allow(dead_code, unused_imports)]

use std::future::Future;
use std::time::Duration;

use step5_tests::{Config, FakeUpstreams, Orchestrator, Upstream};

// GIVEN: test_helpers (given code, the same as in the reference solution)
/// Every test gets at most this long, so a hang fails with a message.
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
// GIVEN_END: test_helpers

/// The complete response body matches the reviewed snapshot.
#[tokio::test(start_paused = true)]
async fn the_complete_response_body_matches_the_snapshot() {
    todo!("write this test: the complete response body matches the snapshot")
}

/// The partial response body (reviews failed) matches the reviewed snapshot.
#[tokio::test(start_paused = true)]
async fn the_partial_response_body_matches_the_snapshot() {
    todo!("write this test: the partial response body matches the snapshot")
}
