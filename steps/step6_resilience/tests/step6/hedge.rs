//! Part "hedged requests": `hedged` in `src/hedge.rs`.
//!
//! All but the last test run on tokio's *paused* clock against a scripted
//! in-process upstream (each attempt takes a set time and gives a set
//! answer), so every backup's start is checked to the millisecond. They go
//! from the race itself, through the budget, to the delay learned from
//! recent successes. The last test uses real sockets: the losing attempt
//! must be cancelled at the upstream, which only a real request can show.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_upstreams::fast::FastUpstream;
use fake_upstreams::testing::{loopback_client, wait_until, within_time_limit};
use step6_resilience::{
    BudgetConfig, Deadline, Hedge, HedgeConfig, HedgeDelay, RetryBudget, ReviewStats, Upstream,
    UpstreamUrls, fetch_json, hedged,
};
use tokio::time::Instant;

use crate::common::{NOTICE_LIMIT, PRODUCT_ID, hanging, healthy, ms};

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

/// A hedge sending its backup after `delay`, paid from a budget of its own
/// that takes `budget_ratio` of a token per section call and saves up at
/// most `budget_burst` tokens.
fn hedge_with_budget(delay: HedgeDelay, budget_ratio: f64, budget_burst: f64) -> Hedge {
    let budget = RetryBudget::new(BudgetConfig {
        ratio: budget_ratio,
        burst: budget_burst,
    })
    .expect("a valid budget");
    let config = HedgeConfig {
        delay,
        latency_window: Duration::from_secs(60),
    };
    Hedge::new(config, Arc::new(budget)).expect("a valid hedge configuration")
}

/// One section call as the service makes it: the call pays its share into
/// the budget, then runs its hedged attempt (`hedged` itself only spends).
async fn section<T, E, F, Fut>(hedge: &Hedge, attempt: F) -> Result<T, E>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    hedge.budget().deposit();
    hedged(hedge, attempt).await
}

/// A hedge with a fixed delay and a budget that pays for every request.
fn fixed_hedge(delay: Duration) -> Hedge {
    hedge_with_budget(HedgeDelay::Fixed(delay), 1.0, 1.0)
}

