//! Step 2's tests: what "done" means for deadlines and jittered retries.
//!
//! The same file runs against your exercise (`cargo xtask verify step2`) and
//! against the reference solution (`cargo xtask verify step2 --solution`).
//!
//! Two kinds of test live here, with two clocks:
//!
//! * **HTTP tests** talk to wiremock servers on loopback (and one to a raw
//!   TCP fake, for a body that breaks off half-way, which wiremock cannot
//!   send). wiremock runs on its own threads in real time, so these use real
//!   time with wide margins: a paused clock would jump ahead while a request
//!   waits on a socket, and every timeout would fire at once.
//! * **Retry-loop tests** drive `retry` with an in-process fake operation (a
//!   closure, no sockets) on tokio's *paused* clock. Time then moves only
//!   when every task is waiting on a timer, straight to the next one, so the
//!   instant of each attempt is exact and the tests take no real time.
//!
//! One test spawns the retrying futures with `tokio::spawn`, as the lab and
//! a server do. That needs them to be `Send`: a future that holds something
//! thread-bound (the thread-local RNG, an `Rc`) across an `.await` makes this
//! whole file fail to compile, and the compiler's message names the culprit.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::mock::MockUpstreams;
use rand::SeedableRng;
use rand::rngs::StdRng;
use step2_deadlines::{
    ConfigError, Deadline, FetchError, Inventory, Price, Product, RetryConfig, RetryPolicy,
    ReviewStats, Upstream, UpstreamUrls, fetch_json, fetch_product, fetch_with_retry, retry,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Every test gets at most this long, so a future that never completes fails
/// with a message instead of freezing the run.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(15);

/// The product every test asks for.
const PRODUCT_ID: u64 = 42;

/// How much later than planned a real-time test may finish: wiremock and the
/// test share two busy cores with other work, so wall-clock time is noisy.
const SLACK: Duration = Duration::from_millis(150);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The policy the HTTP tests start from: a generous budget, short backoffs.
fn http_config() -> RetryConfig {
    RetryConfig {
        budget: ms(2_000),
        attempt_timeout: ms(500),
        margin: ms(10),
        min_attempt: ms(10),
        max_attempts: 3,
        base_delay: ms(10),
        max_delay: ms(40),
    }
}

fn policy(config: RetryConfig) -> RetryPolicy {
    RetryPolicy::new(config).expect("the test's retry configuration is valid")
}

/// The merged answer for product 42, as the fake upstreams serve it.
fn expected_product() -> Product {
    Product {
        id: PRODUCT_ID,
        inventory: Inventory {
            in_stock: 44,
            warehouse: "ams-1".to_owned(),
        },
        price: Price {
            amount_cents: 5199,
            currency: "EUR".to_owned(),
        },
        reviews: ReviewStats {
            average_stars: 4.0,
            count: 46,
        },
    }
}

/// The fixture's three base URLs, in the exercise's own type.
fn urls_of(upstreams: &MockUpstreams) -> UpstreamUrls {
    UpstreamUrls {
        inventory: upstreams.base_url(Service::Inventory),
        pricing: upstreams.base_url(Service::Pricing),
        reviews: upstreams.base_url(Service::Reviews),
    }
}

/// A client for loopback tests: system proxies apply even to 127.0.0.1.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client builds")
}

/// A 503 from pricing: what the in-process fakes fail with.
fn pricing_503() -> FetchError {
    FetchError::Status {
        upstream: Upstream::Pricing,
        status: 503,
    }
}

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

// ---------------------------------------------------------------------------
// Deciding: what to retry, what configuration can work, how long to wait.
// ---------------------------------------------------------------------------

/// Timeouts, every 5xx (500 to 599) and 429 are retryable; every other 4xx, and every other status that is not 2xx, never is.
#[test]
fn retryability_is_decided_by_the_kind_of_failure() {
    let status = |status| FetchError::Status {
        upstream: Upstream::Pricing,
        status,
    };

    for code in (500..=599).chain([429]) {
        assert!(
            status(code).is_retryable(),
            "a {code} should be retried: the upstream may answer next time"
        );
    }
    for code in (400..=499).filter(|code| *code != 429) {
        assert!(
            !status(code).is_retryable(),
            "a {code} must not be retried: the request itself is wrong, and will be again"
        );
    }
    for code in (100..=199).chain(300..=399).chain([600, 999]) {
        assert!(
            !status(code).is_retryable(),
            "a {code} must not be retried: only 5xx (500 to 599) and 429 say that the next \
             answer may differ"
        );
    }
    assert!(
        FetchError::Timeout {
            upstream: Upstream::Reviews
        }
        .is_retryable(),
        "a timeout should be retried: the next attempt may be quick"
    );
}

