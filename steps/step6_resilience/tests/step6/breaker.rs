//! Part "the circuit breaker": `CircuitBreaker` in `src/breaker.rs`.
//!
//! Every test runs on tokio's *paused* clock, and the "upstream" is a future
//! written inline (no sockets): the clock only moves when every task is
//! waiting on a timer, so a 10-second cool-down takes no time and every
//! instant is exact. The tests go from the plain state machine (closed, open,
//! half-open) to the harder cases: calls dropped mid-flight, calls in flight
//! together, and late outcomes of calls admitted in an earlier state.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_upstreams::testing::within_time_limit;
use step6_resilience::{
    BreakerConfig, BreakerState, CircuitBreaker, Deadline, FetchError, Upstream,
};
use tokio::time::Instant;

use crate::common::{fair_timeout, ms};

fn breaker(failure_threshold: u32, cool_down: Duration, half_open_probes: u32) -> CircuitBreaker {
    CircuitBreaker::new(
        Upstream::Reviews,
        BreakerConfig {
            failure_threshold,
            cool_down,
            half_open_probes,
            fair_timeout: fair_timeout(),
        },
    )
    .expect("a valid breaker configuration")
}

/// A deadline an hour away: these calls answer (or are dropped) long before,
/// so none of them times out.
fn far_off() -> Deadline {
    Deadline::after(Duration::from_secs(3600))
}

/// An upstream call that fails the way a sick upstream does (503), counting
/// itself in `calls` when it actually runs.
async fn failing_call(calls: &AtomicUsize) -> Result<(), FetchError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(FetchError::Status {
        upstream: Upstream::Reviews,
        status: 503,
    })
}

/// An upstream call that succeeds, counting itself in `calls` when it runs.
async fn healthy_call(calls: &AtomicUsize) -> Result<(), FetchError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Trips `breaker` open with `failures` failing calls.
async fn trip(breaker: &CircuitBreaker, failures: u32) {
    let calls = AtomicUsize::new(0);
    for _ in 0..failures {
        let _ = breaker.call(far_off(), failing_call(&calls)).await;
    }
}

/// The breaker opens after the configured number of failures in a row, not before.
#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_the_configured_failures_in_a_row() {
    within_time_limit(async {
        let breaker = breaker(3, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);

        let _ = breaker.call(far_off(), failing_call(&calls)).await;
        let _ = breaker.call(far_off(), failing_call(&calls)).await;
        let after_two = breaker.state();
        let _ = breaker.call(far_off(), failing_call(&calls)).await;

        assert_eq!(
            after_two,
            BreakerState::Closed,
            "2 failures are below the threshold of 3: the breaker must stay closed"
        );
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "the 3rd failure in a row reaches the threshold: the breaker must open"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3, "all three calls ran");
    })
    .await;
}

/// An open breaker fails fast with CircuitOpen and never calls the upstream.
#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_fast_without_calling_the_upstream() {
    within_time_limit(async {
        let breaker = breaker(2, Duration::from_secs(10), 1);
        trip(&breaker, 2).await;
        let calls = AtomicUsize::new(0);

        let started = Instant::now();
        let result = breaker.call(far_off(), healthy_call(&calls)).await;

        assert!(
            matches!(
                result,
                Err(FetchError::CircuitOpen {
                    upstream: Upstream::Reviews
                })
            ),
            "an open breaker must answer CircuitOpen, got {result:?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "the call's future must not even be polled while the breaker is open"
        );
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "failing fast takes no time"
        );
    })
    .await;
}

/// A success in between resets the count: only failures *in a row* open the breaker.
#[tokio::test(start_paused = true)]
async fn a_success_resets_the_count_of_failures_in_a_row() {
    within_time_limit(async {
        let breaker = breaker(3, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);

        for _ in 0..2 {
            let _ = breaker.call(far_off(), failing_call(&calls)).await;
        }
        breaker
            .call(far_off(), healthy_call(&calls))
            .await
            .expect("the breaker is closed, so the healthy call runs and succeeds");
        for _ in 0..2 {
            let _ = breaker.call(far_off(), failing_call(&calls)).await;
        }

        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "fail, fail, succeed, fail, fail is never 3 failures in a row"
        );
    })
    .await;
}

