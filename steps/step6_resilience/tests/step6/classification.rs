//! Part "the circuit breaker", continued: what counts against an upstream
//! (`verdict` in `src/breaker.rs`, as `ProductService` reports to its
//! breakers).
//!
//! The breaker counts what the upstream did, not what we did to ourselves.
//! These tests call one section through `ProductService::fetch` with a
//! breaker and no hedge, against `FastUpstream` fakes on loopback, so they use
//! *real* time with wide margins: a paused clock would jump to every deadline
//! while a request waits on a socket. The tests' breakers use
//! `common::fair_timeout`: a timeout counts only if its call had at least
//! 100 ms of its own before the deadline and was seen within 200 ms of it.
//!
//! The two timeout tests that need an on-time timer run the fakes on a
//! runtime of their own, so nothing but the test's own call runs on the
//! test's runtime; the test about a late timer blocks the test's runtime on
//! purpose, which must not stop the fakes either.
//!
//! Past the knee a timeout can be ours even when its timer fires on time:
//! the retry loop's attempts end by their own short deadlines while the
//! answers they wait for sit unread behind our queue of ready tasks. What
//! shows it is the runtime's lag, measured by a heartbeat (`RuntimeLag`),
//! which the edge hands the service and the service hands each verdict
//! (`CallTimes::runtime_lag`: the worst it ran behind while the call was in
//! flight). Three tests pin that rule: one asks `verdict` directly, one goes
//! through the service with a heartbeat that runs behind, and one with a
//! runtime that stalls in the middle of the call and catches up before the
//! timeout is seen.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fake_upstreams::fast::Behaviour;
use fake_upstreams::testing::{closed_port_url, loopback_client, wait_until, within_time_limit};
use step6_resilience::edge::EdgeMetrics;
use step6_resilience::telemetry::{RuntimeLag, heartbeat};
use step6_resilience::{
    BreakerConfig, BreakerState, CallTimes, CircuitBreaker, Deadline, FetchError, Price,
    ProductService, Resilience, Upstream, UpstreamUrls, Verdict, verdict,
};
use tokio::time::Instant;

use crate::common::{
    Fakes, FakesOnTheirOwnRuntime, PRODUCT_ID, failing_503, fair_timeout, hanging, healthy, ms,
};

/// How long a request gets to reach the fake. Loopback takes a millisecond
/// or two; the margin is for a loaded machine.
const REACH_LIMIT: Duration = Duration::from_secs(5);

/// A breaker that opens after `failure_threshold` failures in a row and then
/// stays open for the rest of the test.
fn breaker_config(failure_threshold: u32) -> BreakerConfig {
    BreakerConfig {
        failure_threshold,
        cool_down: Duration::from_secs(60),
        half_open_probes: 1,
        fair_timeout: fair_timeout(),
    }
}

/// Breakers on, hedging off: one section is one request.
fn breakers_only(failure_threshold: u32) -> Resilience {
    Resilience {
        breaker: Some(breaker_config(failure_threshold)),
        ..Resilience::off()
    }
}

/// Pricing's breaker state.
fn pricing_state(service: &ProductService) -> BreakerState {
    service
        .breaker(Upstream::Pricing)
        .expect("breakers are on")
        .state()
}

/// One pricing section, bound by `deadline`.
async fn fetch_price(service: &ProductService, deadline: Deadline) -> Result<Price, FetchError> {
    service
        .fetch::<Price>(Upstream::Pricing, PRODUCT_ID, deadline)
        .await
}

/// A 5xx is the upstream failing: with a threshold of 3, three 503s in a row open its breaker.
#[tokio::test]
async fn a_5xx_counts_as_a_failure_and_opens_the_breaker() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), failing_503(), healthy()).await;
        let service = fakes.service(breakers_only(3));

        let mut states = Vec::new();
        for _ in 0..3 {
            let result = fetch_price(&service, Deadline::after(Duration::from_secs(2))).await;
            assert!(
                matches!(result, Err(FetchError::Status { status: 503, .. })),
                "pricing answers 503, got {result:?}"
            );
            states.push(pricing_state(&service));
        }

        assert_eq!(
            states,
            [
                BreakerState::Closed,
                BreakerState::Closed,
                BreakerState::Open
            ],
            "a 503 is the upstream's own failure: the 3rd in a row reaches the threshold of 3"
        );
    })
    .await;
}

