//! Part "events in batches": `batch_events` in `src/batch.rs`, a `select!`
//! loop over a channel and a timer that must lose no event.
//!
//! Every test sends numbered events while the flush timer races the reads,
//! and checks the batches that come out: each event exactly once, in order.
//! The first two use tokio's *paused* clock with an in-process channel, so
//! every instant is exact and a test can also check *when* each batch went
//! out. The last runs on four worker threads in real time, with four
//! senders at once, and checks only that nothing is lost or repeated: speed
//! is never asserted.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_upstreams::testing::TEST_TIME_LIMIT;
use step6_resilience::{Batching, batch_events};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What a test of this part says when its loop outlives [`TEST_TIME_LIMIT`]
/// (the limit every async test of the workbook runs under): every test here
/// takes well under a second, so reaching it means `batch_events` never
/// returned.
const LOOP_NEVER_RETURNED: &str =
    "batch_events never returned: does it return once every sender is dropped?";

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn batching(max_batch: usize, flush_every: Duration) -> Batching {
    Batching {
        max_batch: NonZeroUsize::new(max_batch).expect("a batch of at least one event"),
        flush_every,
    }
}

/// One call of `flush`: when it came (time since the test's start) and the
/// events it was given.
#[derive(Debug, Clone)]
struct Flush<T> {
    at: Duration,
    events: Vec<T>,
}

/// Records every batch `batch_events` flushes, shared with the test so it
/// can look while the loop still runs.
#[derive(Debug)]
struct Recorder<T> {
    origin: Instant,
    flushes: Arc<Mutex<Vec<Flush<T>>>>,
}

impl<T: Clone + Send + 'static> Recorder<T> {
    fn new() -> Self {
        Recorder {
            origin: Instant::now(),
            flushes: Arc::default(),
        }
    }

    /// The `flush` to hand to `batch_events`.
    fn flush_fn(&self) -> impl FnMut(Vec<T>) + Send + 'static {
        let origin = self.origin;
        let flushes = Arc::clone(&self.flushes);
        move |events| {
            let at = origin.elapsed();
            flushes.lock().unwrap().push(Flush { at, events });
        }
    }

    fn flushes(&self) -> Vec<Flush<T>> {
        self.flushes.lock().unwrap().clone()
    }
}

/// The events of `flushes`, batch after batch, in the order they came out.
fn events_in_order<T: Copy>(flushes: &[Flush<T>]) -> Vec<T> {
    flushes
        .iter()
        .flat_map(|flush| flush.events.iter().copied())
        .collect()
}

/// Fails unless `seen` is exactly `expected`: no event lost, none repeated,
/// none out of order. The message names the lost and the repeated ones;
/// `whose` says whose events these are.
fn assert_each_event_once_in_order(whose: &str, seen: &[u32], expected: std::ops::Range<u32>) {
    let lost: Vec<u32> = expected.clone().filter(|n| !seen.contains(n)).collect();
    let repeated: Vec<u32> = expected
        .clone()
        .filter(|n| seen.iter().filter(|s| *s == n).count() > 1)
        .collect();
    assert!(
        lost.is_empty() && repeated.is_empty(),
        "{} of {whose} lost and {} repeated; each must be flushed exactly once. Where was a \
         lost event when the timer's branch won, or when the channel closed? Lost: {lost:?}, \
         repeated: {repeated:?}",
        lost.len(),
        repeated.len()
    );
    assert!(
        seen.iter().copied().eq(expected),
        "{whose} must be flushed in the order they were sent, got {seen:?}"
    );
}

/// Events trickling in (one every 3 ms) while the timer (every 10 ms) keeps winning the race: each event is flushed exactly once, in order, at most 10 ms after it was sent, in batches of at most 8; batches that are not full go out at least 10 ms apart; closing the channel flushes the rest and ends the loop.
#[tokio::test(start_paused = true)]
async fn every_event_is_flushed_once_in_order_and_in_time_while_the_timer_races_the_reads() {
    // Paused clock, in-process channel: the sends and ticks happen at exact
    // instants, so the same race is run every time.
    const EVENTS: u32 = 60;
    let flush_every = ms(10);
    let recorder = Recorder::new();
    let (events, receiver) = mpsc::channel(1024);
    let loop_ = batch_events(receiver, batching(8, flush_every), recorder.flush_fn());
    let sender = async {
        let mut sent_at = Vec::new();
        for n in 0..EVENTS {
            if n > 0 {
                tokio::time::sleep(ms(3)).await;
            }
            events
                .send(n)
                .await
                .expect("batch_events holds the receiver");
            sent_at.push(recorder.origin.elapsed());
        }
        // Closed right after the last send: the last events are still
        // waiting for a tick, and closing must flush them.
        let closed_at = recorder.origin.elapsed();
        drop(events);
        (sent_at, closed_at)
    };

    let ((), (sent_at, closed_at)) =
        tokio::time::timeout(TEST_TIME_LIMIT, async { tokio::join!(loop_, sender) })
            .await
            .expect(LOOP_NEVER_RETURNED);

    let flushes = recorder.flushes();
    assert_each_event_once_in_order("the events", &events_in_order(&flushes), 0..EVENTS);
    for flush in &flushes {
        assert!(
            (1..=8).contains(&flush.events.len()),
            "a batch holds 1 to 8 events, got {} at {:?}",
            flush.events.len(),
            flush.at
        );
        for &n in &flush.events {
            let waited = flush.at - sent_at[n as usize];
            assert!(
                waited <= flush_every,
                "event {n} was sent at {:?} and flushed at {:?}: it waited {waited:?}, more \
                 than flush_every ({flush_every:?}). Does the timer keep its schedule while \
                 events arrive?",
                sent_at[n as usize],
                flush.at
            );
        }
    }
    let not_full_while_open: Vec<Duration> = flushes
        .iter()
        .filter(|flush| flush.events.len() < 8 && flush.at < closed_at)
        .map(|flush| flush.at)
        .collect();
    for pair in not_full_while_open.windows(2) {
        assert!(
            pair[1] - pair[0] >= flush_every,
            "batches that are not full went out at {:?} and {:?}, less than flush_every \
             ({flush_every:?}) apart: that is not batching",
            pair[0],
            pair[1]
        );
    }
}