/// After the cool-down the breaker lets through only the configured number of probes.
#[tokio::test(start_paused = true)]
async fn after_the_cool_down_only_the_configured_probes_go_through() {
    within_time_limit(async {
        let breaker = breaker(1, Duration::from_secs(10), 2);
        trip(&breaker, 1).await;

        tokio::time::advance(ms(9_999)).await;
        let still_cooling = breaker.try_acquire().map(|_| ());
        tokio::time::advance(ms(1)).await;
        let first_probe = breaker.try_acquire();
        let second_probe = breaker.try_acquire();
        let third_call = breaker.try_acquire().map(|_| ());

        assert!(
            matches!(still_cooling, Err(FetchError::CircuitOpen { .. })),
            "1 ms before the 10 s cool-down ends the breaker must still fail fast"
        );
        assert!(
            first_probe.is_ok() && second_probe.is_ok(),
            "once the cool-down is over, 2 probes (the configured number) go through"
        );
        assert!(
            matches!(third_call, Err(FetchError::CircuitOpen { .. })),
            "while both probes are in flight, a 3rd call must fail fast, got {third_call:?}"
        );
    })
    .await;
}

/// A successful probe closes the breaker, and calls flow again.
#[tokio::test(start_paused = true)]
async fn a_successful_probe_closes_the_breaker() {
    within_time_limit(async {
        let breaker = breaker(1, Duration::from_secs(10), 1);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let calls = AtomicUsize::new(0);

        let probe = breaker.call(far_off(), healthy_call(&calls)).await;

        assert!(probe.is_ok(), "the probe ran and succeeded, got {probe:?}");
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "a successful probe must close the breaker"
        );
        breaker
            .call(far_off(), healthy_call(&calls))
            .await
            .expect("a closed breaker lets the next call through");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    })
    .await;
}

/// A breaker closed by a probe starts counting afresh: it takes `failure_threshold` failures in a row to open it again.
#[tokio::test(start_paused = true)]
async fn a_breaker_closed_by_a_probe_needs_the_whole_threshold_to_open_again() {
    within_time_limit(async {
        // Arrange: open, cooled down, closed again by a successful probe.
        let breaker = breaker(3, Duration::from_secs(10), 1);
        trip(&breaker, 3).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let calls = AtomicUsize::new(0);
        breaker
            .call(far_off(), healthy_call(&calls))
            .await
            .expect("the probe runs and succeeds");

        // Act
        for _ in 0..2 {
            let _ = breaker.call(far_off(), failing_call(&calls)).await;
        }
        let after_two = breaker.state();
        let _ = breaker.call(far_off(), failing_call(&calls)).await;

        // Assert
        assert_eq!(
            after_two,
            BreakerState::Closed,
            "2 failures after the breaker closed are below the threshold of 3: it must stay closed"
        );
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "the 3rd failure in a row since the breaker closed reaches the threshold"
        );
    })
    .await;
}

/// A failed probe reopens the breaker for a whole new cool-down.
#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker_for_another_cool_down() {
    within_time_limit(async {
        // A 5 s cool-down: two of them fit within the test's time limit,
        // which the paused clock's jumps count too.
        let breaker = breaker(1, Duration::from_secs(5), 1);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        let calls = AtomicUsize::new(0);

        let _ = breaker.call(far_off(), failing_call(&calls)).await;
        let after_failed_probe = breaker.state();
        tokio::time::advance(ms(4_999)).await;
        let almost_cooled = breaker.state();
        tokio::time::advance(ms(1)).await;

        assert_eq!(calls.load(Ordering::SeqCst), 1, "the probe itself ran");
        assert_eq!(
            after_failed_probe,
            BreakerState::Open,
            "a failed probe must reopen the breaker"
        );
        assert_eq!(
            almost_cooled,
            BreakerState::Open,
            "the new cool-down runs a full 5 s from the failed probe"
        );
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen,
            "after the second cool-down, the next call is a probe again"
        );
    })
    .await;
}

/// A call whose future is dropped mid-flight is a cancellation, not a failure.
#[tokio::test(start_paused = true)]
async fn a_cancelled_call_is_not_counted_as_a_failure() {
    within_time_limit(async {
        let breaker = breaker(2, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);

        // Five calls that never answer, each dropped by a timeout.
        for _ in 0..5 {
            let never_answers =
                breaker.call(far_off(), std::future::pending::<Result<(), FetchError>>());
            let dropped = tokio::time::timeout(ms(100), never_answers).await;
            assert!(
                dropped.is_err(),
                "the pending call is dropped by the timeout"
            );
        }
        let _ = breaker.call(far_off(), failing_call(&calls)).await;

        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "5 cancellations and 1 real failure are 1 failure, below the threshold of 2"
        );
    })
    .await;
}

