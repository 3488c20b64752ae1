//! The runtime's health: tokio's own counters, read when `/metrics` is
//! rendered, and a heartbeat task that measures how late a ready task runs.
//!
//! The heartbeat's measure is also *evidence*, read on the hot path through
//! a [`RuntimeLag`] handle: the edge sheds a page request while the runtime
//! runs behind, and each breaker asks it whether a timeout was the
//! upstream's or ours. A task that wakes late waited for a worker, and so
//! did every other ready task: the answer sitting in a socket, the timer of
//! an attempt's deadline. When the heartbeat is late, everything is late.
//!
//! Only tokio's *stable* runtime metrics are used (`num_workers`,
//! `num_alive_tasks`, `global_queue_depth`): the others need the binary
//! built with `RUSTFLAGS="--cfg tokio_unstable"`. What they cannot show (a
//! worker stuck in blocking code, a task that never yields) shows as lag.
//! The series' names are step 4's.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step6_resilience/src/telemetry/runtime.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Gauge, Histogram, Unit};
use tokio::runtime::RuntimeMetrics;
use tokio::time::Instant;

/// Gauge: tasks alive on the runtime that serves `/metrics`.
pub const RUNTIME_ALIVE_TASKS: &str = "tokio_alive_tasks";
/// Gauge: tasks waiting in the runtime's global (injection) queue.
pub const RUNTIME_GLOBAL_QUEUE_DEPTH: &str = "tokio_global_queue_depth";
/// Gauge: the runtime's worker threads.
pub const RUNTIME_WORKERS: &str = "tokio_workers";
/// Histogram: how late the heartbeat woke, in seconds.
pub const EVENT_LOOP_LAG: &str = "tokio_event_loop_lag_seconds";

/// How often the heartbeat asks to wake: 100 times a second. Admission reads
/// its measure on every page request, so it must follow a runtime that
/// falls behind within tens of milliseconds, not within a second; a beat
/// costs one timer and one poll, nothing next to a page's work.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(10);

/// Bucket bounds for [`EVENT_LOOP_LAG`], in seconds: step 4's. A healthy
/// runtime is late by at most about a millisecond (the timer's
/// granularity); the upper bounds catch a blocked worker.
pub const LAG_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The runtime's gauges and the heartbeat's histogram.
#[derive(Debug)]
pub struct RuntimeGauges {
    alive_tasks: Gauge,
    global_queue_depth: Gauge,
    workers: Gauge,
    /// Where [`heartbeat`] records; clone it into the task.
    pub event_loop_lag: Histogram,
}

impl RuntimeGauges {
    /// Registers every series in the recorder in effect.
    pub fn register() -> Self {
        metrics::describe_gauge!(RUNTIME_ALIVE_TASKS, "Tasks alive on the runtime");
        metrics::describe_gauge!(
            RUNTIME_GLOBAL_QUEUE_DEPTH,
            "Tasks waiting in the runtime's global queue"
        );
        metrics::describe_gauge!(RUNTIME_WORKERS, "The runtime's worker threads");
        metrics::describe_histogram!(
            EVENT_LOOP_LAG,
            Unit::Seconds,
            "How late a heartbeat task woke: a runtime too busy or blocked shows here"
        );
        RuntimeGauges {
            alive_tasks: metrics::gauge!(RUNTIME_ALIVE_TASKS),
            global_queue_depth: metrics::gauge!(RUNTIME_GLOBAL_QUEUE_DEPTH),
            workers: metrics::gauge!(RUNTIME_WORKERS),
            event_loop_lag: metrics::histogram!(EVENT_LOOP_LAG),
        }
    }

    /// Sets the gauges from `runtime`.
    pub fn sample(&self, runtime: &RuntimeMetrics) {
        self.alive_tasks.set(runtime.num_alive_tasks() as f64);
        self.global_queue_depth
            .set(runtime.global_queue_depth() as f64);
        self.workers.set(runtime.num_workers() as f64);
    }
}