/// A 4xx is a working upstream answering about our request: five 404s never open a breaker with a threshold of 2.
#[tokio::test]
async fn a_4xx_is_a_working_upstream_and_does_not_open_the_breaker() {
    within_time_limit(async {
        let not_found = Behaviour::fixed(ms(10)).failing(1.0, 404);
        let fakes = Fakes::start(healthy(), not_found, healthy()).await;
        let service = fakes.service(breakers_only(2));

        for _ in 0..5 {
            let result = fetch_price(&service, Deadline::after(Duration::from_secs(2))).await;
            assert!(
                matches!(result, Err(FetchError::Status { status: 404, .. })),
                "pricing answers 404, got {result:?}: the breaker must let every call through"
            );
        }

        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "a 404 says the upstream works and our request was wrong: it must not count as a failure"
        );
        assert_eq!(fakes.pricing.counters().requests, 5);
    })
    .await;
}

/// A refused connection is the upstream (or the way to it) failing: with a threshold of 3, three calls to a port nobody listens on open the breaker.
#[tokio::test]
async fn a_refused_connection_counts_as_a_failure_and_opens_the_breaker() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), healthy(), healthy()).await;
        // Pricing's address is a port nobody listens on any more.
        let refusing = closed_port_url();
        let service = ProductService::new(
            loopback_client(),
            UpstreamUrls {
                pricing: refusing,
                ..fakes.urls()
            },
            breakers_only(3),
        )
        .expect("a valid configuration");

        let mut states = Vec::new();
        for _ in 0..3 {
            let result = fetch_price(&service, Deadline::after(Duration::from_secs(2))).await;
            assert!(
                matches!(result, Err(FetchError::Transport { .. })),
                "nobody listens on pricing's port, got {result:?}"
            );
            states.push(pricing_state(&service));
        }

        assert_eq!(
            states,
            [
                BreakerState::Closed,
                BreakerState::Closed,
                BreakerState::Open
            ],
            "a refused connection means nobody is there to answer: the 3rd in a row reaches the threshold of 3"
        );
    })
    .await;
}

/// A call that starts with too little of the page's deadline left does not count: two calls with 50 ms left (the minimum is 100 ms) leave a breaker with a threshold of 2 closed.
#[tokio::test]
async fn a_call_cut_short_by_the_pages_own_deadline_does_not_count() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(2));

        for _ in 0..2 {
            // The page spent most of its deadline before this call (queued,
            // or on other work): 50 ms are left, less than the 100 ms a call
            // needs for its timeout to count.
            let deadline = Deadline::after(ms(50));
            let result = fetch_price(&service, deadline).await;
            assert!(
                matches!(result, Err(FetchError::Timeout { .. })),
                "pricing hangs, so the call ends at the deadline, got {result:?}"
            );
        }

        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "each call had 50 ms of its own, below the 100 ms minimum: the page had spent its deadline before the call, so the timeout is the page's doing, not the upstream's, and must not count"
        );
    })
    .await;
}

