//! Part "retries": `retried` in `src/retry.rs`, and the guards the given
//! `ProductService::fetch` composes around it.
//!
//! The first tests drive `retried` on tokio's *paused* clock against a
//! scripted in-process upstream, which notes when each attempt started, the
//! deadline it was given, and when it ended (answered, or dropped), so every
//! attempt's time is checked to the millisecond. The backoff is random
//! (full jitter in the reference; any jitter within `Retry::backoff`'s range
//! is fine), so those tests assert ranges where a pause is involved.
//!
//! The last tests go through `ProductService::fetch` with fakes on loopback
//! in *real* time: the budget's bound over many sections, the breaker's one
//! call per section, the bulkhead's cap under load on four threads, and what
//! `/metrics` shows. They assert counts, never speeds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_upstreams::fast::{Behaviour, Latency};
use fake_upstreams::testing::{wait_until, within_time_limit};
use step6_resilience::edge::{EdgeConfig, EdgeState};
use step6_resilience::{
    BreakerConfig, BreakerState, BudgetConfig, BulkheadConfig, Deadline, FetchError, Hedge,
    HedgeConfig, HedgeDelay, Price, Resilience, Retry, RetryBudget, RetryConfig, ReviewStats,
    Upstream, hedged, retried,
};
use tokio::time::Instant;

use crate::common::{
    Fakes, NOTICE_LIMIT, PRODUCT_ID, failing_503, fair_timeout, hanging, healthy, ms, sample,
};

/// How one scripted attempt ends.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Ok,
    Status(u16),
    Transport,
    Decode,
    CircuitOpen,
    Overloaded,
    Cancelled,
    /// Never answers: the attempt runs until it is dropped.
    Stall,
}

/// A `reqwest::Error` made without touching the network (a URL that does
/// not parse), for the two errors that carry one.
fn reqwest_error() -> reqwest::Error {
    reqwest::Client::new()
        .get("not a url")
        .build()
        .expect_err("`not a url` is not a URL")
}

impl Answer {
    fn into_result(self) -> Result<&'static str, FetchError> {
        let upstream = Upstream::Pricing;
        Err(match self {
            Answer::Ok => return Ok("answer"),
            Answer::Status(status) => FetchError::Status { upstream, status },
            Answer::Transport => FetchError::Transport {
                upstream,
                source: reqwest_error(),
            },
            Answer::Decode => FetchError::Decode {
                upstream,
                source: reqwest_error(),
            },
            Answer::CircuitOpen => FetchError::CircuitOpen { upstream },
            Answer::Overloaded => FetchError::Overloaded { upstream },
            Answer::Cancelled => FetchError::Cancelled { upstream },
            Answer::Stall => unreachable!("a stalled attempt never answers"),
        })
    }
}

/// What happened to one attempt, in milliseconds since the upstream was made.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Attempt {
    started: Duration,
    /// The deadline `retried` gave the attempt.
    deadline: Duration,
    /// When it answered or was dropped; `None` while it runs.
    ended: Option<Duration>,
    /// Whether it answered (`false`: dropped before it could).
    answered: bool,
}

/// An in-process upstream whose attempts follow a script (the last entry
/// repeats), and which notes what happened to each.
struct ScriptedUpstream {
    origin: Instant,
    script: Vec<(Duration, Answer)>,
    attempts: Mutex<Vec<Attempt>>,
}

impl ScriptedUpstream {
    fn new(script: Vec<(Duration, Answer)>) -> Self {
        ScriptedUpstream {
            origin: Instant::now(),
            script,
            attempts: Mutex::new(Vec::new()),
        }
    }

