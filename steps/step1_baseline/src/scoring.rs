//! CPU-heavy work, and how to keep it from freezing the runtime.
//!
//! A tokio worker thread runs many tasks by switching between them at each
//! `.await`. Code that computes for 400 ms without reaching an `.await` keeps
//! every other task on that thread waiting for 400 ms: timers fire late,
//! sockets go unread. This is the Rust face of "event loop lag" in asyncio.
//! The cure is to hand such work to a thread that is allowed to block.
//!
//! Given: [`ReviewScore`] and [`score_reviews`], the expensive work itself.
//! Yours to write: the body of [`score_reviews_off_runtime`], whose signature
//! and doc comment are the contract the tests check.

use std::time::{Duration, Instant};

use crate::product::ReviewStats;

// GIVEN: review_score (given code, the same as in the reference solution)
/// What the (pretend) review model concluded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReviewScore {
    /// 0.0 (avoid) to 1.0 (buy), from the stars and how many reviews back them.
    pub confidence: f64,
}

/// Scores reviews the expensive way: a stand-in for running a model.
///
/// It keeps one CPU core busy for `cost` on purpose, so the lesson does not
/// depend on how fast this machine is. The result depends only on `stats`.
pub fn score_reviews(stats: &ReviewStats, cost: Duration) -> ReviewScore {
    let started = Instant::now();
    let mut spins: u64 = 0;
    while started.elapsed() < cost {
        // `black_box` keeps the optimiser from deleting the busy loop.
        spins = std::hint::black_box(spins.wrapping_add(1));
    }

    // More reviews make the mean more trustworthy; 100 reviews count fully.
    let weight = f64::from(stats.count.min(100)) / 100.0;
    let stars = (stats.average_stars - 1.0) / 4.0;
    ReviewScore {
        confidence: (stars * weight).clamp(0.0, 1.0),
    }
}
// GIVEN_END: review_score

/// Scores reviews on tokio's blocking thread pool, so the runtime's own
/// threads keep serving other tasks meanwhile.
///
/// Returns exactly what [`score_reviews`]`(&stats, cost)` returns; it sets
/// no deadline, so a scoring that has to wait for a free thread returns
/// late, never another score. The
/// scoring must never run on the thread that polls this future: while it
/// runs, other tasks on that runtime keep their timing (a test runs a 10 ms
/// heartbeat beside it on a single-threaded runtime), and two scorings
/// awaited together overlap instead of taking turns, on a single-threaded
/// and a multi-thread runtime alike (a test checks both take well under the
/// sum).
///
/// # Panics
///
/// If the scoring itself panics, this panics too (the given `score_reviews`
/// never panics, so no test checks this).
///
/// # Cancel safety
///
/// Dropping the future does not stop the scoring already started: blocking
/// code cannot be interrupted. Its result is discarded.
pub async fn score_reviews_off_runtime(stats: ReviewStats, cost: Duration) -> ReviewScore {
    todo!("score_reviews_off_runtime: the CPU work off the runtime's threads, its result awaited")
}