/// A timeout seen late because our own runtime was blocked does not count: with the runtime's only thread blocked past the deadline twice, the breaker stays closed.
#[tokio::test]
async fn a_timeout_seen_late_because_our_runtime_was_blocked_does_not_count() {
    within_time_limit(async {
        // The fakes run on a runtime of their own: blocking this one must
        // not stop them.
        let fakes = FakesOnTheirOwnRuntime::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(2));

        for call in 1..=2 {
            // 600 ms of its own: a fair chance, had we been there to see it.
            let mut fetch = pin!(fetch_price(&service, Deadline::after(ms(600))));
            tokio::select! {
                result = &mut fetch => panic!("pricing hangs, yet the call ended at once: {result:?}"),
                reached = wait_until(REACH_LIMIT, || fakes.pricing.counters().requests == call) => {
                    assert!(reached.is_ok(), "request {call} never reached pricing");
                }
            }

            // Our process is saturated: this runtime's only thread is busy
            // for 1.2 s, so nothing on it runs, the deadline's timer
            // included, until about 600 ms after the deadline.
            std::thread::sleep(ms(1_200));
            let result = fetch.await;

            assert!(
                matches!(result, Err(FetchError::Timeout { .. })),
                "pricing hangs, so the call ends with a timeout, got {result:?}"
            );
        }

        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "both timeouts were seen about 600 ms after their deadline, beyond the 200 ms tolerance: our runtime was blocked, so they say nothing about the upstream and must not count"
        );
    })
    .await;
}

/// A timeout with a fair chance, seen on time, is the upstream failing: two hanging calls with 300 ms of their own open a breaker with a threshold of 2.
#[tokio::test]
async fn a_timeout_with_a_fair_chance_seen_on_time_counts_as_a_failure() {
    within_time_limit(async {
        let fakes = FakesOnTheirOwnRuntime::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(2));

        let mut states = Vec::new();
        for _ in 0..2 {
            let result = fetch_price(&service, Deadline::after(ms(300))).await;
            assert!(
                matches!(result, Err(FetchError::Timeout { .. })),
                "pricing hangs, so the call ends at the deadline, got {result:?}"
            );
            states.push(pricing_state(&service));
        }

        assert_eq!(
            states,
            [BreakerState::Closed, BreakerState::Open],
            "each call had 300 ms of its own (at least the 100 ms minimum) and nothing kept the runtime from seeing its deadline on time: the upstream had a fair chance and did not answer, so both timeouts count and the 2nd opens the breaker"
        );
    })
    .await;
}

/// A timeout with a fair chance, seen on time, still says nothing when our runtime was running far behind its schedule as it was seen; the lag excuses only timeouts, not a 5xx nor an answer.
#[test]
fn a_timeout_seen_while_our_runtime_ran_far_behind_does_not_count() {
    let fair = fair_timeout();
    let admitted = Instant::now();
    // 600 ms of its own, seen 1 ms after its deadline: a fair chance, on
    // time, by the call's own clock.
    let deadline = admitted + ms(600);
    let seen_with_lag = |runtime_lag: Duration| CallTimes {
        admitted,
        deadline,
        ended: deadline + ms(1),
        runtime_lag,
    };
    let keeping_up = seen_with_lag(Duration::ZERO);
    // Ten times the 200 ms tolerance.
    let far_behind = seen_with_lag(ms(2_000));
    let timeout: Result<Price, FetchError> = Err(FetchError::Timeout {
        upstream: Upstream::Pricing,
    });
    let failed: Result<Price, FetchError> = Err(FetchError::Status {
        upstream: Upstream::Pricing,
        status: 503,
    });

    assert_eq!(
        verdict(&timeout, keeping_up, fair),
        Verdict::Failure,
        "a timeout after 600 ms of its own, seen on time, with the runtime keeping up: the upstream had a fair chance"
    );
    assert_eq!(
        verdict(&timeout, far_behind, fair),
        Verdict::SaysNothing,
        "the same timeout, seen while our runtime ran 2 s behind its schedule (tolerance 200 ms): the answer may be waiting unread behind our own queue, so the timeout measured us and must say nothing"
    );
    assert_eq!(
        verdict(&failed, far_behind, fair),
        Verdict::Failure,
        "a 503 is the upstream's own word, however late we read it: our lag excuses only timeouts"
    );
}

/// A runtime kept busy on a thread of its own, with a heartbeat on it that
/// writes into `lag`: what a saturated runtime looks like to the breakers,
/// while the test's own runtime stays free to see its timers on time.
struct RuntimeRunningBehind {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeRunningBehind {
    /// How long the busy runtime is blocked at a time: each beat of its
    /// heartbeat is about this late, so from its first beat on, `lag` reads
    /// at least a quarter of it (the smoothing's first step): 500 ms.
    const BUSY_FOR: Duration = Duration::from_millis(2_000);