/// Zero attempts, a margin not shorter than the budget, and other impossible settings are refused by name, each error carrying its numbers.
#[test]
fn configuration_that_cannot_work_is_rejected_with_a_clear_error() {
    let valid = http_config();
    assert!(
        RetryPolicy::new(valid).is_ok(),
        "the test's base configuration is valid and must be accepted"
    );

    // Each case breaks one rule, by a clear distance (not at its edge: the
    // next test does that), so every number in the error can be told apart.
    let cases = [
        (
            RetryConfig {
                max_attempts: 0,
                ..valid
            },
            "max_attempts",
            ConfigError::NoAttempts,
        ),
        (
            RetryConfig {
                margin: ms(3_000),
                ..valid
            },
            "margin",
            ConfigError::MarginNotBelowBudget {
                margin: ms(3_000),
                budget: ms(2_000),
            },
        ),
        (
            RetryConfig {
                attempt_timeout: Duration::ZERO,
                ..valid
            },
            "attempt_timeout",
            ConfigError::ZeroAttemptTimeout,
        ),
        (
            RetryConfig {
                min_attempt: ms(600),
                ..valid
            },
            "min_attempt",
            ConfigError::MinAttemptDoesNotFit {
                min_attempt: ms(600),
                available: ms(500),
            },
        ),
        (
            RetryConfig {
                base_delay: ms(50),
                max_delay: ms(40),
                ..valid
            },
            "base_delay",
            ConfigError::BaseAboveCap {
                base: ms(50),
                cap: ms(40),
            },
        ),
    ];
    for (config, field, expected) in cases {
        let error = RetryPolicy::new(config).expect_err(&format!(
            "a configuration with a bad {field} must be rejected"
        ));
        let message = error.to_string();
        assert!(
            message.contains(field),
            "the error for a bad {field} should name it, got: {message:?}"
        );
        assert_eq!(
            error, expected,
            "a bad {field} must be refused with this error, each field carrying the number it names"
        );
    }
}

/// Each configuration rule is refused exactly at its boundary, with its own ConfigError, and accepted just inside it.
#[test]
fn each_configuration_rule_holds_exactly_at_its_boundary() {
    // Every rule is satisfied here with room to spare: each case below
    // breaks one rule, and only that one.
    let valid = RetryConfig {
        budget: ms(1_000),
        attempt_timeout: ms(300),
        margin: ms(100),
        min_attempt: ms(50),
        max_attempts: 3,
        base_delay: ms(10),
        max_delay: ms(40),
    };
    let accepted = [
        (
            "one attempt (no retries)",
            RetryConfig {
                max_attempts: 1,
                ..valid
            },
        ),
        (
            "a 1 ms attempt timeout",
            RetryConfig {
                attempt_timeout: ms(1),
                min_attempt: ms(1),
                ..valid
            },
        ),
        (
            "a margin 1 ms shorter than the budget",
            RetryConfig {
                margin: ms(999),
                min_attempt: ms(1),
                ..valid
            },
        ),
        (
            "min_attempt equal to attempt_timeout (the smaller limit)",
            RetryConfig {
                min_attempt: ms(300),
                ..valid
            },
        ),
        (
            "min_attempt equal to budget minus margin (the smaller limit)",
            RetryConfig {
                margin: ms(800),
                min_attempt: ms(200),
                ..valid
            },
        ),
        (
            "base_delay equal to max_delay",
            RetryConfig {
                base_delay: ms(40),
                ..valid
            },
        ),
        (
            "no backoff at all (both delays zero)",
            RetryConfig {
                base_delay: Duration::ZERO,
                max_delay: Duration::ZERO,
                ..valid
            },
        ),
    ];
    for (what, config) in accepted {
        assert!(
            RetryPolicy::new(config).is_ok(),
            "{what} can work and must be accepted: {config:?} gave {:?}",
            RetryPolicy::new(config)
        );
    }

    let refused = [
        (
            RetryConfig {
                max_attempts: 0,
                ..valid
            },
            ConfigError::NoAttempts,
        ),
        (
            // min_attempt is zero too, so only the zero-timeout rule can
            // refuse this one.
            RetryConfig {
                attempt_timeout: Duration::ZERO,
                min_attempt: Duration::ZERO,
                ..valid
            },
            ConfigError::ZeroAttemptTimeout,
        ),
        (
            RetryConfig {
                margin: ms(1_000),
                ..valid
            },
            ConfigError::MarginNotBelowBudget {
                margin: ms(1_000),
                budget: ms(1_000),
            },
        ),
        (
            // Here attempt_timeout (300 ms) is the smaller limit.
            RetryConfig {
                min_attempt: ms(301),
                ..valid
            },
            ConfigError::MinAttemptDoesNotFit {
                min_attempt: ms(301),
                available: ms(300),
            },
        ),
        (
            // Here budget minus margin (200 ms) is the smaller limit.
            RetryConfig {
                margin: ms(800),
                min_attempt: ms(201),
                ..valid
            },
            ConfigError::MinAttemptDoesNotFit {
                min_attempt: ms(201),
                available: ms(200),
            },
        ),
        (
            RetryConfig {
                base_delay: ms(41),
                ..valid
            },
            ConfigError::BaseAboveCap {
                base: ms(41),
                cap: ms(40),
            },
        ),
    ];
    for (config, expected) in refused {
        assert_eq!(
            RetryPolicy::new(config),
            Err(expected.clone()),
            "{config:?} breaks exactly one rule, and should be refused with {expected:?}"
        );
    }
}

