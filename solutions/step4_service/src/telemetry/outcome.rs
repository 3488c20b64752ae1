//! How an upstream call ended: the `outcome` label of its count, and the
//! `outcome` field of its span.
//!
//! [`Outcome::of_error`] decides how each failure is counted.

use crate::error::FetchError;

// GIVEN: outcome (given code, the same as in the reference solution)
/// How an upstream call ended: the `outcome` label and span field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer that decoded.
    Ok,
    /// The deadline passed first.
    Timeout,
    /// A bad status, no connection, or a body that did not decode.
    Error,
    /// Dropped before it ended: another call failed first, or the client left.
    Cancelled,
    /// Never sent: the upstream's bulkhead was full.
    Shed,
}

impl Outcome {
    /// Every outcome, in the order of
    /// [`UpstreamMetrics`](super::UpstreamMetrics)' counters.
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Timeout,
        Outcome::Error,
        Outcome::Cancelled,
        Outcome::Shed,
    ];

    /// The outcomes of a call that was sent and ended, the ones with a
    /// latency, in the order of
    /// [`UpstreamMetrics`](super::UpstreamMetrics)' latency histograms.
    pub const ENDED: [Outcome; 3] = [Outcome::Ok, Outcome::Timeout, Outcome::Error];

    /// The label value, e.g. `"timeout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
            Outcome::Shed => "shed",
        }
    }
}
// GIVEN_END: outcome

// ANCHOR: outcome_of
impl Outcome {
    /// The outcome a failed call is counted under.
    ///
    /// Exhaustive on purpose: shedding is not an upstream error (the
    /// upstream never saw the call), and a timeout is worth its own line on
    /// a dashboard.
    pub fn of_error(error: &FetchError) -> Outcome {
        match error {
            FetchError::Timeout { .. } => Outcome::Timeout,
            FetchError::Status { .. }
            | FetchError::Transport { .. }
            | FetchError::Decode { .. } => Outcome::Error,
            FetchError::Overloaded { .. } => Outcome::Shed,
        }
    }
}
// ANCHOR_END: outcome_of