    /// One attempt, bound by `deadline` only if the caller enforces it: the
    /// upstream itself ignores it, as a stalled server would.
    async fn attempt(&self, deadline: Deadline) -> Result<&'static str, FetchError> {
        let index = {
            let mut attempts = self.attempts.lock().unwrap();
            attempts.push(Attempt {
                started: self.origin.elapsed(),
                deadline: deadline.instant() - self.origin,
                ended: None,
                answered: false,
            });
            attempts.len() - 1
        };
        let mut ends = EndsAttempt {
            upstream: self,
            index,
            answered: false,
        };
        let (latency, answer) = self.script[index.min(self.script.len() - 1)];
        match answer {
            Answer::Stall => std::future::pending::<()>().await,
            _ => tokio::time::sleep(latency).await,
        }
        ends.answered = true;
        answer.into_result()
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }
}

/// Notes when an attempt ended, however it ended.
struct EndsAttempt<'a> {
    upstream: &'a ScriptedUpstream,
    index: usize,
    answered: bool,
}

impl Drop for EndsAttempt<'_> {
    fn drop(&mut self) {
        let ended = self.upstream.origin.elapsed();
        let mut attempts = self.upstream.attempts.lock().unwrap();
        attempts[self.index].ended = Some(ended);
        attempts[self.index].answered = self.answered;
    }
}

/// A retry policy: attempts of at most `attempt_timeout`, `margin` kept
/// back, none shorter than 10 ms, backoff ranges of 10 ms, up to
/// `max_attempts`.
fn retry(max_attempts: u32, attempt_timeout: Duration, margin: Duration) -> Retry {
    Retry::new(RetryConfig {
        max_attempts,
        attempt_timeout,
        margin,
        min_attempt: ms(10),
        base_delay: ms(10),
        max_delay: ms(10),
    })
    .expect("a valid retry policy")
}

/// A budget holding `tokens` whole tokens (one per deposit, up to ten).
fn budget_with(tokens: u32) -> RetryBudget {
    let budget = RetryBudget::new(BudgetConfig {
        ratio: 1.0,
        burst: 10.0,
    })
    .expect("a valid budget");
    for _ in 0..tokens {
        budget.deposit();
    }
    budget
}

/// A stalled first attempt is cut at the attempt timeout, and a retry answers long before the page's deadline.
#[tokio::test(start_paused = true)]
async fn a_stalled_first_attempt_is_cut_at_the_attempt_timeout_and_a_retry_answers_in_time() {
    within_time_limit(async {
        // Arrange: attempts of at most 50 ms, a 500 ms page; the first
        // attempt stalls, the second answers in 10 ms.
        let retry = retry(3, ms(50), ms(20));
        let budget = budget_with(1);
        let upstream = ScriptedUpstream::new(vec![(ms(0), Answer::Stall), (ms(10), Answer::Ok)]);
        let deadline = Deadline::after(ms(500));

        // Act
        let started = Instant::now();
        let answer = retried(&retry, &budget, Upstream::Pricing, deadline, |deadline| {
            upstream.attempt(deadline)
        })
        .await;
        let took = started.elapsed();

        // Assert
        assert_eq!(answer.ok(), Some("answer"), "the retry answers");
        let attempts = upstream.attempts();
        assert_eq!(
            attempts.len(),
            2,
            "one stalled attempt, one retry: {attempts:?}"
        );
        let [first, second] = [attempts[0], attempts[1]];
        assert_eq!(
            first.deadline,
            ms(50),
            "the first attempt's own deadline is the 50 ms attempt timeout, not the page's 500 ms"
        );
        assert_eq!(
            (first.ended, first.answered),
            (Some(ms(50)), false),
            "the stalled attempt is dropped at its own deadline, 50 ms: {first:?}"
        );
        assert!(
            (ms(50)..=ms(60)).contains(&second.started),
            "the retry starts after a pause of at most the 10 ms backoff range: {second:?}"
        );
        assert_eq!(
            took,
            second.started + ms(10),
            "the retry's answer is the call's"
        );
        assert!(took < ms(500), "answered before the page's deadline");
        assert_eq!(retry.retries_sent(), 1, "one retry sent, and counted");
    })
    .await;
}