/// An attempt that answers before the hedge delay is the only attempt.
#[tokio::test(start_paused = true)]
async fn no_hedge_is_sent_when_the_first_attempt_answers_in_time() {
    within_time_limit(async {
        let hedge = fixed_hedge(ms(50));
        let upstream = ScriptedUpstream::new(vec![(ms(30), Ok("first"))]);

        let started = Instant::now();
        let answer = section(&hedge, || upstream.attempt()).await;

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
        let answer = section(&hedge, || upstream.attempt()).await;

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

/// A backup is counted when it is sent, not when the race ends: a call dropped mid-race still counts its backup.
#[tokio::test(start_paused = true)]
async fn a_backup_is_counted_as_soon_as_it_is_sent() {
    within_time_limit(async {
        let hedge = fixed_hedge(ms(50));
        let upstream =
            ScriptedUpstream::new(vec![(ms(1_000), Ok("first")), (ms(1_000), Ok("backup"))]);

        // The caller gives up at 60 ms, while both attempts are in flight.
        let gave_up = tokio::time::timeout(ms(60), section(&hedge, || upstream.attempt())).await;

        assert!(gave_up.is_err(), "neither attempt answers before 60 ms");
        assert_eq!(
            upstream.starts(),
            [Duration::ZERO, ms(50)],
            "the backup went out at the 50 ms hedge delay"
        );
        assert_eq!(
            hedge.hedges_sent(),
            1,
            "the backup was sent (the upstream got it), so it counts even though the race never ended"
        );
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
        let answer = section(&hedge, || upstream.attempt()).await;

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
        let hedge = hedge_with_budget(HedgeDelay::Fixed(ms(50)), 0.5, 1.0);
        let upstream = ScriptedUpstream::new(vec![(ms(200), Ok("slow"))]);

        for _ in 0..3 {
            let answer = section(&hedge, || upstream.attempt()).await;
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

/// A call that found the budget spent at its hedge delay waits for its first attempt, even if other calls refill the budget meanwhile.
#[tokio::test(start_paused = true)]
async fn a_call_over_budget_at_its_hedge_delay_is_not_hedged_later() {
    within_time_limit(async {
        // Arrange: half a hedge per request, so the first call alone cannot
        // pay for a backup; a second call pays the other half at 60 ms.
        let hedge = hedge_with_budget(HedgeDelay::Fixed(ms(50)), 0.5, 1.0);
        let slow = ScriptedUpstream::new(vec![(ms(200), Ok("slow"))]);
        let fast = ScriptedUpstream::new(vec![(ms(10), Ok("fast"))]);
        let over_budget = async {
            let started = Instant::now();
            let answer = section(&hedge, || slow.attempt()).await;
            (answer, started.elapsed())
        };
        let refills_the_budget = async {
            tokio::time::sleep(ms(60)).await;
            section(&hedge, || fast.attempt()).await
        };

        // Act
        let ((answer, took), other) = tokio::join!(over_budget, refills_the_budget);

        // Assert
        assert_eq!(other, Ok("fast"));
        assert_eq!(answer, Ok("slow"));
        assert_eq!(
            slow.starts(),
            [Duration::ZERO],
            "at its 50 ms hedge delay the budget held half a token, so this call must wait for its first attempt: a token deposited later by another call must not send a backup for it"
        );
        assert_eq!(took, ms(200), "the call waited for its first attempt");
        assert_eq!(hedge.hedges_sent(), 0);
    })
    .await;
}

/// When the first attempt fails after the backup went out, the backup's success wins.
#[tokio::test(start_paused = true)]
async fn a_failed_first_attempt_waits_for_the_backup() {
    within_time_limit(async {
        let hedge = fixed_hedge(ms(50));
        // The first fails at 80 ms; the backup (sent at 50 ms) succeeds at 150 ms.
        let upstream = ScriptedUpstream::new(vec![
            (ms(80), Err("first failed")),
            (ms(100), Ok("backup")),
        ]);

        let started = Instant::now();
        let answer = section(&hedge, || upstream.attempt()).await;

        assert_eq!(
            answer,
            Ok("backup"),
            "the first attempt's failure must not win: the backup still running may succeed, and does"
        );
        assert_eq!(started.elapsed(), ms(150));
    })
    .await;
}

/// When both attempts fail, the error returned is the one that failed last.
#[tokio::test(start_paused = true)]
async fn when_both_attempts_fail_the_last_error_is_returned() {
    within_time_limit(async {
        // Arrange: the first fails at 100 ms; the backup, sent at 50 ms,
        // fails 70 ms later, at 120 ms.
        let hedge = fixed_hedge(ms(50));
        let upstream = ScriptedUpstream::new(vec![(ms(100), Err("first")), (ms(70), Err("backup"))]);

        // Act
        let started = Instant::now();
        let answer = section(&hedge, || upstream.attempt()).await;

        // Assert
        assert_eq!(hedge.hedges_sent(), 1, "the first attempt was late: one backup");
        assert_eq!(
            answer,
            Err("backup"),
            "no attempt succeeded: the error returned must be the last one to fail (the backup's, at 120 ms), not the first attempt's at 100 ms"
        );
        assert_eq!(
            started.elapsed(),
            ms(120),
            "a failure waits for the other attempt, so the call ends when the backup fails"
        );
    })
    .await;
}

/// An answer before the hedge delay is final, even a failure: hedging races slowness, it does not retry errors.
#[tokio::test(start_paused = true)]
async fn an_early_failure_is_returned_without_a_backup() {
    within_time_limit(async {
        let hedge = fixed_hedge(ms(50));
        let upstream =
            ScriptedUpstream::new(vec![(ms(10), Err("failed fast")), (ms(10), Ok("retried"))]);

        let started = Instant::now();
        let answer = section(&hedge, || upstream.attempt()).await;

        assert_eq!(answer, Err("failed fast"));
        assert_eq!(started.elapsed(), ms(10), "the failure is returned at once");
        assert_eq!(
            upstream.starts(),
            [Duration::ZERO],
            "a failure at 10 ms is an answer before the 50 ms delay: no backup may be sent"
        );
        assert_eq!(hedge.hedges_sent(), 0);
    })
    .await;
}

/// Requests that answer on time pay into the budget without spending it, so a later slow one can be hedged.
#[tokio::test(start_paused = true)]
async fn answers_on_time_save_up_budget_for_a_later_hedge() {
    within_time_limit(async {
        // Half a hedge per request, at most one saved up.
        let hedge = hedge_with_budget(HedgeDelay::Fixed(ms(50)), 0.5, 1.0);
        let mut script = vec![(ms(10), Ok("on time")); 4];
        script.push((ms(1_000), Ok("slow")));
        script.push((ms(10), Ok("backup")));
        let upstream = ScriptedUpstream::new(script);

        for _ in 0..5 {
            let _ = section(&hedge, || upstream.attempt()).await;
        }

        assert_eq!(
            hedge.hedges_sent(),
            1,
            "4 requests on time paid 2 hedges into the budget (capped at 1) and spent none: the 5th, slow one must be hedged"
        );
        assert_eq!(upstream.starts().len(), 6);
    })
    .await;
}

/// A quantile hedge with the given floor and sample count, whose budget
/// pays for every request. Its latency window (a minute) outlasts each test,
/// so every answer a test makes stays in the one window the delay is read
/// from.
fn learning_hedge(floor: Duration, min_samples: u64) -> Hedge {
    let delay = HedgeDelay::Quantile {
        quantile: 0.95,
        floor,
        min_samples,
    };
    hedge_with_budget(delay, 1.0, 1.0)
}

/// How long after its request's first attempt the last backup started.
fn last_backup_delay(upstream: &ScriptedUpstream) -> Duration {
    let starts = upstream.starts();
    let [.., first, backup] = starts[..] else {
        panic!("expected at least two attempts, got {starts:?}");
    };
    backup - first
}

/// The quantile delay is learned from the hedge's own successful answers; failures do not count, and nothing is hedged before enough answers are known.
#[tokio::test(start_paused = true)]
async fn the_hedge_delay_is_learned_from_its_own_successful_answers() {
    within_time_limit(async {
        let hedge = learning_hedge(ms(1), 20);
        // 20 slow failures (500 ms), then 20 successes taking 1, 2, ..., 20 ms:
        // the successes' p95 is 19 ms. Then one request whose first attempt
        // takes a second, and whose backup answers at once.
        let mut script: Vec<Script> = vec![(ms(500), Err("failed")); 20];
        script.extend((1..=20).map(|millis| (ms(millis), Ok("learned"))));
        script.push((ms(1_000), Ok("slow")));
        script.push((ms(1), Ok("backup")));
        let upstream = ScriptedUpstream::new(script);

        for _ in 0..40 {
            let _ = section(&hedge, || upstream.attempt()).await;
        }
        let hedges_while_learning = hedge.hedges_sent();
        let answer = section(&hedge, || upstream.attempt()).await;

        assert_eq!(
            hedges_while_learning, 0,
            "fewer than 20 successes were known until the 40th request answered: no request may be hedged before that"
        );
        assert_eq!(answer, Ok("backup"), "the 1 s attempt is past the p95: hedge it");
        let delay = last_backup_delay(&upstream);
        assert!(
            (ms(18)..=ms(21)).contains(&delay),
            "the backup must go out at the p95 of the hedge's own successes (19 ms), not counting the 500 ms failures; it went out after {delay:?}"
        );
    })
    .await;
}

/// A backup's latency is timed from the backup's own start, not from its request's first attempt.
#[tokio::test(start_paused = true)]
async fn a_winning_backup_is_timed_from_its_own_start() {
    within_time_limit(async {
        let hedge = learning_hedge(ms(1), 20);
        // 20 answers at 10 ms teach a 10 ms delay. Then 20 requests whose
        // first attempt stalls, each won by a backup that takes 30 ms from
        // its own start. Then one more stalled request, to read the delay.
        let mut script: Vec<Script> = vec![(ms(10), Ok("learned")); 20];
        for _ in 0..21 {
            script.push((ms(1_000), Ok("stalled")));
            script.push((ms(30), Ok("backup")));
        }
        let upstream = ScriptedUpstream::new(script);

        for _ in 0..41 {
            let _ = section(&hedge, || upstream.attempt()).await;
        }

        assert_eq!(hedge.hedges_sent(), 21, "every stalled request is hedged");
        let delay = last_backup_delay(&upstream);
        assert!(
            (ms(29)..=ms(32)).contains(&delay),
            "half the recent successes took 10 ms and half 30 ms, each timed from its own attempt's start, so the p95 is 30 ms; the last backup went out after {delay:?} (longer: a backup was timed from its request's first attempt; shorter: winning backups were not recorded)"
        );
    })
    .await;
}

/// Every winning success is learned from, timed from its own attempt's start: a first attempt beating its backup, a backup winning after the first failed, a first attempt winning after the backup failed.
#[tokio::test(start_paused = true)]
async fn each_winning_success_is_timed_from_its_own_attempts_start() {
    within_time_limit(async {
        // Arrange: three races with a backup at 50 ms, and when (after its
        // own start) the winning attempt succeeds in each.
        let races: [(&str, Vec<Script>, Duration); 3] = [
            (
                "a first attempt beating its backup",
                vec![(ms(80), Ok("first")), (ms(1_000), Ok("backup"))],
                ms(80),
            ),
            (
                "a backup winning after the first attempt failed",
                vec![(ms(80), Err("first failed")), (ms(100), Ok("backup"))],
                ms(100),
            ),
            (
                "a first attempt winning after the backup failed",
                vec![(ms(100), Ok("first")), (ms(10), Err("backup failed"))],
                ms(100),
            ),
        ];

        for (race, script, winner_took) in races {
            // Act: one hedged request on a fresh hedge.
            let hedge = fixed_hedge(ms(50));
            let upstream = ScriptedUpstream::new(script);
            let answer = section(&hedge, || upstream.attempt()).await;

            // Assert: its one success is the only latency the hedge knows.
            assert!(answer.is_ok(), "{race}: a success wins, got {answer:?}");
            assert_eq!(hedge.hedges_sent(), 1, "{race}: a backup went out");
            let learned = hedge.latency().quantile(0.5, 1);
            assert!(
                learned.is_some_and(|took| took.abs_diff(winner_took) <= ms(1)),
                "{race}: the winning success took {winner_took:?} from its own attempt's start, and that is what the hedge learns; got {learned:?} (None: not recorded; otherwise timed from the other attempt's start)"
            );
        }
    })
    .await;
}

/// However fast the recent answers, the hedge never fires before its floor.
#[tokio::test(start_paused = true)]
async fn the_hedge_delay_never_goes_below_its_floor() {
    within_time_limit(async {
        let hedge = learning_hedge(ms(30), 20);
        // 20 answers at 2 ms: a p95 of 2 ms, far below the 30 ms floor.
        let mut script: Vec<Script> = vec![(ms(2), Ok("fast")); 20];
        script.push((ms(1_000), Ok("stalled")));
        script.push((ms(1), Ok("backup")));
        let upstream = ScriptedUpstream::new(script);

        for _ in 0..21 {
            let _ = section(&hedge, || upstream.attempt()).await;
        }

        assert_eq!(
            last_backup_delay(&upstream),
            ms(30),
            "the backup must wait for the 30 ms floor, not the 2 ms p95"
        );
    })
    .await;
}

/// A hedge at the median of recent successes once 4 are known (in a
/// minute's window, longer than any test), with a budget of `budget_ratio`
/// hedges per request that saves up at most `budget_burst`.
fn median_hedge(budget_ratio: f64, budget_burst: f64) -> Hedge {
    let delay = HedgeDelay::Quantile {
        quantile: 0.5,
        floor: ms(1),
        min_samples: 4,
    };
    hedge_with_budget(delay, budget_ratio, budget_burst)
}

/// `hedged` only spends the budget: a call earns nothing for itself, so a backup needs a token some section call paid in before.
#[tokio::test(start_paused = true)]
async fn hedged_spends_only_what_its_callers_paid_in() {
    within_time_limit(async {
        // Arrange: a whole token per section call, one saved at most; every
        // first attempt stalls for a second, and the one backup that may go
        // out answers in 10 ms.
        let hedge = fixed_hedge(ms(50));
        let stalled = (ms(1_000), Ok("stalled"));
        let upstream = ScriptedUpstream::new(vec![stalled, stalled, (ms(10), Ok("backup")), stalled]);

        // Act: a call nobody paid for, then one paid for, then another
        // nobody paid for.
        let unpaid = hedged(&hedge, || upstream.attempt()).await;
        let hedges_unpaid = hedge.hedges_sent();
        hedge.budget().deposit();
        let paid = hedged(&hedge, || upstream.attempt()).await;
        let hedges_paid = hedge.hedges_sent();
        let unpaid_again = hedged(&hedge, || upstream.attempt()).await;

        // Assert
        assert_eq!(
            hedges_unpaid, 0,
            "the budget was empty and nobody paid in: hedged must not deposit for its own call, so no backup may go out ({unpaid:?})"
        );
        assert_eq!(hedges_paid, 1, "one token paid in: the late call is hedged");
        assert_eq!(paid, Ok("backup"), "the backup answers first, so it wins");
        assert_eq!(
            hedge.hedges_sent(),
            1,
            "the paid call spent the only token, and hedged earns none: the third call waits for its stalled first attempt ({unpaid_again:?})"
        );
    })
    .await;
}

/// A success waited for without a backup (the budget is empty) still counts in the latency the hedge delay is learned from.
#[tokio::test(start_paused = true)]
async fn a_success_waited_for_over_budget_is_still_learned_from() {
    within_time_limit(async {
        // Arrange: a budget that never pays for a hedge. Four answers at
        // 10 ms set a 10 ms delay; then eight at 100 ms, each late, each
        // waited for without a backup.
        let hedge = median_hedge(0.0, 1.0);
        let mut script: Vec<Script> = vec![(ms(10), Ok("fast")); 4];
        script.extend(vec![(ms(100), Ok("slow")); 8]);
        let upstream = ScriptedUpstream::new(script);

        // Act
        for _ in 0..12 {
            let _ = section(&hedge, || upstream.attempt()).await;
        }

        // Assert
        assert_eq!(hedge.hedges_sent(), 0, "the budget pays for no hedge");
        let delay = hedge.delay().expect("12 answers are known: the delay is too");
        assert!(
            (ms(90)..=ms(110)).contains(&delay),
            "8 of the 12 successes took 100 ms, so their median is 100 ms; the delay is {delay:?} (near 10 ms means the successes waited for over budget were not recorded)"
        );
    })
    .await;
}

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
        let client = loopback_client();
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

        let answer = section(&hedge, attempt).await;
        let noticed = wait_until(NOTICE_LIMIT, || slow.counters().cancelled == 1).await;

        assert!(answer.is_ok(), "the backup answers, got {answer:?}");
        assert!(
            noticed.is_ok(),
            "the losing attempt must be dropped, so the hanging upstream sees it cancelled within {NOTICE_LIMIT:?}; its counters: {:?}",
            slow.counters()
        );
    })
    .await;
}