/// How far behind its schedule the runtime is running, as a [`heartbeat`]
/// on it measures: a cheap shared handle (clones read the same numbers), so
/// the edge can read it on every request and each breaker on every outcome.
///
/// [`RuntimeLag::recent`] is the larger of two readings, in microseconds:
///
/// * the beats' lateness, smoothed: each beat moves it a quarter of the
///   way to its own lateness (an exponential moving average, as Node's
///   `toobusy` smooths its lag), so one late beat is not an overload and a
///   run of them is, within a few beats;
/// * how overdue the beat that is due now is: a runtime that is stuck right
///   now shows before the beat that would measure it has run.
///
/// That reading is for admission, which asks "are we behind *now*?". A
/// breaker asks something else about a call that timed out: "were we behind
/// at any time *while it was in flight*?" A stall in the middle of a call
/// can delay its answer past its deadline, and by the time the deadline is
/// seen the runtime may have caught up and the smoothed reading decayed.
/// So the handle also keeps the lateness of the last [`RECENT_BEATS`]
/// beats: [`RuntimeLag::mark`] when the call starts, and
/// [`RuntimeLag::worst_since`] when it ends gives the latest of the beats in
/// between (or the beat overdue now, if later).
///
/// A handle that no heartbeat writes into reads zero: nothing measured is no
/// evidence of lag.
#[derive(Debug, Clone)]
pub struct RuntimeLag {
    readings: Arc<LagReadings>,
}

#[derive(Debug)]
struct LagReadings {
    /// What the due time below counts from.
    origin: Instant,
    /// The smoothed lateness of the beats, in microseconds.
    smoothed_micros: AtomicU64,
    /// When the next beat is due, in microseconds from `origin`;
    /// [`NO_BEAT_DUE`] while no heartbeat writes here.
    next_beat_due_micros: AtomicU64,
    /// How many beats have run.
    beats: AtomicU64,
    /// Beat `n`'s lateness, in microseconds, at index `n % RECENT_BEATS`.
    recent_late_micros: [AtomicU64; RECENT_BEATS],
}

/// How many beats [`RuntimeLag::worst_since`] can look back over: 2.56 s at
/// [`HEARTBEAT_PERIOD`], longer than a breaker's call lasts in the lab and
/// the binary (a section, bounded by the page's budget: 2 s at most), and a
/// stalled runtime beats less often, so it looks back further. A call that
/// outlived them is judged by the last ones.
pub const RECENT_BEATS: usize = 256;

/// Where [`RuntimeLag::worst_since`] starts looking: a count of beats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagMark {
    beats: u64,
}

/// The due time of a handle that no heartbeat writes into.
const NO_BEAT_DUE: u64 = u64::MAX;

/// How far each beat moves the smoothed lateness toward its own: a quarter.
/// At [`HEARTBEAT_PERIOD`], a runtime that falls behind shows within a few
/// beats (tens of milliseconds), and one that catches up stops showing as
/// fast.
const SMOOTHING_SHIFT: u32 = 2;

impl RuntimeLag {
    /// A handle for a heartbeat to write into; it reads zero until one does.
    pub fn new() -> Self {
        RuntimeLag {
            readings: Arc::new(LagReadings {
                origin: Instant::now(),
                smoothed_micros: AtomicU64::new(0),
                next_beat_due_micros: AtomicU64::new(NO_BEAT_DUE),
                beats: AtomicU64::new(0),
                recent_late_micros: std::array::from_fn(|_| AtomicU64::new(0)),
            }),
        }
    }

    /// How far behind the runtime is running now (zero while no heartbeat
    /// writes here). Two atomic loads and a clock read.
    pub fn recent(&self) -> Duration {
        let readings = &*self.readings;
        let smoothed = readings.smoothed_micros.load(Ordering::Relaxed);
        Duration::from_micros(smoothed.max(readings.overdue_micros()))
    }

    /// Marks now, for [`RuntimeLag::worst_since`]. One atomic load.
    pub fn mark(&self) -> LagMark {
        LagMark {
            beats: self.readings.beats.load(Ordering::Acquire),
        }
    }

