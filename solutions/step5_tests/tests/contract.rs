//! Contract tests of the response's JSON shape: the reference solution.
//!
//! Clients parse what `GET /products/{id}` sends, so renaming or dropping a
//! field breaks them even though every Rust test of the types still passes.
//! An insta snapshot pins the whole body: the reviewed `.snap` files in
//! `tests/snapshots/` are the contract, and a change shows up as a diff to
//! review (`cargo insta review`). Values that differ on every run (the
//! request id) are *redacted*, so the snapshot is stable. With `CI` set,
//! insta refuses to write a missing snapshot: CI fails instead.

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

// ANCHOR: snapshot
/// The complete response body matches the reviewed snapshot.
#[tokio::test(start_paused = true)]
async fn the_complete_response_body_matches_the_snapshot() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        let orchestrator = Orchestrator::new(fake, Config::default()).expect("a valid config");

        let response = orchestrator.get_product(42).await.expect("a product");
        let body = orchestrator.response_body(&response);

        insta::assert_json_snapshot!(body, { ".request_id" => "[request id]" });
    })
    .await;
}
// ANCHOR_END: snapshot

/// The partial response body (reviews failed) matches the reviewed snapshot.
#[tokio::test(start_paused = true)]
async fn the_partial_response_body_matches_the_snapshot() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.fail_with(Upstream::Reviews, 503);
        let orchestrator = Orchestrator::new(fake, Config::default()).expect("a valid config");

        let response = orchestrator
            .get_product(42)
            .await
            .expect("reviews are optional: a partial product");
        let body = orchestrator.response_body(&response);

        insta::assert_json_snapshot!(body, { ".request_id" => "[request id]" });
    })
    .await;
}
