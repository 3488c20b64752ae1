//! Step 6's tests: what "done" means for degrade, don't collapse.
//!
//! The same file runs against your exercise (`cargo xtask verify step6`) and
//! against the reference solution (`cargo xtask verify step6 --solution`).
//!
//! Two kinds of clock, on purpose:
//!
//! * The **breaker** and **hedge** tests drive in-process fakes (closures and
//!   futures, no sockets) under *paused* time: tokio's clock only moves when
//!   every task is waiting on a timer, so a 10-second cool-down takes no time
//!   and every instant is exact.
//! * The **cancellation** and **partial response** tests use
//!   `fake_upstreams::fast::FastUpstream` on loopback, in *real* time with
//!   wide margins: a paused clock would jump ahead while a request waits on a
//!   socket, and every deadline would fire at once. The fake counts requests
//!   dropped by their client (`cancelled`), which is how these tests see
//!   cancellation from the upstream's side.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_upstreams::fast::{Behaviour, CounterSnapshot, FastUpstream};
use step6_resilience::{
    BreakerConfig, BreakerState, CircuitBreaker, Deadline, FetchError, Hedge, HedgeConfig,
    HedgeDelay, ProductPage, ProductService, Resilience, ReviewStats, Upstream, UpstreamUrls,
    fetch_json, fetch_product_page, hedged,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Every test gets at most this long, so a future that never completes fails
/// with a message instead of freezing the run.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(20);

/// The product every test asks for.
const PRODUCT_ID: u64 = 42;

/// Runs `test`, failing it with a clear message if it outlives the limit.
async fn within_time_limit<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIME_LIMIT, test)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the test did not finish within {TEST_TIME_LIMIT:?}: is a future waiting forever?"
            )
        })
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

// ---------------------------------------------------------------------------
// Circuit breaker: paused time, the "upstream" is a future we write inline.
// ---------------------------------------------------------------------------

fn breaker(failure_threshold: u32, cool_down: Duration, half_open_probes: u32) -> CircuitBreaker {
    CircuitBreaker::new(
        Upstream::Reviews,
        BreakerConfig {
            failure_threshold,
            cool_down,
            half_open_probes,
        },
    )
    .expect("a valid breaker configuration")
}

/// An upstream call that fails the way a sick upstream does (503), counting
/// itself in `calls` when it actually runs.
async fn failing_call(calls: &AtomicUsize) -> Result<(), FetchError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(FetchError::Status {
        upstream: Upstream::Reviews,
        status: 503,
    })
}

/// An upstream call that succeeds, counting itself in `calls` when it runs.
async fn healthy_call(calls: &AtomicUsize) -> Result<(), FetchError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Trips `breaker` open with `failures` failing calls.
async fn trip(breaker: &CircuitBreaker, failures: u32) {
    let calls = AtomicUsize::new(0);
    for _ in 0..failures {
        let _ = breaker.call(failing_call(&calls)).await;
    }
}

/// The breaker opens after the configured number of failures in a row, not before.
#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_the_configured_failures_in_a_row() {
    within_time_limit(async {
        let breaker = breaker(3, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);

        let _ = breaker.call(failing_call(&calls)).await;
        let _ = breaker.call(failing_call(&calls)).await;
        let after_two = breaker.state();
        let _ = breaker.call(failing_call(&calls)).await;

        assert_eq!(
            after_two,
            BreakerState::Closed,
            "2 failures are below the threshold of 3: the breaker must stay closed"
        );
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "the 3rd failure in a row reaches the threshold: the breaker must open"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3, "all three calls ran");
    })
    .await;
}

/// An open breaker fails fast with CircuitOpen and never calls the upstream.
#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_fast_without_calling_the_upstream() {
    within_time_limit(async {
        let breaker = breaker(2, Duration::from_secs(10), 1);
        trip(&breaker, 2).await;
        let calls = AtomicUsize::new(0);

        let started = Instant::now();
        let result = breaker.call(healthy_call(&calls)).await;

        assert!(
            matches!(
                result,
                Err(FetchError::CircuitOpen {
                    upstream: Upstream::Reviews
                })
            ),
            "an open breaker must answer CircuitOpen, got {result:?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "the call's future must not even be polled while the breaker is open"
        );
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "failing fast takes no time"
        );
    })
    .await;
}

