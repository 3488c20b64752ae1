//! Part "the retry loop": `retry` (`src/retry.rs`), driven with an
//! in-process fake operation (a closure, no sockets) on tokio's *paused*
//! clock.
//!
//! Time then moves only when every task is waiting on a timer, straight to
//! the next one, so the instant of each attempt is exact and the tests take
//! no real time. Each test says when the loop may pause, when it must stop,
//! and which error it returns; the policy it uses is the previous part's.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use fake_upstreams::testing::within_time_limit;
use rand::SeedableRng;
use rand::rngs::StdRng;
use step2_deadlines::{Deadline, FetchError, RetryConfig, Upstream, retry};
use tokio::time::Instant;

use crate::common::{ms, policy, pricing_503};

/// Under paused time, each retry starts exactly one backoff_delay after the previous attempt ended (failed or timed out), drawn from the RNG the loop was given.
#[tokio::test(start_paused = true)]
async fn each_retry_waits_one_backoff_delay_drawn_from_the_given_rng() {
    within_time_limit(async {
        // Arrange: an upstream that never answers the 1st, 3rd and 5th
        // attempts (each is cut off after its 1 s attempt timeout) and
        // answers 503 at once to the others; six attempts, and a budget far
        // too large to matter. A timeout is followed by a pause like any
        // other retryable failure.
        const SEED: u64 = 7;
        let hangs = |attempt: usize| attempt.is_multiple_of(2);
        let policy = policy(RetryConfig {
            budget: ms(60_000),
            attempt_timeout: ms(1_000),
            margin: ms(10),
            min_attempt: ms(10),
            max_attempts: 6,
            base_delay: ms(100),
            max_delay: ms(1_000),
        });
        let started = Instant::now();
        let attempts = RefCell::new(Vec::new());

        // Act
        let result: Result<(), FetchError> = retry(
            &policy,
            Deadline::after(policy.budget()),
            Upstream::Pricing,
            &mut StdRng::seed_from_u64(SEED),
            || {
                let mut attempts = attempts.borrow_mut();
                let hang = hangs(attempts.len());
                attempts.push(started.elapsed());
                async move {
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    Err(pricing_503())
                }
            },
        )
        .await;

        // Assert: replaying the policy's own `backoff_delay` on an RNG seeded
        // alike predicts every pause, however `backoff_delay` draws: retry 0
        // before the second attempt, retry 1 before the third, and so on.
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut expected = vec![Duration::ZERO];
        for retry in 0..5_usize {
            let ran_for = if hangs(retry) { ms(1_000) } else { Duration::ZERO };
            let pause = policy.backoff_delay(u32::try_from(retry).unwrap(), &mut rng);
            expected.push(expected[retry] + ran_for + pause);
        }
        assert_eq!(
            *attempts.borrow(),
            expected,
            "attempts started at these offsets; expected each retry n to start backoff_delay(n) after the last attempt ended (at once for a 503, after its 1 s timeout for a hung one), drawn once from the rng the loop was given"
        );
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                })
            ),
            "after the last attempt, its error comes back; got {result:?}"
        );
    })
    .await;
}

/// When the attempts run out, the last attempt's error comes back at once: no pause is slept after the last attempt.
#[tokio::test(start_paused = true)]
async fn the_loop_returns_at_once_when_the_attempts_run_out() {
    within_time_limit(async {
        // Arrange: an upstream that always answers 503 at once, three
        // attempts, pauses of up to 1 s, and a budget of a minute: only the
        // number of attempts can end this loop.
        let policy = policy(RetryConfig {
            budget: ms(60_000),
            attempt_timeout: ms(1_000),
            margin: ms(10),
            min_attempt: ms(10),
            max_attempts: 3,
            base_delay: ms(1_000),
            max_delay: ms(1_000),
        });
        let attempts_started = RefCell::new(Vec::new());

        // Act
        let result: Result<(), FetchError> = retry(
            &policy,
            Deadline::after(policy.budget()),
            Upstream::Pricing,
            &mut StdRng::seed_from_u64(8),
            || {
                let mut started = attempts_started.borrow_mut();
                started.push(Instant::now());
                // Each attempt fails in its own way (500, 502, then 503), so
                // the error that comes back shows which attempt it was.
                let status = [500, 502, 503][(started.len() - 1).min(2)];
                async move {
                    Err(FetchError::Status {
                        upstream: Upstream::Pricing,
                        status,
                    })
                }
            },
        )
        .await;
        let returned = Instant::now();

        // Assert: the paused clock moves only while the loop sleeps, so a
        // loop that returns without sleeping returns at the very instant
        // its last attempt started.
        let attempts_started = attempts_started.into_inner();
        assert_eq!(
            attempts_started.len(),
            3,
            "a 503 is retryable and the budget is a minute: exactly the 3 allowed attempts should be made"
        );
        let waited_after_the_last = returned.duration_since(attempts_started[2]);
        assert_eq!(
            waited_after_the_last,
            Duration::ZERO,
            "the loop returned {waited_after_the_last:?} after its third and last attempt failed at \
             once: with no attempt left there is nothing to pause for, so it must return at once"
        );
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                })
            ),
            "the third and last attempt's error (its 503, not the 500 or 502 before it) comes back; got {result:?}"
        );
    })
    .await;
}

