//! The closed loop: N workers, each sending its next request as soon as the previous answers.
//!
//! This is how most benchmarking tools (and most test suites) drive a server, and it has a
//! blind spot worth knowing: when the server stalls, the workers stall with it and *stop
//! sending*. The requests that real users would have sent during the stall are never made, so
//! their waiting never reaches the histogram (coordinated omission). Use it to find the
//! throughput a given concurrency reaches; use the open loop to judge latency.

use std::future::Future;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use super::{Timeline, resume_if_panicked};
use crate::measure::{ErrorKind, Measurement, RequestOutcome, UNFINISHED};
use crate::plan::Load;

/// Runs `concurrency` workers over the timeline and merges what they measured.
pub(super) async fn run<F, Fut>(
    load: Load,
    concurrency: usize,
    timeline: Timeline,
    send: Arc<F>,
) -> Measurement
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = RequestOutcome> + Send + 'static,
{
    // The JoinSet owns the workers: if this future is dropped, they are aborted with it.
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        workers.spawn(worker(load, timeline, Arc::clone(&send)));
    }

    // Each worker records into its own Measurement, so the hot path shares nothing (no lock,
    // no atomic); the histograms are merged once, at the end.
    let mut total = Measurement::new(load, timeline.window);
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(share) => total.merge(&share),
            Err(error) => resume_if_panicked(error),
        }
    }
    total
}

/// One worker: send, wait for the answer, record it, repeat until the window closes.
async fn worker<F, Fut>(load: Load, timeline: Timeline, send: Arc<F>) -> Measurement
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = RequestOutcome> + Send + 'static,
{
    let mut share = Measurement::new(load, timeline.window);
    // When the request in flight (if any) was sent: needed if the drain limit cuts it off.
    let mut in_flight_since: Option<Instant> = None;

    // One timeout around the whole loop (not one per request) keeps the hot path free of
    // timers. The loop borrows `share` and `in_flight_since`; when the timeout drops the loop,
    // the borrows end and both are readable again below.
    let finished_in_time = timeout_at(timeline.drain_deadline, async {
        loop {
            let sent = Instant::now();
            if sent >= timeline.window_end {
                break;
            }
            in_flight_since = Some(sent);
            let outcome = send().await;
            let latency = sent.elapsed();
            in_flight_since = None;
            if timeline.is_in_window(sent) {
                share.record(outcome, latency);
            }
            // A `send` that is ready at once (a fake, a cached error) would otherwise keep this
            // thread forever; this yields only after tokio's cooperative budget runs out.
            tokio::task::coop::consume_budget().await;
        }
    })
    .await;

    if finished_in_time.is_err()
        && let Some(sent) = in_flight_since
        && timeline.is_in_window(sent)
    {
        share.record_error(ErrorKind::new(UNFINISHED));
    }
    share
}
