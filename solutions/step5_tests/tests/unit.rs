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

// ANCHOR: concurrent
/// The three upstreams are called at the same time: the request takes as long
/// as its slowest call, not the sum of the three.
#[tokio::test(start_paused = true)]
async fn the_three_upstreams_are_called_concurrently() {
    within_time_limit(async {
        // Arrange: every upstream takes exactly 100 ms of (paused) time.
        let fake = FakeUpstreams::healthy();
        for upstream in Upstream::ALL {
            fake.set_latency(upstream, Duration::from_millis(100));
        }
        let orchestrator = orchestrator(&fake, roomy_config());

        // Act
        let started = Instant::now();
        let response = orchestrator.get_product(7).await;

        // Assert: paused time makes this exact, not "about 100 ms".
        assert!(
            response.is_ok(),
            "healthy upstreams must give a product: {response:?}"
        );
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(100),
            "concurrent calls take as long as the slowest one, not the sum"
        );
        for upstream in Upstream::ALL {
            assert_eq!(fake.calls(upstream), 1, "{upstream} is called once");
        }
    })
    .await;
}
// ANCHOR_END: concurrent

// ANCHOR: deadline
/// A stalled required upstream fails the request with `Timeout` exactly at
/// the budget: retries included, no request outlives its deadline.
#[tokio::test(start_paused = true)]
async fn a_stalled_upstream_times_out_exactly_at_the_budget() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.set_latency(Upstream::Inventory, Duration::from_secs(10));
        // Three attempts of 70 ms, plus backoffs, would end after 210 ms:
        // the third attempt gets only what is left of the 200 ms.
        let budget = Duration::from_millis(200);
        let orchestrator = orchestrator(
            &fake,
            Config {
                budget,
                attempt_timeout: Duration::from_millis(70),
                max_attempts: 3,
                ..Config::default()
            },
        );

        let started = Instant::now();
        let outcome = orchestrator.get_product(7).await;

        assert!(
            matches!(
                outcome,
                Err(FetchError::Timeout {
                    upstream: Upstream::Inventory
                })
            ),
            "a stalled inventory must be a Timeout naming inventory, got {outcome:?}"
        );
        assert_eq!(
            started.elapsed(),
            budget,
            "the request must give up at its budget: not before, and not after a last \
             attempt that was given more time than was left"
        );
        assert_eq!(
            fake.calls(Upstream::Inventory),
            3,
            "each timed-out attempt is retried while attempts and time are left"
        );
    })
    .await;
}
// ANCHOR_END: deadline

// ANCHOR: attempt_timeout
/// A stalled attempt is abandoned at `attempt_timeout` and retried, so one
/// slow attempt does not eat the whole budget.
#[tokio::test(start_paused = true)]
async fn a_stalled_attempt_is_abandoned_and_retried() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.stall_first(Upstream::Pricing, 1);
        let attempt_timeout = Duration::from_millis(100);
        // No backoff at all (the bottom of the jitter range), so the only
        // wait is the abandoned attempt.
        let orchestrator = orchestrator(
            &fake,
            Config {
                attempt_timeout,
                ..roomy_config()
            },
        )
        .with_jitter(|_ceiling| Duration::ZERO);

        let started = Instant::now();
        let outcome = orchestrator.get_product(7).await;

        assert!(
            outcome.is_ok(),
            "the second attempt answers at once, well inside the 1 s budget: {outcome:?}"
        );
        assert_eq!(
            started.elapsed(),
            attempt_timeout,
            "the stalled attempt is given up at attempt_timeout, not at the deadline"
        );
        assert_eq!(
            fake.calls(Upstream::Pricing),
            2,
            "one stalled, one answered"
        );
        assert_eq!(
            fake.cancelled(Upstream::Pricing),
            1,
            "the abandoned attempt was dropped, not left running"
        );
    })
    .await;
}
// ANCHOR_END: attempt_timeout

/// A 503 is retried, and the request succeeds once the upstream recovers.
#[tokio::test(start_paused = true)]
async fn a_server_error_is_retried_until_the_upstream_recovers() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.fail_first(Upstream::Pricing, 2, 503);
        let orchestrator = orchestrator(&fake, roomy_config());

        let outcome = orchestrator.get_product(7).await;

        assert!(
            outcome.is_ok(),
            "two 503s then a 200 must succeed: {outcome:?}"
        );
        assert_eq!(
            fake.calls(Upstream::Pricing),
            3,
            "two failed attempts and one that succeeded"
        );
    })
    .await;
}

// ANCHOR: backoff
/// The backoff before each retry is at most `base_delay`, doubled each
/// retry, capped at `max_delay`.
#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_up_to_its_cap() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.fail_first(Upstream::Pricing, 3, 503);
        let orchestrator = orchestrator(
            &fake,
            Config {
                max_attempts: 4,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(25),
                ..roomy_config()
            },
        )
        .with_jitter(|ceiling| ceiling);

        let started = Instant::now();
        let outcome = orchestrator.get_product(7).await;

        assert!(outcome.is_ok(), "three 503s, then a 200: {outcome:?}");
        assert_eq!(fake.calls(Upstream::Pricing), 4);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(10 + 20 + 25),
            "backoffs of 10 ms, 20 ms, then 25 ms (40 capped at 25); the fake answers at once"
        );
    })
    .await;
}

