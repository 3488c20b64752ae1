//! The edge's settings: the request budget, the in-flight limit, and what a
//! shed client is told.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step6_resilience/src/edge/config.rs`.

use std::time::Duration;

/// The whole request's budget: the deadline set at the edge is this far
/// from when the request was admitted. The module's latency goal is a p99
/// of 200 ms; a page that cannot answer by then is better answered with an
/// error than late.
pub const DEFAULT_REQUEST_BUDGET: Duration = Duration::from_millis(200);

/// How many page requests the handler may hold at once.
///
/// Little's law: requests in flight = arrival rate × time each one spends
/// in the service. Past the knee, more requests in flight do not raise the
/// rate (the CPU is already busy); they only lengthen the time each one
/// waits for a worker, every page's included. So the limit is the knee's
/// rate times a healthy page's time: the chapter's lab found the knee at
/// about 6,000 pages a second on 2 cores, and a healthy page there spends a
/// few tens of milliseconds (its upstreams' latency and our own work), which
/// makes a few hundred. 256 is that order of magnitude, a power of two so
/// nobody mistakes it for a measurement; measure your own machine's knee
/// (`cargo xtask lab step6`) and set `--max-in-flight` from it.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// What `Retry-After` tells a shed client: come back in a second. Long
/// enough for a burst to drain; short enough that a client that obeys it
/// is not turned away for long. (HTTP's `Retry-After` counts whole
/// seconds, so 1 s is the shortest that means "wait".)
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The edge's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeConfig {
    /// The deadline set at the edge, from when a request is admitted.
    pub request_budget: Duration,
    /// Page requests handled at once; one more is shed.
    pub max_in_flight: usize,
    /// Sent to a shed client (and to one refused by an open breaker) as
    /// `Retry-After`, in whole seconds, at least 1.
    pub retry_after: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            request_budget: DEFAULT_REQUEST_BUDGET,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }
}

/// An edge setting that cannot work, caught when the edge is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeConfigError {
    /// With no place at all, every page would be shed.
    #[error("max_in_flight must be at least 1: with 0, every page request is shed")]
    NoRoomInFlight,
    /// tokio's semaphore holds at most `Semaphore::MAX_PERMITS` permits.
    #[error("max_in_flight must be at most {max}, got {got}")]
    TooMuchInFlight {
        /// What was asked for.
        got: usize,
        /// The most a semaphore can hold.
        max: usize,
    },
    /// A zero budget times out every page before it starts.
    #[error("the request budget must be longer than zero")]
    ZeroBudget,
}

impl EdgeConfig {
    /// `self`, if it can work.
    ///
    /// # Errors
    ///
    /// An [`EdgeConfigError`] naming the setting that cannot work.
    pub fn validate(self) -> Result<Self, EdgeConfigError> {
        let max = tokio::sync::Semaphore::MAX_PERMITS;
        if self.max_in_flight == 0 {
            return Err(EdgeConfigError::NoRoomInFlight);
        }
        if self.max_in_flight > max {
            return Err(EdgeConfigError::TooMuchInFlight {
                got: self.max_in_flight,
                max,
            });
        }
        if self.request_budget.is_zero() {
            return Err(EdgeConfigError::ZeroBudget);
        }
        Ok(self)
    }
}
