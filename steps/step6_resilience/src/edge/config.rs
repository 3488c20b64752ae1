//! The edge's settings: the request budget, the in-flight limit (its hard
//! cap, and the latency target and floor of the limit learnt under it), the
//! runtime lag past which admission sheds, what a shed client is told, and
//! which answers get an access log line.
//!
//! Given: this whole file; there is nothing to write in it.

use std::time::Duration;

/// The whole request's budget: the deadline set at the edge is this far
/// from when the request was admitted. The module's latency goal is a p99
/// of 200 ms; a page that cannot answer by then is better answered with an
/// error than late.
pub const DEFAULT_REQUEST_BUDGET: Duration = Duration::from_millis(200);

/// How many page requests the handler may hold at once: the hard cap, a
/// backstop behind [`DEFAULT_MAX_RUNTIME_LAG`], which does the shedding
/// that adapts to the machine.
///
/// Little's law: requests in flight = arrival rate × time each one spends
/// in the service. A page that takes longer than its budget is answered
/// with an error anyway, so more than (the most pages a second the machine
/// serves) × (the budget) in flight can never all be answered in time. The
/// chapter's lab found about 6,000 pages a second on 2 cores; × 200 ms is
/// 1,200. 1,024 is that order of magnitude, a power of two so nobody
/// mistakes it for a measurement. It must not be the knee's rate × a
/// *healthy* page's time (a few hundred): a closed loop of 500 clients
/// that the machine serves within the budget would be shed for nothing.
/// Measure your own machine (`cargo xtask lab step6`) and set
/// `--max-in-flight` from it.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// The latency the learnt in-flight limit keeps a window's p95 under
/// ([`LatencyLimit`](crate::edge::admission::LatencyLimit)): 2/5 of
/// [`DEFAULT_REQUEST_BUDGET`], 80 ms.
///
/// Why 2/5: it is the attempt timeout `product-page` gives each upstream
/// call (`resilience` in `src/main.rs`). A page slower than that had an
/// attempt run into its timeout, or retry; past the knee those timeouts
/// are real (the upstreams are slow because we took their CPU), and the
/// breakers count them. The limit must cut before they open on healthy
/// upstreams, so it aims at the attempt timeout, not at the budget. A
/// healthy page (a few tens of milliseconds: three upstream calls at once,
/// a hedge at their p95) is far below it. `product-page` derives it from
/// `--budget-ms` the same way.
pub const DEFAULT_LATENCY_TARGET: Duration = Duration::from_millis(80);

/// The fewest pages the learnt limit ever allows at once.
///
/// The limit cannot tell "we are overloaded" from "one upstream is slow on
/// its own"; it cuts for both. The floor keeps a modest load served while
/// an upstream is slow for reasons of its own: 16 pages at once at a 200 ms
/// budget is at least 80 pages a second, whatever the latency.
pub const DEFAULT_MIN_IN_FLIGHT: usize = 16;

/// How far behind its schedule the runtime may run (the heartbeat's
/// lateness, [`RuntimeLag`](crate::telemetry::RuntimeLag)) before
/// admission sheds page requests: beyond it, a share of them is shed, from
/// none at this lag to all at twice it.
///
/// Lag is the queue in front of our own CPU: a page waits that long at each
/// step that waits for a worker (its request read, each answer, its
/// response), several times per page. Below a few milliseconds the runtime
/// keeps up; 20 ms at each of a page's steps already spends a large part of
/// a 200 ms budget on waiting for ourselves. Node's `toobusy` sheds at 70 ms
/// by default, for servers that run on one thread and budget seconds.
pub const DEFAULT_MAX_RUNTIME_LAG: Duration = Duration::from_millis(20);