/// A success in between resets the count: only failures *in a row* open the breaker.
#[tokio::test(start_paused = true)]
async fn a_success_resets_the_count_of_failures_in_a_row() {
    within_time_limit(async {
        let breaker = breaker(3, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);

        for _ in 0..2 {
            let _ = breaker.call(failing_call(&calls)).await;
        }
        breaker
            .call(healthy_call(&calls))
            .await
            .expect("the breaker is closed, so the healthy call runs and succeeds");
        for _ in 0..2 {
            let _ = breaker.call(failing_call(&calls)).await;
        }

        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "fail, fail, succeed, fail, fail is never 3 failures in a row"
        );
    })
    .await;
}

/// After the cool-down the breaker lets through only the configured number of probes.
#[tokio::test(start_paused = true)]
async fn after_the_cool_down_only_the_configured_probes_go_through() {
    within_time_limit(async {
        let breaker = breaker(1, Duration::from_secs(10), 2);
        trip(&breaker, 1).await;

        tokio::time::advance(ms(9_999)).await;
        let still_cooling = breaker.try_acquire().map(|_| ());
        tokio::time::advance(ms(1)).await;
        let first_probe = breaker.try_acquire();
        let second_probe = breaker.try_acquire();
        let third_call = breaker.try_acquire().map(|_| ());

        assert!(
            matches!(still_cooling, Err(FetchError::CircuitOpen { .. })),
            "1 ms before the 10 s cool-down ends the breaker must still fail fast"
        );
        assert!(
            first_probe.is_ok() && second_probe.is_ok(),
            "once the cool-down is over, 2 probes (the configured number) go through"
        );
        assert!(
            matches!(third_call, Err(FetchError::CircuitOpen { .. })),
            "while both probes are in flight, a 3rd call must fail fast, got {third_call:?}"
        );
    })
    .await;
}

/// A successful probe closes the breaker, and calls flow again.
#[tokio::test(start_paused = true)]
async fn a_successful_probe_closes_the_breaker() {
    within_time_limit(async {
        let breaker = breaker(1, Duration::from_secs(10), 1);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let calls = AtomicUsize::new(0);

        let probe = breaker.call(healthy_call(&calls)).await;

        assert!(probe.is_ok(), "the probe ran and succeeded, got {probe:?}");
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "a successful probe must close the breaker"
        );
        breaker
            .call(healthy_call(&calls))
            .await
            .expect("a closed breaker lets the next call through");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    })
    .await;
}

/// A failed probe reopens the breaker for a whole new cool-down.
#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker_for_another_cool_down() {
    within_time_limit(async {
        let breaker = breaker(1, Duration::from_secs(10), 1);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let calls = AtomicUsize::new(0);

        let _ = breaker.call(failing_call(&calls)).await;
        let after_failed_probe = breaker.state();
        tokio::time::advance(ms(9_999)).await;
        let almost_cooled = breaker.state();
        tokio::time::advance(ms(1)).await;

        assert_eq!(calls.load(Ordering::SeqCst), 1, "the probe itself ran");
        assert_eq!(
            after_failed_probe,
            BreakerState::Open,
            "a failed probe must reopen the breaker"
        );
        assert_eq!(
            almost_cooled,
            BreakerState::Open,
            "the new cool-down runs a full 10 s from the failed probe"
        );
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen,
            "after the second cool-down, the next call is a probe again"
        );
    })
    .await;
}

/// A call whose future is dropped mid-flight is a cancellation, not a failure.
#[tokio::test(start_paused = true)]
async fn a_cancelled_call_is_not_counted_as_a_failure() {
    within_time_limit(async {
        let breaker = breaker(2, Duration::from_secs(10), 1);
        let calls = AtomicUsize::new(0);

        // Five calls that never answer, each dropped by a timeout.
        for _ in 0..5 {
            let never_answers = breaker.call(std::future::pending::<Result<(), FetchError>>());
            let dropped = tokio::time::timeout(ms(100), never_answers).await;
            assert!(
                dropped.is_err(),
                "the pending call is dropped by the timeout"
            );
        }
        let _ = breaker.call(failing_call(&calls)).await;

        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "5 cancellations and 1 real failure are 1 failure, below the threshold of 2"
        );
    })
    .await;
}

