//! Part `failures_and_limits` of the unit tests: the reference solution.
//!
//! What a failure, a dropped request and a full upstream leave behind. The
//! response shows only part of it (a partial page, an error naming its
//! upstream); the rest is in the fake's counters: calls still `in_flight`,
//! calls `cancelled`, the `peak_in_flight` a limit allowed.

use super::*;

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
