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
//! [`yield_now`]. Yours to write: the bodies of the two `poll` methods, whose
//! doc comments are the contract the tests check.

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

impl<F: Future + Unpin> Future for PollCounter<F> {
    type Output = F::Output;

    /// Polls the wrapped future once and records that poll in the stats.
    ///
    /// Answers exactly what the wrapped future answers, with its output
    /// untouched. Every poll is recorded, whatever it answered, with the
    /// wall-clock time spent inside the wrapped future's `poll` (the time
    /// between polls is not the future's: it was not running). When the
    /// wrapped future is `Pending`, so is this one, and it must still be
    /// woken when the wrapped future can make progress: the caller's task
    /// is the one to wake, not another.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        todo!("PollCounter::poll: poll the wrapped future once, and record how long that took")
    }
}

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

impl Future for YieldNow {
    type Output = ();

    /// The first poll answers `Pending`, the second `Ready(())`.
    ///
    /// `Pending` is a promise to whoever polls: this future has arranged to
    /// be polled again. Nothing outside it is waiting for an event on its
    /// behalf (no timer, no socket), so it must keep the promise itself; a
    /// `Pending` without it would leave the task asleep forever. It must not
    /// block or sleep either: the point is to let other tasks run.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        todo!("YieldNow::poll: Pending once, with a wake-up arranged; then Ready")
    }
}