/// An attempt gets the smaller of its own limit and what is left minus the margin, and none below min_attempt or of zero length.
#[test]
fn an_attempt_gets_the_smaller_of_its_limit_and_the_remaining_budget() {
    let policy = policy(RetryConfig {
        budget: ms(200),
        attempt_timeout: ms(70),
        margin: ms(10),
        min_attempt: ms(20),
        ..http_config()
    });

    let cases = [
        (ms(200), Some(ms(70))),
        (ms(80), Some(ms(70))),
        (ms(79), Some(ms(69))),
        (ms(50), Some(ms(40))),
        (ms(30), Some(ms(20))),
        (ms(29), None),
        (ms(10), None),
        (Duration::ZERO, None),
    ];
    for (remaining, expected) in cases {
        assert_eq!(
            policy.timeout_for_attempt(remaining),
            expected,
            "with {remaining:?} left (attempt_timeout 70 ms, margin 10 ms, min_attempt 20 ms)"
        );
    }

    // With no minimum, an attempt still needs *some* time: once only the
    // margin is left, there is none to give.
    let no_minimum = policy_with_min_attempt(Duration::ZERO);
    for (remaining, expected) in [
        (ms(11), Some(ms(1))),
        (ms(10), None),
        (ms(3), None),
        (Duration::ZERO, None),
    ] {
        assert_eq!(
            no_minimum.timeout_for_attempt(remaining),
            expected,
            "with {remaining:?} left (margin 10 ms, min_attempt 0): a zero-length attempt must not be started"
        );
    }
}

fn policy_with_min_attempt(min_attempt: Duration) -> RetryPolicy {
    policy(RetryConfig {
        budget: ms(200),
        attempt_timeout: ms(70),
        margin: ms(10),
        min_attempt,
        ..http_config()
    })
}

/// Backoff ceilings are min(cap, base·2^n) for every n, saturating at the cap; the delays stay under them and vary.
#[test]
fn backoff_delays_stay_under_the_exponential_ceiling_and_vary() {
    let policy = policy(RetryConfig {
        base_delay: ms(10),
        max_delay: ms(1_000),
        ..http_config()
    });
    let mut rng = StdRng::seed_from_u64(2015);

    for retry in 0..12_u32 {
        let ceiling = ms((10 * 2_u64.pow(retry)).min(1_000));
        assert_eq!(
            policy.backoff_ceiling(retry),
            ceiling,
            "the ceiling before retry {retry} is min(cap, base × 2^{retry})"
        );
        let delays: Vec<Duration> = (0..200)
            .map(|_| policy.backoff_delay(retry, &mut rng))
            .collect();
        assert!(
            delays.iter().all(|delay| *delay <= ceiling),
            "every delay before retry {retry} must be at most {ceiling:?}, got {delays:?}"
        );
        assert!(
            delays.iter().any(|delay| *delay != delays[0]),
            "the delays before retry {retry} are all {:?}: full jitter draws each one at random",
            delays[0]
        );
    }
    // Past 2^31 the factor no longer fits a u32, past about 2^64 ms the
    // product no longer fits a Duration: every one of them is the cap.
    for retry in (12..=80).chain([u32::MAX]) {
        assert_eq!(
            policy.backoff_ceiling(retry),
            ms(1_000),
            "the ceiling before retry {retry} saturates at the cap, without overflowing or wrapping"
        );
    }
}

/// Full jitter draws whole milliseconds, from 0 up to and including the ceiling, each value about equally often.
#[test]
fn full_jitter_reaches_both_ends_of_the_range_evenly() {
    let policy = policy(RetryConfig {
        base_delay: ms(10),
        max_delay: ms(1_000),
        ..http_config()
    });
    let mut rng = StdRng::seed_from_u64(2015);

    // Before the first retry the range is 0..=10 ms: eleven values, each
    // expected 2,000 times in 22,000 draws. The band below is about seven
    // standard deviations wide, so a fair draw never leaves it.
    let mut counts: BTreeMap<u128, u32> = (0..=10).map(|value| (value, 0)).collect();
    for _ in 0..22_000 {
        let delay = policy.backoff_delay(0, &mut rng);
        assert_whole_milliseconds(delay);
        *counts.entry(delay.as_millis()).or_default() += 1;
    }
    assert!(
        counts.keys().all(|value| *value <= 10),
        "every delay before the first retry must be within 0..=10 ms, got these counts: {counts:?}"
    );
    assert!(
        counts.values().all(|count| (1_700..=2_300).contains(count)),
        "each of 0, 1, ..., 10 ms should come up about 2,000 times in 22,000 draws (both ends included), got {counts:?}"
    );

    // Before retry 7 the range is capped: 0..=1000 ms. Both ends must come
    // up, and the ten 100 ms bands about equally often.
    let mut smallest = Duration::MAX;
    let mut largest = Duration::ZERO;
    let mut bands = [0_u32; 10];
    for _ in 0..30_000 {
        let delay = policy.backoff_delay(7, &mut rng);
        assert_whole_milliseconds(delay);
        smallest = smallest.min(delay);
        largest = largest.max(delay);
        let band = usize::try_from(delay.as_millis() / 100).map_or(9, |band| band.min(9));
        bands[band] += 1;
    }
    assert_eq!(
        (smallest, largest),
        (Duration::ZERO, ms(1_000)),
        "30,000 draws from 0..=1000 ms should include both 0 and the cap itself"
    );
    assert!(
        bands.iter().all(|count| (2_600..=3_400).contains(count)),
        "each 100 ms band of 0..=1000 ms should hold about 3,000 of 30,000 draws, got {bands:?}"
    );

    // A policy without backoff: the range is 0..=0, and the only pause is 0.
    let no_backoff = policy_without_backoff();
    let mut rng = StdRng::seed_from_u64(1);
    for retry in [0, 1, 5] {
        assert_eq!(
            no_backoff.backoff_delay(retry, &mut rng),
            Duration::ZERO,
            "with base_delay and max_delay both zero, every pause is zero"
        );
    }
}

