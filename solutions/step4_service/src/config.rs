//! The service's configuration, checked once when the service starts.
//!
//! A bad value (a zero budget, a margin that eats the whole budget, a zero
//! cap) is a [`ConfigError`] at start-up, not a mystery at the first request.
//!
//! The attempt fields are step 2's retry policy, carried forward: one
//! request deadline, and inside it attempts that each get
//! `min(attempt_timeout, remaining - margin)`, so no upstream call ever
//! gets the whole deadline and the last one ends `margin` before it.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step4_service/src/config.rs`.

use std::time::Duration;

use rand::Rng;

use crate::upstream::UpstreamUrls;

/// Everything the service needs to know that is not code.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where the three upstreams live.
    pub urls: UpstreamUrls,
    /// How long one `GET /products/{id}` may take, end to end. The deadline
    /// is set from it once, when the request arrives (at the edge), and
    /// every upstream call spends from that same deadline.
    pub request_budget: Duration,
    /// The longest one attempt at one upstream may take, even when more of
    /// the budget is left: the point at which a slow call is abandoned and
    /// tried again.
    pub attempt_timeout: Duration,
    /// Kept back at the end of the budget for the work after the upstream
    /// calls (merging, writing the answer). No attempt runs into it, so the
    /// client gets its answer *before* the deadline, not at it.
    pub margin: Duration,
    /// The shortest time worth giving an attempt. One that would get less
    /// is not started; the call ends with the error it already has.
    pub min_attempt: Duration,
    /// Attempts per upstream call, the first included (1: never retry).
    pub max_attempts: u32,
    /// The backoff before the first retry is drawn from `0..=base_delay`
    /// (full jitter); each later retry doubles the range.
    pub base_delay: Duration,
    /// The cap on the backoff range.
    pub max_delay: Duration,
    /// How many calls to *one* upstream may be in flight at once. A page
    /// that would need one more is shed at once (`503` with `Retry-After`)
    /// instead of queueing.
    pub max_in_flight_per_upstream: usize,
    /// What a shed request is told to wait before retrying (`Retry-After`,
    /// in whole seconds, rounded up, so at least 1).
    pub retry_after: Duration,
    /// The server-side backstop: a request still running after this long is
    /// answered `503` (a problem document), whatever it is doing. Longer
    /// than `request_budget`, so the deadline normally wins.
    pub server_timeout: Duration,
    /// Write an access log line for every answer, successes included. Off
    /// by default: only an answer that is not a success gets one (see
    /// `routes::AccessLog` for why).
    pub log_every_request: bool,
}

impl ServiceConfig {
    /// A configuration with the workbook's defaults: a 200 ms budget;
    /// attempts of at most 70 ms, never within 10 ms of the deadline, never
    /// shorter than 20 ms, at most 3; backoff ranges of 10, 20, 40 ms; 512
    /// calls in flight per upstream; `Retry-After: 1`; a 1 s backstop; an
    /// access log line for the answers that are not a success only.
    pub fn new(urls: UpstreamUrls) -> Self {
        Self {
            urls,
            request_budget: Duration::from_millis(200),
            attempt_timeout: Duration::from_millis(70),
            margin: Duration::from_millis(10),
            min_attempt: Duration::from_millis(20),
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            max_in_flight_per_upstream: 512,
            retry_after: Duration::from_secs(1),
            server_timeout: Duration::from_secs(1),
            log_every_request: false,
        }
    }

