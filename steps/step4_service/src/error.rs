//! A typed error for a failed upstream call.
//!
//! Each variant names the upstream, so a log line, a metric label and the
//! problem document sent to the client can all say *which* dependency broke.
//! There is deliberately no blanket `#[from] reqwest::Error`: one reqwest
//! error type covers a refused connection and a malformed body, and the
//! service answers those differently.

use crate::upstream::Upstream;

/// Why fetching from an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request's deadline passed before the upstream answered.
    #[error("{upstream} did not answer before the request's deadline")]
    Timeout {
        /// Which service was too slow.
        upstream: Upstream,
    },
    /// The upstream answered, but with a non-success HTTP status.
    #[error("{upstream} answered with HTTP status {status}")]
    Status {
        /// Which service answered.
        upstream: Upstream,
        /// The status code, e.g. 500.
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
    /// Too many calls to this upstream were already in flight, so this one
    /// was shed without being sent.
    #[error("too many calls to {upstream} in flight; this one was shed")]
    Overloaded {
        /// Which service's bulkhead was full.
        upstream: Upstream,
    },
}

impl FetchError {
    /// The upstream this error is about.
    pub fn upstream(&self) -> Upstream {
        match self {
            FetchError::Timeout { upstream }
            | FetchError::Status { upstream, .. }
            | FetchError::Transport { upstream, .. }
            | FetchError::Decode { upstream, .. }
            | FetchError::Overloaded { upstream } => *upstream,
        }
    }
}
