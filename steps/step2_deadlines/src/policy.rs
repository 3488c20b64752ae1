//! How long to wait, how often to try, and how long to back off in between.
//!
//! A [`RetryPolicy`] holds the numbers; [`RetryConfig`] is how you write them
//! down. Seven durations and counts passed positionally would be easy to swap
//! by accident (`attempt_timeout` for `margin`, nobody notices until the
//! pager goes off), so the config is a struct with named fields, and
//! [`RetryPolicy::new`] checks that the numbers can work together before any
//! request is made. A policy that cannot work is a bug in the configuration;
//! it is better refused at start-up, with a message naming the field, than
//! discovered as a mysterious stream of timeouts in production.
//!
//! # Choosing the numbers
//!
//! Start from the latency of the upstream, not from round numbers. The Amazon
//! Builders' Library suggests setting a timeout at the percentile of the
//! upstream's latency that matches the rate of false timeouts you accept (for
//! example its p99.9). For the lab's upstream (20 ms typical, 2% of calls
//! stalled for a second) and a 200 ms request budget:
//!
//! * `attempt_timeout` 70 ms: far above the 20 ms a healthy call takes, far
//!   below the 1 s stall, and short enough that a second attempt still fits
//!   in the budget after the first one is abandoned.
//! * `margin` 10 ms: kept back from the deadline for merging the answers and
//!   writing the response.
//! * `min_attempt` 20 ms: an attempt that cannot get at least the typical
//!   latency is not worth starting.
//! * `max_attempts` 3: the Google SRE book's upper bound per request.
//! * `base_delay` 10 ms, `max_delay` 40 ms: short pauses, because the budget
//!   is short; the jitter matters more than the length.
//!
//! Given: [`RetryConfig`], [`ConfigError`] and the policy's accessors. Yours to
//! write: the bodies of [`RetryPolicy::new`], [`RetryPolicy::timeout_for_attempt`],
//! [`RetryPolicy::backoff_ceiling`] and [`RetryPolicy::backoff_delay`], whose
//! doc comments are the contract the tests check.

use std::time::Duration;

use rand::Rng;

// GIVEN: retry_config (given code, the same as in the reference solution)
/// The numbers behind a [`RetryPolicy`], with a name for each.
///
/// Every field is public so a config reads like a table; [`RetryPolicy::new`]
/// decides whether it can work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// The whole request's time, from arrival to answer. The edge turns it
    /// into a [`Deadline`](crate::Deadline) with `Deadline::after(budget)`.
    pub budget: Duration,
    /// The longest any single attempt may take, even when more time is left:
    /// the point at which a slow call is abandoned and tried again.
    pub attempt_timeout: Duration,
    /// Time kept back at the end of the budget for the work after the
    /// upstream calls (merging, serialising, sending the answer). No attempt
    /// runs into it.
    pub margin: Duration,
    /// The shortest time worth giving an attempt, about the upstream's typical
    /// latency. An attempt that would get less is not started: the loop stops
    /// and reports the last error instead.
    pub min_attempt: Duration,
    /// How many attempts in all, the first included: 1 means "never retry",
    /// 3 means "retry at most twice".
    pub max_attempts: u32,
    /// The backoff before the first retry is drawn from `0..=base_delay`;
    /// each later retry doubles the range.
    pub base_delay: Duration,
    /// The cap on the backoff range, however many retries came before.
    pub max_delay: Duration,
}

/// A configuration that cannot work, found by [`RetryPolicy::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_attempts` is 0.
    #[error("max_attempts is 0: a request needs at least 1 attempt (1 means no retries)")]
    NoAttempts,
    /// `attempt_timeout` is zero.
    #[error("attempt_timeout is zero: every attempt would time out before it started")]
    ZeroAttemptTimeout,
    /// `margin` is not shorter than `budget`.
    #[error(
        "margin ({margin:?}) must be shorter than the budget ({budget:?}): no time would be left for any attempt"
    )]
    MarginNotBelowBudget {
        /// The margin asked for.
        margin: Duration,
        /// The budget it must fit in.
        budget: Duration,
    },
    /// Not even the first attempt could get `min_attempt`.
    #[error(
        "min_attempt ({min_attempt:?}) is longer than the first attempt could ever get ({available:?}, the smaller of attempt_timeout and budget minus margin)"
    )]
    MinAttemptDoesNotFit {
        /// The minimum asked for.
        min_attempt: Duration,
        /// The most the first attempt can get.
        available: Duration,
    },
    /// `base_delay` is above `max_delay`.
    #[error(
        "base_delay ({base:?}) is above max_delay ({cap:?}): the cap would cut even the first backoff"
    )]
    BaseAboveCap {
        /// The base delay asked for.
        base: Duration,
        /// The cap asked for.
        cap: Duration,
    },
}

/// A checked retry policy: timeouts, attempts and full-jitter backoff.
///
/// Build it once, at start-up, with [`RetryPolicy::new`]; share it by
/// reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    config: RetryConfig,
}
// GIVEN_END: retry_config

