//! Recent latencies of one upstream, for choosing when to hedge.
//!
//! "Hedge at the p95" needs the p95 of *recent* answers: last hour's latency
//! says little about now. Like tower's `hedge` middleware, this keeps two
//! HdrHistograms: one filling for the current window and the one before it.
//! Estimates come from the last complete window, so every estimate is based
//! on a whole window's worth of answers; until the first window completes,
//! the current one is used once it holds enough samples.
//!
//! Recording is a couple of array increments. Reading a quantile walks the
//! histogram's buckets, thousands of them, and a hedge asks for it on every
//! call, so estimates are cached: the one from the last complete window
//! (which cannot change until the next rotation) is computed once; the one
//! from the window still filling, used only while the last complete window
//! holds too few answers (after a start, a quiet spell, or a trickle), is
//! computed again each time the window has grown by a tenth. Both run under
//! a `std::sync::Mutex` that is never held across an `.await`.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step6_resilience/src/latency.rs`.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// Latencies of the recent past, in two rotating windows.
#[derive(Debug)]
pub struct LatencyTracker {
    window: Duration,
    windows: Mutex<Windows>,
}

#[derive(Debug)]
struct Windows {
    current: Histogram<u64>,
    previous: Histogram<u64>,
    current_started: Instant,
    /// The last estimate read from `previous`: `(quantile's bits, value)`.
    /// Cleared at each rotation.
    cached: Option<(u64, Duration)>,
    /// The last estimate read from `current` while it was the only one:
    /// `(quantile's bits, value, samples it saw)`. Cleared at each rotation.
    cached_filling: Option<(u64, Duration, u64)>,
}

/// The largest latency recorded, in microseconds (a minute); longer ones are
/// recorded as a minute.
const MAX_MICROS: u64 = 60_000_000;

fn empty_histogram() -> Histogram<u64> {
    // Three significant digits: 0.1 % error, enough to place a hedge.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("bounds 1..60 s with 3 digits are valid")
}

impl LatencyTracker {
    /// A tracker whose windows last `window` each (tower uses one second).
    pub fn new(window: Duration) -> Self {
        LatencyTracker {
            window,
            windows: Mutex::new(Windows {
                current: empty_histogram(),
                previous: empty_histogram(),
                current_started: Instant::now(),
                cached: None,
                cached_filling: None,
            }),
        }
    }

    /// Records one answer's latency.
    pub fn record(&self, latency: Duration) {
        let mut windows = self.lock();
        self.rotate_if_due(&mut windows);
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        // Cannot fail: the value is clamped into the histogram's bounds.
        let _ = windows.current.record(micros);
    }

    /// The latency below which `quantile` (0.95 for p95) of recent answers
    /// fell, or `None` while fewer than `min_samples` answers are known.
    pub fn quantile(&self, quantile: f64, min_samples: u64) -> Option<Duration> {
        let mut windows = self.lock();
        self.rotate_if_due(&mut windows);
        let enough = min_samples.max(1);
        if windows.previous.len() >= enough {
            if let Some((bits, estimate)) = windows.cached
                && bits == quantile.to_bits()
            {
                return Some(estimate);
            }
            let estimate = Duration::from_micros(windows.previous.value_at_quantile(quantile));
            windows.cached = Some((quantile.to_bits(), estimate));
            Some(estimate)
        } else if windows.current.len() >= enough {
            // Only while the last complete window holds too few answers.
            // Still filling, so the estimate moves: it is computed again
            // each time the window has grown by a tenth. Walking the buckets
            // on every call instead cost the edge about 2 µs of CPU per page
            // in a profile of the lab's floor cells (each starts a fresh
            // edge, so its first two seconds are in this branch).
            let samples = windows.current.len();
            if let Some((bits, estimate, seen)) = windows.cached_filling
                && bits == quantile.to_bits()
                && samples < seen + seen / 10
            {
                return Some(estimate);
            }
            let estimate = Duration::from_micros(windows.current.value_at_quantile(quantile));
            windows.cached_filling = Some((quantile.to_bits(), estimate, samples));
            Some(estimate)
        } else {
            None
        }
    }

    /// Starts a new window once the current one is `window` old. After a
    /// quiet spell longer than two windows, both are stale and start empty.
    fn rotate_if_due(&self, windows: &mut Windows) {
        let age = windows.current_started.elapsed();
        if age < self.window {
            return;
        }
        if age < self.window * 2 {
            std::mem::swap(&mut windows.previous, &mut windows.current);
        } else {
            windows.previous.reset();
        }
        windows.current.reset();
        windows.current_started = Instant::now();
        windows.cached = None;
        windows.cached_filling = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        // Poisoning cannot leave a histogram half-written in a way that
        // matters for an estimate; keep going.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