/// A cancelled probe gives its slot back, so the next call can probe instead.
#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_its_slot_for_the_next_probe() {
    within_time_limit(async {
        let breaker = breaker(1, Duration::from_secs(10), 1);
        trip(&breaker, 1).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let calls = AtomicUsize::new(0);

        let abandoned_probe = breaker.call(std::future::pending::<Result<(), FetchError>>());
        let dropped = tokio::time::timeout(ms(100), abandoned_probe).await;
        let next = breaker.call(healthy_call(&calls)).await;

        assert!(dropped.is_err(), "the first probe never answers and is dropped");
        assert!(
            next.is_ok(),
            "the cancelled probe must free its slot: the next call should probe and succeed, got {next:?}"
        );
        assert_eq!(breaker.state(), BreakerState::Closed);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Hedged requests: paused time, the "upstream" is a scripted closure.
// ---------------------------------------------------------------------------

/// One scripted attempt: how long it takes, and what it answers.
type Script = (Duration, Result<&'static str, &'static str>);

/// An in-process upstream whose attempts follow a script, and which records
/// when each attempt started (relative to `origin`).
struct ScriptedUpstream {
    origin: Instant,
    script: Vec<Script>,
    starts: Mutex<Vec<Duration>>,
}

impl ScriptedUpstream {
    fn new(script: Vec<Script>) -> Self {
        ScriptedUpstream {
            origin: Instant::now(),
            script,
            starts: Mutex::new(Vec::new()),
        }
    }

    /// Makes the next attempt (lazy, like any future: it starts when polled).
    async fn attempt(&self) -> Result<&'static str, &'static str> {
        let index = {
            let mut starts = self.starts.lock().unwrap();
            starts.push(self.origin.elapsed());
            starts.len() - 1
        };
        let (latency, answer) = self.script[index % self.script.len()];
        tokio::time::sleep(latency).await;
        answer
    }

    fn starts(&self) -> Vec<Duration> {
        self.starts.lock().unwrap().clone()
    }
}

fn hedge_config(delay: HedgeDelay, budget_ratio: f64) -> HedgeConfig {
    HedgeConfig {
        delay,
        budget_ratio,
        budget_burst: 1.0,
        latency_window: Duration::from_secs(10),
    }
}

/// A hedge with a fixed delay and a budget that pays for every request.
fn fixed_hedge(delay: Duration) -> Hedge {
    Hedge::new(hedge_config(HedgeDelay::Fixed(delay), 1.0)).expect("a valid hedge configuration")
}

/// An attempt that answers before the hedge delay is the only attempt.
#[tokio::test(start_paused = true)]
async fn no_hedge_is_sent_when_the_first_attempt_answers_in_time() {
    within_time_limit(async {
        let hedge = fixed_hedge(ms(50));
        let upstream = ScriptedUpstream::new(vec![(ms(30), Ok("first"))]);

        let started = Instant::now();
        let answer = hedged(&hedge, || upstream.attempt()).await;

        assert_eq!(answer, Ok("first"));
        assert_eq!(started.elapsed(), ms(30));
        assert_eq!(
            upstream.starts(),
            [Duration::ZERO],
            "the first attempt answered at 30 ms, before the 50 ms hedge delay: no backup may be sent"
        );
        assert_eq!(hedge.hedges_sent(), 0);
    })
    .await;
}

/// When the first attempt is late, a backup goes out at the hedge delay and the faster answer wins.
#[tokio::test(start_paused = true)]
async fn a_backup_is_sent_after_the_hedge_delay_and_the_faster_answer_wins() {
    within_time_limit(async {
        let hedge = fixed_hedge(ms(50));
        let upstream =
            ScriptedUpstream::new(vec![(ms(1_000), Ok("first")), (ms(20), Ok("backup"))]);

        let started = Instant::now();
        let answer = hedged(&hedge, || upstream.attempt()).await;

        assert_eq!(
            upstream.starts(),
            [Duration::ZERO, ms(50)],
            "the backup must start exactly at the 50 ms hedge delay"
        );
        assert_eq!(
            answer,
            Ok("backup"),
            "the backup answered first, so it wins"
        );
        assert_eq!(
            started.elapsed(),
            ms(70),
            "50 ms delay + 20 ms backup: the slow first attempt must not be awaited"
        );
        assert_eq!(hedge.hedges_sent(), 1);
    })
    .await;
}

/// A failed attempt does not win the race: the other attempt's success does.
#[tokio::test(start_paused = true)]
async fn a_failed_attempt_does_not_win_the_race() {
    within_time_limit(async {
        let hedge = fixed_hedge(ms(50));
        // The backup fails fast (at 60 ms); the first succeeds at 100 ms.
        let upstream =
            ScriptedUpstream::new(vec![(ms(100), Ok("first")), (ms(10), Err("backup failed"))]);

        let started = Instant::now();
        let answer = hedged(&hedge, || upstream.attempt()).await;

        assert_eq!(
            answer,
            Ok("first"),
            "the first *success* wins; an earlier failure must wait for the other attempt"
        );
        assert_eq!(started.elapsed(), ms(100));
    })
    .await;
}

/// Once the budget is spent, a late first attempt is waited for instead of hedged.
#[tokio::test(start_paused = true)]
async fn no_hedge_is_sent_when_the_budget_is_spent() {
    within_time_limit(async {
        // Half a hedge per request, at most one saved up: every other slow
        // request may be hedged.
        let hedge = Hedge::new(hedge_config(HedgeDelay::Fixed(ms(50)), 0.5))
            .expect("a valid hedge configuration");
        let upstream = ScriptedUpstream::new(vec![(ms(200), Ok("slow"))]);

        for _ in 0..3 {
            let answer = hedged(&hedge, || upstream.attempt()).await;
            assert_eq!(answer, Ok("slow"));
        }

        assert_eq!(
            hedge.hedges_sent(),
            1,
            "3 slow requests at 0.5 hedge per request: the budget pays for exactly 1 hedge"
        );
        assert_eq!(
            upstream.starts().len(),
            4,
            "3 first attempts + 1 backup: a request over budget must not send a backup"
        );
    })
    .await;
}

/// With a quantile delay, the backup goes out at the observed p95 latency.
#[tokio::test(start_paused = true)]
async fn the_hedge_delay_follows_the_observed_p95() {
    within_time_limit(async {
        let hedge = Hedge::new(hedge_config(
            HedgeDelay::Quantile {
                quantile: 0.95,
                floor: ms(1),
                min_samples: 100,
            },
            1.0,
        ))
        .expect("a valid hedge configuration");
        // The recent past: answers took 1, 2, ..., 100 ms, so the p95 is 95 ms.
        for millis in 1..=100 {
            hedge.latency().record(ms(millis));
        }
        let upstream = ScriptedUpstream::new(vec![(ms(1_000), Ok("first")), (ms(1), Ok("backup"))]);

        let answer = hedged(&hedge, || upstream.attempt()).await;

        let starts = upstream.starts();
        assert_eq!(answer, Ok("backup"));
        assert_eq!(
            starts.len(),
            2,
            "the 1 s attempt is far past the p95: hedge it"
        );
        assert!(
            (ms(94)..=ms(96)).contains(&starts[1]),
            "the backup must go out at about the p95 (95 ms), went out at {:?}",
            starts[1]
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Real sockets: FastUpstream fakes on loopback, real time, wide margins.
// ---------------------------------------------------------------------------

/// A client for loopback tests: system proxies apply even to 127.0.0.1.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client builds")
}

/// Three fast fakes, one per upstream, on this test's runtime.
struct Fakes {
    inventory: FastUpstream,
    pricing: FastUpstream,
    reviews: FastUpstream,
}

impl Fakes {
    async fn start(inventory: Behaviour, pricing: Behaviour, reviews: Behaviour) -> Fakes {
        Fakes {
            inventory: FastUpstream::start(inventory).await.expect("fake starts"),
            pricing: FastUpstream::start(pricing).await.expect("fake starts"),
            reviews: FastUpstream::start(reviews).await.expect("fake starts"),
        }
    }

    fn urls(&self) -> UpstreamUrls {
        UpstreamUrls {
            inventory: self.inventory.base_url(),
            pricing: self.pricing.base_url(),
            reviews: self.reviews.base_url(),
        }
    }

    fn service(&self, resilience: Resilience) -> ProductService {
        ProductService::new(client(), self.urls(), resilience).expect("a valid configuration")
    }

    fn all(&self) -> [&FastUpstream; 3] {
        [&self.inventory, &self.pricing, &self.reviews]
    }
}

fn healthy() -> Behaviour {
    Behaviour::fixed(ms(10))
}

fn hanging() -> Behaviour {
    Behaviour::default().hanging()
}

fn failing_503() -> Behaviour {
    Behaviour::fixed(ms(10)).failing(1.0, 503)
}

/// Polls `condition` every 5 ms until it holds or `limit` passes; returns
/// how long it took, or `None` if it never held.
///
/// The fake notices a dropped request *asynchronously* (the client closes the
/// connection, the server reads the close, hyper drops the handler), so a
/// test must wait for it rather than check once.
async fn time_until(limit: Duration, condition: impl Fn() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(ms(5)).await;
    }
    condition().then(|| started.elapsed())
}

/// How long the fakes get to notice a dropped request. The issue asks for
/// 100 ms; loopback usually takes a millisecond or two, but these tests must
/// pass on a loaded 2-core machine, so they assert a tenfold margin.
const NOTICE_LIMIT: Duration = Duration::from_secs(1);

/// The losing attempt of a hedge is cancelled: the slow upstream sees its request dropped.
#[tokio::test]
async fn the_losing_attempt_is_cancelled_at_the_upstream() {
    within_time_limit(async {
        let slow = FastUpstream::start(hanging()).await.expect("fake starts");
        let fast = FastUpstream::start(healthy()).await.expect("fake starts");
        let urls_of = |fake: &FastUpstream| UpstreamUrls {
            inventory: fake.base_url(),
            pricing: fake.base_url(),
            reviews: fake.base_url(),
        };
        let (slow_urls, fast_urls) = (urls_of(&slow), urls_of(&fast));
        let client = client();
        let deadline = Deadline::after(Duration::from_secs(10));
        let hedge = fixed_hedge(ms(50));
        // The first attempt goes to the hanging fake, the backup to the healthy one.
        let attempts = AtomicUsize::new(0);
        let attempt = || {
            let urls = if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                &slow_urls
            } else {
                &fast_urls
            };
            fetch_json::<ReviewStats>(&client, urls, Upstream::Reviews, PRODUCT_ID, deadline)
        };

        let answer = hedged(&hedge, attempt).await;
        let noticed = time_until(NOTICE_LIMIT, || slow.counters().cancelled == 1).await;

        assert!(answer.is_ok(), "the backup answers, got {answer:?}");
        assert!(
            noticed.is_some(),
            "the losing attempt must be dropped, so the hanging upstream sees it cancelled within {NOTICE_LIMIT:?}; its counters: {:?}",
            slow.counters()
        );
    })
    .await;
}

/// Dropping the page future drops every in-flight upstream request; each fake sees it cancelled.
#[tokio::test]
async fn dropping_the_page_future_cancels_every_in_flight_upstream_call() {
    within_time_limit(async {
        let fakes = Fakes::start(hanging(), hanging(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let cancel = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(10));
        let all_in_flight = || fakes.all().iter().all(|fake| fake.counters().in_flight == 1);

        // The caller gives up after 300 ms: `timeout` drops the page future.
        let page = fetch_product_page(&service, PRODUCT_ID, deadline, &cancel);
        let watched = async {
            tokio::pin!(page);
            tokio::select! {
                result = &mut page => panic!("the upstreams hang, yet the page answered {result:?}"),
                () = tokio::time::sleep(ms(300)) => all_in_flight(),
            }
            // `page` is dropped here, with its three requests in flight.
        };
        let were_in_flight = watched.await;
        let noticed = time_until(NOTICE_LIMIT, || {
            fakes.all().iter().all(|fake| fake.counters().cancelled == 1)
        })
        .await;

        assert!(
            were_in_flight,
            "all three upstream requests should be in flight before the caller gives up"
        );
        assert!(
            noticed.is_some(),
            "after the page future is dropped every upstream must see its request cancelled within {NOTICE_LIMIT:?}; counters: {:?}",
            fakes.all().map(FastUpstream::counters)
        );
    })
    .await;
}

/// Cancelling the token ends the page with Cancelled and drops every upstream request.
#[tokio::test]
async fn cancelling_the_token_ends_the_page_and_drops_every_call() {
    within_time_limit(async {
        let fakes = Fakes::start(hanging(), hanging(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let cancel = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(10));
        let canceller = {
            let cancel = cancel.clone();
            async move {
                tokio::time::sleep(ms(200)).await;
                cancel.cancel();
            }
        };

        let started = Instant::now();
        let (page, ()) = tokio::join!(
            fetch_product_page(&service, PRODUCT_ID, deadline, &cancel),
            canceller
        );
        let elapsed = started.elapsed();
        let noticed = time_until(NOTICE_LIMIT, || {
            fakes
                .all()
                .iter()
                .all(|fake| fake.counters().cancelled == 1)
        })
        .await;

        assert!(
            matches!(page, Err(FetchError::Cancelled { .. })),
            "a cancelled page must fail with FetchError::Cancelled, got {page:?}"
        );
        assert!(
            elapsed < ms(200) + NOTICE_LIMIT,
            "the page must end soon after the token is cancelled at 200 ms, took {elapsed:?}"
        );
        assert!(
            noticed.is_some(),
            "every spawned call must observe the token and drop its request; counters: {:?}",
            fakes.all().map(FastUpstream::counters)
        );
    })
    .await;
}

/// No task is left alive once the caller gives up: the runtime's alive-task count returns to its baseline.
#[tokio::test]
async fn no_task_is_left_alive_after_the_caller_gives_up() {
    within_time_limit(async {
        let fakes = Fakes::start(hanging(), hanging(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let cancel = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(10));
        let metrics = tokio::runtime::Handle::current().metrics();
        // The fakes' servers start their own tasks the first time they run:
        // let them settle, so the baseline counts only them.
        tokio::time::sleep(ms(100)).await;
        let baseline = metrics.num_alive_tasks();

        let during = async {
            let page = fetch_product_page(&service, PRODUCT_ID, deadline, &cancel);
            tokio::pin!(page);
            tokio::select! {
                result = &mut page => panic!("the upstreams hang, yet the page answered {result:?}"),
                () = tokio::time::sleep(ms(300)) => metrics.num_alive_tasks(),
            }
        }
        .await;
        let back_to_baseline =
            time_until(Duration::from_secs(2), || metrics.num_alive_tasks() == baseline).await;

        assert!(
            during > baseline,
            "while the page waits, its calls (and their connections) are alive: {during} tasks vs {baseline} before"
        );
        assert!(
            back_to_baseline.is_some(),
            "after the caller gave up, {} tasks are alive against {baseline} before: a spawned call was detached instead of aborted",
            metrics.num_alive_tasks()
        );
    })
    .await;
}

/// The deadline drops a hanging optional call, and the page is served degraded, on time.
#[tokio::test]
async fn the_deadline_drops_a_hanging_optional_call_and_degrades_the_page() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), healthy(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let budget = ms(300);

        let started = Instant::now();
        let page = fetch_product_page(
            &service,
            PRODUCT_ID,
            Deadline::after(budget),
            &CancellationToken::new(),
        )
        .await;
        let elapsed = started.elapsed();
        let noticed = time_until(NOTICE_LIMIT, || fakes.reviews.counters().cancelled == 1).await;

        let page = page.expect("reviews are optional: their timeout must not fail the page");
        assert_eq!(page.degraded, [Upstream::Reviews]);
        assert!(page.reviews.is_none());
        assert!(
            elapsed >= budget && elapsed < budget + ms(500),
            "the page must wait for reviews until the 300 ms deadline and no longer, took {elapsed:?}"
        );
        assert!(
            noticed.is_some(),
            "the timed-out reviews request must be dropped; reviews counters: {:?}",
            fakes.reviews.counters()
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Partial responses.
// ---------------------------------------------------------------------------

async fn page_with(fakes: &Fakes, resilience: Resilience) -> Result<ProductPage, FetchError> {
    let service = fakes.service(resilience);
    fetch_product_page(
        &service,
        PRODUCT_ID,
        Deadline::after(Duration::from_secs(2)),
        &CancellationToken::new(),
    )
    .await
}

/// With every upstream healthy the page is complete and lists nothing as degraded.
#[tokio::test]
async fn a_healthy_page_is_complete() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), healthy(), healthy()).await;

        let page = page_with(&fakes, Resilience::off()).await;

        let page = page.expect("all three upstreams are healthy");
        assert!(
            page.reviews.is_some(),
            "reviews answered, so they are on the page"
        );
        assert!(
            page.degraded.is_empty(),
            "nothing failed, so nothing is degraded"
        );
    })
    .await;
}

/// A failing optional section is null and listed under "degraded" (an insta snapshot pins the JSON).
#[tokio::test]
async fn a_failing_optional_section_is_listed_as_degraded() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), healthy(), failing_503()).await;

        let page = page_with(&fakes, Resilience::off()).await;

        let page = page.expect("reviews are optional: their 503 must not fail the page");
        // The snapshot is the contract with the page's clients: review any
        // change to it (`cargo insta review`) as you would an API change.
        insta::assert_json_snapshot!("degraded_page", page);
    })
    .await;
}