/// Near the deadline an attempt gets only what is left minus the margin, nothing runs past the deadline minus the margin, and the call then returns at once.
#[tokio::test(start_paused = true)]
async fn near_the_deadline_the_attempt_timeout_shrinks_and_nothing_runs_into_the_margin() {
    within_time_limit(async {
        // Arrange: a 130 ms page keeping 20 ms back, so attempts must end by
        // 110 ms; attempts of at most 80 ms; every attempt stalls.
        let retry = retry(5, ms(80), ms(20));
        let budget = budget_with(5);
        let upstream = ScriptedUpstream::new(vec![(ms(0), Answer::Stall)]);
        let deadline = Deadline::after(ms(130));

        // Act
        let started = Instant::now();
        let answer = retried(&retry, &budget, Upstream::Pricing, deadline, |deadline| {
            upstream.attempt(deadline)
        })
        .await;
        let took = started.elapsed();

        // Assert
        let attempts = upstream.attempts();
        assert!(
            matches!(answer, Err(FetchError::Timeout { upstream: Upstream::Pricing })),
            "every attempt timed out: the last error is a timeout, got {answer:?}"
        );
        assert_eq!(
            attempts.len(),
            2,
            "an 80 ms attempt, a pause of at most 10 ms, then a second attempt cut at 110 ms; no time is left for a third: {attempts:?}"
        );
        assert_eq!(attempts[0].deadline, ms(80), "the first attempt gets its full 80 ms");
        assert_eq!(
            attempts[1].deadline,
            ms(110),
            "the second attempt, starting at {:?}, gets only what is left before the deadline minus the margin (110 ms), not 80 ms",
            attempts[1].started
        );
        for attempt in &attempts {
            assert!(
                attempt.ended.is_some_and(|ended| ended <= ms(110)),
                "no attempt runs into the margin (past 110 ms): {attempt:?}"
            );
        }
        assert_eq!(
            took,
            ms(110),
            "with no time left for another attempt the call returns at once, at 110 ms, well before the page's 130 ms deadline"
        );
    })
    .await;
}

/// An attempt that could not get `min_attempt` is not started: not a first one (a timeout, no request), and not a retry (the last error, at once, without a pause).
#[tokio::test(start_paused = true)]
async fn an_attempt_that_would_get_less_than_min_attempt_is_not_started() {
    within_time_limit(async {
        // Arrange: the minimum is 10 ms and 20 ms are kept back.
        let retry = retry(3, ms(50), ms(20));
        let budget = budget_with(5);
        let too_late = ScriptedUpstream::new(vec![(ms(10), Answer::Ok)]);

        // Act: a page with 25 ms left (5 ms usable); then pages with 45 ms
        // left (25 ms usable) whose first attempt fails at 20 ms, leaving
        // 5 ms for a retry whatever the pause. Five of those, as the pause
        // is random: a call that paused before giving up would be caught
        // unless every pause drew zero.
        let first = retried(
            &retry,
            &budget,
            Upstream::Pricing,
            Deadline::after(ms(25)),
            |d| too_late.attempt(d),
        )
        .await;
        let mut seconds = Vec::new();
        for _ in 0..5 {
            let fails_at_20_ms = ScriptedUpstream::new(vec![(ms(20), Answer::Status(503))]);
            let started = Instant::now();
            let second = retried(
                &retry,
                &budget,
                Upstream::Pricing,
                Deadline::after(ms(45)),
                |d| fails_at_20_ms.attempt(d),
            )
            .await;
            seconds.push((second, started.elapsed(), fails_at_20_ms.attempts().len()));
        }

        // Assert
        assert!(
            matches!(
                first,
                Err(FetchError::Timeout {
                    upstream: Upstream::Pricing
                })
            ),
            "5 ms is less than the 10 ms minimum: no attempt, a timeout; got {first:?}"
        );
        assert!(
            too_late.attempts().is_empty(),
            "no attempt may be started with 5 ms"
        );
        for (second, took, attempts) in seconds {
            assert!(
                matches!(second, Err(FetchError::Status { status: 503, .. })),
                "the retry could not get 10 ms: the 503 in hand is the answer, got {second:?}"
            );
            assert_eq!(attempts, 1, "no retry fits");
            assert_eq!(
                took,
                ms(20),
                "returned as soon as the 503 came: no pause that no retry follows"
            );
        }
        assert_eq!(retry.retries_sent(), 0);
        let tokens_left = (0..10).take_while(|_| budget.try_withdraw()).count();
        assert_eq!(
            tokens_left, 5,
            "a retry that does not fit spends no token: all five must still be there"
        );
    })
    .await;
}

