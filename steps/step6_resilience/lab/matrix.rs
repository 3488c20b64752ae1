//! The lab's matrix: four upstream profiles, and resilience off or on.
//!
//! Every profile starts from the same healthy latency (log-normal, median
//! 20 ms, so the p95 is about 30 ms) and breaks one thing:
//!
//! * **healthy**: nothing; the control.
//! * **stalls**: 1 % of answers from every upstream stall for 1 s (a GC
//!   pause, a lost packet): the tail Dean and Barroso's hedging targets.
//! * **20% failures**: every upstream answers 503 one time in five: neither
//!   a breaker nor a hedge should react (retrying is the tool for this, and
//!   this step has none: see the chapter).
//! * **reviews dead**: reviews never answers: the breaker's case.
//!
//! "Off" keeps the deadline and partial responses (they are the fan-out's
//! shape, not an add-on) and admits every request; "on" adds, per upstream,
//! a breaker, hedges and retries within one budget, and a bulkhead, and the
//! edge's admission sheds as the binary's does (`cell::edge_config`).

use std::time::Duration;

use fake_upstreams::fast::{Behaviour, Latency};
use step6_resilience::edge::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_RUNTIME_LAG, breaker_timer_tolerance,
};
use step6_resilience::{
    BreakerConfig, BudgetConfig, BulkheadConfig, FairTimeout, HedgeConfig, HedgeDelay, Resilience,
    RetryConfig,
};

/// One way the upstreams can behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Healthy,
    Stalls,
    Failures,
    ReviewsDead,
}

impl Profile {
    pub const ALL: [Profile; 4] = [
        Profile::Healthy,
        Profile::Stalls,
        Profile::Failures,
        Profile::ReviewsDead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Healthy => "healthy",
            Profile::Stalls => "1% 1s stalls",
            Profile::Failures => "20% failures",
            Profile::ReviewsDead => "reviews dead",
        }
    }

    /// The behaviours of inventory, pricing and reviews, in that order.
    pub fn behaviours(self) -> [Behaviour; 3] {
        let healthy = Behaviour::default().with_latency(base_latency());
        match self {
            Profile::Healthy => [healthy.clone(), healthy.clone(), healthy],
            Profile::Stalls => {
                let stalling = Behaviour::default().with_latency(Latency::WithStalls {
                    base: Box::new(base_latency()),
                    probability: 0.01,
                    stall: Duration::from_secs(1),
                });
                [stalling.clone(), stalling.clone(), stalling]
            }
            Profile::Failures => {
                let failing = healthy.failing(0.2, 503);
                [failing.clone(), failing.clone(), failing]
            }
            Profile::ReviewsDead => [healthy.clone(), healthy, Behaviour::default().hanging()],
        }
    }
}

/// A healthy upstream's latency: most answers near 20 ms, a modest tail.
fn base_latency() -> Latency {
    Latency::LogNormal {
        median: Duration::from_millis(20),
        sigma: 0.25,
    }
}

/// Resilience off or on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    On,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Off, Mode::On];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::On => "on",
        }
    }

    /// The service's mechanisms in this mode, for an edge that admits at
    /// most `max_in_flight` pages and sheds past `max_runtime_lag` with
    /// resilience on: each bulkhead is that large, as [`BULKHEAD`] explains,
    /// and the breakers' tolerance is derived from that lag, as the binary
    /// derives it ([`breaker_timer_tolerance`]).
    pub fn resilience(self, max_in_flight: usize, max_runtime_lag: Duration) -> Resilience {
        match self {
            Mode::Off => Resilience::off(),
            Mode::On => Resilience {
                breaker: Some(BreakerConfig {
                    fair_timeout: FairTimeout {
                        timer_tolerance: breaker_timer_tolerance(max_runtime_lag),
                        ..BREAKER.fair_timeout
                    },
                    ..BREAKER
                }),
                hedge: Some(HEDGE),
                retry: Some(RETRY),
                budget: Some(BUDGET),
                bulkhead: Some(BulkheadConfig {
                    max_in_flight,
                    ..BULKHEAD
                }),
            },
        }
    }
}

/// Ten failures in a row: at a 20 % failure rate that happens by chance
/// once in 0.2^10 ≈ 10 million calls, so a merely flaky upstream does not
/// trip it; a dead one trips it within ten calls.
///
/// A timeout counts only with a fair chance: at least 200 ms of the call's
/// own before the page's deadline (ten times the fakes' 20 ms median, several
/// times their p99), seen on time, and with our runtime never far behind
/// while the call was in flight: half the lag at which admission sheds
/// ([`breaker_timer_tolerance`], which says why; 10 ms at the default,
/// and [`Mode::resilience`] derives it from `--max-runtime-lag-ms`).
pub const BREAKER: BreakerConfig = BreakerConfig {
    failure_threshold: 10,
    cool_down: Duration::from_secs(1),
    half_open_probes: 1,
    fair_timeout: FairTimeout {
        min_own_time: Duration::from_millis(200),
        timer_tolerance: breaker_timer_tolerance(DEFAULT_MAX_RUNTIME_LAG),
    },
};

/// Hedge at the recent p95, paid from [`BUDGET`].
///
/// The estimate needs `min_samples` answers in one window. At concurrency 5
/// with stalls a closed loop makes only about 80 pages a second, so a 1 s
/// window with 100 samples would never hedge at all (a first run of this lab
/// did exactly that): 2 s windows and 50 samples keep the estimate available
/// at every load level of the matrix.
pub const HEDGE: HedgeConfig = HedgeConfig {
    delay: HedgeDelay::Quantile {
        quantile: 0.95,
        floor: Duration::from_millis(5),
        min_samples: 50,
    },
    latency_window: Duration::from_secs(2),
};

/// Retry an error that may pass (a 5xx, no answer, an attempt's own
/// timeout), at most twice per section, paid from [`BUDGET`].
///
/// An attempt gets at most 100 ms: about three times the fakes' p99 (a
/// log-normal with a 20 ms median and sigma 0.25 has its p99 near 36 ms),
/// so a healthy answer is almost never cut, and a 1 s stall the hedge did
/// not race is cut early enough for another attempt. 20 ms of the page's
/// deadline are kept for the page to answer, no attempt starts with less
/// than 20 ms (the fakes' median), and the pauses are full jitter from
/// 0–5 ms up to 0–20 ms.
pub const RETRY: RetryConfig = RetryConfig {
    max_attempts: 3,
    attempt_timeout: Duration::from_millis(100),
    margin: Duration::from_millis(20),
    min_attempt: Duration::from_millis(20),
    base_delay: Duration::from_millis(5),
    max_delay: Duration::from_millis(20),
};

/// One budget per upstream for retries and hedges together: at most 10 %
/// extra requests (the SRE book's advice for retries), plus a burst of 10.
pub const BUDGET: BudgetConfig = BudgetConfig {
    ratio: 0.1,
    burst: 10.0,
};

/// A bulkhead per upstream as large as the edge's limit on pages in flight
/// ([`DEFAULT_MAX_IN_FLIGHT`] unless `--max-in-flight` says otherwise, as
/// the binary sizes it): one request per admitted page fits, so it binds
/// only when retries and hedges would push an upstream past what the edge
/// admits. Smaller, it would shed pages the edge admitted: a closed loop of
/// 500 clients would find 256 permits, say, and wait for the rest. A
/// request waits at most 20 ms for a permit.
pub const BULKHEAD: BulkheadConfig = BulkheadConfig {
    max_in_flight: DEFAULT_MAX_IN_FLIGHT,
    max_wait: Duration::from_millis(20),
};