/// A failing required section fails the page, with the upstream named and status 502.
#[tokio::test]
async fn a_failing_required_section_fails_the_page_with_502() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), failing_503(), healthy()).await;

        let page = page_with(&fakes, Resilience::off()).await;

        let error = page.expect_err("pricing is required: a page without a price is no page");
        assert!(
            matches!(
                error,
                FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                }
            ),
            "the error must name pricing and its 503, got {error:?}"
        );
        assert_eq!(
            error.http_status(),
            502,
            "an upstream that answered badly is a 502 Bad Gateway"
        );
    })
    .await;
}

/// A required section that misses the deadline fails the page with Timeout and status 504.
#[tokio::test]
async fn a_required_section_past_the_deadline_fails_the_page_with_504() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(Resilience::off());

        let page = fetch_product_page(
            &service,
            PRODUCT_ID,
            Deadline::after(ms(300)),
            &CancellationToken::new(),
        )
        .await;

        let error = page.expect_err("pricing hangs past the deadline");
        assert!(
            matches!(
                error,
                FetchError::Timeout {
                    upstream: Upstream::Pricing
                }
            ),
            "got {error:?}"
        );
        assert_eq!(
            error.http_status(),
            504,
            "a timeout is a 504 Gateway Timeout"
        );
    })
    .await;
}