/// An error that will not pass (a 4xx, a body that does not decode, an open breaker, a full bulkhead, a cancellation) is returned at once, without a retry.
#[tokio::test(start_paused = true)]
async fn errors_that_will_not_pass_are_returned_at_once_without_a_retry() {
    within_time_limit(async {
        let final_answers = [
            Answer::Status(404),
            Answer::Status(400),
            Answer::Decode,
            Answer::CircuitOpen,
            Answer::Overloaded,
            Answer::Cancelled,
        ];
        for final_answer in final_answers {
            // Arrange: the first attempt ends with `final_answer` at 10 ms;
            // a second would succeed.
            let retry = retry(3, ms(100), ms(20));
            let budget = budget_with(5);
            let upstream =
                ScriptedUpstream::new(vec![(ms(10), final_answer), (ms(10), Answer::Ok)]);

            // Act
            let started = Instant::now();
            let answer = retried(
                &retry,
                &budget,
                Upstream::Pricing,
                Deadline::after(ms(1_000)),
                |deadline| upstream.attempt(deadline),
            )
            .await;

            // Assert
            assert!(
                answer.is_err(),
                "{final_answer:?} is not retried, so it is the answer: got {answer:?}"
            );
            assert_eq!(
                upstream.attempts().len(),
                1,
                "{final_answer:?} is not worth another attempt"
            );
            assert_eq!(
                started.elapsed(),
                ms(10),
                "{final_answer:?} is returned at once"
            );
            assert_eq!(retry.retries_sent(), 0, "{final_answer:?}: no retry sent");
            assert_eq!(budget.tokens(), 5, "{final_answer:?}: no token spent");
        }
    })
    .await;
}

/// An upstream fault that may pass (a 5xx, no answer at all, the attempt's own timeout) is retried.
#[tokio::test(start_paused = true)]
async fn errors_that_may_pass_are_retried() {
    within_time_limit(async {
        for passing_fault in [
            Answer::Status(500),
            Answer::Status(503),
            Answer::Transport,
            Answer::Stall,
        ] {
            // Arrange: the first attempt fails with `passing_fault` (a stall
            // is cut at the 100 ms attempt timeout); a second succeeds.
            let retry = retry(3, ms(100), ms(20));
            let budget = budget_with(5);
            let upstream =
                ScriptedUpstream::new(vec![(ms(10), passing_fault), (ms(10), Answer::Ok)]);

            // Act
            let answer = retried(
                &retry,
                &budget,
                Upstream::Pricing,
                Deadline::after(ms(1_000)),
                |deadline| upstream.attempt(deadline),
            )
            .await;

            // Assert
            assert_eq!(
                answer.ok(),
                Some("answer"),
                "{passing_fault:?} may pass: the retry's success is the answer"
            );
            assert_eq!(upstream.attempts().len(), 2, "{passing_fault:?}: one retry");
            assert_eq!(
                retry.retries_sent(),
                1,
                "{passing_fault:?}: one retry counted"
            );
            assert_eq!(
                budget.tokens(),
                4,
                "{passing_fault:?}: the retry took a token"
            );
        }
    })
    .await;
}

