//! Part `deadlines_and_retries` of the unit tests: the reference solution.
//!
//! One request in time: the three calls overlap, the deadline and each
//! attempt's timeout end the request exactly when they should, and a failure
//! is retried only when asking again can help, after a backoff the test
//! pins through the jitter source. With the clock paused and the jitter
//! pinned, every duration below is an exact `assert_eq!`.

use super::*;

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
