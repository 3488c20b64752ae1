//! Unit tests of the orchestration logic: yours to write.
//!
//! Talk to [`FakeUpstreams`], the in-process fake, with tokio's clock paused
//! (`#[tokio::test(start_paused = true)]`): no socket, no other thread, so the
//! runtime jumps to the next timer and durations are exact. Assert on the
//! outcome *and* on the fake's counters (`calls`, `in_flight`, `cancelled`):
//! they show what the response cannot.
//!
//! Replace each `todo!()` with a test. `cargo xtask verify step5` runs them on
//! the correct orchestrator (they must pass) and on each mutant (one must fail).

// The helpers and imports below are there for the tests you write; until
// you use them, the compiler would warn about each one.
#![allow(dead_code, unused_imports)]

use std::future::Future;
use std::time::Duration;

use step5_tests::{Config, ConfigError, FakeUpstreams, FetchError, Orchestrator, Upstream};
use tokio::time::Instant;

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

fn orchestrator(fake: &FakeUpstreams, config: Config) -> Orchestrator<FakeUpstreams> {
    Orchestrator::new(fake.clone(), config).expect("a valid configuration")
}

/// The three upstreams are called at the same time: 3 × 100 ms takes 100 ms.
#[tokio::test(start_paused = true)]
async fn the_three_upstreams_are_called_concurrently() {
    // Arrange: a FakeUpstreams where every upstream takes the same latency (set_latency).
    // Act: time get_product with tokio::time::Instant.
    // Assert: elapsed equals that one latency exactly (paused time), each upstream called once.
    todo!("write this test: the three upstreams are called concurrently")
}

/// A stalled required upstream fails the request with `Timeout` exactly at
/// the budget: the deadline cuts the last attempt short.
#[tokio::test(start_paused = true)]
async fn a_stalled_upstream_times_out_exactly_at_the_budget() {
    // Arrange: one required upstream far slower than the budget, and an
    // attempt_timeout short enough that max_attempts attempts would not fit in it.
    // Act: time get_product.
    // Assert: Err(FetchError::Timeout { upstream }) naming it, elapsed == budget exactly.
    todo!("write this test: a stalled upstream times out exactly at the budget")
}

/// A stalled attempt is abandoned at `attempt_timeout` and retried, so one
/// slow attempt does not eat the whole budget.
#[tokio::test(start_paused = true)]
async fn a_stalled_attempt_is_abandoned_and_retried() {
    // Arrange: stall_first(Upstream::Pricing, 1), an attempt_timeout well below the
    // budget, and a jitter source that makes the backoff a known length (with_jitter).
    // Act: time get_product.
    // Assert: Ok; elapsed is the attempt timeout plus that backoff; 2 calls, 1 cancelled.
    todo!("write this test: a stalled attempt is abandoned and retried")
}

/// A 503 is retried, and the request succeeds once the upstream recovers.
#[tokio::test(start_paused = true)]
async fn a_server_error_is_retried_until_the_upstream_recovers() {
    // Arrange: fail_first(Upstream::Pricing, 2, 503).
    // Act: get_product.
    // Assert: Ok, and the fake saw 3 calls to pricing.
    todo!("write this test: a server error is retried until the upstream recovers")
}

/// With the jitter at the top of its range, the backoffs are the ceilings:
/// `base_delay`, doubled each retry, capped at `max_delay`.
#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_up_to_its_cap() {
    // Arrange: an upstream that fails a few times with a 5xx, enough attempts to reach
    // the cap, and a jitter source that always picks the ceiling.
    // Act: time get_product.
    // Assert: Ok, and elapsed is exactly the sum of the capped, doubling backoffs.
    todo!("write this test: the backoff doubles up to its cap")
}

