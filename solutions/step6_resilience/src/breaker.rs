//! A circuit breaker per upstream: stop calling what is not working.
//!
//! Calling a dead upstream costs twice: each call waits out its timeout (our
//! latency), and each call is more load on a service that is trying to come
//! back (its recovery). A breaker watches the outcomes and, after
//! `failure_threshold` failures in a row, *opens*: calls fail at once with
//! [`FetchError::CircuitOpen`] without touching the network. After
//! `cool_down` it turns *half-open* and lets up to `half_open_probes` calls
//! through; a successful probe *closes* it again, a failed one reopens it for
//! another cool-down.
//!
//! ```text
//!            failure_threshold failures in a row
//!   Closed ─────────────────────────────────────▶ Open ◀─────┐
//!     ▲                                            │         │ a probe fails
//!     │ a probe succeeds              cool_down    │         │
//!     └───────────────────── HalfOpen ◀────────────┘─────────┘
//! ```
//!
//! Every transition is decided on `tokio::time::Instant`, so tests can pause
//! the clock and step through a cool-down exactly. The state sits behind a
//! `std::sync::Mutex`: it is held for a few instructions and never across an
//! `.await`, which is what makes a plain mutex the right tool here.
//!
//! The breaker counts what the *upstream* did, not what we did to ourselves.
//! [`verdict`] judges each outcome: it counts as a failure, counts as a
//! success, or says nothing ([`Verdict`]). A 5xx, a refused connection or a
//! body that is not what the upstream promised is the upstream failing; any
//! other answer, a 404 included, is a working upstream; a call we never sent
//! or gave up on says nothing. A timeout is the hard case, because the
//! deadline is the caller's: a call can time out because of *us*. A page that
//! queued on a saturated machine reaches its upstream with little of its
//! deadline left; a runtime too busy to run our tasks sees the timer (and any
//! answer waiting on the socket) late. Counting those would open the breaker
//! on a healthy upstream exactly when we are overloaded, and turn our
//! overload into an outage. So a timeout counts only if the upstream had a
//! fair chance ([`FairTimeout`]): the call had at least `min_own_time` before
//! its deadline, we saw it time out within `timer_tolerance` of that
//! deadline, and our runtime never ran more than `timer_tolerance` behind
//! its schedule while the call was in flight (the heartbeat's measure,
//! [`RuntimeLag`]). The last rule is the one that holds past the knee: there
//! the retry loop's attempts time out *on time*, by their own short
//! deadlines, while the answers they wait for sit unread behind our own
//! queue of ready tasks, and the runtime may have caught up by the time the
//! timeout is seen.
//!
//! A call's outcome is reported through a [`Permit`]. An outcome that says
//! nothing is treated like a permit dropped without an outcome, which means
//! the call was cancelled (a hedge won, the client went away, an outer
//! timeout dropped the call): it is not counted at all, and a probe that
//! says nothing frees its slot for the next one.
//!
//! Calls are slow and the breaker moves on without them, so an outcome can
//! arrive after the state it was admitted in has ended: a call let through
//! while closed may finish after the breaker opened, cooled down and let a
//! probe through. Each change of state therefore starts a new *generation*,
//! and each permit remembers the generation that issued it. An outcome from
//! an earlier generation is stale: it is ignored, so it can neither close a
//! half-open breaker, nor reopen it, nor free a probe slot it never held.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::deadline::Deadline;
use crate::error::{ConfigError, FetchError};
use crate::telemetry::RuntimeLag;
use crate::upstream::Upstream;

// GIVEN: breaker_config (given code, the same as in the reference solution)
/// How a breaker decides. See the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker. At least 1.
    pub failure_threshold: u32,
    /// How long an open breaker fails fast before letting probes through.
    pub cool_down: Duration,
    /// How many calls a half-open breaker lets through at once. At least 1.
    pub half_open_probes: u32,
    /// When a timed-out call is the upstream's failure rather than ours.
    pub fair_timeout: FairTimeout,
}

