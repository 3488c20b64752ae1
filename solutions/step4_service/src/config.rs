//! The service's configuration, checked once when the service starts.
//!
//! A bad value (a zero budget, a zero cap) is a [`ConfigError`] at start-up,
//! not a mystery at the first request.

use std::time::Duration;

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
    /// How many calls to *one* upstream may be in flight at once. One more
    /// is shed at once (`503` with `Retry-After`) instead of queueing.
    pub max_in_flight_per_upstream: usize,
    /// What a shed request is told to wait before retrying (`Retry-After`,
    /// in whole seconds).
    pub retry_after: Duration,
    /// The server-side backstop: a request still running after this long is
    /// answered `503` by tower-http's `TimeoutLayer`, whatever it is doing.
    /// Longer than `request_budget`, so the deadline normally wins.
    pub server_timeout: Duration,
}

impl ServiceConfig {
    /// A configuration with the workbook's defaults: a 200 ms budget, 512
    /// calls in flight per upstream, `Retry-After: 1`, a 1 s backstop.
    pub fn new(urls: UpstreamUrls) -> Self {
        Self {
            urls,
            request_budget: Duration::from_millis(200),
            max_in_flight_per_upstream: 512,
            retry_after: Duration::from_secs(1),
            server_timeout: Duration::from_secs(1),
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
}

/// A configuration value the service cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Every request would time out before it started.
    #[error("the request budget must be more than zero")]
    ZeroBudget,
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
