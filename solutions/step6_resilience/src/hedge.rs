//! Hedged requests: race the tail instead of waiting it out.
//!
//! Most answers are fast; a few are very slow for reasons that have nothing
//! to do with the request (a GC pause, a lost packet, a busy neighbour). If
//! the first attempt has not answered by the time most answers have (the
//! *hedge delay*, e.g. the recent p95), a second, identical request is sent,
//! and whichever succeeds first wins. The slow one is dropped, which cancels
//! it. Dean and Barroso's *The Tail at Scale* reports what this buys; the
//! lab measures it here. (tower's `hedge` middleware differs on one point:
//! it returns whichever attempt *completes* first, even with an error. Here
//! a failure waits for the other attempt, so one fast error cannot throw
//! away a success still on its way.)
//!
//! Three guardrails keep hedging from turning into an overload amplifier:
//!
//! * no hedge while the first attempt is on time (a fast answer costs one
//!   request, as before);
//! * a [`RetryBudget`] caps hedges at a share of section calls; it is the
//!   upstream's one budget for extra attempts, shared with the retries, and
//!   the caller pays into it once per section call (a hedge spends, it never
//!   deposits);
//! * the delay comes from observed latency, so when the upstream is slow for
//!   everyone the delay grows with it instead of hedging everything.
//!
//! Only send hedges for requests that are safe to repeat (GETs, idempotent
//! writes): the upstream may well serve both.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::{Either, select};
use tokio::time::Instant;

use crate::budget::RetryBudget;
use crate::error::ConfigError;
use crate::latency::LatencyTracker;

// GIVEN: hedge_config (given code, the same as in the reference solution)
/// When to send the backup request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeDelay {
    /// Always after this long.
    Fixed(Duration),
    /// After the recent `quantile` of successful answers' latency (0.95 for
    /// the p95), but never sooner than `floor`. No hedge at all until
    /// `min_samples` answers have been seen: a guess is worse than waiting.
    Quantile {
        /// A fraction: 0.95, not 95.
        quantile: f64,
        /// The shortest delay, so a very fast upstream is not hedged on noise.
        floor: Duration,
        /// Answers needed before the estimate is trusted.
        min_samples: u64,
    },
}

/// How one upstream is hedged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgeConfig {
    /// When to send the backup.
    pub delay: HedgeDelay,
    /// The length of each latency window (see [`LatencyTracker`]).
    pub latency_window: Duration,
}

/// The hedging state of one upstream: the budget it spends from, its recent
/// latencies and how many hedges it has sent.
#[derive(Debug)]
pub struct Hedge {
    delay: HedgeDelay,
    budget: Arc<RetryBudget>,
    latency: LatencyTracker,
    hedges_sent: AtomicU64,
}

impl Hedge {
    /// Hedging state for one upstream, whose backups are paid from `budget`
    /// (the upstream's one budget for extra attempts, shared with its
    /// retries).
    ///
    /// # Errors
    ///
    /// [`ConfigError::QuantileOutOfRange`] for a quantile outside 0..=1.
    pub fn new(config: HedgeConfig, budget: Arc<RetryBudget>) -> Result<Self, ConfigError> {
        if let HedgeDelay::Quantile { quantile, .. } = config.delay
            && !(0.0..=1.0).contains(&quantile)
        {
            return Err(ConfigError::QuantileOutOfRange(quantile));
        }
        Ok(Hedge {
            delay: config.delay,
            budget,
            latency: LatencyTracker::new(config.latency_window),
            hedges_sent: AtomicU64::new(0),
        })
    }

    /// How long to wait before hedging a call starting now; `None` means
    /// "do not hedge" (not enough latency data yet).
    pub fn delay(&self) -> Option<Duration> {
        match self.delay {
            HedgeDelay::Fixed(delay) => Some(delay),
            HedgeDelay::Quantile {
                quantile,
                floor,
                min_samples,
            } => self
                .latency
                .quantile(quantile, min_samples)
                .map(|estimate| estimate.max(floor)),
        }
    }

