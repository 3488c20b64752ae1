//! Admission: at most `max_in_flight` page requests in the handler at once,
//! and the next one shed at once.
//!
//! The decision is a `try_acquire` on a semaphore: an atomic compare and
//! swap, no lock held, no waiting. A request that finds no place is not
//! queued. A queue in front of a saturated service only moves the wait from
//! the page to the queue, and every page behind it inherits that wait: past
//! the knee, a queue turns overload into lateness for everyone. Refusing
//! the excess in microseconds keeps the admitted pages fast, and the shed
//! client hears at once, with a `Retry-After`, that it should come back.
//!
//! The place is held by [`Admitted`], which the handler keeps for as long as
//! its future lives: answered, failed, or dropped because the client went
//! away, the place is given back when the future ends, and not before.
//!
//! Given: this whole file; there is nothing to write in it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The in-flight limit of the page route.
#[derive(Debug)]
pub struct Admission {
    places: Arc<Semaphore>,
    max_in_flight: usize,
}

/// One admitted request's place; dropping it gives the place back.
#[derive(Debug)]
#[must_use = "dropping the place at once admits the request without counting it"]
pub struct Admitted {
    _place: OwnedSemaphorePermit,
}

impl Admission {
    /// Room for `max_in_flight` requests at once (at least 1, at most
    /// `Semaphore::MAX_PERMITS`: `EdgeConfig::validate` checks it).
    pub fn new(max_in_flight: usize) -> Self {
        Admission {
            places: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
        }
    }

    /// A place, if one is free right now; `None` means shed this request.
    /// Never waits.
    pub fn try_admit(&self) -> Option<Admitted> {
        Arc::clone(&self.places)
            .try_acquire_owned()
            .ok()
            .map(|place| Admitted { _place: place })
    }

    /// Requests holding a place right now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.places.available_permits()
    }

    /// The limit.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}
