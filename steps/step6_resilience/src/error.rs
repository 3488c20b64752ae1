//! Typed errors: why an upstream call failed, and why a configuration is wrong.
//!
//! Each [`FetchError`] variant names the upstream, so "pricing timed out" and
//! "reviews' breaker is open" are told apart without parsing strings. Two
//! decisions about an error are made once, each in one exhaustive `match`:
//! which HTTP status it becomes when a required section fails
//! ([`FetchError::http_status`], here), and what it says about the upstream's
//! health ([`verdict`](crate::breaker::verdict), in the breaker: a timeout
//! cannot be judged from the error alone, only with the times of its call).
//!
//! Yours to write: [`FetchError::http_status`]. Given: the rest of this file.

use std::time::Duration;

use crate::upstream::Upstream;

// GIVEN: fetch_error (given code, the same as in the reference solution)
/// Why fetching from an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer before the request's deadline; the call was dropped.
    #[error("{upstream} did not answer before the deadline")]
    Timeout {
        /// Which service was too slow.
        upstream: Upstream,
    },
    /// The upstream answered with a non-success HTTP status.
    #[error("{upstream} answered with HTTP status {status}")]
    Status {
        /// Which service answered.
        upstream: Upstream,
        /// The status code, e.g. 503.
        status: u16,
    },
    /// The request never got an answer: connection refused, reset, and so on.
    #[error("could not reach {upstream}")]
    Transport {
        /// Which service could not be reached.
        upstream: Upstream,
        /// What the HTTP client saw.
        #[source]
        source: reqwest::Error,
    },
    /// The upstream answered 2xx, but the body was not the JSON we expect.
    #[error("{upstream} sent a body we could not decode")]
    Decode {
        /// Which service sent it.
        upstream: Upstream,
        /// What went wrong while decoding.
        #[source]
        source: reqwest::Error,
    },
    /// The upstream's circuit breaker is open: the call was not even tried.
    #[error("{upstream}'s circuit breaker is open; not calling it")]
    CircuitOpen {
        /// Whose breaker is open.
        upstream: Upstream,
    },
    /// The work was cancelled (its `CancellationToken` fired) before it finished.
    #[error("the call to {upstream} was cancelled")]
    Cancelled {
        /// Which call was cancelled.
        upstream: Upstream,
    },
    /// The upstream's bulkhead stayed full: no permit came free within the
    /// wait allowed, so the request was never sent. This is *our* load, not
    /// the upstream's failure.
    #[error("too many calls to {upstream} in flight; this one was shed")]
    Overloaded {
        /// Whose bulkhead was full.
        upstream: Upstream,
    },
}
// GIVEN_END: fetch_error

impl FetchError {
    // GIVEN: upstream_of (given code, the same as in the reference solution)
    /// The upstream this error is about.
    pub fn upstream(&self) -> Upstream {
        match self {
            FetchError::Timeout { upstream }
            | FetchError::Status { upstream, .. }
            | FetchError::Transport { upstream, .. }
            | FetchError::Decode { upstream, .. }
            | FetchError::CircuitOpen { upstream }
            | FetchError::Cancelled { upstream }
            | FetchError::Overloaded { upstream } => *upstream,
        }
    }
    // GIVEN_END: upstream_of

    /// The HTTP status our own endpoint answers with when a *required*
    /// section fails with this error.
    ///
    /// * `504 Gateway Timeout`: the upstream did not answer in time.
    /// * `503 Service Unavailable`: we did not call it (breaker open, or its
    ///   bulkhead full); the client may retry later.
    /// * `502 Bad Gateway`: the upstream answered, but badly (5xx, 4xx,
    ///   garbage) or not at all (transport).
    /// * `499`: the client went away; nobody reads this status, it exists for
    ///   logs and metrics (nginx's convention for "client closed request").
    ///
    /// Every variant has its status, and a variant added later must not
    /// compile until someone decides its status.
    pub fn http_status(&self) -> u16 {
        todo!("FetchError::http_status: map each variant to its status")
    }
}

// GIVEN: config_error (given code, the same as in the reference solution)
/// A resilience setting that cannot work, caught when the service is built
/// rather than discovered under load.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A breaker that opens after zero failures would never be closed.
    #[error("a circuit breaker needs a failure threshold of at least 1")]
    ZeroFailureThreshold,
    /// A half-open breaker that lets no probe through can never close again.
    #[error("a circuit breaker needs at least 1 half-open probe")]
    ZeroProbes,
    /// A zero cool-down reopens the breaker to full traffic at once.
    #[error("a circuit breaker's cool-down must be longer than zero, got {0:?}")]
    ZeroCoolDown(Duration),
    /// With no minimum, a call admitted with no time left before its
    /// deadline would count its timeout against the upstream.
    #[error("a breaker's fair timeout needs a minimum own time longer than zero, got {0:?}")]
    ZeroMinOwnTime(Duration),
    /// tokio's timers have millisecond granularity: a tolerance below that
    /// would call nearly every timer late, and no timeout would ever count.
    #[error(
        "a breaker's timer tolerance must be at least 1 ms (the timers' granularity), got {0:?}"
    )]
    TimerToleranceBelowGranularity(Duration),
    /// The budget's ratio is the share of section calls that may make an
    /// extra attempt (a retry or a hedge).
    #[error("a retry budget's ratio must be between 0.0 and 1.0, got {0}")]
    BudgetRatioOutOfRange(f64),
    /// The budget must be able to hold at least one whole extra attempt.
    #[error("a retry budget's burst must be at least 1.0, got {0}")]
    BudgetBurstTooSmall(f64),
    /// Retries or hedges without a budget would have no cap on the extra
    /// load they make: the budget is what keeps them safe.
    #[error("retries and hedges draw on a budget: set one (`Resilience::budget`)")]
    ExtraAttemptsWithoutBudget,
    /// `max_attempts` counts the first attempt: 0 would never call at all.
    #[error("a retry policy needs max_attempts of at least 1 (1 means no retries)")]
    NoAttempts,
    /// An attempt given no time of its own times out before it starts.
    #[error("a retry policy's attempt_timeout must be longer than zero")]
    ZeroAttemptTimeout,
    /// An attempt with no time cannot answer: `min_attempt` is what an
    /// attempt needs to be worth starting, longer than zero and no longer
    /// than `attempt_timeout` (or no attempt could ever start).
    #[error(
        "a retry policy's min_attempt ({min_attempt:?}) must be longer than zero and at most attempt_timeout ({attempt_timeout:?})"
    )]
    MinAttemptOutOfRange {
        /// The minimum asked for.
        min_attempt: Duration,
        /// The longest any attempt may take.
        attempt_timeout: Duration,
    },
    /// The cap would cut even the first backoff.
    #[error("a retry policy's base_delay ({base:?}) is above its max_delay ({cap:?})")]
    BaseDelayAboveCap {
        /// The base delay asked for.
        base: Duration,
        /// The cap asked for.
        cap: Duration,
    },
    /// A bulkhead with no permits would shed every call.
    #[error("a bulkhead needs at least 1 permit")]
    ZeroCap,
    /// More permits than a tokio semaphore can count.
    #[error("a bulkhead of {requested} permits is more than a semaphore holds ({limit})")]
    CapTooLarge {
        /// The permits asked for.
        requested: usize,
        /// `tokio::sync::Semaphore::MAX_PERMITS`.
        limit: usize,
    },
    /// Quantiles are fractions: 0.95, not 95.
    #[error("a hedge quantile must be between 0.0 and 1.0 (0.95, not 95), got {0}")]
    QuantileOutOfRange(f64),
}
// GIVEN_END: config_error