/// Retries and hedges share one budget: a token a hedge's backup spent is not there for a retry, which is then not sent.
#[tokio::test(start_paused = true)]
async fn a_budget_spent_by_hedges_leaves_none_for_retries() {
    within_time_limit(async {
        // Arrange: one budget holding one token, a hedge at 20 ms paid from
        // it, and a retry policy paid from it too.
        let budget = Arc::new(budget_with(1));
        let hedge = Hedge::new(
            HedgeConfig {
                delay: HedgeDelay::Fixed(ms(20)),
                latency_window: Duration::from_secs(60),
            },
            Arc::clone(&budget),
        )
        .expect("a valid hedge");
        let retry = retry(3, ms(100), ms(20));
        let late_first = ScriptedUpstream::new(vec![(ms(0), Answer::Stall), (ms(5), Answer::Ok)]);
        let failing = ScriptedUpstream::new(vec![(ms(10), Answer::Status(503)), (ms(10), Answer::Ok)]);
        let deadline = || Deadline::after(ms(1_000));

        // Act: a hedged call spends the token on a backup; then a call whose
        // first attempt fails with a 503.
        let hedged_answer = hedged(&hedge, || late_first.attempt(deadline())).await;
        let started = Instant::now();
        let retried_answer = retried(&retry, &budget, Upstream::Pricing, deadline(), |d| {
            failing.attempt(d)
        })
        .await;
        let took = started.elapsed();

        // Assert
        assert_eq!(hedged_answer.ok(), Some("answer"), "the backup answered");
        assert_eq!(hedge.hedges_sent(), 1, "the hedge spent the only token");
        assert!(
            matches!(retried_answer, Err(FetchError::Status { status: 503, .. })),
            "the budget the hedge spent is the retries' budget too: no retry, the 503 is the answer; got {retried_answer:?}"
        );
        assert_eq!(failing.attempts().len(), 1, "no retry was sent");
        assert_eq!(took, ms(10), "without a token the 503 is returned at once");
        assert_eq!(retry.retries_sent(), 0);
    })
    .await;
}

/// The service's guards with retries (at most 3 attempts, each at most
/// `attempt_timeout`), hedges after `hedge_delay`, and one budget of
/// `ratio` per section plus `burst`, each optional part as given.
fn retries_and_hedges(
    attempt_timeout: Duration,
    hedge_delay: Option<Duration>,
    ratio: f64,
    burst: f64,
) -> Resilience {
    Resilience {
        retry: Some(RetryConfig {
            max_attempts: 3,
            attempt_timeout,
            margin: ms(10),
            min_attempt: ms(5),
            base_delay: ms(1),
            max_delay: ms(4),
        }),
        hedge: hedge_delay.map(|delay| HedgeConfig {
            delay: HedgeDelay::Fixed(delay),
            latency_window: Duration::from_secs(60),
        }),
        budget: Some(BudgetConfig { ratio, burst }),
        ..Resilience::off()
    }
}

