//! Admission: at most as many page requests in the handler at once as the
//! limit allows, fewer while the runtime runs behind its schedule, and the
//! next one shed at once.
//!
//! Three rules, checked in this order, each in nanoseconds:
//!
//! * **The runtime is behind.** The heartbeat's lag ([`RuntimeLag`]) is the
//!   queue in front of our own CPU: every ready task waits that long for a
//!   worker. Past `max_runtime_lag` a share of the requests is shed, growing
//!   from none at that lag to all at twice it (the rule of Node's `toobusy`).
//!   A share, not all at once, so the load eases off smoothly instead of
//!   swinging between "everything" and "nothing"; and the lag comes back
//!   down as soon as the excess stops arriving. This rule adapts to the
//!   machine: the same setting holds on 2 cores and on 32, under a
//!   neighbour's load or none, where a fixed cap is right on one machine at
//!   most.
//! * **The pages are slow.** The [`LatencyLimit`]: a limit on pages in
//!   flight that learns from how long the recent pages took. When more
//!   than one page in twenty took longer than the latency target, it is
//!   cut to nine tenths of what was in use (multiplicative decrease); while
//!   pages are fast and the limit is in use, it grows by about one page per
//!   round of pages (additive increase). This is the rule that holds past
//!   the knee when *our own* runtime keeps up but the upstreams slow down
//!   (on a machine they share with us, because we took their CPU): fewer
//!   pages at once is the only thing that makes them fast again.
//! * **No place is free.** One compare and swap on the count of pages in
//!   flight, against the learnt limit, which never exceeds the hard cap
//!   `max_in_flight` (the most pages that could ever be answered within
//!   their budget) and never drops below a floor. No lock, no waiting.
//!
//! A request that is refused is not queued. A queue in front of a saturated
//! service only moves the wait from the page to the queue, and every page
//! behind it inherits that wait: past the knee, a queue turns overload into
//! lateness for everyone. Refusing the excess in microseconds keeps the
//! admitted pages fast, and the shed client hears at once, with a
//! `Retry-After`, that it should come back.
//!
//! The place is held by [`Admitted`], which the handler keeps for as long as
//! its future lives: answered, failed, or dropped because the client went
//! away, the place is given back when the future ends, and not before; and
//! how long it was held is the latency the limit learns from.
//!
//! Given: this whole file; there is nothing to write in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rand::Rng as _;
use tokio::time::Instant;

use crate::telemetry::RuntimeLag;

/// The page route's admission: the lag rule, the learnt limit and the count
/// of pages in flight.
#[derive(Debug)]
pub struct Admission {
    places: Arc<Places>,
    runtime: RuntimeLag,
    max_runtime_lag: Duration,
    shed_lagging: AtomicU64,
}

/// What an [`Admitted`] needs to give its place back and report how long it
/// held it.
#[derive(Debug)]
struct Places {
    in_flight: AtomicUsize,
    max_in_flight: usize,
    /// `None`: the limit is the hard cap, whatever the latency.
    learnt: Option<LatencyLimit>,
}

/// One admitted request's place; dropping it gives the place back and
/// reports how long it was held.
#[derive(Debug)]
#[must_use = "dropping the place at once admits the request without counting it"]
pub struct Admitted {
    places: Arc<Places>,
    since: Instant,
}

impl Admission {
    /// Room for `max_in_flight` requests at once (at least 1:
    /// `EdgeConfig::validate` checks it), fewer while `runtime` reads more
    /// than `max_runtime_lag`, and fewer while pages are slow if a
    /// [`LatencyLimit`] is given.
    pub fn new(
        max_in_flight: usize,
        learnt: Option<LatencyLimit>,
        runtime: RuntimeLag,
        max_runtime_lag: Duration,
    ) -> Self {
        Admission {
            places: Arc::new(Places {
                in_flight: AtomicUsize::new(0),
                max_in_flight,
                learnt,
            }),
            runtime,
            max_runtime_lag,
            shed_lagging: AtomicU64::new(0),
        }
    }

