//! The open loop: requests arrive on a timetable, whether or not the server keeps up.
//!
//! Request `i` is due at `start + i / rate`. Its latency is measured from that *intended*
//! instant, not from when it actually left. The difference is the whole point: if the server
//! stalls for 300 ms, every request due during the stall waits, and that wait is what a user
//! would have felt. A closed loop would simply not send them and report a handful of slow
//! requests; here each of them carries its share of the stall (Gil Tene's "coordinated
//! omission"; wrk2 measures the same way).
//!
//! tokio's timer ticks in milliseconds, so at a few thousand requests per second requests leave
//! in small bursts once per millisecond. Because latency counts from the exact intended
//! instant, that adds at most about a millisecond to what is reported, and never hides a wait.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{Timeline, resume_if_panicked};
use crate::measure::{DROPPED, ErrorKind, Measurement, RequestOutcome, UNFINISHED};
use crate::plan::Load;

/// What a request task hands back to the scheduler when it ends.
struct Answered {
    /// When the request was due, which decides whether it counts.
    intended: Instant,
    /// From the intended instant to the answer, measured inside the task so that a busy
    /// scheduler reaping late does not add to it.
    latency: Duration,
    outcome: RequestOutcome,
}

/// Sends requests at `rate_per_sec` over the timeline and measures each from its due time.
pub(super) async fn run<F, Fut>(
    load: Load,
    rate_per_sec: f64,
    max_outstanding: usize,
    timeline: Timeline,
    send: Arc<F>,
) -> Measurement
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = RequestOutcome> + Send + 'static,
{
    let mut measurement = Measurement::new(load, timeline.window);
    // One task per request, so requests run in parallel on every core; the JoinSet owns them
    // (dropping it aborts them) and its length is the number in flight.
    let mut in_flight: JoinSet<Answered> = JoinSet::new();

    // How many requests have been scheduled (sent or dropped) so far.
    let mut scheduled: u64 = 0;
    let mut intended = timeline.start;
    // One timer, reset for each request, instead of a new one per request.
    let next_due = sleep_until(intended);
    tokio::pin!(next_due);
    let mut sending = true;
    // When the first and the last counted answers arrived: see `achieved_span`.
    let mut counted_answers: Option<(Instant, Instant)> = None;

    loop {
        tokio::select! {
            // Reap before sending: an answered request frees its slot before the next due
            // request is judged against `max_outstanding`.
            biased;

            Some(joined) = in_flight.join_next() => match joined {
                Ok(answered) => {
                    if timeline.is_in_window(answered.intended) {
                        measurement.record(answered.outcome, answered.latency);
                        let now = Instant::now();
                        counted_answers = Some(match counted_answers {
                            None => (now, now),
                            Some((first, _)) => (first, now),
                        });
                    }
                }
                Err(error) => resume_if_panicked(error),
            },

            () = &mut next_due, if sending => {
                if in_flight.len() >= max_outstanding {
                    // Not sent: the generator protects itself rather than queueing without
                    // bound. Counted, so the table shows the server did not keep up.
                    if timeline.is_in_window(intended) {
                        measurement.record_error(ErrorKind::new(DROPPED));
                    }
                } else {
                    in_flight.spawn(request(send(), intended, timeline.drain_deadline));
                }

                // A due time already past fires at once: that is how the schedule catches up
                // after a stall, instead of quietly sending fewer requests.
                scheduled += 1;
                intended = due_time(timeline.start, scheduled, rate_per_sec);
                if intended >= timeline.window_end {
                    sending = false;
                } else {
                    next_due.as_mut().reset(intended);
                }
            },

            // Nothing left to send and nothing in flight: the drain is over.
            else => break,
        }
    }
    if let Some(span) = achieved_span(counted_answers) {
        measurement.window = measurement.window.max(span);
    }
    measurement
}

/// How long the server took to answer the window's requests, first answer to last.
///
/// Over capacity, an open loop sends more in the window than the server can answer in it; the
/// backlog is answered during the drain. Dividing the answers by the window alone would
/// report the *offered* rate as throughput. Dividing by the time the answers actually took
/// reports what the server achieved. Under capacity the span is about the window itself.
fn achieved_span(counted_answers: Option<(Instant, Instant)>) -> Option<Duration> {
    let (first, last) = counted_answers?;
    Some(last - first).filter(|span| !span.is_zero())
}

/// When request number `index` is due: `start + index / rate`.
///
/// Computed from the start each time, not by adding an interval to the previous due time,
/// so rounding errors never accumulate into drift.
fn due_time(start: Instant, index: u64, rate_per_sec: f64) -> Instant {
    start + Duration::from_secs_f64(index as f64 / rate_per_sec)
}

/// One request, measured from the instant it was due.
async fn request<Fut>(response: Fut, intended: Instant, drain_deadline: Instant) -> Answered
where
    Fut: Future<Output = RequestOutcome>,
{
    let outcome = timeout_at(drain_deadline, response)
        .await
        .unwrap_or_else(|_| Err(ErrorKind::new(UNFINISHED)));
    Answered {
        intended,
        latency: intended.elapsed(),
        outcome,
    }
}
