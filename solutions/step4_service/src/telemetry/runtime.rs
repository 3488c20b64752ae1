//! The runtime's health: tokio's own counters, sampled when `/metrics` is
//! rendered, and a heartbeat task that measures how late a ready task runs.
//!
//! Only tokio's *stable* runtime metrics are used (`num_workers`,
//! `num_alive_tasks`, `global_queue_depth`): the others need the service
//! built with `RUSTFLAGS="--cfg tokio_unstable"`. What they cannot show
//! (a worker stuck in blocking code, a task that never yields) shows as
//! lag: the heartbeat asks to wake every [`HEARTBEAT_PERIOD`] and records
//! how late it actually ran.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step4_service/src/telemetry/runtime.rs`.

use std::time::Duration;

use tokio::runtime::RuntimeMetrics;
use tokio::time::Instant;

use super::series::ServiceMetrics;
#[cfg(doc)]
use super::series::{EVENT_LOOP_LAG, HEARTBEAT_PERIOD};

/// Sets the runtime gauges of `metrics` from `runtime` (the metrics of the
/// runtime that serves the service).
pub fn sample_runtime(metrics: &ServiceMetrics, runtime: &RuntimeMetrics) {
    metrics.alive_tasks.set(runtime.num_alive_tasks() as f64);
    metrics
        .global_queue_depth
        .set(runtime.global_queue_depth() as f64);
    metrics.workers.set(runtime.num_workers() as f64);
}

/// Runs forever: wakes every `period` and records in `lag` how late it
/// woke, in seconds ([`EVENT_LOOP_LAG`]). Spawn it on the runtime to watch.
///
/// A wake-up can be late by up to a millisecond with nothing wrong: tokio's
/// timer counts in whole milliseconds. When the runtime was stuck for
/// longer than a period, the beats that could not happen are recorded too
/// (as `lag - period`, `lag - 2 × period`, ...), the way a load generator
/// corrects for coordinated omission: otherwise a one-second stall would be
/// one sample among thousands and vanish from the tail.
pub async fn heartbeat(lag: metrics::Histogram, period: Duration) {
    let mut due = Instant::now() + period;
    loop {
        tokio::time::sleep_until(due).await;
        let woke = Instant::now();
        let mut late = woke.saturating_duration_since(due);
        lag.record(late.as_secs_f64());
        // The beats that were due while the runtime could not run this one.
        while late > period {
            late -= period;
            lag.record(late.as_secs_f64());
        }
        due = woke + period;
    }
}
