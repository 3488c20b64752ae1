//! Unit tests of the orchestration logic: yours to write.
//!
//! Given: the imports, `within_time_limit`, `roomy_config` and `orchestrator`
//! below. Yours: the body of every test, in place of its `todo!()`.
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

/// The three upstreams are called at the same time: the request takes as long
/// as its slowest call, not the sum of the three.
#[tokio::test(start_paused = true)]
async fn the_three_upstreams_are_called_concurrently() {
    todo!("write this test: the three upstreams are called concurrently")
}

/// A stalled required upstream fails the request with `Timeout` exactly at
/// the budget: retries included, no request outlives its deadline.
#[tokio::test(start_paused = true)]
async fn a_stalled_upstream_times_out_exactly_at_the_budget() {
    todo!("write this test: a stalled upstream times out exactly at the budget")
}

/// A stalled attempt is abandoned at `attempt_timeout` and retried, so one
/// slow attempt does not eat the whole budget.
#[tokio::test(start_paused = true)]
async fn a_stalled_attempt_is_abandoned_and_retried() {
    todo!("write this test: a stalled attempt is abandoned and retried")
}

/// A 503 is retried, and the request succeeds once the upstream recovers.
#[tokio::test(start_paused = true)]
async fn a_server_error_is_retried_until_the_upstream_recovers() {
    todo!("write this test: a server error is retried until the upstream recovers")
}

/// The backoff before each retry is at most `base_delay`, doubled each
/// retry, capped at `max_delay`.
#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_up_to_its_cap() {
    todo!("write this test: the backoff doubles up to its cap")
}

/// Each backoff is the jitter source's pick: no fixed delay hides in the
/// orchestrator.
#[tokio::test(start_paused = true)]
async fn the_backoff_is_drawn_from_the_jitter_source() {
    todo!("write this test: the backoff is drawn from the jitter source")
}

/// When no attempt could start after the next backoff, the request does not
/// sleep past its deadline: it returns the real error at once.
#[tokio::test(start_paused = true)]
async fn no_backoff_is_slept_when_no_attempt_could_follow_it() {
    todo!("write this test: no backoff is slept when no attempt could follow it")
}

/// A 404 is the answer, not a glitch: it is returned after exactly one call.
#[tokio::test(start_paused = true)]
async fn a_client_error_is_not_retried() {
    todo!("write this test: a client error is not retried")
}

/// When reviews fail, the product is still served, marked as degraded.
#[tokio::test(start_paused = true)]
async fn a_failing_reviews_upstream_gives_a_partial_response() {
    todo!("write this test: a failing reviews upstream gives a partial response")
}

/// When a required upstream keeps failing, the request fails and names it,
/// after `max_attempts` attempts.
#[tokio::test(start_paused = true)]
async fn a_failing_required_upstream_fails_the_request() {
    todo!("write this test: a failing required upstream fails the request")
}

/// A required failure ends the request when it arrives and cancels the calls
/// still in flight: nobody waits for an answer that can no longer be used.
#[tokio::test(start_paused = true)]
async fn a_required_failure_cancels_the_other_calls() {
    todo!("write this test: a required failure cancels the other calls")
}

/// Permits come back after each call: many more requests in a row than
/// `max_in_flight` all succeed.
#[tokio::test(start_paused = true)]
async fn permits_are_returned_after_every_request() {
    todo!("write this test: permits are returned after every request")
}

/// Dropping a request cancels its upstream calls: none is left running.
#[tokio::test(start_paused = true)]
async fn dropping_the_request_cancels_its_upstream_calls() {
    todo!("write this test: dropping the request cancels its upstream calls")
}

/// Calls beyond `max_in_flight` are shed with `Overloaded` at once: not
/// queued, and not let through.
#[tokio::test(start_paused = true)]
async fn calls_beyond_the_limit_are_shed() {
    todo!("write this test: calls beyond the limit are shed")
}

/// A configuration that cannot work is rejected when the orchestrator is
/// built, naming the problem; one at the edge of working is accepted.
#[test]
fn an_unworkable_configuration_is_rejected() {
    todo!("write this test: an unworkable configuration is rejected")
}