fn assert_whole_milliseconds(delay: Duration) {
    assert_eq!(
        delay.subsec_nanos() % 1_000_000,
        0,
        "a pause of {delay:?} is not a whole number of milliseconds"
    );
}

fn policy_without_backoff() -> RetryPolicy {
    policy(RetryConfig {
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        ..http_config()
    })
}

/// backoff_delay draws only from the RNG it is given: the same seed gives the same pauses, another seed others.
#[test]
fn the_same_seed_gives_the_same_pauses() {
    let policy = policy(RetryConfig {
        base_delay: ms(10),
        max_delay: ms(1_000),
        ..http_config()
    });
    let pauses = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..60_u32)
            .map(|n| policy.backoff_delay(n % 8, &mut rng))
            .collect::<Vec<_>>()
    };

    assert_eq!(
        pauses(11),
        pauses(11),
        "two RNGs seeded alike must give the same pauses: draw from the rng parameter, not from another source"
    );
    assert_ne!(
        pauses(11),
        pauses(12),
        "RNGs seeded differently gave the same 60 pauses: is the draw really taken from the rng parameter?"
    );
}

// ---------------------------------------------------------------------------
// The retry loop, on tokio's paused clock, with in-process fakes.
// ---------------------------------------------------------------------------

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
            "giving up must be immediate: no sleep after the last attempt (it returned at {returned:?})"
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

// ---------------------------------------------------------------------------
// Over HTTP, against wiremock, in real time.
// ---------------------------------------------------------------------------

/// With healthy upstreams the product comes back, and each upstream is asked exactly once.
#[tokio::test]
async fn a_healthy_fan_out_asks_each_upstream_once() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        let policy = policy(http_config());

        let product = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;

        assert_eq!(
            product.expect("all three upstreams are healthy"),
            expected_product()
        );
        for service in Service::ALL {
            assert_eq!(
                upstreams.received(service).await,
                1,
                "{service} is healthy: one request, no retries"
            );
        }
    })
    .await;
}

/// The three upstreams are asked at the same time: three slow answers take about as long as one.
#[tokio::test]
async fn the_three_upstreams_are_asked_at_the_same_time() {
    within_time_limit(async {
        // Arrange: every upstream answers after 500 ms. One after another
        // they would take 1.5 s; at the same time, 500 ms.
        let upstreams = MockUpstreams::start().await;
        for service in Service::ALL {
            upstreams.serve_slow(service, ms(500)).await;
        }
        let policy = policy(RetryConfig {
            budget: ms(5_000),
            attempt_timeout: ms(2_000),
            ..http_config()
        });

        // Act
        let started = Instant::now();
        let product = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;
        let elapsed = started.elapsed();

        // Assert
        assert_eq!(
            product.expect("slow is not broken: all three answer in time"),
            expected_product()
        );
        assert!(
            elapsed < ms(1_000),
            "took {elapsed:?}: three 500 ms calls made at once take about 500 ms, two after another 1 s"
        );
    })
    .await;
}

/// The first error comes back at once; the page does not wait for the slow upstreams.
#[tokio::test]
async fn the_first_error_comes_back_without_waiting_for_the_others() {
    within_time_limit(async {
        // Arrange: reviews answers 404 at once, the other two take 2 s.
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_slow(Service::Inventory, ms(2_000)).await;
        upstreams.serve_slow(Service::Pricing, ms(2_000)).await;
        upstreams.serve_status(Service::Reviews, 404).await;
        let policy = policy(RetryConfig {
            budget: ms(5_000),
            attempt_timeout: ms(3_000),
            ..http_config()
        });

        // Act
        let started = Instant::now();
        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;
        let elapsed = started.elapsed();

        // Assert
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Reviews,
                    status: 404
                })
            ),
            "expected reviews' 404, got {result:?}"
        );
        assert!(
            elapsed < ms(1_000),
            "took {elapsed:?}: the 404 is known at once, and the page must not wait 2 s for the other two"
        );
    })
    .await;
}

