//! Part "the policy": `FetchError::is_retryable` (`src/error.rs`) and
//! `RetryPolicy` (`src/policy.rs`): what is worth retrying, which
//! configurations can work, how long an attempt may take, and how long to
//! pause before the next one.
//!
//! Plain functions, no sockets, no clock and no retry loop: each test calls
//! one of them with numbers and checks the answer, at the edges of every
//! rule. The pauses are drawn from a seeded `StdRng`, so a test can replay
//! them and count how often each value comes up.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use step2_deadlines::{ConfigError, FetchError, RetryConfig, RetryPolicy, Upstream};

use crate::common::{http_config, ms, policy};

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
