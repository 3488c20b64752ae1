//! CPU-heavy work, and how to keep it from freezing the runtime.
//!
//! A tokio worker thread runs many tasks by switching between them at each
//! `.await`. Code that computes for 400 ms without reaching an `.await` keeps
//! every other task on that thread waiting for 400 ms: timers fire late,
//! sockets go unread. This is the Rust face of "event loop lag" in asyncio.
//! The cure is to hand such work to a thread that is allowed to block.

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

// ANCHOR: off_runtime
/// Scores reviews on tokio's blocking thread pool, so the runtime's own
/// threads keep serving other tasks meanwhile.
///
/// # Panics
///
/// If the scoring itself panics (it does not).
///
/// # Cancel safety
///
/// Dropping the future does not stop the scoring already started: blocking
/// code cannot be interrupted. Its result is discarded.
pub async fn score_reviews_off_runtime(stats: ReviewStats, cost: Duration) -> ReviewScore {
    // `spawn_blocking` moves the closure to a thread meant for blocking work
    // and gives back a future; awaiting it yields this worker thread to other
    // tasks until the result is ready.
    tokio::task::spawn_blocking(move || score_reviews(&stats, cost))
        .await
        .expect("review scoring panicked")
}
// ANCHOR_END: off_runtime