/// A burst of 25 events with batches of 10: two full batches go out at once, without waiting for the timer, and the last 5 by the first tick (10 ms), with the channel still open; closing it then flushes no empty batch.
#[tokio::test(start_paused = true)]
async fn a_burst_goes_out_in_full_batches_at_once_and_the_rest_by_the_next_tick() {
    let flush_every = ms(10);
    let recorder = Recorder::new();
    let (events, receiver) = mpsc::channel(64);
    let loop_ = batch_events(receiver, batching(10, flush_every), recorder.flush_fn());
    let script = async {
        for n in 0..25 {
            events.try_send(n).expect("room for the whole burst");
        }
        // Past the first tick, with the sender still open: only the timer
        // can have flushed the last, partial batch.
        tokio::time::sleep(flush_every + ms(5)).await;
        let flushed_while_open = recorder.flushes().len();
        drop(events);
        flushed_while_open
    };

    let ((), flushed_while_open) =
        tokio::time::timeout(TEST_TIME_LIMIT, async { tokio::join!(loop_, script) })
            .await
            .expect(LOOP_NEVER_RETURNED);

    let flushes = recorder.flushes();
    assert_each_event_once_in_order("the 25 events", &events_in_order(&flushes), 0..25);
    let shape: Vec<(usize, Duration)> = flushes
        .iter()
        .map(|flush| (flush.events.len(), flush.at))
        .collect();
    assert_eq!(
        shape.get(..2),
        Some(&[(10, Duration::ZERO), (10, Duration::ZERO)][..]),
        "the two full batches go out at once (at 0 ms), without waiting for the timer; got \
         (size, time) {shape:?}"
    );
    assert!(
        flushes.len() == 3 && flushes[2].at <= flush_every && flushed_while_open == 3,
        "the last 5 events go out by the first tick ({flush_every:?}), with the sender still \
         open, and no empty batch after it; got (size, time) {shape:?}"
    );
}

/// A trickle of 5 events (one every 3 ms, racing the 10 ms timer), then a burst of 20 sent just before the last sender is dropped: the burst is still in the channel when it closes, and every event is flushed exactly once, in order.
#[tokio::test(start_paused = true)]
async fn events_still_in_the_channel_when_the_sender_goes_are_flushed_too() {
    let recorder = Recorder::new();
    let (events, receiver) = mpsc::channel(64);
    let loop_ = batch_events(receiver, batching(8, ms(10)), recorder.flush_fn());
    let script = async {
        for n in 0..5 {
            tokio::time::sleep(ms(3)).await;
            events.send(n).await.expect("the loop is receiving");
        }
        // No await between the burst and the drop: the loop next runs with
        // the sender gone and 20 events still waiting in the channel.
        for n in 5..25 {
            events.try_send(n).expect("room for the whole burst");
        }
        drop(events);
    };

    tokio::time::timeout(TEST_TIME_LIMIT, async { tokio::join!(loop_, script) })
        .await
        .expect(LOOP_NEVER_RETURNED);

    let flushes = recorder.flushes();
    assert_each_event_once_in_order("the 25 events", &events_in_order(&flushes), 0..25);
}

/// On four worker threads in real time, four senders of 250 events each race a 2 ms timer: every event comes out exactly once, and each sender's events in the order it sent them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_four_threads_no_event_from_four_senders_is_lost_or_repeated() {
    const SENDERS: u32 = 4;
    const EACH: u32 = 250;
    let recorder = Recorder::<(u32, u32)>::new();
    let (events, receiver) = mpsc::channel(256);
    let loop_ = tokio::spawn(batch_events(
        receiver,
        batching(16, ms(2)),
        recorder.flush_fn(),
    ));
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let events = events.clone();
            tokio::spawn(async move {
                for n in 0..EACH {
                    events.send((sender, n)).await.expect("the loop is running");
                    // A pause now and then, so the timer fires while events
                    // are still coming.
                    if n % 5 == 4 {
                        tokio::time::sleep(ms(1)).await;
                    }
                }
            })
        })
        .collect();
    drop(events);

    tokio::time::timeout(TEST_TIME_LIMIT, async {
        for sender in senders {
            sender.await.expect("a sender task panicked");
        }
        loop_.await.expect("batch_events panicked");
    })
    .await
    .expect(LOOP_NEVER_RETURNED);

    let flushes = recorder.flushes();
    assert!(
        flushes
            .iter()
            .all(|flush| (1..=16).contains(&flush.events.len())),
        "every batch holds 1 to 16 events"
    );
    let everything = events_in_order(&flushes);
    for sender in 0..SENDERS {
        let from_sender: Vec<u32> = everything
            .iter()
            .filter(|(from, _)| *from == sender)
            .map(|&(_, n)| n)
            .collect();
        assert_each_event_once_in_order(
            &format!("sender {sender}'s events"),
            &from_sender,
            0..EACH,
        );
    }
}