// ANCHOR: fair_timeout
/// When a timeout counts against the upstream: only if the upstream had a
/// fair chance to answer, and we were there to see that it did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FairTimeout {
    /// The least time a call must have had between the breaker letting it
    /// through and its deadline for its timeout to count. A call with less was
    /// cut short by its caller (the page spent its time queueing, or on
    /// something else), not failed by the upstream. Set it to what a healthy
    /// upstream needs with room to spare: a few times its p99. Longer than
    /// zero.
    pub min_own_time: Duration,
    /// How late our runtime may be running and a timeout still count: how
    /// late after its deadline the timeout may be seen, and how far behind
    /// its schedule the runtime may have run while the call was in flight
    /// ([`CallTimes::runtime_lag`]). Later than that, our own runtime was too
    /// busy to run the timer when it was due, or to read an answer that may
    /// have been waiting: the timeout measured us, not the upstream. tokio's
    /// timers have millisecond granularity (coarser on some platforms), so
    /// at least 1 ms. Keep it below the lag at which the edge sheds: an
    /// answer waits in our queue more than once (for the connection's task,
    /// then for the section's), so a runtime that is behind by a little at
    /// each wait can make a healthy call miss a short attempt deadline.
    pub timer_tolerance: Duration,
}
// ANCHOR_END: fair_timeout

impl BreakerConfig {
    /// Checks that the breaker can work with these settings.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting that cannot work.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.failure_threshold == 0 {
            return Err(ConfigError::ZeroFailureThreshold);
        }
        if self.half_open_probes == 0 {
            return Err(ConfigError::ZeroProbes);
        }
        if self.cool_down.is_zero() {
            return Err(ConfigError::ZeroCoolDown(self.cool_down));
        }
        let FairTimeout {
            min_own_time,
            timer_tolerance,
        } = self.fair_timeout;
        if min_own_time.is_zero() {
            return Err(ConfigError::ZeroMinOwnTime(min_own_time));
        }
        if timer_tolerance < Duration::from_millis(1) {
            return Err(ConfigError::TimerToleranceBelowGranularity(timer_tolerance));
        }
        Ok(self)
    }
}
// GIVEN_END: breaker_config

// GIVEN: breaker_types (given code, the same as in the reference solution)
/// What one call's outcome says about the upstream's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The upstream failed: one more failure in a row; a probe reopens.
    Failure,
    /// The upstream worked: the failures in a row are forgotten; a probe
    /// closes the breaker.
    Success,
    /// Nothing about the upstream: counted as neither, like a cancelled call
    /// (a probe gives its slot back).
    SaysNothing,
}

/// When a call ran, as its breaker saw it: what a timeout is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimes {
    /// When the breaker let the call through.
    pub admitted: Instant,
    /// The deadline the call was bound by.
    pub deadline: Instant,
    /// When the breaker saw the call's outcome.
    pub ended: Instant,
    /// The furthest behind its schedule our runtime ran while the call was
    /// in flight ([`RuntimeLag::worst_since`]); zero when nothing measures
    /// it.
    pub runtime_lag: Duration,
}

/// What the breaker would do with a call made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; failures are being counted.
    Closed,
    /// Calls fail fast until the cool-down is over.
    Open,
    /// A limited number of probe calls go through; the rest fail fast.
    HalfOpen,
}

/// The breaker's memory: what it needs to make the next decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { probes_in_flight: u32 },
}

/// The state, and which generation of it this is.
#[derive(Debug)]
struct Tracked {
    state: State,
    /// Counts changes of state (closed → open, open → half-open, and so on).
    /// Updates within a state, such as one more failure counted while
    /// closed, keep the generation.
    generation: u64,
}

impl Tracked {
    /// Changes to `state`, starting a new generation: from now on, the
    /// outcomes of permits issued before this call are stale.
    fn enter(&mut self, state: State) {
        self.state = state;
        self.generation = self.generation.wrapping_add(1);
    }
}
// GIVEN_END: breaker_types

