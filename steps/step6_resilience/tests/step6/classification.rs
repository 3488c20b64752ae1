//! Part "the circuit breaker", continued: what counts against an upstream
//! (`verdict` in `src/breaker.rs`, as `ProductService` reports to its
//! breakers).
//!
//! The breaker counts what the upstream did, not what we did to ourselves.
//! These tests call one section through `ProductService::fetch` with a
//! breaker and no hedge, against `FastUpstream` fakes on loopback, so they use
//! *real* time with wide margins: a paused clock would jump to every deadline
//! while a request waits on a socket. The tests' breakers use
//! `common::fair_timeout`: a timeout counts only if its call had at least
//! 100 ms of its own before the deadline and was seen within 200 ms of it.
//!
//! The two timeout tests that need an on-time timer run the fakes on a
//! runtime of their own, so nothing but the test's own call runs on the
//! test's runtime; the test about a late timer blocks the test's runtime on
//! purpose, which must not stop the fakes either.

use std::pin::pin;
use std::time::Duration;

use fake_upstreams::fast::Behaviour;
use fake_upstreams::testing::{closed_port_url, loopback_client, wait_until, within_time_limit};
use step6_resilience::{
    BreakerConfig, BreakerState, CircuitBreaker, Deadline, FetchError, Price, ProductService,
    Resilience, Upstream, UpstreamUrls,
};

use crate::common::{
    Fakes, FakesOnTheirOwnRuntime, PRODUCT_ID, failing_503, fair_timeout, hanging, healthy, ms,
};

/// How long a request gets to reach the fake. Loopback takes a millisecond
/// or two; the margin is for a loaded machine.
const REACH_LIMIT: Duration = Duration::from_secs(5);

/// A breaker that opens after `failure_threshold` failures in a row and then
/// stays open for the rest of the test.
fn breaker_config(failure_threshold: u32) -> BreakerConfig {
    BreakerConfig {
        failure_threshold,
        cool_down: Duration::from_secs(60),
        half_open_probes: 1,
        fair_timeout: fair_timeout(),
    }
}

/// Breakers on, hedging off: one section is one request.
fn breakers_only(failure_threshold: u32) -> Resilience {
    Resilience {
        breaker: Some(breaker_config(failure_threshold)),
        hedge: None,
    }
}

/// Pricing's breaker state.
fn pricing_state(service: &ProductService) -> BreakerState {
    service
        .breaker(Upstream::Pricing)
        .expect("breakers are on")
        .state()
}

/// One pricing section, bound by `deadline`.
async fn fetch_price(service: &ProductService, deadline: Deadline) -> Result<Price, FetchError> {
    service
        .fetch::<Price>(Upstream::Pricing, PRODUCT_ID, deadline)
        .await
}

/// A 5xx is the upstream failing: with a threshold of 3, three 503s in a row open its breaker.
#[tokio::test]
async fn a_5xx_counts_as_a_failure_and_opens_the_breaker() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), failing_503(), healthy()).await;
        let service = fakes.service(breakers_only(3));

        let mut states = Vec::new();
        for _ in 0..3 {
            let result = fetch_price(&service, Deadline::after(Duration::from_secs(2))).await;
            assert!(
                matches!(result, Err(FetchError::Status { status: 503, .. })),
                "pricing answers 503, got {result:?}"
            );
            states.push(pricing_state(&service));
        }

        assert_eq!(
            states,
            [
                BreakerState::Closed,
                BreakerState::Closed,
                BreakerState::Open
            ],
            "a 503 is the upstream's own failure: the 3rd in a row reaches the threshold of 3"
        );
    })
    .await;
}

/// A 4xx is a working upstream answering about our request: five 404s never open a breaker with a threshold of 2.
#[tokio::test]
async fn a_4xx_is_a_working_upstream_and_does_not_open_the_breaker() {
    within_time_limit(async {
        let not_found = Behaviour::fixed(ms(10)).failing(1.0, 404);
        let fakes = Fakes::start(healthy(), not_found, healthy()).await;
        let service = fakes.service(breakers_only(2));

        for _ in 0..5 {
            let result = fetch_price(&service, Deadline::after(Duration::from_secs(2))).await;
            assert!(
                matches!(result, Err(FetchError::Status { status: 404, .. })),
                "pricing answers 404, got {result:?}: the breaker must let every call through"
            );
        }

        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "a 404 says the upstream works and our request was wrong: it must not count as a failure"
        );
        assert_eq!(fakes.pricing.counters().requests, 5);
    })
    .await;
}

/// A refused connection is the upstream (or the way to it) failing: with a threshold of 3, three calls to a port nobody listens on open the breaker.
#[tokio::test]
async fn a_refused_connection_counts_as_a_failure_and_opens_the_breaker() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), healthy(), healthy()).await;
        // Pricing's address is a port nobody listens on any more.
        let refusing = closed_port_url();
        let service = ProductService::new(
            loopback_client(),
            UpstreamUrls {
                pricing: refusing,
                ..fakes.urls()
            },
            breakers_only(3),
        )
        .expect("a valid configuration");

        let mut states = Vec::new();
        for _ in 0..3 {
            let result = fetch_price(&service, Deadline::after(Duration::from_secs(2))).await;
            assert!(
                matches!(result, Err(FetchError::Transport { .. })),
                "nobody listens on pricing's port, got {result:?}"
            );
            states.push(pricing_state(&service));
        }

        assert_eq!(
            states,
            [
                BreakerState::Closed,
                BreakerState::Closed,
                BreakerState::Open
            ],
            "a refused connection means nobody is there to answer: the 3rd in a row reaches the threshold of 3"
        );
    })
    .await;
}

