//! Events in batches: a `select!` loop that must not lose what it has read.
//!
//! A page that degrades should say so where someone looks: a dashboard
//! counts degraded pages, breakers that opened, hedges sent. Writing each
//! event to such a backend on its own costs a round trip per event, so a
//! reporter task collects them from a channel and writes them in batches:
//! at once when a batch is full, and on a timer when events trickle in, so
//! none waits long.
//!
//! Yours to fix: [`batch_events`]. It compiles, it looks reasonable, and it
//! loses events: run the tests and see which. Its contract is in its doc
//! comment; keep the contract, change the code (the helper below it is
//! yours too, to change or delete). Given: [`Batching`].

use std::num::NonZeroUsize;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

// GIVEN: batching (given code, the same as in the reference solution)
/// How events are grouped into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// A batch goes out as soon as it holds this many events.
    pub max_batch: NonZeroUsize,
    /// The longest an event waits for its batch to fill up; more than zero.
    pub flush_every: Duration,
}
// GIVEN_END: batching

/// Receives every event from `events` and hands them to `flush` in batches,
/// in the order they were received, each event exactly once, until every
/// sender is gone.
///
/// * A batch is flushed as soon as it holds `max_batch` events.
/// * A batch that is not full is flushed no later than `flush_every` after
///   its first event arrived, and batches that are not full go out at least
///   `flush_every` apart. An empty batch is never flushed.
/// * Once every sender has been dropped and the channel is empty, the last
///   batch is flushed and this returns.
///
/// # Cancel safety
///
/// Dropping the returned future drops the receiver: the events received
/// but not yet flushed are lost, and so are those still in the channel
/// (dropping a `Receiver` closes the channel and drops what it holds);
/// senders then get an error.
pub async fn batch_events<T>(
    mut events: mpsc::Receiver<T>,
    batching: Batching,
    mut flush: impl FnMut(Vec<T>),
) {
    // TODO: this version loses events (the tests show which). Find where an
    // event is when it disappears, and keep the contract above.
    let max_batch = batching.max_batch.get();
    let mut ticks = interval_at(Instant::now() + batching.flush_every, batching.flush_every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        let room = max_batch - batch.len();
        tokio::select! {
            (received, open) = receive_until_full(&mut events, room) => {
                batch.extend(received);
                if !batch.is_empty() && (batch.len() == max_batch || !open) {
                    flush(std::mem::take(&mut batch));
                }
                if !open {
                    return;
                }
            }
            _ = ticks.tick() => {
                if !batch.is_empty() {
                    flush(std::mem::take(&mut batch));
                }
            }
        }
    }
}

/// Receives events until it holds `room` of them, or until the channel is
/// closed and empty; also says whether the channel is still open.
async fn receive_until_full<T>(events: &mut mpsc::Receiver<T>, room: usize) -> (Vec<T>, bool) {
    let mut received = Vec::with_capacity(room);
    while received.len() < room {
        match events.recv().await {
            Some(event) => received.push(event),
            None => return (received, false),
        }
    }
    (received, true)
}