/// The breakers' `timer_tolerance` for an edge that sheds past
/// `max_runtime_lag`: half of it (at least the timers' 1 ms), 10 ms by
/// default.
///
/// Below the shed threshold, not at it: an answer waits in our queue more
/// than once on its way back (for the connection's task to read it, then
/// for the section's task to take it), so a runtime a little behind at each
/// wait can make a healthy call miss a short attempt deadline while no
/// single beat of the heartbeat is late by the threshold. With the
/// tolerance at 50 ms, the lab measured breakers opening on healthy
/// upstreams at c=500 on timeouts seen while the worst beat during the call
/// was 11–49 ms late (the step 6 chapter, "Count what the upstream did").
pub const fn breaker_timer_tolerance(max_runtime_lag: Duration) -> Duration {
    // `checked_div` because `/` is not usable in a `const fn`; by 2 it
    // cannot fail.
    let half = match max_runtime_lag.checked_div(2) {
        Some(half) => half,
        None => max_runtime_lag,
    };
    if half.as_millis() < 1 {
        Duration::from_millis(1)
    } else {
        half
    }
}

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
    /// Page requests handled at once, at most (the hard cap); one more is
    /// shed. The learnt limit, if any, stays at or below it.
    pub max_in_flight: usize,
    /// Learn the in-flight limit from the pages' latency, keeping a
    /// window's p95 under this target (`None`: the limit is
    /// `max_in_flight`, whatever the latency).
    pub latency_target: Option<Duration>,
    /// The fewest page requests the learnt limit allows at once (at least
    /// 1; above `max_in_flight`, the floor is the hard cap).
    pub min_in_flight: usize,
    /// The runtime lag past which page requests are shed (a growing share
    /// of them, all at twice this lag).
    pub max_runtime_lag: Duration,
    /// Sent to a shed client (and to one refused by an open breaker) as
    /// `Retry-After`, in whole seconds, at least 1.
    pub retry_after: Duration,
    /// Write an access log line for every answer, successes included. Off
    /// by default: only an answer that is not a success gets one (see
    /// `routes::AccessLog` for why).
    pub log_every_request: bool,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            request_budget: DEFAULT_REQUEST_BUDGET,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            latency_target: Some(DEFAULT_LATENCY_TARGET),
            min_in_flight: DEFAULT_MIN_IN_FLIGHT,
            max_runtime_lag: DEFAULT_MAX_RUNTIME_LAG,
            retry_after: DEFAULT_RETRY_AFTER,
            log_every_request: false,
        }
    }
}

/// An edge setting that cannot work, caught when the edge is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeConfigError {
    /// With no place at all, every page would be shed.
    #[error("max_in_flight must be at least 1: with 0, every page request is shed")]
    NoRoomInFlight,
    /// Kept within what a tokio semaphore can count: `product-page` sizes
    /// each upstream's bulkhead (a semaphore) as the hard cap.
    #[error("max_in_flight must be at most {max}, got {got}")]
    TooMuchInFlight {
        /// What was asked for.
        got: usize,
        /// The most a semaphore can hold.
        max: usize,
    },
    /// With a floor of 0, the learnt limit could shed every page and never
    /// admit one to learn from again.
    #[error(
        "min_in_flight must be at least 1: with 0, the learnt limit can shed every page for good"
    )]
    NoFloor,
    /// A zero target would call every page slow.
    #[error("the latency target must be longer than zero")]
    ZeroLatencyTarget,
    /// A zero budget times out every page before it starts.
    #[error("the request budget must be longer than zero")]
    ZeroBudget,
    /// tokio's timers have millisecond granularity: a heartbeat is late by
    /// about that much on a runtime that keeps up.
    #[error("max_runtime_lag must be at least 1 ms (the timers' granularity), got {0:?}")]
    RuntimeLagBelowGranularity(Duration),
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
        if self.latency_target.is_some() && self.min_in_flight == 0 {
            return Err(EdgeConfigError::NoFloor);
        }
        if self.latency_target == Some(Duration::ZERO) {
            return Err(EdgeConfigError::ZeroLatencyTarget);
        }
        if self.request_budget.is_zero() {
            return Err(EdgeConfigError::ZeroBudget);
        }
        if self.max_runtime_lag < Duration::from_millis(1) {
            return Err(EdgeConfigError::RuntimeLagBelowGranularity(
                self.max_runtime_lag,
            ));
        }
        Ok(self)
    }
}