/// An open breaker on a required section fails the page at once with 503, without calling it.
#[tokio::test]
async fn an_open_breaker_on_a_required_section_fails_fast_with_503() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), failing_503(), healthy()).await;
        let service = fakes.service(Resilience {
            breaker: Some(BreakerConfig {
                failure_threshold: 1,
                cool_down: Duration::from_secs(60),
                half_open_probes: 1,
            }),
            hedge: None,
        });
        let cancel = CancellationToken::new();
        let fetch = || {
            fetch_product_page(
                &service,
                PRODUCT_ID,
                Deadline::after(Duration::from_secs(2)),
                &cancel,
            )
        };

        let first = fetch().await;
        let second = fetch().await;

        assert!(
            matches!(first, Err(FetchError::Status { .. })),
            "the first page meets pricing's 503, got {first:?}"
        );
        let error = second.expect_err("pricing's breaker is open");
        assert!(
            matches!(
                error,
                FetchError::CircuitOpen {
                    upstream: Upstream::Pricing
                }
            ),
            "got {error:?}"
        );
        assert_eq!(
            error.http_status(),
            503,
            "not calling the upstream is a 503 Service Unavailable"
        );
        assert_eq!(
            fakes.pricing.counters(),
            CounterSnapshot {
                requests: 1,
                failed: 1,
                peak_in_flight: 1,
                ..CounterSnapshot::default()
            },
            "the open breaker must keep the second page from calling pricing at all"
        );
    })
    .await;
}
