//! What `run` counts, and how it times it.
//!
//! Every test here runs on a paused clock (`start_paused = true`): the fakes only sleep, no
//! sockets are involved, so tokio can jump the clock from one timer to the next. The runs are
//! exact and take no real time, and a 1-second window costs nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::ProgressBar;
use load_lab::measure::{DROPPED, UNFINISHED};
use load_lab::{ErrorKind, Load, Plan, RequestOutcome, run};

use crate::within;

/// Long enough for any run below, including the 5-second drain limit; in paused time.
const LIMIT: Duration = Duration::from_secs(60);

/// A fake upstream that answers after a fixed delay, and remembers how busy it was.
#[derive(Clone, Default)]
struct FakeServer {
    calls: Arc<AtomicU64>,
    in_flight: Arc<AtomicUsize>,
    peak_in_flight: Arc<AtomicUsize>,
}

impl FakeServer {
    async fn answer_after(self, delay: Duration, outcome: RequestOutcome) -> RequestOutcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now_in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight
            .fetch_max(now_in_flight, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }
}

fn plan(load: Load, warmup_ms: u64, measure_ms: u64) -> Plan {
    Plan {
        load,
        warmup: Duration::from_millis(warmup_ms),
        measure: Duration::from_millis(measure_ms),
    }
}

#[tokio::test(start_paused = true)]
async fn a_closed_loop_completes_about_concurrency_times_window_over_latency_requests() {
    // Arrange: 4 workers, 10 ms per request, 1 s window: 4 × 100 = 400 requests at most.
    let server = FakeServer::default();
    let fake = server.clone();
    let send = move || fake.clone().answer_after(Duration::from_millis(10), Ok(()));
    let plan = plan(Load::Closed { concurrency: 4 }, 0, 1_000);

    // Act
    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    // Assert: wide bounds, because the timer may round each sleep up by a millisecond.
    assert!(
        (320..=404).contains(&measurement.ok),
        "ok = {}",
        measurement.ok
    );
    assert_eq!(measurement.error_count(), 0);
    assert_eq!(measurement.latency_us.len(), measurement.ok);
}

#[tokio::test(start_paused = true)]
async fn a_closed_loop_keeps_exactly_its_concurrency_in_flight() {
    let server = FakeServer::default();
    let fake = server.clone();
    let send = move || fake.clone().answer_after(Duration::from_millis(10), Ok(()));
    let plan = plan(Load::Closed { concurrency: 4 }, 0, 500);

    within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    // Never more than 4 at once, and 4 reached: a cap that is never hit proves nothing.
    assert_eq!(server.peak_in_flight(), 4);
}

#[tokio::test(start_paused = true)]
async fn errors_are_counted_by_kind_and_kept_out_of_the_latency_histogram() {
    // Arrange: every other request fails slowly (100 ms) with a 503; the others succeed in
    // 10 ms. If failures leaked into the histogram, its max would be 100 ms.
    let server = FakeServer::default();
    let fake = server.clone();
    let send = move || {
        let fail = fake.calls() % 2 == 0;
        let fake = fake.clone();
        async move {
            if fail {
                fake.answer_after(
                    Duration::from_millis(100),
                    Err(ErrorKind::new("status 503")),
                )
                .await
            } else {
                fake.answer_after(Duration::from_millis(10), Ok(())).await
            }
        }
    };
    let plan = plan(Load::Closed { concurrency: 1 }, 0, 1_000);

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    assert!(
        measurement.errors_of("status 503") >= 5,
        "{:?}",
        measurement.errors
    );
    assert_eq!(
        measurement.errors.len(),
        1,
        "only one kind: {:?}",
        measurement.errors
    );
    assert!(measurement.ok >= 5, "ok = {}", measurement.ok);
    assert_eq!(measurement.latency_us.len(), measurement.ok);
    assert!(
        measurement.max() < Duration::from_millis(50),
        "max = {:?}",
        measurement.max()
    );
}