    /// A place, if the runtime keeps up and one is free under the limit
    /// right now; `None` means shed this request. Never waits.
    pub fn try_admit(&self) -> Option<Admitted> {
        if self.runtime_is_behind() {
            self.shed_lagging.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let limit = self.limit();
        // One compare and swap (retried only if another request moved the
        // count in between): the count never passes the limit read here.
        let taken =
            self.places
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                    (now < limit).then_some(now + 1)
                });
        let in_flight = taken.ok()? + 1;
        if let Some(learnt) = &self.places.learnt {
            learnt.saw_in_flight(in_flight);
        }
        Some(Admitted {
            places: Arc::clone(&self.places),
            since: Instant::now(),
        })
    }

    /// Whether to shed this request because the runtime runs behind: never
    /// at or below `max_runtime_lag`, always at twice it or more, and in
    /// between with a chance that grows with the lag.
    fn runtime_is_behind(&self) -> bool {
        let lag = self.runtime.recent();
        if lag <= self.max_runtime_lag {
            return false;
        }
        let over = (lag - self.max_runtime_lag).as_secs_f64() / self.max_runtime_lag.as_secs_f64();
        over >= 1.0 || rand::rng().random_bool(over)
    }

    /// Requests holding a place right now.
    pub fn in_flight(&self) -> usize {
        self.places.in_flight.load(Ordering::Relaxed)
    }

    /// The hard cap: the limit never exceeds it.
    pub fn max_in_flight(&self) -> usize {
        self.places.max_in_flight
    }

    /// The limit in force now: the learnt one, or the hard cap without a
    /// [`LatencyLimit`].
    pub fn limit(&self) -> usize {
        match &self.places.learnt {
            Some(learnt) => learnt.limit(),
            None => self.places.max_in_flight,
        }
    }

    /// Requests shed so far because the runtime ran behind (the rest of
    /// the shed found no place under the limit).
    pub fn shed_lagging(&self) -> u64 {
        self.shed_lagging.load(Ordering::Relaxed)
    }

    /// How far behind the runtime runs now, as admission reads it.
    pub fn runtime_lag(&self) -> Duration {
        self.runtime.recent()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let still_in_flight = self.places.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        if let Some(learnt) = &self.places.learnt {
            learnt.page_took(self.since, Instant::now(), still_in_flight);
        }
    }
}

// ANCHOR: latency_limit
/// A limit on pages in flight learnt from their latency: additive increase,
/// multiplicative decrease (AIMD), judged once per window.
///
/// Each window (as long as the target) counts the pages that ended in it,
/// those of them slower than the target, and the most pages that were in
/// flight at once. When the window ends:
///
/// * more than 5 % of its pages slower than the target (its p95 is over
///   the target): the limit becomes nine tenths of what was in use (the
///   smaller of the limit and the window's peak), never below the floor;
/// * otherwise, if at least half the limit was in use: it grows by one for
///   each limit's worth of pages that ended, at least one (about one page
///   per round trip, as TCP grows its window), never above the hard cap;
/// * otherwise it stays: a limit nobody pushes against has shown nothing.
///
/// A page admitted before the last decrease is not counted at all: it
/// measured the old limit, and counting it would cut again for the same
/// overload (TCP, likewise, cuts its window once per round trip). A window
/// with no page counted leaves the limit as it is.
///
/// Lock free: every page adds to a few atomic counters when it ends, and
/// the one page that ends a window (the winner of a compare and swap on
/// the window's start) moves the limit.
#[derive(Debug)]
pub struct LatencyLimit {
    target: Duration,
    floor: usize,
    cap: usize,
    limit: AtomicUsize,
    /// What the instants below count from.
    origin: Instant,
    window_started_micros: AtomicU64,
    last_cut_micros: AtomicU64,
    pages: AtomicU64,
    slow_pages: AtomicU64,
    peak_in_flight: AtomicUsize,
}

