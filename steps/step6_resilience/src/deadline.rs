//! A deadline: one instant, set once at the edge, shared by every call below.
//!
//! Step 2 teaches this in full. Here it is given: a `Copy` value holding a
//! `tokio::time::Instant`, so it can be passed into spawned tasks freely and
//! tests can drive it with paused time. Budgets only shrink: every upstream
//! call, hedge and probe spends from the same deadline.
//!
//! Given: this whole file; there is nothing to write in it.

use std::time::Duration;

use tokio::time::Instant;

/// The instant by which the whole request must have answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline(Instant::now() + budget)
    }

    /// A deadline at an exact instant.
    pub fn at(instant: Instant) -> Self {
        Deadline(instant)
    }

    /// The instant itself, for `tokio::time::timeout_at` and `sleep_until`.
    pub fn instant(self) -> Instant {
        self.0
    }

    /// How long is left; zero once it has passed.
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}
