//! How far behind its schedule a runtime runs: a heartbeat's lateness,
//! recorded for the lab's own runtimes (the generator's and the fakes').
//!
//! The edge measures its own runtime the same way and shows it in
//! `/metrics`; the lab needs the other two to tell whose fault a slow
//! number is. A generator running 100 ms behind sends late and reads
//! answers late, so its latencies include its own queue; fakes running
//! behind answer late, so the edge sees slow upstreams that are only
//! starved. A heartbeat that asks to wake every [`PERIOD`] and records how
//! late it woke shows both, at the cost of one timer per beat.
//!
//! Given: this whole file (lab code; there is nothing to write in it).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// How often the heartbeat asks to wake: as often as the edge's.
const PERIOD: Duration = Duration::from_millis(10);

/// One runtime's heartbeat lateness since the last [`Heartbeat::reset`].
#[derive(Clone)]
pub struct Heartbeat {
    late_us: Arc<Mutex<Histogram<u64>>>,
}

/// A window's lateness, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lag {
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Heartbeat {
    pub fn new() -> Self {
        Heartbeat {
            late_us: Arc::new(Mutex::new(
                Histogram::new(3).expect("3 significant digits is valid"),
            )),
        }
    }

    /// Beats for ever on the runtime that polls it (spawn it there).
    pub async fn beat(self) {
        let mut due = Instant::now() + PERIOD;
        loop {
            tokio::time::sleep_until(due).await;
            let woke = Instant::now();
            let late = woke.saturating_duration_since(due);
            self.record(late);
            due = woke + PERIOD;
        }
    }

    fn record(&self, late: Duration) {
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.late_us
            .lock()
            .expect("not poisoned")
            .saturating_record(micros);
    }

    /// Forgets what was recorded: a cell's window starts here.
    pub fn reset(&self) {
        self.late_us.lock().expect("not poisoned").reset();
    }

    /// The lateness since the last reset.
    pub fn lag(&self) -> Lag {
        let late = self.late_us.lock().expect("not poisoned");
        Lag {
            p99_ms: late.value_at_quantile(0.99) as f64 / 1e3,
            max_ms: late.max() as f64 / 1e3,
        }
    }
}