    /// Checks the values that would make the service misbehave.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first bad value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.request_budget.is_zero() {
            return Err(ConfigError::ZeroBudget);
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::NoAttempts);
        }
        if self.attempt_timeout.is_zero() {
            return Err(ConfigError::ZeroAttemptTimeout);
        }
        if self.margin >= self.request_budget {
            return Err(ConfigError::MarginNotBelowBudget {
                margin: self.margin,
                budget: self.request_budget,
            });
        }
        let first_attempt = self.attempt_timeout.min(self.request_budget - self.margin);
        if self.min_attempt > first_attempt {
            return Err(ConfigError::MinAttemptDoesNotFit {
                min_attempt: self.min_attempt,
                available: first_attempt,
            });
        }
        if self.base_delay > self.max_delay {
            return Err(ConfigError::BaseAboveCap {
                base: self.base_delay,
                cap: self.max_delay,
            });
        }
        if self.max_in_flight_per_upstream == 0 {
            return Err(ConfigError::ZeroCap);
        }
        if self.max_in_flight_per_upstream > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::CapTooLarge {
                cap: self.max_in_flight_per_upstream,
            });
        }
        if self.server_timeout <= self.request_budget {
            return Err(ConfigError::BackstopNotAfterBudget {
                budget: self.request_budget,
                backstop: self.server_timeout,
            });
        }
        Ok(())
    }

    /// How long the next attempt may take when `remaining` is left before
    /// the request's deadline: the smaller of `attempt_timeout` and
    /// `remaining - margin`.
    ///
    /// `None` when that is shorter than `min_attempt` (or zero): the attempt
    /// could not finish in time, so it is not started. A later attempt gets
    /// less time, never more.
    pub fn timeout_for_attempt(&self, remaining: Duration) -> Option<Duration> {
        let timeout = self
            .attempt_timeout
            .min(remaining.saturating_sub(self.margin));
        (!timeout.is_zero() && timeout >= self.min_attempt).then_some(timeout)
    }

    /// How long to sleep before retry number `retry` (0 for the first):
    /// full jitter, a whole number of milliseconds drawn uniformly from
    /// `0..=min(max_delay, base_delay × 2^retry)`.
    pub fn backoff_delay(&self, retry: u32, rng: &mut (impl Rng + ?Sized)) -> Duration {
        let ceiling = 2u32
            .checked_pow(retry)
            .and_then(|factor| self.base_delay.checked_mul(factor))
            .map_or(self.max_delay, |delay| delay.min(self.max_delay));
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=ceiling_ms))
    }
}

/// A configuration value the service cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Every request would time out before it started.
    #[error("the request budget must be more than zero")]
    ZeroBudget,
    /// `max_attempts` is 0.
    #[error("max_attempts is 0: a call needs at least 1 attempt (1 means no retries)")]
    NoAttempts,
    /// `attempt_timeout` is zero.
    #[error("attempt_timeout is zero: every attempt would time out before it started")]
    ZeroAttemptTimeout,
    /// `margin` is not shorter than the budget.
    #[error(
        "margin ({margin:?}) must be shorter than the request budget ({budget:?}): no time would be left for any attempt"
    )]
    MarginNotBelowBudget {
        /// The margin asked for.
        margin: Duration,
        /// The budget it must fit in.
        budget: Duration,
    },
    /// Not even a first attempt could get `min_attempt`.
    #[error(
        "min_attempt ({min_attempt:?}) is longer than a first attempt could get ({available:?}, the smaller of attempt_timeout and budget minus margin)"
    )]
    MinAttemptDoesNotFit {
        /// The minimum asked for.
        min_attempt: Duration,
        /// The most a first attempt can get.
        available: Duration,
    },
    /// `base_delay` is above `max_delay`.
    #[error("base_delay ({base:?}) is above max_delay ({cap:?})")]
    BaseAboveCap {
        /// The base delay asked for.
        base: Duration,
        /// The cap asked for.
        cap: Duration,
    },
    /// Every upstream call would be shed.
    #[error("max in-flight calls per upstream must be at least 1")]
    ZeroCap,
    /// More permits than tokio's semaphore can hold.
    #[error("max in-flight calls per upstream is {cap}, more than a semaphore can hold")]
    CapTooLarge {
        /// The value asked for.
        cap: usize,
    },
    /// The backstop would cut requests off before their own deadline does.
    #[error(
        "the server timeout ({backstop:?}) must be longer than the request budget ({budget:?})"
    )]
    BackstopNotAfterBudget {
        /// The request budget.
        budget: Duration,
        /// The server-side timeout.
        backstop: Duration,
    },
}