/// A cancellation between two failures does not reset the count: it is no success either.
#[tokio::test(start_paused = true)]
async fn a_cancelled_call_does_not_reset_the_count_of_failures_in_a_row() {
    within_time_limit(async {
        let breaker = breaker(2, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);

        // Act: a failure, a call that never answers and is dropped, a failure.
        let _ = breaker.call(far_off(), failing_call(&calls)).await;
        let never_answers = breaker.call(far_off(), std::future::pending::<Result<(), FetchError>>());
        let dropped = tokio::time::timeout(ms(100), never_answers).await;
        let _ = breaker.call(far_off(), failing_call(&calls)).await;

        // Assert
        assert!(dropped.is_err(), "the pending call is dropped by the timeout");
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "fail, cancel, fail is 2 failures in a row with threshold 2: a cancellation is neither a failure nor a success, so it must not reset the count"
        );
    })
    .await;
}

/// A cancelled probe gives its slot back, so the next call can probe instead.
#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_its_slot_for_the_next_probe() {
    within_time_limit(async {
        let breaker = breaker(1, Duration::from_secs(10), 1);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let calls = AtomicUsize::new(0);

        let abandoned_probe = breaker.call(far_off(), std::future::pending::<Result<(), FetchError>>());
        let dropped = tokio::time::timeout(ms(100), abandoned_probe).await;
        let after_the_cancelled_probe = breaker.state();
        let next = breaker.call(far_off(), healthy_call(&calls)).await;

        assert!(dropped.is_err(), "the first probe never answers and is dropped");
        assert_eq!(
            after_the_cancelled_probe,
            BreakerState::HalfOpen,
            "a cancelled probe is no verdict: it must not close the breaker, which stays half-open"
        );
        assert!(
            next.is_ok(),
            "the cancelled probe must free its slot: the next call should probe and succeed, got {next:?}"
        );
        assert_eq!(breaker.state(), BreakerState::Closed);
    })
    .await;
}

/// A call refused while every probe slot is taken takes no slot: once the probe is cancelled, the next call probes.
#[tokio::test(start_paused = true)]
async fn a_call_refused_while_half_open_takes_no_probe_slot() {
    within_time_limit(async {
        // Arrange: the one probe slot is taken after the cool-down.
        let breaker = breaker(1, Duration::from_secs(10), 1);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = breaker.try_acquire().expect("the probe after the cool-down");

        // Act: two calls are refused while it is in flight, then it is cancelled.
        let refused = [
            breaker.try_acquire().map(|_| ()),
            breaker.try_acquire().map(|_| ()),
        ];
        drop(probe);
        let next = breaker.try_acquire().map(|_| ());

        // Assert
        assert!(
            refused
                .iter()
                .all(|call| matches!(call, Err(FetchError::CircuitOpen { .. }))),
            "while the only probe is in flight, other calls fail fast, got {refused:?}"
        );
        assert!(
            next.is_ok(),
            "the refused calls never held a slot, and the cancelled probe gave its slot back: the next call must probe, got {next:?}"
        );
    })
    .await;
}

/// A cancelled probe changes no state: the other probes of its half-open spell still decide.
#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_leaves_the_other_probes_of_its_spell_in_charge() {
    within_time_limit(async {
        // Arrange: two probes out at once after the cool-down.
        let breaker = breaker(1, Duration::from_secs(10), 2);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let cancelled = breaker.try_acquire().expect("probe 1 after the cool-down");
        let succeeds = breaker.try_acquire().expect("probe 2 after the cool-down");

        // Act: one probe is dropped without an outcome, then the other succeeds.
        drop(cancelled);
        let after_cancel = breaker.state();
        succeeds.record_success();

        // Assert
        assert_eq!(
            after_cancel,
            BreakerState::HalfOpen,
            "a cancelled probe is no verdict: the breaker stays half-open"
        );
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "a cancellation only gives a probe slot back, it is not a change of state: the other probe of the same spell still counts, and its success must close the breaker"
        );
    })
    .await;
}