// ANCHOR: verdict
/// What a call's outcome says about its upstream, so the breaker counts what
/// the upstream did and not what we did to ourselves.
///
/// * An answer we can use is [`Verdict::Success`].
/// * A 5xx status is [`Verdict::Failure`]: the upstream says it failed. Any
///   other status (a 404, a 400) is the upstream answering correctly about
///   our request: [`Verdict::Success`].
/// * No answer at all ([`FetchError::Transport`]: refused, reset) or a 2xx
///   body we cannot decode is [`Verdict::Failure`].
/// * A call never sent ([`FetchError::CircuitOpen`]; [`FetchError::Overloaded`],
///   shed by our own full bulkhead) or cancelled ([`FetchError::Cancelled`])
///   is [`Verdict::SaysNothing`].
/// * A [`FetchError::Timeout`] is [`Verdict::Failure`] only if the upstream
///   had a fair chance, as `fair` defines it: the call had at least
///   `min_own_time` from `times.admitted` to `times.deadline`, *and* the
///   timeout was seen (`times.ended`) no more than `timer_tolerance` after
///   the deadline, *and* our runtime ran no more than `timer_tolerance`
///   behind its schedule while the call was in flight
///   (`times.runtime_lag`). Otherwise it is [`Verdict::SaysNothing`].
///
/// A pure function of its arguments: it reads no clock. Every variant of
/// [`FetchError`] is decided here, so a variant added later must not compile
/// until someone decides what it says about the upstream.
pub fn verdict<T>(result: &Result<T, FetchError>, times: CallTimes, fair: FairTimeout) -> Verdict {
    match result {
        Ok(_) => Verdict::Success,
        // The upstream says it failed.
        Err(FetchError::Status { status, .. }) if *status >= 500 => Verdict::Failure,
        // A 4xx (or any other status) is a working upstream answering about
        // our request; backing off from a 429 is a retry policy's job.
        Err(FetchError::Status { .. }) => Verdict::Success,
        // Nobody answered, or the answer broke its own contract.
        Err(FetchError::Transport { .. } | FetchError::Decode { .. }) => Verdict::Failure,
        // The deadline is ours: judge whether the upstream had a fair chance.
        Err(FetchError::Timeout { .. }) => judge_timeout(times, fair),
        // We never sent it, or we gave up on it: nothing about the upstream.
        Err(
            FetchError::CircuitOpen { .. }
            | FetchError::Overloaded { .. }
            | FetchError::Cancelled { .. },
        ) => Verdict::SaysNothing,
    }
}

/// A timeout is the upstream's failure only if the call had its own time
/// (its caller did not spend the deadline first), we saw the timeout on
/// time (our runtime was not too busy to look), and our runtime never ran
/// more than the tolerance behind while the call was in flight (an
/// attempt's own timer can fire on time while the answer it waits for sits
/// unread behind our queue of ready tasks).
fn judge_timeout(times: CallTimes, fair: FairTimeout) -> Verdict {
    let own_time = times.deadline.saturating_duration_since(times.admitted);
    let seen_late_by = times.ended.saturating_duration_since(times.deadline);
    let we_kept_up =
        seen_late_by <= fair.timer_tolerance && times.runtime_lag <= fair.timer_tolerance;
    if own_time >= fair.min_own_time && we_kept_up {
        Verdict::Failure
    } else {
        Verdict::SaysNothing
    }
}
// ANCHOR_END: verdict

// GIVEN: breaker_and_permit (given code, the same as in the reference solution)
/// A circuit breaker for one upstream.
#[derive(Debug)]
pub struct CircuitBreaker {
    upstream: Upstream,
    config: BreakerConfig,
    tracked: Mutex<Tracked>,
}

/// The right to make one call through a breaker; report how it went with
/// [`Permit::record_success`] or [`Permit::record_failure`]. Dropping it
/// without either records a cancellation, which is not a failure.
#[derive(Debug)]
#[must_use = "a permit dropped at once records a cancelled call"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    /// The generation that issued this permit. While it is still the
    /// breaker's generation, the state has not changed since: a permit issued
    /// by a half-open breaker of the same generation is one of its probes.
    generation: u64,
    /// Set once an outcome is recorded, so `Drop` knows it was not cancelled.
    settled: bool,
}
// GIVEN_END: breaker_and_permit