/// What is left of the limit in use after a window of slow pages. Netflix's
/// `AIMDLimit` backs off to 0.9 by default; deeper cuts overshoot.
const BACKOFF: f64 = 0.9;

/// More than one slow page in this many, and the window's p95 is over the
/// target. The p95, not the p99: a few pages in a hundred are slow at any
/// load when an upstream fails or stalls now and then (they retried, or
/// waited for a hedge), and cutting for them would shed a load the machine
/// serves; overload slows the bulk of the pages, and the p95 shows that.
const SLOW_SHARE_DENOMINATOR: u64 = 20;

impl LatencyLimit {
    /// A limit that starts at `cap` (nothing is shed before the pages are
    /// slow), stays within `floor..=cap`, and keeps the p95 of a window's
    /// pages under `target`.
    pub fn new(target: Duration, floor: usize, cap: usize) -> Self {
        LatencyLimit {
            target,
            floor: floor.min(cap),
            cap,
            limit: AtomicUsize::new(cap),
            origin: Instant::now(),
            window_started_micros: AtomicU64::new(0),
            last_cut_micros: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            slow_pages: AtomicU64::new(0),
            peak_in_flight: AtomicUsize::new(0),
        }
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// A page was admitted, making `in_flight` pages in flight.
    fn saw_in_flight(&self, in_flight: usize) {
        self.peak_in_flight.fetch_max(in_flight, Ordering::Relaxed);
    }

    /// A page admitted at `since` ended at `now`, leaving `in_flight`.
    fn page_took(&self, since: Instant, now: Instant, in_flight: usize) {
        let admitted = self.micros(since);
        let ended = self.micros(now);
        // A page admitted before the last cut measured the old limit: it is
        // no evidence about the new one, fast or slow.
        if admitted >= self.last_cut_micros.load(Ordering::Relaxed) {
            if now.saturating_duration_since(since) > self.target {
                self.slow_pages.fetch_add(1, Ordering::Relaxed);
            }
            self.pages.fetch_add(1, Ordering::Relaxed);
        }

        let started = self.window_started_micros.load(Ordering::Relaxed);
        if ended < started + micros_of(self.target) {
            return;
        }
        // Many pages may see the window over at once; one of them ends it.
        if self
            .window_started_micros
            .compare_exchange(started, ended, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.end_window(ended, in_flight);
        }
    }

    /// Moves the limit on what the window that ends at `now_micros` saw;
    /// `in_flight` pages go on into the next one.
    fn end_window(&self, now_micros: u64, in_flight: usize) {
        let pages = self.pages.swap(0, Ordering::Relaxed);
        let slow = self.slow_pages.swap(0, Ordering::Relaxed);
        // The next window's peak starts at what is in flight now, not at 0:
        // a window in which every request was shed still had a full limit.
        let peak = self.peak_in_flight.swap(in_flight, Ordering::Relaxed);
        let limit = self.limit();
        let next = if pages == 0 {
            limit
        } else if slow * SLOW_SHARE_DENOMINATOR > pages {
            self.last_cut_micros.store(now_micros, Ordering::Relaxed);
            // Truncating: a limit of 1 in use goes to 0, then to the floor.
            (peak.min(limit) as f64 * BACKOFF) as usize
        } else if peak * 2 >= limit {
            let rounds = usize::try_from(pages).unwrap_or(usize::MAX) / limit.max(1);
            limit.saturating_add(rounds.max(1))
        } else {
            limit
        };
        // Only the page that ended the window writes the limit.
        self.limit
            .store(next.clamp(self.floor, self.cap), Ordering::Relaxed);
    }

    fn micros(&self, at: Instant) -> u64 {
        micros_of(at.saturating_duration_since(self.origin))
    }
}

/// `span` in whole microseconds; far below `u64::MAX` (adding a window to
/// it cannot overflow).
fn micros_of(span: Duration) -> u64 {
    u64::try_from(span.as_micros()).unwrap_or(u64::MAX / 2)
}
// ANCHOR_END: latency_limit
