//! An in-process fake of the three upstreams, for exact unit tests.
//!
//! [`FakeUpstreams`] implements [`UpstreamClient`] without any socket: each
//! call sleeps for the upstream's scripted latency with `tokio::time::sleep`
//! and then answers with the same bodies the wiremock fixtures send
//! ([`fake_upstreams::Service::body`]), or with a scripted status, or never
//! answers at all (a stall, until the caller gives up). Because
//! everything runs on the test's own runtime, a test can pause tokio's clock
//! (`#[tokio::test(start_paused = true)]`) and assert durations exactly.
//!
//! It also *counts*, per upstream: calls made, calls in flight right now,
//! the peak in flight, and calls cancelled (dropped before they finished).
//! Those counters are what let a test see concurrency, retries, leaks and
//! cancellation, none of which show in the response itself.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_upstreams::Service;
use serde_json::Value;

use crate::client::UpstreamClient;
use crate::error::FetchError;
use crate::upstream::Upstream;

/// How one fake upstream behaves.
#[derive(Debug, Clone, Default)]
struct Script {
    latency: Duration,
    /// Never answer the next `stalls_left` calls.
    stalls_left: u32,
    /// Fail the next `failures_left` calls with `failure_status`...
    failures_left: u32,
    failure_status: u16,
    /// ...or every call with this status.
    always_status: Option<u16>,
}

/// What one fake upstream has seen.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    cancelled: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    scripts: [Mutex<Script>; 3],
    counters: [Counters; 3],
}

/// Three scripted in-process upstreams; clones share the same state, so a
/// test keeps one clone to script and inspect while the orchestrator owns
/// another.
#[derive(Debug, Clone, Default)]
pub struct FakeUpstreams {
    state: Arc<State>,
}

impl FakeUpstreams {
    /// Three healthy upstreams that answer at once.
    pub fn healthy() -> Self {
        Self::default()
    }

    /// Every call to `upstream` takes `latency` (on tokio's clock) before it answers.
    pub fn set_latency(&self, upstream: Upstream, latency: Duration) {
        self.script(upstream).latency = latency;
    }

    /// Every call to `upstream` answers with `status` (e.g. 404 or 503).
    pub fn fail_with(&self, upstream: Upstream, status: u16) {
        self.script(upstream).always_status = Some(status);
    }

    /// The next `times` calls to `upstream` answer with `status`, later ones succeed.
    pub fn fail_first(&self, upstream: Upstream, times: u32, status: u16) {
        let mut script = self.script(upstream);
        script.failures_left = times;
        script.failure_status = status;
    }

    /// The next `times` calls to `upstream` never answer: each waits until
    /// the caller drops it (a timeout, a cancelled request). Later calls
    /// behave as scripted otherwise.
    pub fn stall_first(&self, upstream: Upstream, times: u32) {
        self.script(upstream).stalls_left = times;
    }

    /// Calls made to `upstream` so far (including retries).
    pub fn calls(&self, upstream: Upstream) -> usize {
        self.counters(upstream).calls.load(Ordering::SeqCst)
    }

    /// Calls to `upstream` started and not yet finished or dropped.
    pub fn in_flight(&self, upstream: Upstream) -> usize {
        self.counters(upstream).in_flight.load(Ordering::SeqCst)
    }

    /// The most calls to `upstream` ever in flight at once.
    pub fn peak_in_flight(&self, upstream: Upstream) -> usize {
        self.counters(upstream)
            .peak_in_flight
            .load(Ordering::SeqCst)
    }

    /// Calls to `upstream` dropped before they answered.
    pub fn cancelled(&self, upstream: Upstream) -> usize {
        self.counters(upstream).cancelled.load(Ordering::SeqCst)
    }

    fn script(&self, upstream: Upstream) -> std::sync::MutexGuard<'_, Script> {
        // A panicking test may poison the lock; the script is still usable.
        self.state.scripts[upstream.index()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn counters(&self, upstream: Upstream) -> &Counters {
        &self.state.counters[upstream.index()]
    }

    /// Decides this call's answer now, so concurrent calls each consume one
    /// scripted stall or failure.
    fn next_answer(&self, upstream: Upstream) -> Answer {
        let mut script = self.script(upstream);
        if script.stalls_left > 0 {
            script.stalls_left -= 1;
            return Answer::Stall;
        }
        let status = if let Some(status) = script.always_status {
            Some(status)
        } else if script.failures_left > 0 {
            script.failures_left -= 1;
            Some(script.failure_status)
        } else {
            None
        };
        Answer::After {
            latency: script.latency,
            status,
        }
    }
}

/// What one call will do.
enum Answer {
    /// Never answer.
    Stall,
    /// Answer after `latency`: with `status` as an error, or the body.
    After {
        latency: Duration,
        status: Option<u16>,
    },
}

/// Counts a call as in flight until dropped; a drop before `finish` is a
/// cancellation.
struct InFlight {
    state: Arc<State>,
    index: usize,
    finished: bool,
}

impl InFlight {
    fn start(state: Arc<State>, index: usize) -> Self {
        let counters = &state.counters[index];
        counters.calls.fetch_add(1, Ordering::SeqCst);
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self {
            state,
            index,
            finished: false,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let counters = &self.state.counters[self.index];
        counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            counters.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn service(upstream: Upstream) -> Service {
    match upstream {
        Upstream::Inventory => Service::Inventory,
        Upstream::Pricing => Service::Pricing,
        Upstream::Reviews => Service::Reviews,
    }
}

impl UpstreamClient for FakeUpstreams {
    fn get(
        &self,
        upstream: Upstream,
        product_id: u64,
    ) -> impl Future<Output = Result<Value, FetchError>> + Send {
        let fake = self.clone();
        async move {
            let mut guard = InFlight::start(Arc::clone(&fake.state), upstream.index());
            let (latency, status) = match fake.next_answer(upstream) {
                Answer::Stall => std::future::pending().await,
                Answer::After { latency, status } => (latency, status),
            };
            tokio::time::sleep(latency).await;
            guard.finished = true;
            match status {
                Some(status) => Err(FetchError::Status { upstream, status }),
                None => Ok(service(upstream).body(product_id)),
            }
        }
    }
}