/// Once the first error is back, the other upstreams' calls are cancelled: none of their retries is sent afterwards.
#[tokio::test]
async fn after_the_first_error_the_other_calls_send_no_more_retries() {
    within_time_limit(async {
        // Arrange: reviews answers 404 at once; inventory and pricing answer
        // 503 at once, every time. The policy would retry those two ten
        // times, with pauses of at most 20 ms: a quarter of a second of
        // retries, if nothing stopped them.
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_status(Service::Reviews, 404).await;
        upstreams.serve_status(Service::Inventory, 503).await;
        upstreams.serve_status(Service::Pricing, 503).await;
        let policy = policy(RetryConfig {
            max_attempts: 10,
            base_delay: ms(20),
            max_delay: ms(20),
            ..http_config()
        });

        // Act
        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;
        let mut sent_by_then = Vec::new();
        for service in [Service::Inventory, Service::Pricing] {
            sent_by_then.push((service, upstreams.received(service).await));
        }

        // Assert
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Reviews,
                    status: 404
                })
            ),
            "expected reviews' 404, got {result:?}"
        );
        // Nothing can signal that a retry will never come, so wait well past
        // the time the abandoned calls' retries would take (ten attempts
        // with pauses of at most 20 ms), then count.
        tokio::time::sleep(ms(1_000)).await;
        for (service, before) in sent_by_then {
            let after = upstreams.received(service).await;
            // One request may have been on its way when the page returned,
            // and reach the fake a moment later.
            assert!(
                after <= before + 1,
                "{service} had received {before} requests when the page returned its error, and {after} a second later: \
                 the page's other calls must be cancelled with it (dropped, not left running in tasks of their own), so no retry is sent afterwards"
            );
        }
    })
    .await;
}

/// Pricing answering 503, 503, then 200 is retried into a success, with exactly three requests.
#[tokio::test]
async fn a_503_is_retried_until_it_succeeds() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_flaky(Service::Pricing, 2, 503).await;
        let policy = policy(http_config());

        let product = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;

        assert_eq!(
            product.expect("pricing recovers on the third attempt"),
            expected_product()
        );
        assert_eq!(
            upstreams.received(Service::Pricing).await,
            3,
            "pricing should get exactly 3 requests: two 503s, then the 200"
        );
    })
    .await;
}

/// A 404 is not retried: one request, and a Status error naming the upstream.
#[tokio::test]
async fn a_404_is_not_retried_and_names_the_upstream() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_status(Service::Reviews, 404).await;
        let policy = policy(http_config());

        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;

        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Reviews,
                    status: 404
                })
            ),
            "expected a Status error for reviews with 404, got {result:?}"
        );
        assert_eq!(
            upstreams.received(Service::Reviews).await,
            1,
            "a 404 will be a 404 again: it must not be retried"
        );
    })
    .await;
}

/// Every 4xx comes back as a Status error with its code after one request, except 429, which is retried.
#[tokio::test]
async fn a_4xx_is_a_status_error_sent_once_and_only_429_is_retried() {
    within_time_limit(async {
        let upstreams = MockUpstreams::start().await;
        let client = client();
        let urls = urls_of(&upstreams);
        let policy = policy(http_config());

        for (status, requests) in [
            (400, 1),
            (401, 1),
            (403, 1),
            (410, 1),
            (422, 1),
            (451, 1),
            (429, 3),
        ] {
            // The latest behaviour wins, so each round answers `status`.
            upstreams.serve_status(Service::Pricing, status).await;
            let before = upstreams.received(Service::Pricing).await;

            let result: Result<Price, FetchError> = fetch_with_retry(
                &client,
                &urls,
                Upstream::Pricing,
                PRODUCT_ID,
                &policy,
                Deadline::after(policy.budget()),
            )
            .await;

            let sent = upstreams.received(Service::Pricing).await - before;
            assert!(
                matches!(
                    result,
                    Err(FetchError::Status {
                        upstream: Upstream::Pricing,
                        status: got
                    }) if got == status
                ),
                "a {status} should come back as a Status error for pricing with {status}, got {result:?}"
            );
            assert_eq!(
                sent, requests,
                "a {status} should be sent {requests} time(s) with 3 attempts allowed, was sent {sent}"
            );
        }
    })
    .await;
}

/// A body that is not JSON is a Decode error naming the upstream, and is not retried.
#[tokio::test]
async fn a_body_that_is_not_json_is_a_decode_error_and_is_not_retried() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_garbage(Service::Inventory).await;
        let policy = policy(http_config());

        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;

        assert!(
            matches!(
                result,
                Err(FetchError::Decode {
                    upstream: Upstream::Inventory,
                    ..
                })
            ),
            "expected a Decode error for inventory, got {result:?}"
        );
        assert_eq!(
            upstreams.received(Service::Inventory).await,
            1,
            "an upstream that sends garbage will send it again: no retry"
        );
    })
    .await;
}