    /// Starts the busy runtime; its heartbeat records into `histogram` and
    /// writes into `lag`.
    fn start(histogram: metrics::Histogram, lag: RuntimeLag) -> RuntimeRunningBehind {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime to keep busy");
            runtime.block_on(async move {
                tokio::spawn(heartbeat(histogram, lag, ms(10)));
                while !stopped.load(Ordering::Relaxed) {
                    // Busy: nothing else on this runtime runs meanwhile.
                    std::thread::sleep(Self::BUSY_FOR);
                    tokio::task::yield_now().await;
                }
            });
        });
        RuntimeRunningBehind {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RuntimeRunningBehind {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Through the service: while the runtime's heartbeat says it runs far behind, two timeouts with a fair chance, seen on time, leave a breaker with a threshold of 2 closed.
#[tokio::test]
async fn timeouts_seen_on_time_while_the_heartbeat_says_we_run_behind_do_not_count() {
    within_time_limit(async {
        let fakes = FakesOnTheirOwnRuntime::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(2));
        // The heartbeat's histogram is an edge's; only the lag matters here.
        let histogram = EdgeMetrics::register(&service).event_loop_lag();
        let lag = RuntimeLag::new();
        let _busy = RuntimeRunningBehind::start(histogram, lag.clone());
        let behind = wait_until(REACH_LIMIT, || lag.recent() >= ms(500)).await;
        assert!(
            behind.is_ok(),
            "the busy runtime's heartbeat shows it running behind: {:?}",
            lag.recent()
        );
        let service = service.watching_runtime(lag.clone());

        let mut lag_at_the_end = Vec::new();
        for _ in 0..2 {
            // 300 ms of its own, and this runtime is free: the timeout is
            // seen on time, by the call's own clock.
            let result = fetch_price(&service, Deadline::after(ms(300))).await;
            lag_at_the_end.push(lag.recent());
            assert!(
                matches!(result, Err(FetchError::Timeout { .. })),
                "pricing hangs, so the call ends at the deadline, got {result:?}"
            );
        }

        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "each timeout was seen while the runtime's heartbeat said it ran {lag_at_the_end:?} behind (tolerance 200 ms): the answer may have been waiting unread behind our own queue, so they say nothing and must not count"
        );
    })
    .await;
}

/// A runtime on a thread of its own, with a heartbeat on it that writes into
/// `lag`, which keeps up until told to stall once.
struct RuntimeThatStalls {
    stall: Option<std::sync::mpsc::Sender<Duration>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeThatStalls {
    fn start(histogram: metrics::Histogram, lag: RuntimeLag) -> RuntimeThatStalls {
        let (stall, stalls) = std::sync::mpsc::channel::<Duration>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime to stall");
            runtime.block_on(async move {
                tokio::spawn(heartbeat(histogram, lag, ms(10)));
                loop {
                    match stalls.try_recv() {
                        // Blocked: nothing else on this runtime runs meanwhile.
                        Ok(how_long) => std::thread::sleep(how_long),
                        Err(std::sync::mpsc::TryRecvError::Empty) => {
                            tokio::time::sleep(ms(1)).await;
                        }
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                    }
                }
            });
        });
        RuntimeThatStalls {
            stall: Some(stall),
            thread: Some(thread),
        }
    }

    fn stall_for(&self, how_long: Duration) {
        if let Some(stall) = &self.stall {
            stall
                .send(how_long)
                .expect("the stalling runtime is running");
        }
    }
}