    /// The budget backups are paid from.
    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// The recent latencies the delay is computed from.
    pub fn latency(&self) -> &LatencyTracker {
        &self.latency
    }

    /// How many backups this upstream has been sent so far.
    pub fn hedges_sent(&self) -> u64 {
        self.hedges_sent.load(Ordering::Relaxed)
    }
}
// GIVEN_END: hedge_config

// ANCHOR: hedged
/// Runs `attempt()` once and, if it has not answered by the hedge delay
/// ([`Hedge::delay`]), runs it a second time as a backup, budget allowing;
/// the first *success* wins.
///
/// * While [`Hedge::delay`] is `None` (too few answers seen yet), no backup
///   is sent: the call is the first attempt alone.
/// * An answer that arrives before the delay, success or failure, is
///   returned at once: hedging races slowness, it does not retry errors.
/// * A backup takes a whole token out of [`Hedge::budget`], and without one
///   the call waits for its first attempt (whose success is recorded like
///   any other). `hedged` only spends: the caller pays into the budget, once
///   per section call however many attempts it makes, so that no attempt
///   earns the token for the next.
///   Each backup sent is counted in [`Hedge::hedges_sent`].
/// * Once both attempts run, a success returns at once and the other
///   attempt is dropped; a failure waits for the other attempt.
///
/// `attempt` makes a fresh, not-yet-started request each time it is called.
/// Each success's latency, timed from the start of the attempt that
/// succeeded, is recorded in [`Hedge::latency`]; failures are not recorded.
/// Those recorded answers are what a [`HedgeDelay::Quantile`] delay is
/// learned from.
///
/// # Errors
///
/// When no attempt succeeded, the error of the last one to fail: with a
/// backup out, that is the attempt that failed second.
///
/// # Cancel safety
///
/// Dropping the returned future drops every attempt in flight. When one
/// attempt wins, the other is dropped (so cancelled) before this returns.
pub async fn hedged<T, E, F, Fut>(hedge: &Hedge, attempt: F) -> Result<T, E>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let first_started = Instant::now();
    // `pin!` inside an `async fn` stores the attempt in this function's own
    // future, which is pinned while it is polled: no allocation, and the
    // attempt can be polled a little, set aside and polled again.
    let mut first = pin!(attempt());

    // Give the first attempt until the hedge delay to answer on its own.
    let on_time = match hedge.delay() {
        Some(delay) => tokio::time::timeout(delay, &mut first).await.ok(),
        None => Some(first.as_mut().await),
    };
    if let Some(result) = on_time {
        record_if_success(hedge, &result, first_started);
        return result;
    }
    if !hedge.budget.try_withdraw() {
        // Over budget: wait for the first attempt, like an unhedged call.
        let result = first.await;
        record_if_success(hedge, &result, first_started);
        return result;
    }

    hedge.hedges_sent.fetch_add(1, Ordering::Relaxed);
    let backup_started = Instant::now();
    let backup = pin!(attempt());
    // `select` resolves with whichever finishes first and hands back the
    // other, still running. A success wins at once; the loser is dropped
    // (cancelled) when this function returns. A failure waits for the other.
    match select(first, backup).await {
        Either::Left((Ok(value), _backup)) => {
            hedge.latency.record(first_started.elapsed());
            Ok(value)
        }
        Either::Right((Ok(value), _first)) => {
            hedge.latency.record(backup_started.elapsed());
            Ok(value)
        }
        Either::Left((Err(_), backup)) => {
            let result = backup.await;
            record_if_success(hedge, &result, backup_started);
            result
        }
        Either::Right((Err(_), first)) => {
            let result = first.await;
            record_if_success(hedge, &result, first_started);
            result
        }
    }
}

/// Records a success's latency; failures are left out, so a burst of fast
/// errors cannot drag the hedge delay down.
fn record_if_success<T, E>(hedge: &Hedge, result: &Result<T, E>, started: Instant) {
    if result.is_ok() {
        hedge.latency.record(started.elapsed());
    }
}
// ANCHOR_END: hedged
