//! Everything that can go wrong, as types: one enum per concern.
//!
//! [`FetchError`] says which upstream failed and how; whether retrying can
//! help is decided in one exhaustive `match` ([`FetchError::is_retryable`]),
//! so adding a variant forces a decision. [`ConfigError`] is bad
//! configuration, caught when the orchestrator is built rather than at the
//! first request.

use thiserror::Error;

use crate::upstream::Upstream;

/// Why one upstream call failed.
#[derive(Debug, Error)]
pub enum FetchError {
    /// No answer within the attempt's timeout (the smaller of
    /// `attempt_timeout` and what was left of the request's deadline).
    #[error("{upstream} did not answer in time")]
    Timeout {
        /// Which upstream.
        upstream: Upstream,
    },
    /// The upstream answered with a non-success status.
    #[error("{upstream} answered with status {status}")]
    Status {
        /// Which upstream.
        upstream: Upstream,
        /// The HTTP status code.
        status: u16,
    },
    /// The request never got an answer (connection refused, reset, ...).
    #[error("{upstream} could not be reached")]
    Transport {
        /// Which upstream.
        upstream: Upstream,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON we expect.
    #[error("{upstream} sent a body that does not decode")]
    Decode {
        /// Which upstream.
        upstream: Upstream,
        /// What the decoder reported.
        #[source]
        source: serde_json::Error,
    },
    /// Too many of our calls to this upstream are already in flight: shed.
    #[error("{upstream} has too many calls in flight; this one was shed")]
    Overloaded {
        /// Which upstream.
        upstream: Upstream,
    },
}

impl FetchError {
    /// The upstream that failed.
    pub fn upstream(&self) -> Upstream {
        match self {
            FetchError::Timeout { upstream }
            | FetchError::Status { upstream, .. }
            | FetchError::Transport { upstream, .. }
            | FetchError::Decode { upstream, .. }
            | FetchError::Overloaded { upstream } => *upstream,
        }
    }

    /// Could sending the same request again possibly help?
    ///
    /// A 5xx or a lost connection may be transient; a 4xx says the request
    /// itself is wrong (asking again gets the same answer and adds load), a
    /// body that does not decode will not decode next time either, and a
    /// shed call must not be retried into the very overload that shed it.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Timeout { .. } | FetchError::Transport { .. } => true,
            FetchError::Status { status, .. } => *status >= 500,
            FetchError::Decode { .. } | FetchError::Overloaded { .. } => false,
        }
    }
}

/// A configuration the orchestrator cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A zero budget would fail every request at once.
    #[error("the request budget must be longer than zero")]
    ZeroBudget,
    /// A zero attempt timeout would fail every attempt before it started.
    #[error("the attempt timeout must be longer than zero")]
    ZeroAttemptTimeout,
    /// At least one attempt is needed to call an upstream at all.
    #[error("max_attempts must be at least 1")]
    NoAttempts,
    /// A backoff range that starts above its own cap.
    #[error(
        "base_delay ({base:?}) is above max_delay ({cap:?}): the cap would cut even the first backoff"
    )]
    BaseAboveCap {
        /// The base delay asked for.
        base: std::time::Duration,
        /// The cap asked for.
        cap: std::time::Duration,
    },
    /// A limit of zero calls in flight would shed every call.
    #[error("max_in_flight must be at least 1 per upstream")]
    NoPermits,
    /// `WORKBOOK_MUTANT` names no known mutant. Only the runner sets it
    /// (`cargo xtask verify step5`); the error does not list the names,
    /// which are the exercise's spoilers.
    #[error(
        "WORKBOOK_MUTANT={0:?} is not a known mutant: unset it to test the correct orchestrator"
    )]
    UnknownMutant(String),
}
