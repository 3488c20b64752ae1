//! A typed error for a failed upstream call.
//!
//! Each variant names the upstream, so callers can tell "pricing returned 500"
//! from "reviews sent garbage" without parsing strings. There is deliberately
//! no blanket `#[from] reqwest::Error`: the same reqwest error type covers a
//! refused connection and a malformed body, and we want those apart.
//!
//! Given: this whole file. Read it before you write `fetch_json`, whose
//! failures end up here; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step1_baseline/src/error.rs`.

use crate::upstream::Upstream;

/// Why fetching from an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The upstream answered, but with a non-success HTTP status.
    #[error("{upstream} answered with HTTP status {status}")]
    Status {
        /// Which service answered.
        upstream: Upstream,
        /// The status code, e.g. 500.
        status: u16,
    },
    /// The request never got an answer: the connection was refused, reset
    /// before the response headers came, and so on.
    #[error("could not reach {upstream}")]
    Transport {
        /// Which service could not be reached.
        upstream: Upstream,
        /// What the HTTP client saw.
        #[source]
        source: reqwest::Error,
    },
    /// The upstream answered 2xx, but its body could not be read to the end
    /// (the connection broke half-way) or was not the JSON we expect.
    #[error("{upstream} sent a body we could not decode")]
    Decode {
        /// Which service sent it.
        upstream: Upstream,
        /// What went wrong while decoding.
        #[source]
        source: reqwest::Error,
    },
}

impl FetchError {
    /// The upstream this error is about.
    pub fn upstream(&self) -> Upstream {
        match self {
            FetchError::Status { upstream, .. }
            | FetchError::Transport { upstream, .. }
            | FetchError::Decode { upstream, .. } => *upstream,
        }
    }
}
