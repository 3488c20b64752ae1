//! What the fast fake counts, and the drop guard that counts cancellations.
//!
//! The counters are plain atomics: the handler updates them on every request,
//! at thousands of requests per second, so no lock and no allocation. Each
//! counter is independent (nothing else is published through them), so
//! `Relaxed` ordering is enough.
//!
//! *Cancelled* requests are the interesting ones. When a client drops its
//! request future (a timeout fired, a hedge won, the user went away), reqwest
//! closes the connection, and hyper then drops the handler's future. No code
//! after the handler's `.await` runs; only destructors do. So each request
//! holds a [`RequestGuard`]: finishing the handler records how it ended, and a
//! guard dropped *without* an outcome records a cancellation.
//!
//! The guard owns a handle to the counters (an `Arc`), not a borrow, so it can
//! travel into a response body that is sent late: a request whose body has not
//! been sent yet is still in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A copy of the fast fake's counters at one moment.
///
/// Between [`FastUpstream::reset_counters`](super::FastUpstream::reset_counters)
/// calls made while idle, `requests == completed + failed + cancelled +
/// in_flight`. A snapshot taken while requests finish may be off by those
/// requests: each field is read on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSnapshot {
    /// Requests that reached a service route.
    pub requests: u64,
    /// Requests answered `200`, including garbage bodies.
    pub completed: u64,
    /// Requests answered with an error status: an injected failure, or `404`
    /// for an id that is not a number.
    pub failed: u64,
    /// Requests being handled right now (waiting out their latency, hanging,
    /// or still sending a late body).
    pub in_flight: u64,
    /// The most requests that were in flight at once.
    pub peak_in_flight: u64,
    /// Requests dropped before they were answered, because their client went
    /// away.
    pub cancelled: u64,
}

/// The live counters behind [`CounterSnapshot`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    cancelled: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
        }
    }

    /// Requests in flight right now (one load, for the handler's hot path).
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Zeroes the totals. `in_flight` is a current value, not a total, so it
    /// is kept; the peak restarts from it.
    pub(crate) fn reset(&self) {
        for total in [
            &self.requests,
            &self.completed,
            &self.failed,
            &self.cancelled,
        ] {
            total.store(0, Ordering::Relaxed);
        }
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        self.peak_in_flight.store(in_flight, Ordering::Relaxed);
    }
}

/// How a handled request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered `200`.
    Completed,
    /// Answered with an error status.
    Failed,
}

/// Counts one request in flight for as long as it lives.
///
/// Create it first thing in the handler, call [`finish`](Self::finish) once
/// the whole answer is ready to go (for a late body: when the body is). If
/// the handler's future, or the late body, is dropped before that, the
/// guard's `Drop` counts the request as cancelled.
#[derive(Debug)]
pub(crate) struct RequestGuard {
    counters: Arc<Counters>,
    outcome: Option<Outcome>,
}

impl RequestGuard {
    /// Counts a new request, in flight from now on.
    pub(crate) fn enter(counters: &Arc<Counters>) -> Self {
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let in_flight = counters.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        counters
            .peak_in_flight
            .fetch_max(in_flight, Ordering::Relaxed);
        Self {
            counters: Arc::clone(counters),
            outcome: None,
        }
    }

    /// Records how the request ended and stops counting it as in flight.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        // `self` drops here, and `Drop` does the counting, so the in-flight
        // bookkeeping lives in exactly one place.
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let total = match self.outcome {
            Some(Outcome::Completed) => &self.counters.completed,
            Some(Outcome::Failed) => &self.counters.failed,
            // Dropped without an outcome: the handler never got to answer.
            None => &self.counters.cancelled,
        };
        total.fetch_add(1, Ordering::Relaxed);
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_dropped_without_an_outcome_counts_a_cancellation() {
        let counters = Arc::new(Counters::default());

        drop(RequestGuard::enter(&counters));

        let snapshot = counters.snapshot();
        assert_eq!((snapshot.cancelled, snapshot.in_flight), (1, 0));
    }

    #[test]
    fn finishing_a_guard_counts_its_outcome_and_no_cancellation() {
        let counters = Arc::new(Counters::default());

        RequestGuard::enter(&counters).finish(Outcome::Completed);
        RequestGuard::enter(&counters).finish(Outcome::Failed);

        assert_eq!(
            counters.snapshot(),
            CounterSnapshot {
                requests: 2,
                completed: 1,
                failed: 1,
                in_flight: 0,
                peak_in_flight: 1,
                cancelled: 0,
            }
        );
    }

    #[test]
    fn peak_in_flight_remembers_the_most_guards_alive_at_once() {
        let counters = Arc::new(Counters::default());

        let guards: Vec<_> = (0..3).map(|_| RequestGuard::enter(&counters)).collect();
        drop(guards);

        let snapshot = counters.snapshot();
        assert_eq!((snapshot.peak_in_flight, snapshot.in_flight), (3, 0));
    }

    #[test]
    fn reset_keeps_requests_in_flight_and_restarts_the_peak_from_them() {
        let counters = Arc::new(Counters::default());
        let still_running = RequestGuard::enter(&counters);
        RequestGuard::enter(&counters).finish(Outcome::Completed);

        counters.reset();

        assert_eq!(
            counters.snapshot(),
            CounterSnapshot {
                in_flight: 1,
                peak_in_flight: 1,
                ..CounterSnapshot::default()
            }
        );
        still_running.finish(Outcome::Completed);
    }
}