/// A failure not worth retrying ends the loop at once: no pause is slept before it comes back.
#[tokio::test(start_paused = true)]
async fn the_retry_loop_returns_a_failure_not_worth_retrying_at_once() {
    within_time_limit(async {
        // Arrange: an upstream that answers 503 at once to the first attempt
        // and 404 at once to every later one; pauses of up to 10 s, ten
        // attempts and a budget of a minute, so neither the attempts nor the
        // deadline can be what ends this loop.
        let policy = policy(RetryConfig {
            budget: ms(60_000),
            attempt_timeout: ms(1_000),
            margin: ms(10),
            min_attempt: ms(10),
            max_attempts: 10,
            base_delay: ms(10_000),
            max_delay: ms(10_000),
        });
        let attempts_started = RefCell::new(Vec::new());

        // Act
        let result: Result<(), FetchError> = retry(
            &policy,
            Deadline::after(policy.budget()),
            Upstream::Pricing,
            &mut StdRng::seed_from_u64(9),
            || {
                let mut started = attempts_started.borrow_mut();
                started.push(Instant::now());
                let status = if started.len() == 1 { 503 } else { 404 };
                async move {
                    Err(FetchError::Status {
                        upstream: Upstream::Pricing,
                        status,
                    })
                }
            },
        )
        .await;
        let returned = Instant::now();

        // Assert: the 503 is retried, the 404 is not; and the paused clock
        // moves only while the loop sleeps, so a loop that returns the 404
        // without pausing returns at the very instant that attempt started.
        let attempts_started = attempts_started.into_inner();
        assert_eq!(
            attempts_started.len(),
            2,
            "the 503 is worth a retry and the 404 is not: exactly 2 attempts should be made"
        );
        let waited_after_the_404 = returned.duration_since(attempts_started[1]);
        assert_eq!(
            waited_after_the_404,
            Duration::ZERO,
            "the loop returned {waited_after_the_404:?} after the attempt that answered 404 at \
             once: a failure not worth retrying has no next attempt to pause for, so it must come \
             back at once"
        );
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 404
                })
            ),
            "the 404, the first failure not worth retrying, comes back; got {result:?}"
        );
    })
    .await;
}

/// With attempts left, the loop stops as soon as the next pause would not leave room for an attempt.
#[tokio::test(start_paused = true)]
async fn the_retry_loop_stops_before_the_deadline_even_with_attempts_left() {
    within_time_limit(async {
        // Arrange: long backoffs against a 1 s budget and ten allowed attempts.
        let policy = policy(RetryConfig {
            budget: ms(1_000),
            attempt_timeout: ms(500),
            margin: ms(50),
            min_attempt: ms(50),
            max_attempts: 10,
            base_delay: ms(300),
            max_delay: ms(5_000),
        });
        let deadline = Deadline::after(policy.budget());
        let started = Instant::now();
        let attempts = RefCell::new(Vec::new());

        // Act
        let result: Result<(), FetchError> = retry(
            &policy,
            deadline,
            Upstream::Pricing,
            &mut StdRng::seed_from_u64(1),
            || {
                attempts.borrow_mut().push(started.elapsed());
                async { Err(pricing_503()) }
            },
        )
        .await;
        let returned = started.elapsed();

        // Assert
        let attempts = attempts.into_inner();
        assert!(
            attempts.len() >= 2,
            "a 503 is retryable and the first pause fits: expected a retry, got {attempts:?}"
        );
        assert!(
            attempts.len() < 10,
            "the pauses cannot all fit in 1 s: the loop must stop early, yet made {} attempts",
            attempts.len()
        );
        let last = *attempts.last().expect("at least one attempt");
        assert!(
            last <= ms(1_000 - 50 - 50),
            "the last attempt started at {last:?}, leaving less than margin + min_attempt (100 ms)"
        );
        assert_eq!(
            returned, last,
            "the loop returned at {returned:?}, but its last attempt started and failed at once at \
             {last:?}: something was slept after it, such as a pause that left no room for another \
             attempt. When the next attempt would not fit before the deadline, the last error must \
             come back at once, without sleeping the pause"
        );
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                })
            ),
            "stopping early returns the last real error, got {result:?}"
        );
    })
    .await;
}