/// Two upstreams that never answer in time give a Timeout within the one shared budget.
#[tokio::test]
async fn a_hung_upstream_times_out_within_the_budget() {
    within_time_limit(async {
        // Arrange: inventory and reviews take 3 s, far past the 400 ms budget.
        // Ten attempts of 150 ms would take 1.5 s: only the shared deadline
        // can end this request within its budget.
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_slow(Service::Inventory, ms(3_000)).await;
        upstreams.serve_slow(Service::Reviews, ms(3_000)).await;
        let policy = policy(RetryConfig {
            budget: ms(400),
            attempt_timeout: ms(150),
            margin: ms(20),
            min_attempt: ms(20),
            max_attempts: 10,
            ..http_config()
        });

        // Act
        let started = Instant::now();
        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;
        let elapsed = started.elapsed();

        // Assert: a Timeout (not a transport error), after at least one full
        // attempt timeout, and within the budget (plus a wide margin for a
        // busy machine): both slow calls spent from the same deadline.
        assert!(
            matches!(
                result,
                Err(FetchError::Timeout {
                    upstream: Upstream::Inventory | Upstream::Reviews
                })
            ),
            "expected a Timeout naming inventory or reviews, got {result:?}"
        );
        assert!(
            elapsed >= ms(150),
            "gave up after {elapsed:?}, before even one 150 ms attempt could time out"
        );
        assert!(
            elapsed < ms(400) + SLACK,
            "took {elapsed:?}: the whole request must end within its 400 ms budget"
        );
    })
    .await;
}

/// The page obeys the deadline passed in, even one mostly spent, not a fresh one made from the policy's budget.
#[tokio::test]
async fn the_page_honours_the_deadline_passed_in() {
    within_time_limit(async {
        // Arrange: pricing takes 3 s. The policy would allow attempts of 2 s
        // within 10 s, but the request arrived long ago: 400 ms are left.
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_slow(Service::Pricing, ms(3_000)).await;
        let policy = policy(RetryConfig {
            budget: ms(10_000),
            attempt_timeout: ms(2_000),
            margin: ms(20),
            min_attempt: ms(20),
            ..http_config()
        });
        let deadline = Deadline::after(ms(400));

        // Act
        let started = Instant::now();
        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            deadline,
            PRODUCT_ID,
        )
        .await;
        let elapsed = started.elapsed();

        // Assert
        assert!(
            matches!(
                result,
                Err(FetchError::Timeout {
                    upstream: Upstream::Pricing
                })
            ),
            "expected a Timeout naming pricing, got {result:?}"
        );
        assert!(
            upstreams.received(Service::Pricing).await >= 1,
            "380 ms fit an attempt: pricing must have been asked"
        );
        assert!(
            elapsed < ms(400) + SLACK,
            "took {elapsed:?}: the deadline passed in was 400 ms away"
        );
    })
    .await;
}

/// The page hands its calls the deadline it was given, whole: the margin is taken off once, by each attempt, not again by the page.
#[tokio::test]
async fn the_page_passes_its_deadline_on_unshortened() {
    within_time_limit(async {
        // Arrange: healthy upstreams, a 1 s margin and a deadline 1.6 s away.
        // Each attempt gets what is left minus the margin, about 600 ms: far
        // more than a loopback call needs. A page that took the margin off
        // the deadline itself before passing it on would leave its calls
        // 600 ms, minus the margin again: no room for any attempt.
        let upstreams = MockUpstreams::healthy().await;
        let policy = policy(RetryConfig {
            budget: ms(5_000),
            attempt_timeout: ms(2_000),
            margin: ms(1_000),
            min_attempt: ms(100),
            max_attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        });

        // Act
        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(ms(1_600)),
            PRODUCT_ID,
        )
        .await;

        // Assert
        match result {
            Ok(product) => assert_eq!(product, expected_product()),
            Err(error) => panic!(
                "the upstreams are healthy and each attempt had about 600 ms (1.6 s left, minus \
                 the 1 s margin), yet the page failed with {error:?}: was the deadline shortened \
                 before it reached the calls? Pass it on as it is; each attempt's timeout keeps \
                 the margin back"
            ),
        }
    })
    .await;
}

/// A page whose deadline has already passed sends no request at all, and says Timeout.
#[tokio::test]
async fn a_page_whose_deadline_has_passed_sends_nothing() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        let policy = policy(http_config());

        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(Duration::ZERO),
            PRODUCT_ID,
        )
        .await;

        assert!(
            matches!(result, Err(FetchError::Timeout { .. })),
            "a request out of time should end as a Timeout, got {result:?}"
        );
        for service in Service::ALL {
            assert_eq!(
                upstreams.received(service).await,
                0,
                "the deadline had passed: {service} must not be asked"
            );
        }
    })
    .await;
}