/// Over many sections against an upstream that fails and stalls, retries and backups together stay within ratio × sections + burst (the service pays in once per section; neither `retried` nor `hedged` earns for itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_many_failing_or_slow_sections_extra_requests_stay_within_the_budget() {
    within_time_limit(async {
        // Arrange: pricing fails 30 % of its answers with a 503 and stalls
        // 20 % of them for 300 ms; attempts are cut at 150 ms and hedged at
        // 20 ms; the budget pays 0.2 of an extra request per section, plus 2.
        const SECTIONS: u64 = 60;
        const RATIO: f64 = 0.2;
        const BURST: f64 = 2.0;
        let flaky = Behaviour::default()
            .with_latency(Latency::WithStalls {
                base: Box::new(Latency::Fixed(ms(5))),
                probability: 0.2,
                stall: ms(300),
            })
            .failing(0.3, 503);
        let fakes = Fakes::start(healthy(), flaky, healthy()).await;
        let service = fakes.service(retries_and_hedges(ms(150), Some(ms(20)), RATIO, BURST));

        // Act: the sections six at a time.
        for _ in 0..SECTIONS / 6 {
            let sections = (0..6).map(|_| {
                service.fetch::<Price>(Upstream::Pricing, PRODUCT_ID, Deadline::after(ms(2_000)))
            });
            let _ = futures::future::join_all(sections).await;
        }

        // Assert
        let requests = fakes.pricing.counters().requests;
        let extra = requests.saturating_sub(SECTIONS);
        let retries = service.retry(Upstream::Pricing).map_or(0, Retry::retries_sent);
        let hedges = service.hedge(Upstream::Pricing).map_or(0, Hedge::hedges_sent);
        let bound = RATIO * SECTIONS as f64 + BURST;
        assert!(
            extra as f64 <= bound,
            "{SECTIONS} sections made {requests} requests: {extra} extra ({retries} retries, {hedges} hedges) against a budget of {RATIO} × {SECTIONS} + {BURST} = {bound}"
        );
        assert!(
            retries + hedges <= bound as u64,
            "retries ({retries}) and hedges ({hedges}) together are paid from one budget of {bound}"
        );
        assert!(
            retries >= 1,
            "30 % of answers fail: with budget to spare some sections must be retried"
        );
    })
    .await;
}

/// With retries on, the breaker sees one call per section: two sections of two failed attempts each leave a breaker with a threshold of 3 closed; the third section opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_sees_one_call_per_section_with_retries_on() {
    within_time_limit(async {
        // Arrange: pricing always answers 503; each section pays a whole
        // token, so each makes exactly one retry.
        let fakes = Fakes::start(healthy(), failing_503(), healthy()).await;
        let service = fakes.service(Resilience {
            breaker: Some(BreakerConfig {
                failure_threshold: 3,
                cool_down: Duration::from_secs(60),
                half_open_probes: 1,
                fair_timeout: fair_timeout(),
            }),
            ..retries_and_hedges(ms(1_000), None, 1.0, 1.0)
        });
        let section = || service.fetch::<Price>(Upstream::Pricing, PRODUCT_ID, Deadline::after(ms(5_000)));
        let state = || service.breaker(Upstream::Pricing).expect("breakers are on").state();

        // Act
        let _ = section().await;
        let _ = section().await;
        let after_two = (state(), fakes.pricing.counters().requests);
        let _ = section().await;

        // Assert
        assert_eq!(
            after_two,
            (BreakerState::Closed, 4),
            "two sections, each a 503 and a retried 503 (4 requests), are 2 failures to the breaker, below its threshold of 3"
        );
        assert_eq!(
            state(),
            BreakerState::Open,
            "the third failed section is the third failure: the breaker opens"
        );
    })
    .await;
}

/// On four threads under load, the bulkhead caps the requests in flight to one upstream (first attempts, retries and hedges' backups alike), and every permit comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bulkhead_caps_the_requests_in_flight_to_one_upstream_under_load() {
    within_time_limit(async {
        // Arrange: pricing answers in 30 ms and fails one answer in five;
        // hedges go out at 10 ms, so nearly every section wants a backup
        // too; at most 4 requests to pricing at once.
        const CAP: usize = 4;
        let fakes = Fakes::start(healthy(), Behaviour::fixed(ms(30)).failing(0.2, 503), healthy()).await;
        let service = fakes.service(Resilience {
            bulkhead: Some(BulkheadConfig {
                max_in_flight: CAP,
                max_wait: Duration::from_secs(5),
            }),
            ..retries_and_hedges(ms(2_000), Some(ms(10)), 0.5, 5.0)
        });

        // Act: 64 sections at once, each in a task of its own.
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let service = service.clone();
                tokio::spawn(async move {
                    service
                        .fetch::<Price>(Upstream::Pricing, PRODUCT_ID, Deadline::after(Duration::from_secs(8)))
                        .await
                })
            })
            .collect();
        let mut shed = 0;
        for task in tasks {
            let answer = task.await.expect("a section does not panic");
            if matches!(answer, Err(FetchError::Overloaded { .. })) {
                shed += 1;
            }
        }

        // Assert
        let counters = fakes.pricing.counters();
        let bulkhead = service.bulkhead(Upstream::Pricing).expect("bulkheads are on");
        assert!(
            counters.requests > CAP as u64 * 4,
            "the sections kept the bulkhead busy: {counters:?}"
        );
        assert!(
            counters.peak_in_flight <= CAP as u64,
            "pricing never had more than {CAP} requests in flight, whatever their kind: {counters:?}"
        );
        assert_eq!(shed, 0, "a permit came free within 5 s for every request");
        assert_eq!(
            (bulkhead.permits_in_use(), bulkhead.waiters()),
            (0, 0),
            "every permit came back, and nobody is left waiting"
        );
    })
    .await;
}

