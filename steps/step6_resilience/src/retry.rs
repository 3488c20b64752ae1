//! Retries inside the page's deadline: each attempt with a deadline of its
//! own, each retry paid from the upstream's budget.
//!
//! Step 2 taught the loop: bounded attempts, a jittered pause between them,
//! one deadline over all. In the composed service three more things hold:
//!
//! * **Each attempt has its own deadline**: the attempt timeout, or what is
//!   left of the page's deadline minus a margin, whichever ends first. A
//!   stalled attempt is cut early enough for a retry to fit, and no attempt
//!   runs into the margin the page keeps to answer (partially, if it must).
//! * **Only errors that may pass are retried**: a 5xx, no answer at all, or
//!   the attempt's own timeout. A 4xx is about our request and will not
//!   change; an open breaker, a full bulkhead or a cancellation is our own
//!   decision, and repeating it at once only adds load.
//! * **A retry is an extra attempt**, like a hedge's backup, and both draw
//!   on the one [`RetryBudget`] of their upstream, so the two together stay
//!   within `ratio` × section calls + `burst`.
//!
//! The breaker sits *outside* this loop ([`ProductService::fetch`]): it sees
//! one call per section, however many attempts the section made.
//!
//! [`ProductService::fetch`]: crate::service::ProductService::fetch
//!
//! Yours to write: [`retried`]. Given: the configuration, [`Retry`] and its
//! accessors, and its jittered [`Retry::backoff`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng as _;

use crate::budget::RetryBudget;
use crate::deadline::Deadline;
use crate::error::{ConfigError, FetchError};
use crate::upstream::Upstream;

// GIVEN: retry_config (given code, the same as in the reference solution)
/// How one upstream's sections are retried. The budget that pays for the
/// retries is not here: it is shared with the hedges ([`RetryBudget`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts per section in all, the first included: 1 means "never
    /// retry", 3 "retry at most twice". The budget usually stops retries
    /// long before this does; this caps one section's share of it.
    pub max_attempts: u32,
    /// The longest one attempt may take, even with more of the deadline
    /// left: the point where a stalled attempt is cut so that a retry still
    /// fits. Set it well above a healthy upstream's p99 (a cut answer is
    /// lost work) and well below the page's budget.
    pub attempt_timeout: Duration,
    /// Kept back from the page's deadline: no attempt runs into it, so the
    /// page still has time to answer (partially, if need be) before its own
    /// deadline.
    pub margin: Duration,
    /// The least time worth giving an attempt, about the upstream's typical
    /// latency. An attempt that would get less is not started: its time
    /// would be spent for nothing, and the error already in hand is a
    /// better answer than a timeout later.
    pub min_attempt: Duration,
    /// The backoff before the first retry is drawn from `0..=base_delay`;
    /// each later retry doubles the range.
    pub base_delay: Duration,
    /// The cap on the backoff range.
    pub max_delay: Duration,
}

impl RetryConfig {
    /// Checks that the policy can work.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting that cannot work.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::NoAttempts);
        }
        if self.attempt_timeout.is_zero() {
            return Err(ConfigError::ZeroAttemptTimeout);
        }
        if self.min_attempt.is_zero() || self.min_attempt > self.attempt_timeout {
            return Err(ConfigError::MinAttemptOutOfRange {
                min_attempt: self.min_attempt,
                attempt_timeout: self.attempt_timeout,
            });
        }
        if self.base_delay > self.max_delay {
            return Err(ConfigError::BaseDelayAboveCap {
                base: self.base_delay,
                cap: self.max_delay,
            });
        }
        Ok(self)
    }
}

/// The retry policy of one upstream, and how many retries it has sent.
#[derive(Debug)]
pub struct Retry {
    config: RetryConfig,
    retries_sent: AtomicU64,
}

impl Retry {
    /// The retry policy of one upstream.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if `config` cannot work (see [`RetryConfig::validate`]).
    pub fn new(config: RetryConfig) -> Result<Self, ConfigError> {
        Ok(Retry {
            config: config.validate()?,
            retries_sent: AtomicU64::new(0),
        })
    }

    /// The policy's numbers.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// How many retries this upstream has been sent so far.
    pub fn retries_sent(&self) -> u64 {
        self.retries_sent.load(Ordering::Relaxed)
    }

    /// The pause before retry number `retry` (0 for the first retry):
    /// *full jitter*, a random whole number of milliseconds from 0 to
    /// `min(max_delay, base_delay × 2^retry)`, as step 2 draws it. Random, so
    /// that sections that failed together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = 2u32
            .checked_pow(retry)
            .and_then(|factor| self.config.base_delay.checked_mul(factor))
            .map_or(self.config.max_delay, |delay| {
                delay.min(self.config.max_delay)
            });
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ceiling_ms))
    }
}
// GIVEN_END: retry_config

/// Runs `attempt` until it succeeds, fails in a way not worth another try,
/// runs out of attempts, budget or time, bounding each attempt by a
/// deadline of its own.
///
/// * **Each attempt's deadline** is the attempt timeout from its start, or
///   `deadline` minus the margin, whichever comes first. `attempt` is given
///   that deadline (to pass on to what it calls), and is dropped when it
///   passes, the attempt then ending with [`FetchError::Timeout`] naming
///   `upstream`. Nothing runs past `deadline` minus the margin.
/// * An attempt that would get less than `min_attempt` is not started: the
///   call returns the last error at once, or [`FetchError::Timeout`] if
///   there was no attempt yet.
/// * **Worth another attempt**: an upstream fault that may pass: a 5xx
///   status, [`FetchError::Transport`], and the attempt's own timeout. Not a
///   4xx (about our request; it will not change), not a body that does not
///   decode (the same request gets the same body), and not
///   [`FetchError::CircuitOpen`], [`FetchError::Overloaded`] or
///   [`FetchError::Cancelled`] (our own decisions: repeating them at once
///   only adds load). Those are returned as they are, at once.
/// * **A retry** needs all of: an attempt left (`max_attempts` counts the
///   first), a pause of [`Retry::backoff`] after which an attempt of at least
///   `min_attempt` still fits before `deadline` minus the margin, and a token
///   from `budget` (shared with the hedges; this function never deposits).
///   Without any one of them the call returns the last error at once: it
///   never sleeps when no retry can follow, and a token is taken only for
///   a retry that will be sent (one that does not fit spends none). Each
///   retry started is counted in [`Retry::retries_sent`].
///
/// # Errors
///
/// The last attempt's error; [`FetchError::Timeout`] if not even a first
/// attempt fitted.
///
/// # Cancel safety
///
/// Dropping the future drops the attempt in flight, or the pause; no
/// attempt starts after that.
pub async fn retried<T, F, Fut>(
    retry: &Retry,
    budget: &RetryBudget,
    upstream: Upstream,
    deadline: Deadline,
    mut attempt: F,
) -> Result<T, FetchError>
where
    F: FnMut(Deadline) -> Fut,
    Fut: Future<Output = Result<T, FetchError>>,
{
    // TODO: as documented above. The chapter's "Compose the guards" section
    // argues each rule.
    todo!("retried: attempts with deadlines of their own, retries within budget and time")
}
