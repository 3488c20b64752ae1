//! The random part of a retry's backoff, behind a small trait.
//!
//! Step 2's backoff is *full jitter*: before retry number `n` the orchestrator
//! sleeps a uniformly random time in `0..=ceiling`, where the ceiling is
//! `min(max_delay, base_delay × 2^n)` (see
//! [`Config::backoff_ceiling`](crate::Config::backoff_ceiling)). The
//! randomness is what spreads the retries of many clients apart, so an
//! upstream that recovers is not hit by all of them in the same millisecond.
//!
//! Randomness and exact tests do not mix, so the orchestrator does not draw
//! the random number itself: it asks a [`Jitter`] for "a delay in
//! `0..=ceiling`". In production that is [`FullJitter`], a random number
//! generator. A test can pass [`FullJitter::seeded`] (the same seed gives the
//! same delays on every run) or a closure such as `|ceiling| ceiling` (always
//! the top of the range) or `|_| Duration::ZERO` (always the bottom), so that
//! on a paused clock every backoff has a known length.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Picks how long to back off before a retry.
///
/// `pick(ceiling)` returns a delay in `0..=ceiling`; the orchestrator cuts
/// anything longer down to `ceiling`. Every closure
/// `Fn(Duration) -> Duration + Send + Sync + 'static` is a `Jitter`.
pub trait Jitter: Send + Sync + 'static {
    /// A delay between zero and `ceiling`, both included.
    fn pick(&self, ceiling: Duration) -> Duration;
}

impl<F> Jitter for F
where
    F: Fn(Duration) -> Duration + Send + Sync + 'static,
{
    fn pick(&self, ceiling: Duration) -> Duration {
        self(ceiling)
    }
}

/// Full jitter: a uniformly random whole number of milliseconds in
/// `0..=ceiling` (Brooker, "Exponential Backoff And Jitter", 2015).
///
/// Whole milliseconds because tokio's timers have millisecond resolution:
/// finer jitter would be rounded away. The generator sits behind a `Mutex`
/// that is held only for one draw, never across an `.await`, so one
/// `FullJitter` serves every call of every request.
pub struct FullJitter {
    rng: Mutex<StdRng>,
}

impl FullJitter {
    /// Seeded from the operating system: different delays on every run.
    pub fn from_entropy() -> Self {
        Self {
            rng: Mutex::new(StdRng::from_rng(&mut rand::rng())),
        }
    }

    /// Seeded with `seed`: the same sequence of delays on every run.
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }
}

impl Jitter for FullJitter {
    fn pick(&self, ceiling: Duration) -> Duration {
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        // A panic while drawing cannot leave the generator half-updated in a
        // way that matters: any state is a valid state.
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Duration::from_millis(rng.random_range(0..=ceiling_ms))
    }
}

impl fmt::Debug for FullJitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FullJitter").finish_non_exhaustive()
    }
}