/// Each backoff is the jitter source's pick: no fixed delay hides in the
/// orchestrator.
#[tokio::test(start_paused = true)]
async fn the_backoff_is_drawn_from_the_jitter_source() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.fail_first(Upstream::Pricing, 2, 503);
        let orchestrator =
            orchestrator(&fake, roomy_config()).with_jitter(|_ceiling| Duration::ZERO);

        let started = Instant::now();
        let outcome = orchestrator.get_product(7).await;

        assert!(outcome.is_ok(), "two 503s, then a 200: {outcome:?}");
        assert_eq!(fake.calls(Upstream::Pricing), 3);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "full jitter's range starts at zero: a backoff of zero must be possible"
        );
    })
    .await;
}
// ANCHOR_END: backoff

/// When no attempt could start after the next backoff, the request does not
/// sleep past its deadline: it returns the real error at once.
#[tokio::test(start_paused = true)]
async fn no_backoff_is_slept_when_no_attempt_could_follow_it() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.fail_with(Upstream::Pricing, 503);
        let budget = Duration::from_millis(100);
        // Backoffs of exactly 80 ms: the first fits (80 < 100), the second
        // would end at 160 ms, after the deadline.
        let orchestrator = orchestrator(
            &fake,
            Config {
                budget,
                attempt_timeout: budget,
                max_attempts: 3,
                base_delay: Duration::from_millis(80),
                max_delay: Duration::from_millis(80),
                ..Config::default()
            },
        )
        .with_jitter(|ceiling| ceiling);

        let started = Instant::now();
        let outcome = orchestrator.get_product(7).await;

        assert!(
            matches!(
                outcome,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                })
            ),
            "the caller gets the upstream's real answer, not a timeout, got {outcome:?}"
        );
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(80),
            "the request ends after the one backoff that fit, and never past its budget"
        );
        assert_eq!(fake.calls(Upstream::Pricing), 2);
    })
    .await;
}

// ANCHOR: client_error
/// A 404 is the answer, not a glitch: it is returned after exactly one call.
#[tokio::test(start_paused = true)]
async fn a_client_error_is_not_retried() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.fail_with(Upstream::Inventory, 404);
        let orchestrator = orchestrator(&fake, roomy_config());

        let outcome = orchestrator.get_product(7).await;

        assert!(
            matches!(
                outcome,
                Err(FetchError::Status {
                    upstream: Upstream::Inventory,
                    status: 404
                })
            ),
            "a 404 from inventory fails the request with that status, got {outcome:?}"
        );
        assert_eq!(
            fake.calls(Upstream::Inventory),
            1,
            "asking again cannot change a 404: retrying it only adds load"
        );
    })
    .await;
}
// ANCHOR_END: client_error

/// When reviews fail, the product is still served, marked as degraded.
#[tokio::test(start_paused = true)]
async fn a_failing_reviews_upstream_gives_a_partial_response() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.fail_with(Upstream::Reviews, 500);
        let orchestrator = orchestrator(&fake, roomy_config());

        let response = orchestrator
            .get_product(7)
            .await
            .expect("reviews are optional: their failure must not fail the request");

        assert_eq!(response.reviews, None);
        assert_eq!(response.degraded, [Upstream::Reviews]);
        assert_eq!(response.id, 7);
    })
    .await;
}

/// When a required upstream keeps failing, the request fails and names it,
/// after `max_attempts` attempts.
#[tokio::test(start_paused = true)]
async fn a_failing_required_upstream_fails_the_request() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        fake.fail_with(Upstream::Pricing, 500);
        let orchestrator = orchestrator(&fake, roomy_config());

        let outcome = orchestrator.get_product(7).await;

        assert!(
            matches!(
                outcome,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 500
                })
            ),
            "without a price there is no product page, got {outcome:?}"
        );
        assert_eq!(
            fake.calls(Upstream::Pricing),
            roomy_config().max_attempts as usize,
            "a 500 is retried up to max_attempts, then given up"
        );
    })
    .await;
}

/// A required failure ends the request when it arrives and cancels the calls
/// still in flight: nobody waits for an answer that can no longer be used.
#[tokio::test(start_paused = true)]
async fn a_required_failure_cancels_the_other_calls() {
    within_time_limit(async {
        // Inventory answers 404 after 10 ms, when the other two calls are
        // surely under way; they would take 500 ms.
        let fake = FakeUpstreams::healthy();
        fake.fail_with(Upstream::Inventory, 404);
        let inventory_latency = Duration::from_millis(10);
        fake.set_latency(Upstream::Inventory, inventory_latency);
        for upstream in [Upstream::Pricing, Upstream::Reviews] {
            fake.set_latency(upstream, Duration::from_millis(500));
        }
        let orchestrator = orchestrator(&fake, roomy_config());

        let started = Instant::now();
        let outcome = orchestrator.get_product(7).await;

        assert!(
            matches!(
                outcome,
                Err(FetchError::Status {
                    upstream: Upstream::Inventory,
                    status: 404
                })
            ),
            "without inventory there is no product page, got {outcome:?}"
        );
        assert_eq!(
            started.elapsed(),
            inventory_latency,
            "the request fails when the 404 arrives, without waiting for the slow calls"
        );
        for upstream in [Upstream::Pricing, Upstream::Reviews] {
            assert_eq!(
                fake.in_flight(upstream),
                0,
                "a call to {upstream} is still running after the request failed"
            );
            assert_eq!(
                fake.cancelled(upstream),
                1,
                "{upstream}'s call was cancelled"
            );
        }
    })
    .await;
}