/// The outcomes of calls in flight together all count, in the order they finish: a success, then three failures, opens a breaker with threshold 3.
#[tokio::test(start_paused = true)]
async fn outcomes_of_calls_in_flight_together_all_count() {
    within_time_limit(async {
        let breaker = breaker(3, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);
        let answering_after = |delay: Duration, healthy: bool| {
            let calls = &calls;
            breaker.call(far_off(), async move {
                tokio::time::sleep(delay).await;
                if healthy {
                    healthy_call(calls).await
                } else {
                    failing_call(calls).await
                }
            })
        };

        // Four calls admitted at once: one succeeds at 5 ms, then three
        // fail at 10, 20 and 30 ms.
        let _ = tokio::join!(
            answering_after(ms(5), true),
            answering_after(ms(10), false),
            answering_after(ms(20), false),
            answering_after(ms(30), false)
        );

        assert_eq!(calls.load(Ordering::SeqCst), 4, "all four calls ran");
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "after the success at 5 ms, three calls admitted while closed failed one after another: 3 failures in a row, the threshold"
        );
    })
    .await;
}

/// A call admitted before the breaker opened that succeeds late does not close the half-open breaker: only its probes decide.
#[tokio::test(start_paused = true)]
async fn a_late_success_from_before_the_breaker_opened_does_not_close_it() {
    within_time_limit(async {
        let breaker = breaker(1, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);
        // Admitted at 0 s, while closed; succeeds at 12 s.
        let slow_success = breaker.call(far_off(), async {
            tokio::time::sleep(Duration::from_secs(12)).await;
            healthy_call(&calls).await
        });
        let meanwhile = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = breaker.call(far_off(), failing_call(&calls)).await; // opens until 11 s
            tokio::time::sleep(Duration::from_secs(10)).await;
            let probe = breaker.try_acquire(); // 11 s: the cool-down is over
            tokio::time::sleep(Duration::from_secs(2)).await; // 13 s
            let state_after_late_success = breaker.state();
            let another_call = breaker.try_acquire().map(|_| ());
            (probe, state_after_late_success, another_call)
        };

        let (late, (probe, state_after_late_success, another_call)) =
            tokio::join!(slow_success, meanwhile);

        assert!(late.is_ok(), "the slow call itself succeeded, got {late:?}");
        let probe = probe.expect("at 11 s the cool-down is over: the first call is a probe");
        assert_eq!(
            state_after_late_success,
            BreakerState::HalfOpen,
            "a success from a call admitted before the breaker opened says nothing about now: only a probe may close a half-open breaker"
        );
        assert!(
            matches!(another_call, Err(FetchError::CircuitOpen { .. })),
            "the probe is still in flight and holds the only probe slot, got {another_call:?}"
        );
        probe.record_success();
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "the probe's own success closes the breaker"
        );
    })
    .await;
}

/// Calls admitted before the breaker opened that fail late change nothing: no longer cool-down, no reopening.
#[tokio::test(start_paused = true)]
async fn late_failures_from_before_the_breaker_opened_change_nothing() {
    within_time_limit(async {
        let breaker = breaker(1, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);
        let failing_at = |at: Duration| {
            breaker.call(far_off(), async move {
                tokio::time::sleep(at).await;
                Err::<(), _>(FetchError::Status {
                    upstream: Upstream::Reviews,
                    status: 503,
                })
            })
        };
        // Both admitted at 0 s, while closed: one fails at 5 s (while the
        // breaker is open), the other at 12 s (while it is half-open).
        let while_open = failing_at(Duration::from_secs(5));
        let while_half_open = failing_at(Duration::from_secs(12));
        let meanwhile = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = breaker.call(far_off(), failing_call(&calls)).await; // opens until 11 s
            tokio::time::sleep(Duration::from_secs(10)).await; // 11 s
            let state_at_end_of_cool_down = breaker.state();
            let probe = breaker.try_acquire();
            tokio::time::sleep(Duration::from_secs(2)).await; // 13 s
            (state_at_end_of_cool_down, probe, breaker.state())
        };

        let (_, _, (state_at_end_of_cool_down, probe, state_after_late_failure)) =
            tokio::join!(while_open, while_half_open, meanwhile);

        assert_eq!(
            state_at_end_of_cool_down,
            BreakerState::HalfOpen,
            "the cool-down runs 10 s from the failure that opened the breaker (1 s): a late failure at 5 s from a call admitted earlier must not extend it"
        );
        let probe = probe.expect("at 11 s the first call is a probe");
        assert_eq!(
            state_after_late_failure,
            BreakerState::HalfOpen,
            "a late failure at 12 s from a call admitted before the breaker opened must not reopen it: only the probe decides"
        );
        probe.record_success();
        assert_eq!(breaker.state(), BreakerState::Closed);
    })
    .await;
}