/// An operation that never answers is cut off per attempt and ends as a Timeout before the deadline.
#[tokio::test(start_paused = true)]
async fn a_hung_operation_is_retried_and_times_out_before_the_deadline() {
    within_time_limit(async {
        let policy = policy(RetryConfig {
            budget: ms(250),
            attempt_timeout: ms(100),
            margin: ms(10),
            min_attempt: ms(20),
            max_attempts: 10,
            base_delay: ms(10),
            max_delay: ms(20),
        });
        let deadline = Deadline::after(policy.budget());
        let started = Instant::now();
        let calls = Cell::new(0_u32);

        let result: Result<(), FetchError> = retry(
            &policy,
            deadline,
            Upstream::Inventory,
            &mut StdRng::seed_from_u64(3),
            || {
                calls.set(calls.get() + 1);
                std::future::pending()
            },
        )
        .await;
        let returned = started.elapsed();

        assert!(
            matches!(
                result,
                Err(FetchError::Timeout {
                    upstream: Upstream::Inventory
                })
            ),
            "a call that never answers must end as a Timeout naming inventory, got {result:?}"
        );
        assert!(
            calls.get() >= 2,
            "a timeout is retryable: expected a second attempt, got {}",
            calls.get()
        );
        assert!(
            returned >= ms(200),
            "two attempts of 100 ms each must have run out, but it returned after {returned:?}"
        );
        assert!(
            returned <= ms(240),
            "returned after {returned:?}: no attempt may run into the last 10 ms (the margin) of the 250 ms budget"
        );
    })
    .await;
}

/// The loop obeys the deadline it is given, not one of its own made from the policy's budget.
#[tokio::test(start_paused = true)]
async fn the_retry_loop_honours_the_deadline_it_is_given() {
    within_time_limit(async {
        // Arrange: the policy's budget is a minute, but the request arrived
        // long ago and only 150 ms of its deadline are left.
        let policy = policy(RetryConfig {
            budget: ms(60_000),
            attempt_timeout: ms(1_000),
            margin: ms(10),
            min_attempt: ms(20),
            max_attempts: 5,
            base_delay: ms(10),
            max_delay: ms(20),
        });
        let deadline = Deadline::after(ms(150));
        let started = Instant::now();
        let calls = Cell::new(0_u32);

        // Act: an operation that never answers.
        let result: Result<(), FetchError> = retry(
            &policy,
            deadline,
            Upstream::Reviews,
            &mut StdRng::seed_from_u64(4),
            || {
                calls.set(calls.get() + 1);
                std::future::pending()
            },
        )
        .await;
        let returned = started.elapsed();

        // Assert
        assert!(
            matches!(
                result,
                Err(FetchError::Timeout {
                    upstream: Upstream::Reviews
                })
            ),
            "expected a Timeout naming reviews, got {result:?}"
        );
        assert!(
            calls.get() >= 1,
            "140 ms fit an attempt (min_attempt 20 ms): it must be tried"
        );
        assert!(
            returned <= ms(150 - 10),
            "returned after {returned:?}: the deadline passed in was 150 ms away, and the last 10 ms are the margin"
        );
    })
    .await;
}

/// A deadline that has passed, or leaves less than margin + min_attempt, starts no attempt at all.
#[tokio::test(start_paused = true)]
async fn a_deadline_with_no_room_for_an_attempt_starts_none() {
    within_time_limit(async {
        let policy = policy(RetryConfig {
            budget: ms(1_000),
            attempt_timeout: ms(100),
            margin: ms(10),
            min_attempt: ms(20),
            max_attempts: 3,
            base_delay: ms(10),
            max_delay: ms(20),
        });
        let already_passed = Deadline::after(Duration::ZERO);
        tokio::time::advance(ms(5)).await;

        // 29 ms left: 19 ms after the margin, under min_attempt.
        for (what, deadline) in [
            ("a deadline that has passed", already_passed),
            ("a deadline 29 ms away", Deadline::after(ms(29))),
        ] {
            let started = Instant::now();
            let calls = Cell::new(0_u32);
            let result: Result<(), FetchError> = retry(
                &policy,
                deadline,
                Upstream::Inventory,
                &mut StdRng::seed_from_u64(6),
                || {
                    calls.set(calls.get() + 1);
                    async { Ok(()) }
                },
            )
            .await;

            assert_eq!(
                calls.get(),
                0,
                "{what} leaves no room for an attempt: nothing may be sent"
            );
            assert!(
                matches!(
                    result,
                    Err(FetchError::Timeout {
                        upstream: Upstream::Inventory
                    })
                ),
                "{what}: expected a Timeout naming inventory, got {result:?}"
            );
            assert_eq!(
                started.elapsed(),
                Duration::ZERO,
                "{what}: the answer is known at once, without waiting"
            );
        }
    })
    .await;
}
