//! A future by hand: what `.await` does underneath, made visible.
//!
//! An `async fn` compiles to a state machine that implements [`Future`]. Its
//! one method, [`Future::poll`], is called by whoever drives it (a runtime's
//! task, or a combinator such as `try_join!` inside a task) and answers
//! either `Ready(output)` or `Pending`. `Pending` is a promise: the future has
//! arranged for the [`Waker`](std::task::Waker) in the [`Context`] to be woken
//! when polling again can make progress. Nothing else ever polls it again.
//!
//! Two small futures written by hand show the machinery:
//!
//! * [`PollCounter`] wraps any future and counts how often it is polled and
//!   how long each poll takes, without changing what it does. Wrapped around
//!   the branches of a `try_join!`, it shows that every unfinished branch is
//!   polled again on each wake-up of the task; wrapped around a blocking call,
//!   it shows one poll that holds the thread for the whole call.
//! * [`YieldNow`] answers `Pending` once, after arranging its own wake-up, and
//!   `Ready` the next time: the smallest future that keeps the rule.
//!
//! Given: [`PollStats`] and its [`PollTotals`], [`count_polls`] and
//! [`yield_now`]. Yours to write: the two `poll` methods.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

// GIVEN: poll_stats (given code, the same as in the reference solution)
/// What a [`PollCounter`] has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollTotals {
    /// How many times the wrapped future was polled.
    pub polls: u32,
    /// Wall-clock time spent inside those polls, all together.
    pub time_in_poll: Duration,
    /// The longest single poll.
    pub longest_poll: Duration,
}

/// A shared tally of polls, readable while the counted future runs and after
/// it is gone (a `try_join!` consumes the futures it joins).
///
/// Cloning gives another handle on the same tally.
#[derive(Debug, Clone, Default)]
pub struct PollStats {
    // A std mutex is right here: it is held for two additions, never across
    // an `.await`, so no task can be suspended while holding it.
    totals: Arc<Mutex<PollTotals>>,
}

impl PollStats {
    /// Adds one poll that took `took`.
    pub fn record(&self, took: Duration) {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        totals.polls += 1;
        totals.time_in_poll += took;
        totals.longest_poll = totals.longest_poll.max(took);
    }

    /// The tally so far.
    pub fn totals(&self) -> PollTotals {
        *self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A future that behaves exactly like the one it wraps, and records every
/// poll of it in a [`PollStats`].
///
/// The wrapped future must be [`Unpin`], so that polling it needs no pin
/// projection (and no `unsafe`, which this workspace forbids). Any future
/// can be made `Unpin` by pinning it first: `std::pin::pin!(future)` on the
/// stack, or `Box::pin(future)` on the heap; both give a pinned pointer,
/// which is itself an `Unpin` future.
#[derive(Debug)]
pub struct PollCounter<F> {
    /// The future being counted.
    inner: F,
    /// Where each poll is recorded.
    stats: PollStats,
}

/// Wraps `future` in a [`PollCounter`] and returns the handle to read its
/// tally from.
pub fn count_polls<F: Future + Unpin>(future: F) -> (PollCounter<F>, PollStats) {
    let stats = PollStats::default();
    let counter = PollCounter {
        inner: future,
        stats: stats.clone(),
    };
    (counter, stats)
}
// GIVEN_END: poll_stats

// ANCHOR: poll_counter
impl<F: Future + Unpin> Future for PollCounter<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let started = Instant::now();
        // `F: Unpin`, so the inner future may be pinned afresh on each poll:
        // moving it between polls cannot break it. The caller's `cx` goes
        // through unchanged, so when the inner future answers `Pending`, the
        // wake-up it arranged is for our caller's task: returning its
        // `Pending` keeps the promise.
        let outcome = Pin::new(&mut self.inner).poll(cx);
        self.stats.record(started.elapsed());
        outcome
    }
}
// ANCHOR_END: poll_counter

// GIVEN: yield_now_type (given code, the same as in the reference solution)
/// A future that answers `Pending` on its first poll and `Ready(())` on the
/// next, having arranged that there is a next.
#[derive(Debug, Default)]
pub struct YieldNow {
    /// Whether the first poll has happened.
    yielded: bool,
}

/// Gives other tasks on this thread a turn, then carries on.
///
/// (tokio has its own, `tokio::task::yield_now`, which also cooperates with
/// the runtime's scheduler; this one is the bare rule.)
pub fn yield_now() -> YieldNow {
    YieldNow::default()
}
// GIVEN_END: yield_now_type

// ANCHOR: yield_now
impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // The rule: `Pending` only after arranging a wake-up. Nothing else
        // will wake this task for us, so we wake it ourselves: the runtime
        // puts it back in the queue, behind the tasks already waiting.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
// ANCHOR_END: yield_now