    /// The latest any beat ran since `mark` (at most the last
    /// [`RECENT_BEATS`]), or how overdue the beat due now is, if that is
    /// more: how far behind the runtime fell at its worst since then. Zero
    /// while no heartbeat writes here.
    pub fn worst_since(&self, mark: LagMark) -> Duration {
        let readings = &*self.readings;
        let beats = readings.beats.load(Ordering::Acquire);
        let looked_back = beats.saturating_sub(mark.beats).min(RECENT_BEATS as u64);
        let worst_beat = (beats - looked_back..beats)
            .map(|beat| readings.recent_late_micros[slot(beat)].load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        Duration::from_micros(worst_beat.max(readings.overdue_micros()))
    }

    /// A beat ran `late`; the next one is due at `next_due`.
    fn beat(&self, late: Duration, next_due: Instant) {
        let readings = &*self.readings;
        let late = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let smoothed = readings.smoothed_micros.load(Ordering::Relaxed);
        // Only the heartbeat writes, so a load then a store loses nothing.
        let moved = if late >= smoothed {
            smoothed + ((late - smoothed) >> SMOOTHING_SHIFT)
        } else {
            smoothed - ((smoothed - late) >> SMOOTHING_SHIFT)
        };
        readings.smoothed_micros.store(moved, Ordering::Relaxed);
        let beat = readings.beats.load(Ordering::Relaxed);
        readings.recent_late_micros[slot(beat)].store(late, Ordering::Relaxed);
        // Release: a reader that sees the new count sees this beat's slot.
        readings.beats.store(beat + 1, Ordering::Release);
        readings
            .next_beat_due_micros
            .store(readings.micros_since_origin(next_due), Ordering::Relaxed);
    }

    /// The heartbeat stopped: nothing measures any more, so nothing lags.
    fn stop(&self) {
        let readings = &*self.readings;
        readings
            .next_beat_due_micros
            .store(NO_BEAT_DUE, Ordering::Relaxed);
        readings.smoothed_micros.store(0, Ordering::Relaxed);
        for late in &readings.recent_late_micros {
            late.store(0, Ordering::Relaxed);
        }
    }
}

impl Default for RuntimeLag {
    fn default() -> Self {
        RuntimeLag::new()
    }
}

/// Where beat number `beat` keeps its lateness.
fn slot(beat: u64) -> usize {
    // The remainder is below RECENT_BEATS, so it fits a usize.
    (beat % RECENT_BEATS as u64) as usize
}

impl LagReadings {
    /// How overdue the beat due now is, in microseconds: a runtime stuck
    /// right now shows before the beat that would measure it has run.
    fn overdue_micros(&self) -> u64 {
        let due = self.next_beat_due_micros.load(Ordering::Relaxed);
        if due == NO_BEAT_DUE {
            0
        } else {
            self.micros_since_origin(Instant::now()).saturating_sub(due)
        }
    }

    fn micros_since_origin(&self, at: Instant) -> u64 {
        let micros = at.saturating_duration_since(self.origin).as_micros();
        // Below NO_BEAT_DUE for 584,000 years.
        u64::try_from(micros).unwrap_or(NO_BEAT_DUE - 1)
    }
}

/// Tells the handle that its heartbeat stopped, however it stopped
/// (aborted with the server, most often).
struct StopOnDrop(RuntimeLag);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Runs forever: wakes every `period`, records in `histogram` how late it
/// woke, in seconds, and publishes it through `lag`. Spawn it on the
/// runtime to watch; when its task ends, `lag` reads zero again.
///
/// When the runtime was stuck for longer than a period, the beats that
/// could not happen are recorded too (`lag - period`, `lag - 2 × period`,
/// ...), as a load generator corrects for coordinated omission: otherwise
/// a one-second stall would be one sample among thousands.
pub async fn heartbeat(histogram: Histogram, lag: RuntimeLag, period: Duration) {
    let lag = StopOnDrop(lag);
    let mut due = Instant::now() + period;
    lag.0.beat(Duration::ZERO, due);
    loop {
        tokio::time::sleep_until(due).await;
        let woke = Instant::now();
        let late = woke.saturating_duration_since(due);
        due = woke + period;
        lag.0.beat(late, due);
        histogram.record(late.as_secs_f64());
        let mut missed = late;
        while missed > period {
            missed -= period;
            histogram.record(missed.as_secs_f64());
        }
    }
}
