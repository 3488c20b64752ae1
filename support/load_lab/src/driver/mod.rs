//! Running a [`Plan`]: the timeline every run follows, and the progress bar while it runs.
//!
//! A run has three phases, all measured on `tokio::time::Instant` (so tests can pause time):
//!
//! ```text
//!  start        window_start              window_end        drain_deadline
//!    |-- warm-up --|-------- measured window --|--- drain ... ---|
//!      discarded       every request SENT here    wait for those
//!                      is counted                 requests to answer
//! ```
//!
//! **Which requests count.** A request belongs to the window its (intended) send time falls
//! in. Requests sent during the warm-up are discarded even if they answer inside the window.
//! When the window closes, nothing new is sent, and the requests already sent are awaited —
//! they are measured to their end, because dropping them would drop precisely the slow ones
//! and flatter the tail. A request that has still not answered after [`DRAIN_LIMIT`] is
//! aborted and counted as the error kind [`UNFINISHED`](crate::measure::UNFINISHED).
//!
//! The two loops live in their own (private) modules, `closed_loop.rs` and `open_loop.rs`, whose
//! headers explain what each is for and where each misleads.

mod closed_loop;
mod open_loop;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::time::{Instant, MissedTickBehavior};

use crate::measure::{Measurement, RequestOutcome};
use crate::plan::{Load, Plan};

/// How long, after the window closes, the requests already sent may take to answer before they
/// are aborted and counted as [`UNFINISHED`](crate::measure::UNFINISHED).
///
/// Longer than any request timeout a lab should use: the client's own timeout is meant to end
/// slow requests first, with the clearer kind `"timeout"`. This limit only stops a `send`
/// with no timeout at all from hanging the lab.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// How often the progress bar is moved: smooth to the eye, negligible work.
const PROGRESS_TICK: Duration = Duration::from_millis(100);

/// Runs the plan: warm-up (results discarded), then the measured window, then the drain.
///
/// - **Closed loop** (`Load::Closed { concurrency }`): `concurrency` worker tasks, each
///   sending its next request as soon as the previous one answers. Latency runs from the
///   moment the request is sent.
/// - **Open loop** (`Load::Open { rate_per_sec, max_outstanding }`): request `i` is due at
///   `start + i / rate`; a scheduler sleeps until then and spawns it. Latency runs from that
///   *intended* instant, so if the server (or this machine) stalls, the requests that should
///   have gone out meanwhile carry the wait in their latency instead of silently never being
///   sent (coordinated omission). When `max_outstanding` requests are already in flight, a due
///   request is not sent and is counted as [`DROPPED`](crate::measure::DROPPED).
///
/// See the [module documentation](self) for which requests count.
///
/// The progress bar moves forward by the elapsed milliseconds of this run, warm-up included,
/// from wherever it stood: a fresh bar of length [`Plan::total`] fills once, and one bar
/// shared by several runs (length: the sum of their totals) fills across all of them. Each run
/// advances it by exactly its planned total, even if its drain lasted longer. The bar is not
/// finished, so the caller can clear it or reuse it. Uses the current tokio runtime.
///
/// `send` is called once per request; it should do the whole request (including reading the
/// body) and report how it went. [`http_get`](crate::http_get) is a ready-made one.
///
/// # Panics
///
/// If the load is empty (`concurrency == 0`, `max_outstanding == 0`, or a rate that is not a
/// positive finite number), and if `send` or its future panics (the panic is passed on, so a
/// broken lab fails loudly instead of reporting fewer requests).
///
/// # Cancel safety
///
/// Dropping the returned future aborts every request it has in flight.
pub async fn run<F, Fut>(plan: &Plan, progress: &ProgressBar, send: F) -> Measurement
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = RequestOutcome> + Send + 'static,
{
    let timeline = Timeline::starting_now(plan);
    // Shared by every worker (closed loop) or by the scheduler (open loop).
    let send = Arc::new(send);

    let measuring = async {
        match plan.load {
            Load::Closed { concurrency } => {
                assert!(
                    concurrency > 0,
                    "a closed loop needs a concurrency of at least 1"
                );
                closed_loop::run(plan.load, concurrency, timeline, send).await
            }
            Load::Open {
                rate_per_sec,
                max_outstanding,
            } => {
                assert!(
                    rate_per_sec.is_finite() && rate_per_sec > 0.0,
                    "an open loop needs a positive, finite rate, got {rate_per_sec}"
                );
                assert!(
                    max_outstanding > 0,
                    "an open loop needs max_outstanding of at least 1"
                );
                open_loop::run(plan.load, rate_per_sec, max_outstanding, timeline, send).await
            }
        }
    };

    // The progress ticker never finishes, so the run ends when the measuring does. Doing both
    // in one `select!` (rather than spawning the ticker) leaves no task behind to clean up.
    let progress = RunProgress::starting_now(progress, plan, timeline.start);
    let measurement = tokio::select! {
        measurement = measuring => measurement,
        never = progress.tick_forever() => match never {},
    };
    progress.show_elapsed();
    measurement
}

/// The instants that split a run into warm-up, measured window and drain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    /// When the run (and its warm-up) started.
    pub(crate) start: Instant,
    /// When the warm-up ends and measuring begins.
    pub(crate) window_start: Instant,
    /// When the window closes: nothing is sent from here on.
    pub(crate) window_end: Instant,
    /// When requests still in flight are given up on.
    pub(crate) drain_deadline: Instant,
    /// The window's length, carried into the [`Measurement`].
    pub(crate) window: Duration,
}

impl Timeline {
    fn starting_now(plan: &Plan) -> Self {
        let start = Instant::now();
        let window_start = start + plan.warmup;
        let window_end = window_start + plan.measure;
        Timeline {
            start,
            window_start,
            window_end,
            drain_deadline: window_end + DRAIN_LIMIT,
            window: plan.measure,
        }
    }

    /// Whether a request sent (or due) at `sent` belongs to the measured window.
    pub(crate) fn is_in_window(&self, sent: Instant) -> bool {
        self.window_start <= sent && sent < self.window_end
    }
}

/// This run's share of a progress bar: from where the bar stood when the run started, for the
/// plan's total length.
struct RunProgress<'a> {
    bar: &'a ProgressBar,
    /// The bar's position when this run started (0 for a fresh bar).
    base: u64,
    /// The plan's total length in milliseconds: how far this run may move the bar.
    share: u64,
    start: Instant,
}

impl<'a> RunProgress<'a> {
    fn starting_now(bar: &'a ProgressBar, plan: &Plan, start: Instant) -> Self {
        RunProgress {
            bar,
            base: bar.position(),
            share: millis(plan.total()),
            start,
        }
    }

    /// Moves the bar to this run's elapsed time, capped at its share: the drain can outlast
    /// the plan, and must not eat into the next run's part of a shared bar.
    fn show_elapsed(&self) {
        let elapsed = millis(self.start.elapsed()).min(self.share);
        self.bar.set_position(self.base.saturating_add(elapsed));
    }

    /// Updates the bar every [`PROGRESS_TICK`], forever.
    async fn tick_forever(&self) -> Infallible {
        let mut ticks = tokio::time::interval(PROGRESS_TICK);
        // A late tick is simply late: no burst of catch-up redraws.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.show_elapsed();
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Passes a panic from a request task on to the caller; other join errors (the task was
/// aborted) need no handling because only this module aborts tasks, by dropping its `JoinSet`.
fn resume_if_panicked(error: tokio::task::JoinError) {
    if error.is_panic() {
        std::panic::resume_unwind(error.into_panic());
    }
}