// ANCHOR: permits
/// Permits come back after each call: many more requests in a row than
/// `max_in_flight` all succeed.
#[tokio::test(start_paused = true)]
async fn permits_are_returned_after_every_request() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        let orchestrator = orchestrator(
            &fake,
            Config {
                max_in_flight: 2,
                ..roomy_config()
            },
        );

        // One at a time, so at most one call per upstream is ever in flight.
        for request in 1..=5 {
            let outcome = orchestrator.get_product(request).await;
            assert!(
                outcome.is_ok(),
                "request {request} of 5 (sent one after the other, limit 2) failed: {outcome:?}; \
                 is a permit kept after a call ends?"
            );
        }
    })
    .await;
}
// ANCHOR_END: permits

// ANCHOR: cancellation
/// Dropping a request cancels its upstream calls: none is left running.
#[tokio::test(start_paused = true)]
async fn dropping_the_request_cancels_its_upstream_calls() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        for upstream in Upstream::ALL {
            fake.set_latency(upstream, Duration::from_millis(500));
        }
        let orchestrator = orchestrator(&fake, roomy_config());

        // The caller gives up after 50 ms (a client disconnect, an outer
        // timeout): `timeout` drops the request's future.
        let gave_up =
            tokio::time::timeout(Duration::from_millis(50), orchestrator.get_product(7)).await;

        assert!(gave_up.is_err(), "the request cannot finish in 50 ms");
        for upstream in Upstream::ALL {
            assert_eq!(
                fake.in_flight(upstream),
                0,
                "a call to {upstream} is still running after its request was dropped"
            );
            assert_eq!(
                fake.cancelled(upstream),
                1,
                "{upstream}'s call was cancelled"
            );
        }
    })
    .await;
}
// ANCHOR_END: cancellation

/// Calls beyond `max_in_flight` are shed with `Overloaded` at once: not
/// queued, and not let through.
#[tokio::test(start_paused = true)]
async fn calls_beyond_the_limit_are_shed() {
    within_time_limit(async {
        let fake = FakeUpstreams::healthy();
        for upstream in Upstream::ALL {
            fake.set_latency(upstream, Duration::from_millis(100));
        }
        let orchestrator = orchestrator(
            &fake,
            Config {
                max_in_flight: 1,
                ..roomy_config()
            },
        );

        let (first, second) =
            tokio::join!(orchestrator.get_product(1), orchestrator.get_product(2));

        assert!(
            first.is_ok(),
            "the first request gets the permits: {first:?}"
        );
        assert!(
            matches!(second, Err(FetchError::Overloaded { .. })),
            "the second finds every permit taken and is shed, got {second:?}"
        );
        assert_eq!(fake.peak_in_flight(Upstream::Inventory), 1);
    })
    .await;
}

/// A configuration that cannot work is rejected when the orchestrator is
/// built, naming the problem; one at the edge of working is accepted.
#[test]
fn an_unworkable_configuration_is_rejected() {
    let ms = Duration::from_millis;
    let build = |config: Config| Orchestrator::new(FakeUpstreams::healthy(), config).err();
    let unworkable = [
        (
            Config {
                budget: Duration::ZERO,
                ..Config::default()
            },
            ConfigError::ZeroBudget,
        ),
        (
            Config {
                attempt_timeout: Duration::ZERO,
                ..Config::default()
            },
            ConfigError::ZeroAttemptTimeout,
        ),
        (
            Config {
                max_attempts: 0,
                ..Config::default()
            },
            ConfigError::NoAttempts,
        ),
        (
            Config {
                base_delay: ms(41),
                max_delay: ms(40),
                ..Config::default()
            },
            ConfigError::BaseAboveCap {
                base: ms(41),
                cap: ms(40),
            },
        ),
        (
            Config {
                max_in_flight: 0,
                ..Config::default()
            },
            ConfigError::NoPermits,
        ),
    ];
    for (config, expected) in unworkable {
        assert_eq!(build(config), Some(expected), "for {config:?}");
    }

    // The boundaries themselves work: one attempt, one permit, a backoff
    // range that starts at its cap, the shortest budget and attempt.
    let at_the_edge = Config {
        budget: ms(1),
        attempt_timeout: ms(1),
        max_attempts: 1,
        base_delay: ms(40),
        max_delay: ms(40),
        max_in_flight: 1,
    };
    assert_eq!(build(at_the_edge), None, "{at_the_edge:?} can work");
}