/// /metrics shows the retries sent per upstream, and each bulkhead's permits in use, its size and its waiters, as they are when scraped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_retries_sent_and_each_bulkheads_permits_and_waiters() {
    within_time_limit(async {
        // Arrange: pricing always answers 503 (one retry per section);
        // reviews hang, behind a bulkhead of one permit.
        let fakes = Fakes::start(healthy(), failing_503(), hanging()).await;
        let service = fakes.service(Resilience {
            bulkhead: Some(BulkheadConfig {
                max_in_flight: 1,
                max_wait: Duration::from_secs(30),
            }),
            ..retries_and_hedges(Duration::from_secs(20), None, 1.0, 1.0)
        });
        let config = EdgeConfig {
            request_budget: Duration::from_secs(10),
            max_in_flight: 8,
            retry_after: Duration::from_secs(1),
            log_every_request: false,
            ..EdgeConfig::default()
        };
        let edge = EdgeState::new(service, config).expect("a valid edge configuration");
        let render = || edge.metrics.render(&edge.service, &edge.admission);

        // Act: two failed pricing sections; then two reviews sections, one
        // holding the only permit and one waiting for it.
        for _ in 0..2 {
            let _ = edge
                .service
                .fetch::<Price>(
                    Upstream::Pricing,
                    PRODUCT_ID,
                    Deadline::after(Duration::from_secs(30)),
                )
                .await;
        }
        let reviews = |service: step6_resilience::ProductService| async move {
            service
                .fetch::<ReviewStats>(
                    Upstream::Reviews,
                    PRODUCT_ID,
                    Deadline::after(Duration::from_secs(30)),
                )
                .await
        };
        let holding = tokio::spawn(reviews(edge.service.clone()));
        let waiting = tokio::spawn(reviews(edge.service.clone()));
        let queued = wait_until(NOTICE_LIMIT * 5, || {
            sample(
                &render(),
                "upstream_bulkhead_waiters",
                &[("upstream", "reviews")],
            ) == Some(1.0)
        })
        .await;
        let text = render();
        holding.abort();
        waiting.abort();

        // Assert
        let reviews_label = [("upstream", "reviews")];
        assert_eq!(
            sample(&text, "upstream_retries_total", &[("upstream", "pricing")]),
            Some(2.0),
            "two pricing sections, each retried once"
        );
        assert!(
            queued.is_ok(),
            "one reviews request waits for the only permit: {text}"
        );
        assert_eq!(
            sample(&text, "upstream_bulkhead_permits_in_use", &reviews_label),
            Some(1.0),
            "the hanging reviews request holds the only permit"
        );
        assert_eq!(
            sample(&text, "upstream_bulkhead_permits_max", &reviews_label),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "upstream_bulkhead_permits_in_use",
                &[("upstream", "pricing")]
            ),
            Some(0.0),
            "pricing's requests are over: their permits came back"
        );
    })
    .await;
}
