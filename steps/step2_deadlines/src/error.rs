//! A typed error for a failed upstream call, and whether to try it again.
//!
//! Step 1 had three ways to fail; a deadline adds a fourth. A *timeout* is not
//! a failure the upstream reported: it is this service deciding to stop
//! waiting. It gets its own variant so that callers, logs and metrics can tell
//! "pricing is slow" from "pricing is broken" (and, in step 4, answer 504
//! rather than 502).
//!
//! Every variant names the upstream. There is still no blanket
//! `#[from] reqwest::Error`: the same reqwest error type covers a refused
//! connection, a timeout and a body that broke off half-way, and the retry
//! decision needs them apart. A body that arrived whole but is not our JSON
//! is not reqwest's business at all: `Decode` carries `serde_json`'s error.
//!
//! Given: [`FetchError`] and [`FetchError::upstream`]. Yours to write: the
//! body of [`FetchError::is_retryable`], whose doc comment is the contract the
//! tests check.

use crate::upstream::Upstream;

// GIVEN: fetch_error (given code, the same as in the reference solution)
/// Why fetching from an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer arrived in the time this call was given: the attempt's own
    /// timeout, or what was left of the request's deadline.
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
        /// The status code, e.g. 503.
        status: u16,
    },
    /// The request never got a complete answer: connection refused, reset,
    /// closed half-way through the body, and so on.
    #[error("got no complete answer from {upstream}")]
    Transport {
        /// Which service could not be reached.
        upstream: Upstream,
        /// What the HTTP client saw.
        #[source]
        source: reqwest::Error,
    },
    /// The upstream answered 2xx and the whole body arrived, but it was not
    /// the JSON we expect.
    #[error("{upstream} sent a body we could not decode")]
    Decode {
        /// Which service sent it.
        upstream: Upstream,
        /// What the JSON decoder found wrong, and where in the body.
        #[source]
        source: serde_json::Error,
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
            | FetchError::Decode { upstream, .. } => *upstream,
        }
    }
    // GIVEN_END: upstream_of

    /// Whether the same request, sent again, might succeed.
    ///
    /// * **Timeouts**: yes. The slowness may have been one stalled process, one
    ///   lost packet, one slow replica behind a load balancer.
    /// * **Transport errors** (refused, reset, a body cut off): yes. The next
    ///   connection may reach a healthy instance.
    /// * **5xx statuses** (500 to 599): yes. The server says the fault is on
    ///   its side; 503 in particular means "not now".
    /// * **429 Too Many Requests**: yes, after backing off, which the retry
    ///   loop always does. (A server's `Retry-After` header, which this
    ///   workbook does not read, would say how long.)
    /// * **Other 4xx**: never. The request itself is wrong (404: no such
    ///   product, 400: bad input); sending it again only repeats the answer and
    ///   adds load.
    /// * **Any other status that is not 2xx** (1xx; 3xx, which reqwest
    ///   follows itself and passes on only when it cannot; 600 and above):
    ///   never. Nothing says the next answer would differ.
    /// * **Decode errors**: never. The whole answer arrived, and it is
    ///   something we cannot read; the upstream will send it again.
    ///
    /// The answer depends on the variant alone, and for `Status` on the code
    /// alone, never on the upstream. Every variant gets a decision of its
    /// own: when a variant is added later (step 3 adds one), this function
    /// should stop compiling until someone decides about it.
    pub fn is_retryable(&self) -> bool {
        todo!("FetchError::is_retryable: which kinds of failure are worth sending again")
    }
}