/// Calls admitted before the breaker opened that finish after it closed again change nothing: the new closed spell counts only its own calls.
#[tokio::test(start_paused = true)]
async fn late_outcomes_from_before_the_breaker_opened_do_not_count_once_it_closed_again() {
    within_time_limit(async {
        // Arrange: two calls admitted while closed, still in flight while the
        // breaker opens, cools down and is closed again by a probe.
        let breaker = breaker(2, Duration::from_secs(10), 1);
        let fails_late = breaker.try_acquire().expect("admitted while closed");
        let succeeds_late = breaker.try_acquire().expect("admitted while closed");
        trip(&breaker, 2).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        breaker
            .try_acquire()
            .expect("after the cool-down the first call is a probe")
            .record_success();

        // Act and assert: the late outcomes land between fresh failures.
        fails_late.record_failure();
        let _ = breaker.call(far_off(), failing_call(&AtomicUsize::new(0))).await;
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "one failure since the breaker closed is below the threshold of 2: a late failure from a call admitted before it opened must not count"
        );
        succeeds_late.record_success();
        let _ = breaker.call(far_off(), failing_call(&AtomicUsize::new(0))).await;
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "two failures in a row since the breaker closed reach the threshold of 2: a late success from a call admitted before it opened must not reset the count"
        );
    })
    .await;
}

/// A probe from an earlier half-open spell has no say in the current one: it cannot close it or free a probe slot.
#[tokio::test(start_paused = true)]
async fn a_probe_from_an_earlier_half_open_spell_has_no_say() {
    within_time_limit(async {
        // A 5 s cool-down: two of them fit within the test's time limit,
        // which the paused clock's jumps count too.
        let breaker = breaker(1, Duration::from_secs(5), 3);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(5)).await;

        // First half-open spell: three probes; one fails and reopens the breaker.
        let failed_probe = breaker.try_acquire().expect("probe 1 of the first spell");
        let cancelled_later = breaker.try_acquire().expect("probe 2 of the first spell");
        let succeeds_later = breaker.try_acquire().expect("probe 3 of the first spell");
        failed_probe.record_failure();
        tokio::time::advance(Duration::from_secs(5)).await;

        // Second half-open spell: its own three probes fill every slot.
        let current_probes: Vec<_> = (0..3)
            .map(|n| breaker.try_acquire().unwrap_or_else(|error| {
                panic!("probe {} of the second spell should go through, got {error:?}", n + 1)
            }))
            .collect();
        drop(cancelled_later);
        let after_old_cancel = breaker.try_acquire().map(|_| ());
        succeeds_later.record_success();
        let after_old_success = breaker.state();

        assert!(
            matches!(after_old_cancel, Err(FetchError::CircuitOpen { .. })),
            "a cancelled probe of the first spell holds no slot in the second: 3 probes are in flight, so a 4th call must fail fast, got {after_old_cancel:?}"
        );
        assert_eq!(
            after_old_success,
            BreakerState::HalfOpen,
            "a probe of the first spell succeeding late must not close the breaker: the second spell's probes decide"
        );
        let mut current_probes = current_probes.into_iter();
        current_probes
            .next()
            .expect("three probes")
            .record_success();
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "a probe of the current spell succeeding closes the breaker"
        );
    })
    .await;
}

/// Closing starts afresh: once one probe's success has closed the breaker, another probe of that half-open spell failing late does not reopen it.
#[tokio::test(start_paused = true)]
async fn a_probe_failing_after_another_probe_closed_the_breaker_changes_nothing() {
    within_time_limit(async {
        // Arrange: a threshold of 1, so a single failure that counted would
        // reopen the breaker; two probes out at once.
        let breaker = breaker(1, Duration::from_secs(10), 2);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let succeeds = breaker.try_acquire().expect("probe 1 after the cool-down");
        let fails_later = breaker.try_acquire().expect("probe 2 after the cool-down");

        // Act: the first probe closes the breaker, then the second fails.
        succeeds.record_success();
        let after_success = breaker.state();
        fails_later.record_failure();

        // Assert
        assert_eq!(
            after_success,
            BreakerState::Closed,
            "a successful probe closes the breaker"
        );
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "the failed probe was admitted by the half-open spell that the other probe's success ended: closing is a change of state, so its outcome is stale and must not reopen the breaker"
        );
    })
    .await;
}
