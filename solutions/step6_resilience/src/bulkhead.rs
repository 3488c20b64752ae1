//! The bulkhead: a cap on the requests in flight to one upstream.
//!
//! Step 3's bulkhead, one compartment per upstream: a [`Semaphore`] with
//! `max_in_flight` permits, taken before each HTTP request and given back
//! when it ends, so the upstream never has more than `max_in_flight` of our
//! requests at once, whatever mix of first attempts, retries and hedges
//! they are. A slow pricing service ties up pricing's permits, never
//! inventory's.
//!
//! Here a permit covers one *request*, not one page (step 3's
//! `admit_page`): the cap is on what the upstream actually receives, and a
//! retry or a hedge's backup waits for a permit like any other request. A
//! request waits for a permit at most `max_wait`, and never past its own
//! attempt's deadline (the caller passes it): the time spent waiting is time
//! the attempt does not have. A request that gets no permit in time is shed
//! with [`FetchError::Overloaded`]: it was never sent, so it says nothing
//! about the upstream.
//!
//! A request only ever holds one permit, so no request can hold one while
//! it waits for another: step 3's hold-and-wait deadlock cannot happen.
//!
//! The permit is an RAII guard: dropping it (success, error, or the
//! attempt's future dropped mid-flight) gives it back.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step6_resilience/src/bulkhead.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::deadline::Deadline;
use crate::error::{ConfigError, FetchError};
use crate::upstream::Upstream;

/// How one upstream's bulkhead is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadConfig {
    /// The most requests in flight to the upstream at once. Size it from
    /// what the upstream can serve (Little's law: its healthy throughput ×
    /// its latency), not from what we would like to send. At least 1.
    pub max_in_flight: usize,
    /// How long a request may wait for a permit before it is shed. Short: a
    /// wait absorbs a burst, a long queue only adds latency to every page.
    /// `Duration::ZERO` sheds at once when the bulkhead is full.
    pub max_wait: Duration,
}

/// One upstream's compartment: its permits, and who is waiting for them.
#[derive(Debug)]
pub struct Bulkhead {
    upstream: Upstream,
    permits: Semaphore,
    max_in_flight: usize,
    max_wait: Duration,
    /// Requests waiting for a permit right now (tokio's semaphore does not
    /// say): counted up when a wait starts, down when it ends however it
    /// ends, by a drop guard.
    waiting: AtomicUsize,
}

impl Bulkhead {
    /// A bulkhead for `upstream`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCap`] if `max_in_flight` is 0 (every request would
    /// be shed), [`ConfigError::CapTooLarge`] if it is more than a tokio
    /// semaphore can count.
    pub fn new(upstream: Upstream, config: BulkheadConfig) -> Result<Self, ConfigError> {
        if config.max_in_flight == 0 {
            return Err(ConfigError::ZeroCap);
        }
        if config.max_in_flight > Semaphore::MAX_PERMITS {
            return Err(ConfigError::CapTooLarge {
                requested: config.max_in_flight,
                limit: Semaphore::MAX_PERMITS,
            });
        }
        Ok(Bulkhead {
            upstream,
            permits: Semaphore::new(config.max_in_flight),
            max_in_flight: config.max_in_flight,
            max_wait: config.max_wait,
            waiting: AtomicUsize::new(0),
        })
    }

    /// Takes a permit for one request, waiting for one until `max_wait` has
    /// passed or `attempt_deadline` comes, whichever is first. A free permit
    /// is taken at once, whatever the time.
    ///
    /// # Errors
    ///
    /// [`FetchError::Overloaded`] if no permit came free in time.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits gives up its place in the queue;
    /// no permit is taken or lost.
    pub async fn acquire(
        &self,
        attempt_deadline: Deadline,
    ) -> Result<SemaphorePermit<'_>, FetchError> {
        let shed = FetchError::Overloaded {
            upstream: self.upstream,
        };
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        let now = Instant::now();
        let wait_ends = now
            .checked_add(self.max_wait)
            .map_or(attempt_deadline.instant(), |end| {
                end.min(attempt_deadline.instant())
            });
        if wait_ends <= now {
            return Err(shed);
        }
        let _waiting = Waiting::start(&self.waiting);
        // `acquire` queues fairly (first come, first served); the bound is
        // how long we are willing to stand in that queue.
        match tokio::time::timeout_at(wait_ends, self.permits.acquire()).await {
            Ok(permit) => Ok(permit.expect("a bulkhead never closes its semaphore")),
            Err(_waited_too_long) => Err(shed),
        }
    }

    /// The permits held right now: requests in flight to the upstream.
    pub fn permits_in_use(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.permits.available_permits())
    }

    /// The requests waiting for a permit right now.
    pub fn waiters(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The most requests in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}

/// Counts one waiting request for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