impl RetryPolicy {
    /// Checks `config` and makes a policy of it.
    ///
    /// A 200 ms budget, attempts of at most 70 ms, 10 ms kept back for the
    /// answer, no attempt shorter than 20 ms, up to 3 attempts, backoff ranges
    /// of 10, 20, 40, 40, ... ms:
    ///
    /// ```
    /// use std::time::Duration;
    /// use step2_deadlines::{RetryConfig, RetryPolicy};
    ///
    /// let ms = Duration::from_millis;
    /// let policy = RetryPolicy::new(RetryConfig {
    ///     budget: ms(200),
    ///     attempt_timeout: ms(70),
    ///     margin: ms(10),
    ///     min_attempt: ms(20),
    ///     max_attempts: 3,
    ///     base_delay: ms(10),
    ///     max_delay: ms(40),
    /// })
    /// .expect("these numbers fit together");
    ///
    /// // With 150 ms left, an attempt gets its full 70 ms;
    /// assert_eq!(policy.timeout_for_attempt(ms(150)), Some(ms(70)));
    /// // with 50 ms left, it gets 50 - 10 = 40 ms;
    /// assert_eq!(policy.timeout_for_attempt(ms(50)), Some(ms(40)));
    /// // with 25 ms left, 15 ms is below min_attempt: do not start it.
    /// assert_eq!(policy.timeout_for_attempt(ms(25)), None);
    /// ```
    ///
    /// Everything that can work is accepted, right up to each rule's edge: a
    /// single attempt, a margin 1 ms shorter than the budget, a
    /// `min_attempt` exactly equal to what the first attempt can get, a
    /// `base_delay` equal to `max_delay`, no backoff at all (both zero).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first problem found, checked in this
    /// order: no attempts ([`ConfigError::NoAttempts`]), a zero attempt
    /// timeout ([`ConfigError::ZeroAttemptTimeout`]), a margin not shorter
    /// than the budget ([`ConfigError::MarginNotBelowBudget`]), a
    /// `min_attempt` longer than the first attempt could get, which is the
    /// smaller of `attempt_timeout` and the budget minus the margin
    /// ([`ConfigError::MinAttemptDoesNotFit`]), or a base delay above the cap
    /// ([`ConfigError::BaseAboveCap`]). The fields of each error carry the
    /// numbers it names.
    ///
    /// # Panics
    ///
    /// Never, whatever the numbers (a margin longer than the budget included).
    pub fn new(config: RetryConfig) -> Result<Self, ConfigError> {
        todo!("RetryPolicy::new: refuse a configuration that cannot work, accept any that can")
    }

    // GIVEN: accessors (given code, the same as in the reference solution)
    /// The numbers this policy was built from.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// The whole request's time: give it to [`Deadline::after`](crate::Deadline::after) at the edge.
    pub fn budget(&self) -> Duration {
        self.config.budget
    }

    /// How many attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.config.max_attempts
    }
    // GIVEN_END: accessors

    /// How long the next attempt may take when `remaining` is left before the
    /// deadline: the smaller of `attempt_timeout` and `remaining - margin`.
    ///
    /// `None` when that is zero or shorter than `min_attempt`: the attempt
    /// could not finish in time, so it should not be started. Because the
    /// answer shrinks with `remaining`, budgets only ever shrink: a late
    /// attempt gets less time, never more.
    ///
    /// Never panics: a `remaining` shorter than the margin, or zero, is
    /// simply `None`.
    pub fn timeout_for_attempt(&self, remaining: Duration) -> Option<Duration> {
        todo!("RetryPolicy::timeout_for_attempt: this attempt's share of what is left, if any")
    }

    /// The top of the backoff range before retry number `retry` (0 for the
    /// first retry): `min(max_delay, base_delay × 2^retry)`.
    ///
    /// Saturates instead of overflowing, however large `retry` is: for any
    /// `retry` up to `u32::MAX` the answer is `max_delay` once the doubling
    /// passes it, never a panic and never a wrapped-around small value.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        todo!("RetryPolicy::backoff_ceiling: the doubling ceiling, capped, for any retry number")
    }

    /// How long to sleep before retry number `retry` (0 for the first retry):
    /// *full jitter*, a uniformly random whole number of milliseconds in
    /// `0..=backoff_ceiling(retry)` (Brooker, 2015). Every value in that
    /// range, 0 and the ceiling included, is equally likely.
    ///
    /// The randomness comes from `rng` and nowhere else, so two RNGs seeded
    /// alike give the same pauses: a test can replay them. Whole
    /// milliseconds, because tokio's timers have millisecond resolution:
    /// finer jitter would be rounded away. With a ceiling of zero the pause
    /// is zero (no panic).
    pub fn backoff_delay(&self, retry: u32, rng: &mut (impl Rng + ?Sized)) -> Duration {
        todo!("RetryPolicy::backoff_delay: full jitter, drawn from the rng it is given")
    }
}