#[tokio::test(start_paused = true)]
async fn requests_sent_during_the_warm_up_are_not_counted() {
    // Arrange: 500 ms of warm-up, then a 500 ms window, at one 10 ms request at a time.
    let server = FakeServer::default();
    let fake = server.clone();
    let send = move || fake.clone().answer_after(Duration::from_millis(10), Ok(()));
    let plan = plan(Load::Closed { concurrency: 1 }, 500, 500);

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    // About 100 were sent in all; only the window's half counts.
    assert!(server.calls() >= 90, "calls = {}", server.calls());
    assert!(
        (40..=51).contains(&measurement.ok),
        "ok = {}",
        measurement.ok
    );
    assert_eq!(measurement.window, Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_request_sent_inside_the_window_is_measured_to_its_end() {
    // Arrange: the window closes after 100 ms, but the one request sent takes 400 ms.
    let send = || async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok(())
    };
    let plan = plan(Load::Closed { concurrency: 1 }, 0, 100);

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    // Dropping it at the window's end would have hidden the slowest request of the run.
    assert_eq!(measurement.ok, 1);
    assert!(
        measurement.max() >= Duration::from_millis(400),
        "max = {:?}",
        measurement.max()
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_loop_request_that_never_answers_is_counted_as_unfinished() {
    let send = || std::future::pending::<RequestOutcome>();
    let plan = plan(Load::Closed { concurrency: 2 }, 0, 100);

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    assert_eq!(measurement.errors_of(UNFINISHED), 2);
    assert_eq!(measurement.ok, 0);
}

#[tokio::test(start_paused = true)]
async fn an_open_loop_sends_at_its_planned_rate() {
    // Arrange: 200 req/s for 1 s, i.e. one due every 5 ms; each takes 5 ms, so about one is
    // in flight at a time and none comes near `max_outstanding`.
    let server = FakeServer::default();
    let fake = server.clone();
    let send = move || fake.clone().answer_after(Duration::from_millis(5), Ok(()));
    let plan = plan(
        Load::Open {
            rate_per_sec: 200.0,
            max_outstanding: 100,
        },
        0,
        1_000,
    );

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    assert_eq!(measurement.ok, 200);
    assert_eq!(server.calls(), 200);
    assert_eq!(measurement.throughput(), 200.0);
}

/// An open loop above the server's capacity reports what the server achieved, not the offered rate.
#[tokio::test(start_paused = true)]
async fn an_open_loop_over_capacity_reports_the_achieved_throughput() {
    // Arrange: a server that answers one request at a time, 10 ms each (100 req/s at most),
    // offered 200 req/s for 1 s. The 200 requests of the window take about 2 s to answer.
    let server = Arc::new(tokio::sync::Mutex::new(()));
    let send = move || {
        let server = Arc::clone(&server);
        async move {
            let _one_at_a_time = server.lock().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        }
    };
    let plan = plan(
        Load::Open {
            rate_per_sec: 200.0,
            max_outstanding: 1_000,
        },
        0,
        1_000,
    );

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    // Assert: every request answered, at the server's pace rather than the offered one.
    assert_eq!(measurement.ok, 200);
    let throughput = measurement.throughput();
    assert!(
        (95.0..=105.0).contains(&throughput),
        "throughput {throughput:.1} req/s: expected the server's 100 req/s, not the offered 200"
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_loop_measures_latency_from_the_intended_send_time() {
    // Arrange: a server that handles one request at a time (a fair mutex) and stalls for
    // 300 ms on the first. Requests are due every 10 ms, so the ~29 due during the stall queue
    // behind it: each one's latency should include its wait, up to ~290 ms.
    let server = Arc::new(tokio::sync::Mutex::new(false));
    let send = move || {
        let server = Arc::clone(&server);
        async move {
            let mut stalled_once = server.lock().await;
            let work = if *stalled_once { 1 } else { 300 };
            *stalled_once = true;
            tokio::time::sleep(Duration::from_millis(work)).await;
            Ok(())
        }
    };
    let plan = plan(
        Load::Open {
            rate_per_sec: 100.0,
            max_outstanding: 1_000,
        },
        0,
        1_000,
    );

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    assert_eq!(measurement.ok, 100);
    let p99 = measurement.percentile(99.0);
    assert!(p99 >= Duration::from_millis(200), "p99 = {p99:?}");
    // Most requests came after the stall and were quick: the stall shows in the tail only.
    assert!(measurement.percentile(50.0) < Duration::from_millis(20));
}

#[tokio::test(start_paused = true)]
async fn a_closed_loop_reports_the_same_stall_as_one_slow_request() {
    // Arrange: the server of the previous test. This is the blind spot the open loop exists
    // for: the closed loop's one worker waits out the stall instead of sending, so the stall
    // is a single slow sample among hundreds of fast ones.
    let server = Arc::new(tokio::sync::Mutex::new(false));
    let send = move || {
        let server = Arc::clone(&server);
        async move {
            let mut stalled_once = server.lock().await;
            let work = if *stalled_once { 1 } else { 300 };
            *stalled_once = true;
            tokio::time::sleep(Duration::from_millis(work)).await;
            Ok(())
        }
    };
    let plan = plan(Load::Closed { concurrency: 1 }, 0, 1_000);

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    assert!(measurement.percentile(99.0) < Duration::from_millis(20));
    assert!(measurement.max() >= Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn an_open_loop_counts_requests_beyond_max_outstanding_as_dropped() {
    // Arrange: 100 due over 1 s, each taking 1 s, at most 2 in flight. The first two are
    // sent; the other 98 find 2 already in flight.
    let server = FakeServer::default();
    let fake = server.clone();
    let send = move || fake.clone().answer_after(Duration::from_secs(1), Ok(()));
    let plan = plan(
        Load::Open {
            rate_per_sec: 100.0,
            max_outstanding: 2,
        },
        0,
        1_000,
    );

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    assert_eq!(server.calls(), 2, "dropped requests are not sent");
    assert_eq!(measurement.ok, 2);
    assert_eq!(measurement.errors_of(DROPPED), 98);
    assert!(server.peak_in_flight() <= 2);
}

#[tokio::test(start_paused = true)]
async fn an_open_loop_request_that_never_answers_is_counted_as_unfinished() {
    let send = || std::future::pending::<RequestOutcome>();
    let plan = plan(
        Load::Open {
            rate_per_sec: 10.0,
            max_outstanding: 100,
        },
        0,
        1_000,
    );

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    assert_eq!(measurement.errors_of(UNFINISHED), 10);
}

#[tokio::test(start_paused = true)]
async fn a_run_fills_a_fresh_progress_bar_of_its_length() {
    let plan = plan(Load::Closed { concurrency: 1 }, 200, 800);
    let progress = ProgressBar::hidden();
    progress.set_length(1_000);
    let send = || async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok(())
    };

    within(LIMIT, run(&plan, &progress, send)).await;

    // The last request ends up to 30 ms after the window: the bar still stops at 1,000.
    assert_eq!(progress.position(), 1_000);
}

#[tokio::test(start_paused = true)]
async fn runs_sharing_a_progress_bar_each_advance_it_by_their_own_length() {
    let short = plan(Load::Closed { concurrency: 1 }, 100, 400);
    let long = plan(
        Load::Open {
            rate_per_sec: 50.0,
            max_outstanding: 10,
        },
        500,
        1_000,
    );
    let progress = ProgressBar::hidden();
    progress.set_length(2_000);
    let send = || async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok(())
    };

    within(LIMIT, run(&short, &progress, send)).await;
    let after_the_first = progress.position();
    within(LIMIT, run(&long, &progress, send)).await;

    assert_eq!(after_the_first, 500);
    assert_eq!(progress.position(), 2_000);
}
