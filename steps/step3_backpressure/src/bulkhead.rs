//! The bulkhead: a cap on calls in flight to each upstream, and shedding past it.
//!
//! A ship's bulkheads split the hull into compartments, so one leak floods
//! one compartment instead of sinking the ship. Here each upstream gets its
//! own compartment: a [`Semaphore`] with `max_in_flight` permits. A call takes
//! a permit before it starts and gives it back when it ends, so no upstream
//! ever has more than `max_in_flight` of our calls in flight, and a slow
//! pricing service can tie up at most its own permits, never the calls to
//! inventory or reviews.
//!
//! When every permit is taken, a caller waits at most `max_wait` for one to
//! come back; after that it is *shed* with [`FetchError::Overloaded`]. A short
//! wait absorbs bursts; a bound on it keeps the queue (and so the latency) in
//! front of the semaphore from growing without limit.
//!
//! A permit is an RAII guard: dropping it returns it. That is why permits
//! always come back: after success, after an error, after a panic, and when
//! the caller's future is dropped mid-flight (cancellation), because in every
//! one of those cases the permit goes out of scope.
//!
//! A product page needs a permit from *every* compartment, and a caller that
//! holds one permit while it waits for another can deadlock with a caller
//! doing the reverse. [`Bulkhead::admit_page`] is the one place that takes
//! several permits, and it takes them in one fixed order (the *permit order*:
//! inventory, pricing, reviews). That order has a price in isolation, spelled
//! out on `admit_page`.
//!
//! Yours to write: [`Bulkhead::new`], [`Bulkhead::acquire`] and
//! [`Bulkhead::admit_page`], with any private helpers you want. Given:
//! [`PagePermits`], the [`Bulkhead`] type and its small accessors.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ConfigError, FetchError};
use crate::per_upstream::PerUpstream;
use crate::upstream::Upstream;

// GIVEN: bulkhead_types (given code, the same as in the reference solution)
/// One permit from each upstream's compartment: what a whole product page
/// needs before it sends anything.
///
/// The permits are owned, so each can be moved into the call it covers and
/// come back the moment that call ends, whatever its siblings are doing.
#[derive(Debug)]
pub struct PagePermits {
    /// Covers the call to inventory.
    pub inventory: OwnedSemaphorePermit,
    /// Covers the call to pricing.
    pub pricing: OwnedSemaphorePermit,
    /// Covers the call to reviews.
    pub reviews: OwnedSemaphorePermit,
}

/// A per-upstream cap on calls in flight, with load shedding past the cap.
///
/// Build one per process and share it by reference (or in an `Arc`): the
/// semaphores only protect an upstream if every call to it goes through the
/// same bulkhead.
#[derive(Debug)]
pub struct Bulkhead {
    /// One semaphore per upstream, each with `max_in_flight` permits. In an
    /// `Arc` because [`Semaphore::acquire_owned`] needs one: an owned permit
    /// is not tied to a borrow of the bulkhead, so it can be moved into a
    /// spawned task or stored without lifetime trouble.
    compartments: PerUpstream<Arc<Semaphore>>,
    /// The cap each semaphore started with.
    max_in_flight: usize,
    /// How long a call may wait for a permit before it is shed.
    max_wait: Duration,
}
// GIVEN_END: bulkhead_types

impl Bulkhead {
    /// A bulkhead allowing `max_in_flight` calls in flight to *each* upstream.
    /// A call that finds no free permit waits for one until `max_wait` has
    /// passed, and is then shed; `Duration::ZERO` sheds at once, and a wait
    /// too long to add to the clock (`Duration::MAX`) never ends: never panic.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCap`] if `max_in_flight` is 0 (every call would be
    /// shed), [`ConfigError::CapTooLarge`] if it is more than a tokio
    /// semaphore can count ([`Semaphore::MAX_PERMITS`]).
    pub fn new(max_in_flight: usize, max_wait: Duration) -> Result<Bulkhead, ConfigError> {
        todo!("Bulkhead::new: refuse a cap that cannot work, then a compartment per upstream")
    }

    // GIVEN: accessors (given code, the same as in the reference solution)
    /// The cap on calls in flight to each upstream.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// How long a call waits for a permit before it is shed.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// How many more calls `upstream` may take right now. Equal to
    /// [`max_in_flight`](Self::max_in_flight) when nothing is in flight: the
    /// check that every permit came back.
    pub fn available_permits(&self, upstream: Upstream) -> usize {
        self.compartments[upstream].available_permits()
    }
    // GIVEN_END: accessors

    /// Takes a permit to call `upstream`, waiting for one until
    /// [`max_wait`](Self::max_wait) has passed, and no longer. Keep the permit
    /// alive for the whole call: dropping it hands it to the next caller.
    /// Callers waiting for the same compartment are served first come, first
    /// served: a permit that comes back goes to the caller that has waited
    /// longest, never to one that arrives as it comes back.
    ///
    /// # Errors
    ///
    /// [`FetchError::Overloaded`] if no permit came free in time.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits gives up its place in the queue;
    /// no permit is taken or lost.
    ///
    /// # Timing
    ///
    /// The wait is counted from the moment `acquire` is called. A free
    /// permit is handed out at once, whatever `max_wait` is (zero included).
    /// With none free, the caller waits; if none comes back in time, it is
    /// shed when `max_wait` has passed, not before and not later.
    /// [`admit_page`](Self::admit_page) makes the same promise for three
    /// permits together.
    pub async fn acquire(&self, upstream: Upstream) -> Result<OwnedSemaphorePermit, FetchError> {
        todo!("Bulkhead::acquire: a permit within max_wait, or Overloaded")
    }

    /// Admits a whole product page: one permit from every compartment, or
    /// none at all. The page waits for the three *together* until
    /// [`max_wait`](Self::max_wait) has passed, and no longer: a shed page
    /// hears "no" after one wait, not one per permit.
    ///
    /// # Deadlock freedom
    ///
    /// Pages are admitted at the same moment on different threads, and no
    /// two of them may ever each hold a permit the other one is waiting for
    /// (with a long wait, they would both stand still until it runs out).
    /// What prevents it is the bulkhead's *permit order*: inventory, then
    /// pricing, then reviews. While a page waits for a permit, the only
    /// permits it may hold are ones *earlier* in that order.
    ///
    /// # What it costs in isolation
    ///
    /// A page waiting for pricing may hold an inventory permit while it waits,
    /// for at most `max_wait`: with a cap of k, up to k such pages can hold
    /// every inventory permit, and a call to healthy inventory then queues
    /// behind them. A page waiting for inventory, first in the order, holds
    /// nothing, and reviews, last in the order, is never held by a page that
    /// waits. With `max_wait` zero nothing waits, so nothing is held while
    /// waiting: shedding at once keeps the compartments fully apart.
    ///
    /// # Errors
    ///
    /// [`FetchError::Overloaded`] naming the first upstream whose compartment
    /// was still full when the wait ran out. The permits already taken go
    /// back at once.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future returns the permits taken so far and gives up its
    /// place in the queue it was waiting in.
    pub async fn admit_page(&self) -> Result<PagePermits, FetchError> {
        todo!("Bulkhead::admit_page: every permit, in the permit order, within one wait")
    }
}