/// The jitter source decides each backoff: at the bottom of its range the
/// retries follow at once, so no fixed delay hides in the orchestrator.
#[tokio::test(start_paused = true)]
async fn the_backoff_is_drawn_from_the_jitter_source() {
    // Arrange: an upstream that fails twice with a 5xx, and a jitter source that
    // always picks zero.
    // Act: time get_product.
    // Assert: Ok, 3 calls, and no time passed at all.
    todo!("write this test: the backoff is drawn from the jitter source")
}

/// When no attempt could start after the next backoff, the request does not
/// sleep past its deadline: it returns the real error at once.
#[tokio::test(start_paused = true)]
async fn no_backoff_is_slept_when_no_attempt_could_follow_it() {
    // Arrange: an upstream that always answers 503; a budget that fits exactly one
    // backoff (e.g. 100 ms budget, backoffs of exactly 80 ms).
    // Act: time get_product.
    // Assert: the 503 itself (not a Timeout), and elapsed is that one backoff.
    todo!("write this test: no backoff is slept when no attempt could follow it")
}

/// A 404 is the answer, not a glitch: it is returned after exactly one call.
#[tokio::test(start_paused = true)]
async fn a_client_error_is_not_retried() {
    // Arrange: fail_with(Upstream::Inventory, 404).
    // Act: get_product.
    // Assert: Err(FetchError::Status { status: 404, .. }) and exactly 1 call.
    todo!("write this test: a client error is not retried")
}

/// When reviews fail, the product is still served, marked as degraded.
#[tokio::test(start_paused = true)]
async fn a_failing_reviews_upstream_gives_a_partial_response() {
    // Arrange: only reviews fail (fail_with(Upstream::Reviews, 500)).
    // Act: get_product.
    // Assert: Ok, reviews == None, degraded == [Upstream::Reviews].
    todo!("write this test: a failing reviews upstream gives a partial response")
}

/// When a required upstream keeps failing, the request fails and names it.
#[tokio::test(start_paused = true)]
async fn a_failing_required_upstream_fails_the_request() {
    // Arrange: pricing always answers 500.
    // Act: get_product.
    // Assert: Err(FetchError::Status) naming pricing; calls == max_attempts.
    todo!("write this test: a failing required upstream fails the request")
}

/// Permits come back after each request: many more requests in a row than
/// `max_in_flight` all succeed.
#[tokio::test(start_paused = true)]
async fn permits_are_returned_after_every_request() {
    // Arrange: Config { max_in_flight: 2, .. }.
    // Act: send 5 requests one after the other.
    // Assert: every one succeeds.
    todo!("write this test: permits are returned after every request")
}

/// Dropping a request cancels its upstream calls: none is left running.
#[tokio::test(start_paused = true)]
async fn dropping_the_request_cancels_its_upstream_calls() {
    // Arrange: slow upstreams (e.g. 500 ms each).
    // Act: tokio::time::timeout(50 ms, get_product(..)) gives up and drops the request.
    // Assert: in_flight(upstream) == 0 and cancelled(upstream) == 1 for all three.
    todo!("write this test: dropping the request cancels its upstream calls")
}

/// More concurrent requests than `max_in_flight` are shed with `Overloaded`, not queued.
#[tokio::test(start_paused = true)]
async fn calls_beyond_the_limit_are_shed() {
    // Arrange: slow upstreams and Config { max_in_flight: 1, .. }.
    // Act: two get_product calls at once (tokio::join!).
    // Assert: one Ok, the other Err(FetchError::Overloaded { .. }).
    todo!("write this test: calls beyond the limit are shed")
}

/// A configuration that cannot work is rejected when the orchestrator is
/// built, naming the problem; one at the edge of working is accepted.
#[test]
fn an_unworkable_configuration_is_rejected() {
    // Arrange/act: Orchestrator::new with each unworkable Config (one per ConfigError
    // variant except UnknownMutant), and with one at the edge (1 attempt, 1 permit,
    // base_delay == max_delay).
    // Assert: the matching ConfigError for each; Ok for the edge.
    todo!("write this test: an unworkable configuration is rejected")
}