impl CircuitBreaker {
    // GIVEN: breaker_new_and_call (given code, the same as in the reference solution)
    /// A closed breaker for `upstream`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if `config` cannot work (see [`BreakerConfig::validate`]).
    pub fn new(upstream: Upstream, config: BreakerConfig) -> Result<Self, ConfigError> {
        Ok(CircuitBreaker {
            upstream,
            config: config.validate()?,
            tracked: Mutex::new(Tracked {
                state: State::Closed {
                    consecutive_failures: 0,
                },
                generation: 0,
            }),
        })
    }

    /// The upstream this breaker protects.
    pub fn upstream(&self) -> Upstream {
        self.upstream
    }

    /// What the breaker would do with a call made now. An open breaker whose
    /// cool-down is over reports `HalfOpen`: the next call is a probe.
    pub fn state(&self) -> BreakerState {
        match self.lock().state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Runs `call`, which is bound by `deadline`, through the breaker: fails
    /// fast with [`FetchError::CircuitOpen`] if the breaker is open, otherwise
    /// awaits `call` and records the [`verdict`] on its outcome. The breaker
    /// times the call itself (when it let it through, when the outcome came
    /// back), so a timeout is judged by what the breaker saw. Nothing
    /// measures the runtime here: [`CallTimes::runtime_lag`] is zero (see
    /// [`CircuitBreaker::call_watching`]).
    ///
    /// `call` is a future that has not started yet (futures are lazy), so an
    /// open breaker costs no request at all.
    ///
    /// # Errors
    ///
    /// [`FetchError::CircuitOpen`], or whatever `call` returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `call` and its permit: the call is
    /// recorded as cancelled, not failed.
    pub async fn call<T>(
        &self,
        deadline: Deadline,
        call: impl Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        self.call_watching(None, deadline, call).await
    }

    /// As [`CircuitBreaker::call`], and if `runtime` is given, the outcome
    /// is judged with the furthest behind its schedule the runtime ran while
    /// the call was in flight ([`CallTimes::runtime_lag`]).
    ///
    /// # Errors
    ///
    /// [`FetchError::CircuitOpen`], or whatever `call` returned.
    ///
    /// # Cancel safety
    ///
    /// As [`CircuitBreaker::call`]'s.
    pub async fn call_watching<T>(
        &self,
        runtime: Option<&RuntimeLag>,
        deadline: Deadline,
        call: impl Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let permit = self.try_acquire()?;
        let admitted = Instant::now();
        let mark = runtime.map(RuntimeLag::mark);
        let result = call.await;
        let times = CallTimes {
            admitted,
            deadline: deadline.instant(),
            ended: Instant::now(),
            // The worst lag while the call was in flight, not the lag now: a
            // stall in the middle of the call delays its answer as much, and
            // the runtime may have caught up since.
            runtime_lag: runtime
                .zip(mark)
                .map_or(Duration::ZERO, |(runtime, mark)| runtime.worst_since(mark)),
        };
        match verdict(&result, times, self.config.fair_timeout) {
            Verdict::Failure => permit.record_failure(),
            Verdict::Success => permit.record_success(),
            // Nothing to count: let the permit's `Drop` record it as it
            // records a cancellation.
            Verdict::SaysNothing => drop(permit),
        }
        result
    }
    // GIVEN_END: breaker_new_and_call

    // ANCHOR: try_acquire
    /// Asks to make one call. A closed breaker lets it through. An open
    /// breaker whose cool-down is over turns half-open on this call (a change
    /// of state, so a new generation) and lets up to `half_open_probes`
    /// calls through at once as probes. The permit carries the generation
    /// that issued it.
    ///
    /// # Errors
    ///
    /// [`FetchError::CircuitOpen`] while the breaker is open, and while it is
    /// half-open with all its probe slots taken.
    pub fn try_acquire(&self) -> Result<Permit<'_>, FetchError> {
        let mut tracked = self.lock();
        // An open breaker whose cool-down is over turns half-open now, on
        // the first call that asks: no timer task is needed.
        if let State::Open { until } = tracked.state {
            if Instant::now() < until {
                return Err(self.open_error());
            }
            tracked.enter(State::HalfOpen {
                probes_in_flight: 0,
            });
        }
        match &mut tracked.state {
            State::Closed { .. } => {}
            State::HalfOpen { probes_in_flight }
                if *probes_in_flight < self.config.half_open_probes =>
            {
                *probes_in_flight += 1;
            }
            State::HalfOpen { .. } | State::Open { .. } => return Err(self.open_error()),
        }
        Ok(Permit {
            breaker: self,
            generation: tracked.generation,
            settled: false,
        })
    }
    // ANCHOR_END: try_acquire

