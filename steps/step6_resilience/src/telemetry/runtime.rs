//! The runtime's health: tokio's own counters, read when `/metrics` is
//! rendered, and a heartbeat task that measures how late a ready task runs.
//!
//! Only tokio's *stable* runtime metrics are used (`num_workers`,
//! `num_alive_tasks`, `global_queue_depth`): the others need the binary
//! built with `RUSTFLAGS="--cfg tokio_unstable"`. What they cannot show (a
//! worker stuck in blocking code, a task that never yields) shows as lag.
//! The series' names are step 4's.
//!
//! Given: this whole file; there is nothing to write in it.

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

/// How often the heartbeat asks to wake.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(100);

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

/// Runs forever: wakes every `period` and records in `lag` how late it
/// woke, in seconds. Spawn it on the runtime to watch.
///
/// When the runtime was stuck for longer than a period, the beats that
/// could not happen are recorded too (`lag - period`, `lag - 2 × period`,
/// ...), as a load generator corrects for coordinated omission: otherwise
/// a one-second stall would be one sample among thousands.
pub async fn heartbeat(lag: Histogram, period: Duration) {
    let mut due = Instant::now() + period;
    loop {
        tokio::time::sleep_until(due).await;
        let woke = Instant::now();
        let mut late = woke.saturating_duration_since(due);
        lag.record(late.as_secs_f64());
        while late > period {
            late -= period;
            lag.record(late.as_secs_f64());
        }
        due = woke + period;
    }
}
