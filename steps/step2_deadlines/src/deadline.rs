//! A deadline: the instant by which the whole request must be answered.
//!
//! The deadline is set **once**, at the edge, when the request arrives, and
//! passed down to everything the request does. Each piece of work asks it how
//! much time is *left*, rather than starting a fresh timeout of its own. That
//! way the budget can only shrink: a retry, a second upstream, a slow first
//! attempt all spend from the same 200 ms, and nothing deep in the call tree
//! can quietly wait longer than the caller is willing to.
//!
//! It is a `Copy` value around a [`tokio::time::Instant`], not a
//! `std::time::Instant`, so that tests running on tokio's paused clock see
//! deadlines expire exactly when the virtual time says so.
//!
//! Given: this whole file; there is nothing to write in it.

use std::time::Duration;

use tokio::time::Instant;

/// The instant by which a request must be answered.
///
/// Create one where the request enters the service with
/// [`Deadline::after`], then pass it down by value (it is `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    instant: Instant,
}

impl Deadline {
    /// A deadline `budget` from now, e.g. `Deadline::after(Duration::from_millis(200))`.
    pub fn after(budget: Duration) -> Self {
        Self::at(Instant::now() + budget)
    }

    /// A deadline at a given instant.
    pub fn at(instant: Instant) -> Self {
        Deadline { instant }
    }

    /// The instant itself, for `tokio::time::timeout_at` or `sleep_until`.
    pub fn instant(self) -> Instant {
        self.instant
    }

    /// How much time is left; zero once the deadline has passed (never
    /// negative, never a panic).
    pub fn remaining(self) -> Duration {
        self.instant.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn is_expired(self) -> bool {
        self.remaining().is_zero()
    }
}