    // ANCHOR: outcomes
    /// A call admitted in `generation` succeeded. If the state has not
    /// changed since, a closed breaker forgets its failures (staying in the
    /// same generation, so the calls still in flight keep counting) and a
    /// half-open breaker closes (the call was one of its probes). Closing is a
    /// change of state, so a new generation: the other probes of the spell
    /// just ended no longer count. An outcome from an earlier generation
    /// changes nothing.
    fn on_success(&self, generation: u64) {
        let mut tracked = self.lock();
        if generation != tracked.generation {
            // Admitted before the last change of state: too late to matter.
            return;
        }
        match tracked.state {
            State::Closed { .. } => {
                // Not a change of state: calls in flight still count.
                tracked.state = State::Closed {
                    consecutive_failures: 0,
                };
            }
            State::HalfOpen { .. } => tracked.enter(State::Closed {
                consecutive_failures: 0,
            }),
            // No permit is issued while open, so none can report here.
            State::Open { .. } => {}
        }
    }

    /// A call admitted in `generation` failed. If the state has not changed
    /// since, a closed breaker counts one more failure in a row and opens at
    /// `failure_threshold`, and a half-open breaker reopens (the call was one
    /// of its probes); either way the cool-down runs from now. An outcome
    /// from an earlier generation changes nothing.
    fn on_failure(&self, generation: u64) {
        let mut tracked = self.lock();
        if generation != tracked.generation {
            return;
        }
        let open = State::Open {
            until: Instant::now() + self.config.cool_down,
        };
        match tracked.state {
            State::Closed {
                consecutive_failures,
            } => {
                let consecutive_failures = consecutive_failures + 1;
                if consecutive_failures >= self.config.failure_threshold {
                    tracked.enter(open);
                } else {
                    tracked.state = State::Closed {
                        consecutive_failures,
                    };
                }
            }
            State::HalfOpen { .. } => tracked.enter(open),
            State::Open { .. } => {}
        }
    }

    /// A call admitted in `generation` was cancelled: no verdict on the
    /// upstream. A probe of the current half-open generation gives its slot
    /// back, so another call can probe.
    fn on_cancelled(&self, generation: u64) {
        let mut tracked = self.lock();
        if generation != tracked.generation {
            // A probe of an earlier half-open spell holds no slot now.
            return;
        }
        if let State::HalfOpen { probes_in_flight } = &mut tracked.state {
            *probes_in_flight = probes_in_flight.saturating_sub(1);
        }
    }
    // ANCHOR_END: outcomes

    // GIVEN: open_error_and_lock (given code, the same as in the reference solution)
    fn open_error(&self) -> FetchError {
        FetchError::CircuitOpen {
            upstream: self.upstream,
        }
    }

    /// Locks the state. Nothing that can panic runs while it is held, so a
    /// poisoned lock cannot hold a half-made change and is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.tracked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    // GIVEN_END: open_error_and_lock
}

// GIVEN: permit_records (given code, the same as in the reference solution)
impl Permit<'_> {
    /// Records that the call succeeded.
    pub fn record_success(mut self) {
        self.settled = true;
        self.breaker.on_success(self.generation);
    }

    /// Records that the call failed in a way that says the upstream is unhealthy.
    pub fn record_failure(mut self) {
        self.settled = true;
        self.breaker.on_failure(self.generation);
    }
}
// GIVEN_END: permit_records

// ANCHOR: permit_drop
impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // Dropped without an outcome: the call's future was dropped mid-flight.
        if !self.settled {
            self.breaker.on_cancelled(self.generation);
        }
    }
}
// ANCHOR_END: permit_drop
