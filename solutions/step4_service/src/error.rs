//! A typed error for a failed upstream call.
//!
//! Each variant names the upstream, so a log line, a metric label and the
//! problem document sent to the client can all say *which* dependency broke.
//! There is deliberately no blanket `#[from] reqwest::Error`: one reqwest
//! error type covers a refused connection and a malformed body, and the
//! service answers (and retries) those differently.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step4_service/src/error.rs`.

use crate::upstream::Upstream;

/// Why fetching from an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The attempt's time ran out before the upstream answered: its own
    /// timeout, or what the request's deadline left it.
    #[error("{upstream} did not answer in time")]
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
    /// Too many calls to this upstream were already in flight, so the page
    /// was shed: no call of it was sent.
    #[error("too many calls to {upstream} in flight; this request was shed")]
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

    /// Whether the same request, sent again, might succeed (step 2's rule).
    ///
    /// Timeouts, transport errors, 5xx and 429: yes. Other 4xx and decode
    /// errors: no, the upstream would say the same again. `Overloaded`: no,
    /// nothing was sent, and the client is told when to come back instead.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Timeout { .. } | FetchError::Transport { .. } => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            FetchError::Decode { .. } | FetchError::Overloaded { .. } => false,
        }
    }
}