impl Drop for RuntimeThatStalls {
    fn drop(&mut self) {
        drop(self.stall.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Through the service: our runtime stalls for 600 ms in the middle of a call and has caught up by the time the call times out; the timeout still says nothing, and a breaker with a threshold of 1 stays closed.
#[tokio::test]
async fn a_timeout_after_our_runtime_stalled_during_the_call_does_not_count() {
    within_time_limit(async {
        let fakes = FakesOnTheirOwnRuntime::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(1));
        let histogram = EdgeMetrics::register(&service).event_loop_lag();
        let lag = RuntimeLag::new();
        let stalls = RuntimeThatStalls::start(histogram, lag.clone());
        let service = service.watching_runtime(lag.clone());

        // 1.5 s of its own; the stall is over long before that.
        let call = fetch_price(&service, Deadline::after(ms(1_500)));
        let stall_then_catch_up = async {
            tokio::time::sleep(ms(100)).await;
            stalls.stall_for(ms(600));
            let showed = wait_until(REACH_LIMIT, || lag.recent() >= ms(100)).await;
            let caught_up = wait_until(REACH_LIMIT, || lag.recent() <= ms(50)).await;
            (showed, caught_up)
        };
        let (result, (showed, caught_up)) = tokio::join!(call, stall_then_catch_up);
        let lag_when_seen = lag.recent();

        assert!(showed.is_ok(), "the stall shows in the heartbeat's lag");
        assert!(
            caught_up.is_ok(),
            "the runtime catches up after the stall: {:?}",
            lag.recent()
        );
        assert!(
            matches!(result, Err(FetchError::Timeout { .. })),
            "pricing hangs, so the call ends at the deadline, got {result:?}"
        );
        assert!(
            lag_when_seen < ms(200),
            "by the deadline the runtime had caught up: {lag_when_seen:?}"
        );
        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "our runtime stalled for 600 ms while the call was in flight (tolerance 200 ms): its answer could have sat unread behind that stall, so the timeout says nothing, though the runtime was keeping up again ({lag_when_seen:?}) when it was seen"
        );
    })
    .await;
}

/// A call we dropped while it was in flight says nothing about the upstream: three of them leave a breaker with a threshold of 1 closed.
#[tokio::test]
async fn a_call_dropped_in_flight_does_not_count() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(breakers_only(1));

        for call in 1..=3 {
            let mut fetch = pin!(fetch_price(
                &service,
                Deadline::after(Duration::from_secs(10))
            ));
            tokio::select! {
                result = &mut fetch => panic!("pricing hangs, yet the call ended: {result:?}"),
                reached = wait_until(REACH_LIMIT, || fakes.pricing.counters().requests == call) => {
                    assert!(reached.is_ok(), "request {call} never reached pricing");
                }
            }
            // The caller goes away: the call's future is dropped mid-flight.
        }

        assert_eq!(
            pricing_state(&service),
            BreakerState::Closed,
            "a call we dropped is our decision, not the upstream's failure: it must not count"
        );
    })
    .await;
}

/// A call that ends `Cancelled`, or `Overloaded` (shed by our own full bulkhead, never sent), says nothing about the upstream: three of each leave a breaker with a threshold of 1 closed.
#[tokio::test(start_paused = true)]
async fn a_call_that_ends_cancelled_or_shed_by_our_bulkhead_does_not_count() {
    within_time_limit(async {
        let cancelled = || FetchError::Cancelled {
            upstream: Upstream::Pricing,
        };
        let shed = || FetchError::Overloaded {
            upstream: Upstream::Pricing,
        };
        let endings: [(&str, &dyn Fn() -> FetchError); 2] =
            [("Cancelled", &cancelled), ("Overloaded", &shed)];
        for (described, ending) in endings {
            let breaker = CircuitBreaker::new(Upstream::Pricing, breaker_config(1))
                .expect("a valid breaker configuration");

            for _ in 0..3 {
                let result = breaker
                    .call(Deadline::after(Duration::from_secs(10)), async {
                        tokio::time::sleep(ms(20)).await;
                        Err::<(), _>(ending())
                    })
                    .await;
                assert!(result.is_err(), "the call itself ends with {described}");
            }

            assert_eq!(
                breaker.state(),
                BreakerState::Closed,
                "a call that ends with {described} is our decision (cancelled, or shed by our own bulkhead), not the upstream's failure: it must not count"
            );
        }
    })
    .await;
}