/// A refused connection is a Transport error naming the upstream, and it is retried.
#[tokio::test]
async fn a_refused_connection_is_retried_and_classified_as_transport() {
    within_time_limit(async {
        // A port that was just free: nothing listens there any more.
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("binding loopback port 0 works")
            .port();
        let down = format!("http://127.0.0.1:{closed_port}");
        let urls = UpstreamUrls {
            inventory: down.clone(),
            pricing: down.clone(),
            reviews: down,
        };
        let client = client();
        let policy = policy(http_config());
        let calls = Cell::new(0_u32);

        let result: Result<Inventory, FetchError> = retry(
            &policy,
            Deadline::after(policy.budget()),
            Upstream::Inventory,
            &mut StdRng::seed_from_u64(5),
            || {
                calls.set(calls.get() + 1);
                fetch_json(&client, &urls, Upstream::Inventory, PRODUCT_ID)
            },
        )
        .await;

        assert!(
            matches!(
                result,
                Err(FetchError::Transport {
                    upstream: Upstream::Inventory,
                    ..
                })
            ),
            "expected a Transport error for inventory, got {result:?}"
        );
        assert_eq!(
            calls.get(),
            3,
            "a refused connection may succeed next time: all 3 attempts should be used"
        );
    })
    .await;
}

/// A 200 whose body breaks off half-way (the connection closes early) is a Transport error, and it is retried.
#[tokio::test]
async fn a_body_cut_off_half_way_is_retried_and_classified_as_transport() {
    within_time_limit(async {
        // Arrange: a fake that promises 100 bytes of body, sends 14, and
        // hangs up. wiremock always sends whole bodies, so this fake speaks
        // just enough HTTP/1.1 by hand, on a raw TCP listener.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding loopback port 0 works");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let base = format!("http://{address}");
        let urls = UpstreamUrls {
            inventory: base.clone(),
            pricing: base.clone(),
            reviews: base,
        };
        let requests = Arc::new(AtomicU32::new(0));
        let server = tokio::spawn(serve_bodies_cut_off_half_way(
            listener,
            Arc::clone(&requests),
        ));
        let policy = policy(http_config());

        // Act
        let result: Result<Inventory, FetchError> = fetch_with_retry(
            &client(),
            &urls,
            Upstream::Inventory,
            PRODUCT_ID,
            &policy,
            Deadline::after(policy.budget()),
        )
        .await;
        server.abort();

        // Assert
        assert!(
            matches!(
                result,
                Err(FetchError::Transport {
                    upstream: Upstream::Inventory,
                    ..
                })
            ),
            "a body cut off half-way never arrived whole, so it is a transport failure, not bad \
             JSON: expected a Transport error for inventory, got {result:?}"
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            3,
            "the next connection may deliver the whole body: all 3 attempts should be used"
        );
    })
    .await;
}

/// Answers every request on `listener` with a 200 that promises a 100-byte
/// body, sends only its first 14 bytes, and closes the connection. Counts
/// the requests it answers in `requests`.
async fn serve_bodies_cut_off_half_way(
    listener: tokio::net::TcpListener,
    requests: Arc<AtomicU32>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HEAD_AND_PART_OF_THE_BODY: &[u8] = b"HTTP/1.1 200 OK\r\n\
        content-type: application/json\r\n\
        content-length: 100\r\n\
        \r\n\
        {\"in_stock\": 4";

    while let Ok((mut connection, _)) = listener.accept().await {
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            // Read the request's head to its blank line first: a socket
            // closed with unread data sends a reset, and the client would
            // fail before it saw our headers, not half-way through the body.
            let mut head = Vec::new();
            let mut chunk = [0_u8; 1024];
            while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                match connection.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => head.extend_from_slice(&chunk[..read]),
                }
            }
            requests.fetch_add(1, Ordering::SeqCst);
            // A write error means the client left first: nothing to do.
            let _ = connection.write_all(HEAD_AND_PART_OF_THE_BODY).await;
            // `connection` is dropped here: the body ends 86 bytes short.
        });
    }
}

// ---------------------------------------------------------------------------
// Spawned, on a multi-thread runtime, as the lab and a server run them.
// ---------------------------------------------------------------------------

/// Everything shared by the spawned calls below, cloned into each task.
struct Shared {
    client: reqwest::Client,
    urls: UpstreamUrls,
    policy: RetryPolicy,
}