/// A call that starts with too little of the page's deadline left does not count: two calls with 50 ms left (the minimum is 100 ms) leave a breaker with a threshold of 2 closed.
#[tokio::test]
async fn a_call_cut_short_by_the_pages_own_deadline_does_not_count() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(2));

        for _ in 0..2 {
            // The page spent most of its deadline before this call (queued,
            // or on other work): 50 ms are left, less than the 100 ms a call
            // needs for its timeout to count.
            let deadline = Deadline::after(ms(50));
            let result = fetch_price(&service, deadline).await;
            assert!(
                matches!(result, Err(FetchError::Timeout { .. })),
                "pricing hangs, so the call ends at the deadline, got {result:?}"
            );
        }

        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "each call had 50 ms of its own, below the 100 ms minimum: the page had spent its deadline before the call, so the timeout is the page's doing, not the upstream's, and must not count"
        );
    })
    .await;
}

/// A timeout seen late because our own runtime was blocked does not count: with the runtime's only thread blocked past the deadline twice, the breaker stays closed.
#[tokio::test]
async fn a_timeout_seen_late_because_our_runtime_was_blocked_does_not_count() {
    within_time_limit(async {
        // The fakes run on a runtime of their own: blocking this one must
        // not stop them.
        let fakes = FakesOnTheirOwnRuntime::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(2));

        for call in 1..=2 {
            // 600 ms of its own: a fair chance, had we been there to see it.
            let mut fetch = pin!(fetch_price(&service, Deadline::after(ms(600))));
            tokio::select! {
                result = &mut fetch => panic!("pricing hangs, yet the call ended at once: {result:?}"),
                reached = wait_until(REACH_LIMIT, || fakes.pricing.counters().requests == call) => {
                    assert!(reached.is_ok(), "request {call} never reached pricing");
                }
            }

            // Our process is saturated: this runtime's only thread is busy
            // for 1.2 s, so nothing on it runs, the deadline's timer
            // included, until about 600 ms after the deadline.
            std::thread::sleep(ms(1_200));
            let result = fetch.await;

            assert!(
                matches!(result, Err(FetchError::Timeout { .. })),
                "pricing hangs, so the call ends with a timeout, got {result:?}"
            );
        }

        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "both timeouts were seen about 600 ms after their deadline, beyond the 200 ms tolerance: our runtime was blocked, so they say nothing about the upstream and must not count"
        );
    })
    .await;
}

/// A timeout with a fair chance, seen on time, is the upstream failing: two hanging calls with 300 ms of their own open a breaker with a threshold of 2.
#[tokio::test]
async fn a_timeout_with_a_fair_chance_seen_on_time_counts_as_a_failure() {
    within_time_limit(async {
        let fakes = FakesOnTheirOwnRuntime::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(2));

        let mut states = Vec::new();
        for _ in 0..2 {
            let result = fetch_price(&service, Deadline::after(ms(300))).await;
            assert!(
                matches!(result, Err(FetchError::Timeout { .. })),
                "pricing hangs, so the call ends at the deadline, got {result:?}"
            );
            states.push(pricing_state(&service));
        }

        assert_eq!(
            states,
            [BreakerState::Closed, BreakerState::Open],
            "each call had 300 ms of its own (at least the 100 ms minimum) and nothing kept the runtime from seeing its deadline on time: the upstream had a fair chance and did not answer, so both timeouts count and the 2nd opens the breaker"
        );
    })
    .await;
}

/// A call we dropped while it was in flight says nothing about the upstream: three of them leave a breaker with a threshold of 1 closed.
#[tokio::test]
async fn a_call_dropped_in_flight_does_not_count() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(1));

        for call in 1..=3 {
            let mut fetch = pin!(fetch_price(
                &service,
                Deadline::after(Duration::from_secs(10))
            ));
            tokio::select! {
                result = &mut fetch => panic!("pricing hangs, yet the call ended: {result:?}"),
                reached = wait_until(REACH_LIMIT, || fakes.pricing.counters().requests == call) => {
                    assert!(reached.is_ok(), "request {call} never reached pricing");
                }
            }
            // The caller goes away: the call's future is dropped mid-flight.
        }

        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "a call we dropped is our decision, not the upstream's failure: it must not count"
        );
    })
    .await;
}

/// A call that ends with `Cancelled` says nothing about the upstream: three of them leave a breaker with a threshold of 1 closed.
#[tokio::test(start_paused = true)]
async fn a_call_that_ends_cancelled_does_not_count() {
    within_time_limit(async {
        let breaker = CircuitBreaker::new(Upstream::Pricing, breaker_config(1))
            .expect("a valid breaker configuration");

        for _ in 0..3 {
            let result = breaker
                .call(Deadline::after(Duration::from_secs(10)), async {
                    tokio::time::sleep(ms(20)).await;
                    Err::<(), _>(FetchError::Cancelled {
                        upstream: Upstream::Pricing,
                    })
                })
                .await;
            assert!(
                matches!(result, Err(FetchError::Cancelled { .. })),
                "the call itself ends cancelled, got {result:?}"
            );
        }

        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "a cancelled call is our decision, not the upstream's failure: it must not count"
        );
    })
    .await;
}
