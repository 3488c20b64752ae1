//! Events in batches: a `select!` loop that must not lose what it has read.
//!
//! A page that degrades should say so where someone looks: a dashboard
//! counts degraded pages, breakers that opened, hedges sent. Writing each
//! event to such a backend on its own costs a round trip per event, so a
//! reporter task collects them from a channel and writes them in batches:
//! at once when a batch is full, and on a timer when events trickle in, so
//! none waits long.
//!
//! That is two things to wait for at once, the next event and the next tick,
//! which is what `tokio::select!` is for. `select!` finishes with the first
//! branch that completes and *drops* the others, so every branch of a
//! `select!` in a loop must be cancel safe: dropping it before it completes
//! must lose nothing. `mpsc::Receiver::recv_many` and `Interval::tick` both
//! promise that in their documentation, and the batch itself lives in this
//! function, outside the futures `select!` may drop.

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

// ANCHOR: batch_events
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
    let max_batch = batching.max_batch.get();
    // One interval for the whole loop: it keeps its own schedule, so events
    // arriving every millisecond cannot keep postponing the tick (a `sleep`
    // created anew in each turn of the loop would be postponed every time).
    let mut ticks = interval_at(Instant::now() + batching.flush_every, batching.flush_every);
    // After a late tick (a busy machine), wait a whole period for the next
    // one rather than catching up in a burst: batches that are not full stay
    // `flush_every` apart.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The batch lives here, outside the `select!`: whichever branch wins,
    // what has been received so far is still ours.
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        // Never 0: a full batch is flushed as soon as it fills up.
        let room = max_batch - batch.len();
        tokio::select! {
            // Cancel safe: if the tick wins, no event has been taken out of
            // the channel. `recv_many` adds at most `room` events to `batch`
            // and answers 0 only once the channel is closed and empty.
            received = events.recv_many(&mut batch, room) => {
                if received == 0 {
                    break;
                }
                if batch.len() == max_batch {
                    flush(std::mem::replace(&mut batch, Vec::with_capacity(max_batch)));
                }
            }
            _ = ticks.tick() => {
                if !batch.is_empty() {
                    flush(std::mem::replace(&mut batch, Vec::with_capacity(max_batch)));
                }
            }
        }
    }
    if !batch.is_empty() {
        flush(batch);
    }
}
// ANCHOR_END: batch_events