/// fetch_product, fetch_with_retry and retry can be spawned: their futures are Send (a thread-bound RNG held across an .await does not compile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retrying_futures_can_be_spawned_on_a_multi_thread_runtime() {
    within_time_limit(async {
        // Arrange: pricing fails once, so the spawned calls back off and
        // retry on whichever worker thread picks them up.
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_flaky(Service::Pricing, 1, 503).await;
        let shared = Arc::new(Shared {
            client: client(),
            urls: urls_of(&upstreams),
            policy: policy(http_config()),
        });
        let deadline = Deadline::after(shared.policy.budget());

        // Act: `tokio::spawn` accepts only `Send + 'static` futures. If this
        // does not compile, the compiler names the value that is not `Send`
        // and the `.await` it is held across.
        let page = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                fetch_product(
                    &shared.client,
                    &shared.urls,
                    &shared.policy,
                    deadline,
                    PRODUCT_ID,
                )
                .await
            }
        });
        let price = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                fetch_with_retry::<Price>(
                    &shared.client,
                    &shared.urls,
                    Upstream::Pricing,
                    PRODUCT_ID,
                    &shared.policy,
                    deadline,
                )
                .await
            }
        });
        let looped = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                let mut rng = StdRng::seed_from_u64(9);
                // The operation fails once, then succeeds.
                let failures_left = AtomicU32::new(1);
                retry(
                    &shared.policy,
                    deadline,
                    Upstream::Reviews,
                    &mut rng,
                    || {
                        let failed = failures_left
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                                left.checked_sub(1)
                            })
                            .is_ok();
                        async move {
                            if failed {
                                Err(FetchError::Status {
                                    upstream: Upstream::Reviews,
                                    status: 503,
                                })
                            } else {
                                Ok(7_u32)
                            }
                        }
                    },
                )
                .await
            }
        });

        // Assert
        let page = page.await.expect("the spawned page did not panic");
        let price = price.await.expect("the spawned price call did not panic");
        let looped = looped.await.expect("the spawned retry loop did not panic");
        assert_eq!(
            page.expect("pricing recovers on a retry"),
            expected_product()
        );
        assert_eq!(
            price.expect("pricing answers 200 by now"),
            expected_product().price
        );
        assert_eq!(
            looped.expect("the operation succeeds on its second attempt"),
            7
        );
    })
    .await;
}

/// Calls that fail together back off by different amounts: each call draws its pauses from randomness of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_fail_together_retry_at_different_moments() {
    within_time_limit(async {
        // Arrange: pricing always answers 503. Each caller makes two attempts
        // with a pause drawn from 0..=1000 ms in between, so a caller's
        // duration is about its pause.
        const TASKS: usize = 24;
        const CALLERS: usize = 2 * TASKS;
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_status(Service::Pricing, 503).await;
        let shared = Arc::new(Shared {
            client: client(),
            urls: urls_of(&upstreams),
            policy: policy(RetryConfig {
                budget: ms(5_000),
                attempt_timeout: ms(2_000),
                margin: ms(10),
                min_attempt: ms(10),
                max_attempts: 2,
                base_delay: ms(1_000),
                max_delay: ms(1_000),
            }),
        });
        let deadline = Deadline::after(shared.policy.budget());

        // Act: all of them at once, two callers in each task: the two are
        // started in the same poll, on the same thread, at the same instant.
        let started = Instant::now();
        let mut callers = JoinSet::new();
        for _ in 0..TASKS {
            let shared = Arc::clone(&shared);
            callers.spawn(async move {
                let shared = &*shared;
                let call = || async move {
                    let result = fetch_with_retry::<Price>(
                        &shared.client,
                        &shared.urls,
                        Upstream::Pricing,
                        PRODUCT_ID,
                        &shared.policy,
                        deadline,
                    )
                    .await;
                    (result, started.elapsed())
                };
                tokio::join!(call(), call())
            });
        }
        let mut durations = Vec::new();
        let mut gaps_within_a_task = Vec::new();
        while let Some(joined) = callers.join_next().await {
            let (one, other) = joined.expect("a caller did not panic");
            for (result, _) in [&one, &other] {
                assert!(
                    matches!(
                        result,
                        Err(FetchError::Status {
                            upstream: Upstream::Pricing,
                            status: 503
                        })
                    ),
                    "each caller should end with pricing's 503, got {result:?}"
                );
            }
            durations.extend([one.1, other.1]);
            gaps_within_a_task.push(one.1.abs_diff(other.1));
        }

        // Assert: with 48 pauses drawn independently from 0..=1000 ms, the
        // spread between the first and last caller to finish is below 300 ms
        // with a probability of about 1 in 10^23. Pauses that are all the
        // same (a fixed seed, no jitter) finish within a few ms of each other.
        let first = durations.iter().min().expect("there are callers");
        let last = durations.iter().max().expect("there are callers");
        assert!(
            *last - *first >= ms(300),
            "all {CALLERS} callers finished between {first:?} and {last:?}: they retried in step, so each call's pauses are not its own random draws"
        );
        // Two calls started together in one task have pauses of their own
        // too (not, say, seeded from the clock they both read): two
        // independent draws from 0..=1000 ms land within 20 ms of each other
        // with a probability of about 0.04, so 10 or more such pairs out of
        // 24 happens about once in 10^8 runs. Calls that share their pauses
        // finish a few milliseconds apart at most.
        let in_step = gaps_within_a_task
            .iter()
            .filter(|gap| **gap < ms(20))
            .count();
        assert!(
            in_step < 10,
            "{in_step} of {TASKS} pairs of callers started together in one task finished within 20 ms of each other \
             (gaps {gaps_within_a_task:?}): calls started at the same instant retried in step, so their pauses are not drawn from randomness of their own"
        );
        assert_eq!(
            upstreams.received(Service::Pricing).await,
            2 * CALLERS,
            "each caller makes exactly its 2 attempts"
        );
    })
    .await;
}
