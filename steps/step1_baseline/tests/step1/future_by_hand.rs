//! Part "a future by hand": the two `poll` methods of `src/polls.rs`.
//!
//! `PollCounter` must behave exactly like the future it wraps while counting
//! its polls and the time spent in them; `YieldNow` must answer `Pending`
//! once, having arranged its own wake-up. With both working, two tests use
//! them to look inside `try_join!` and inside a blocking call.
//!
//! Everything here runs in-process, without sockets. A future that answers
//! `Pending` and never arranges a wake-up is never polled again, so every
//! async test runs under [`PART_TIME_LIMIT`] and fails with a message saying
//! so, instead of hanging the run.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use step1_baseline::{count_polls, yield_now};
use tokio::sync::oneshot;

/// Each async test of this part gets at most this long: everything in it
/// takes well under a second, so reaching this means a future is asleep
/// with nobody to wake it.
const PART_TIME_LIMIT: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test with a clear message if it has not
/// finished within [`PART_TIME_LIMIT`]. `what` names the future.
async fn within_time_limit<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PART_TIME_LIMIT, future)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{what} did not finish within {PART_TIME_LIMIT:?}. A future that answers \
                 Pending is polled again only after the waker of the Context it was given is \
                 woken: was Pending returned without arranging a wake-up?"
            )
        })
}

/// The output of a spawned task; a panic inside it is raised again here,
/// with its own message.
async fn output_of<T>(task: tokio::task::JoinHandle<T>) -> T {
    task.await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

/// A waker that counts how often it was woken, so a test can poll a future
/// by hand and see whether it arranged a wake-up.
#[derive(Default)]
struct CountingWaker {
    wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A PollCounter gives back the wrapped future's output and counts the one poll a ready future needs.
#[tokio::test]
async fn poll_counter_passes_the_output_through_and_counts_a_ready_poll() {
    // Arrange: a future that is ready at once.
    let (counted, stats) = count_polls(std::future::ready(42));
    assert_eq!(
        stats.totals().polls,
        0,
        "nothing is polled before it is awaited"
    );

    // Act
    let output = within_time_limit("a PollCounter around a ready future", counted).await;

    // Assert
    let totals = stats.totals();
    assert_eq!(
        output, 42,
        "the wrapped future's output must come back unchanged"
    );
    assert_eq!(
        totals.polls, 1,
        "a future that is ready at once is polled exactly once: {totals:?}"
    );
    assert_eq!(
        totals.longest_poll, totals.time_in_poll,
        "with one poll, the longest poll is all the time spent polling: {totals:?}"
    );
}

/// A PollCounter around a channel receiver counts both polls, and its task is woken when the value is sent.
#[tokio::test]
async fn poll_counter_counts_every_poll_and_lets_the_inner_future_wake_the_task() {
    // Arrange: the receiver, counted, runs as a task of its own: the
    // runtime polls a spawned task only when its waker is woken. The test
    // sends once that task has answered Pending.
    let (tx, rx) = oneshot::channel();
    let (counted, stats) = count_polls(rx);
    let receiving = tokio::spawn(counted);
    let first_poll = async {
        while stats.totals().polls == 0 && !receiving.is_finished() {
            tokio::task::yield_now().await;
        }
    };
    within_time_limit("waiting for the receiving task's first poll", first_poll).await;

    // Act: the send wakes the receiving task through the waker the receiver
    // stored on its first poll; the second poll is Ready.
    let _ = tx.send(7);
    let received = within_time_limit(
        "a PollCounter around a channel receiver",
        output_of(receiving),
    )
    .await;

    // Assert
    let totals = stats.totals();
    assert_eq!(
        received,
        Ok(7),
        "the value sent must come through the counter"
    );
    assert_eq!(
        totals.polls, 2,
        "the receiver is polled once before the value is sent (Pending) and once after \
         (Ready); every poll counts, whatever it answered: {totals:?}"
    );
}

/// yield_now answers Pending on its first poll, having woken its waker, and Ready on the second, each poll at once.
#[test]
fn yield_now_answers_pending_once_after_arranging_its_wake_up() {
    // Arrange: poll by hand, with a waker that counts its wake-ups. No
    // runtime: nothing here can hang, each poll returns at once.
    let waker_state = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&waker_state));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(yield_now());

    // Act and assert, poll by poll.
    let first = future.as_mut().poll(&mut cx);
    assert!(
        first.is_pending(),
        "the first poll must answer Pending: yielding gives the other tasks a turn"
    );
    assert!(
        waker_state.wakes.load(Ordering::SeqCst) >= 1,
        "the first poll answered Pending without waking the Context's waker: nothing would \
         ever poll this future again"
    );
    let second = future.as_mut().poll(&mut cx);
    assert_eq!(
        second,
        Poll::Ready(()),
        "the second poll must finish: the turn has been given"
    );

    // And each poll returns at once: giving the turn means answering, not
    // holding the thread. A correct poll takes microseconds, so 2,000
    // yields polled twice stay far below the bound (a busy machine may pause
    // this thread, but not for most of a second), yet a poll that slept even
    // 1 ms would take 2 s.
    const YIELDS: u32 = 2_000;
    const BOUND: Duration = Duration::from_millis(800);
    let started = Instant::now();
    for _ in 0..YIELDS {
        let mut future = pin!(yield_now());
        let _pending = future.as_mut().poll(&mut cx);
        let _ready = future.as_mut().poll(&mut cx);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < BOUND,
        "{YIELDS} yield_now() futures, each polled twice by hand, took {elapsed:?}: a poll \
         must not block or sleep, it gives the turn by answering Pending at once"
    );
}

/// yield_now finishes on a runtime after two polls, because it arranges its own wake-up.
#[tokio::test]
async fn yield_now_finishes_on_a_runtime_because_it_wakes_itself() {
    // Arrange: as a task of its own, which the runtime polls only when its
    // waker is woken.
    let (counted, stats) = count_polls(yield_now());

    // Act: if the Pending came without a wake-up, the runtime never polls
    // this task again and the time limit ends the test with its message.
    within_time_limit("yield_now()", output_of(tokio::spawn(counted))).await;

    // Assert
    let totals = stats.totals();
    assert_eq!(
        totals.polls, 2,
        "yield_now is polled twice: Pending once, then Ready: {totals:?}"
    );
}

/// try_join! polls every unfinished branch on each wake-up of its task; a spawned task is polled only when woken.
#[tokio::test]
async fn try_join_polls_every_unfinished_branch_on_each_wake_up() {
    // How often the busy branch yields: each yield wakes the task once.
    const YIELDS: u32 = 20;

    // Arrange: a branch that waits for one message (its receiver is woken
    // exactly once, by the send), beside a branch that yields YIELDS times
    // and then sends that message.
    let (tx, rx) = oneshot::channel::<()>();
    let (waiting, waiting_stats) = count_polls(rx);
    let busy = async move {
        for _ in 0..YIELDS {
            yield_now().await;
        }
        tx.send(()).map_err(|_| "the waiting branch is gone")
    };

    // Act: both branches in one task.
    let joined = async {
        tokio::try_join!(
            async {
                waiting
                    .await
                    .map_err(|_| "the busy branch dropped its sender")
            },
            busy,
        )
    };
    within_time_limit("try_join! of a waiting and a busy branch", joined)
        .await
        .expect("both branches succeed");

    // Arrange again: the same waiting future, as a task of its own.
    let (tx, rx) = oneshot::channel::<()>();
    let (waiting, alone_stats) = count_polls(rx);
    let waiting_task = output_of(tokio::spawn(waiting));

    // Act: the test's task yields YIELDS times, then sends.
    for _ in 0..YIELDS {
        within_time_limit("yield_now()", yield_now()).await;
    }
    tx.send(()).expect("the waiting task is still waiting");
    within_time_limit("the spawned waiting task", waiting_task)
        .await
        .expect("the message arrives");

    // Assert
    let joined = waiting_stats.totals();
    let alone = alone_stats.totals();
    assert!(
        joined.polls > YIELDS,
        "inside try_join!, the waiting branch was polled {} times: it shares its task's \
         waker with the busy branch, so each of the {YIELDS} wake-ups of the busy branch \
         polls it again as well (more than {YIELDS} polls)",
        joined.polls
    );
    assert!(
        (1..=2).contains(&alone.polls),
        "as a task of its own, the waiting future was polled {} times: a task is polled \
         when it is woken, and nothing woke it but the one message (1 or 2 polls)",
        alone.polls
    );
}

/// A blocking call inside a future is one long poll; awaiting a timer instead splits the wait into short polls.
#[tokio::test]
async fn a_blocking_call_is_one_long_poll_and_an_await_is_not() {
    // Long enough to tell apart from any poll that does not block: polls
    // that only check a timer take microseconds, even on a busy machine.
    const PAUSE: Duration = Duration::from_millis(400);

    // Arrange and act: the same wait, blocking the thread, then awaited.
    // (`Box::pin` makes each future `Unpin`, as `count_polls` asks.)
    // Each await is timed from outside too: time inside the polls can never
    // exceed the time the whole await took.
    let (blocking, blocking_stats) = count_polls(Box::pin(async {
        std::thread::sleep(PAUSE);
    }));
    let started = Instant::now();
    within_time_limit("a future that blocks in std::thread::sleep", blocking).await;
    let blocking_await = started.elapsed();
    let (sleeping, sleeping_stats) = count_polls(Box::pin(tokio::time::sleep(PAUSE)));
    let started = Instant::now();
    within_time_limit("a tokio sleep", sleeping).await;
    let sleeping_await = started.elapsed();

    // Assert
    let blocking = blocking_stats.totals();
    let sleeping = sleeping_stats.totals();
    assert_eq!(
        blocking.polls, 1,
        "a future that blocks never answers Pending: one poll, from start to end: {blocking:?}"
    );
    assert!(
        blocking.longest_poll >= PAUSE,
        "the blocking future held the thread for {PAUSE:?} inside its one poll, but the \
         counter recorded {:?}: time the wrapped poll takes must be measured around that poll",
        blocking.longest_poll
    );
    for (what, totals, await_took) in [
        ("blocking", blocking, blocking_await),
        ("timer", sleeping, sleeping_await),
    ] {
        assert!(
            totals.time_in_poll <= await_took,
            "the {what} future's polls were recorded as {:?} in all, yet the whole await took \
             {await_took:?}: the time recorded is the poll's own, as a Duration of the time \
             that passed, in no other unit",
            totals.time_in_poll
        );
    }
    assert!(
        sleeping.polls >= 2,
        "an awaited timer answers Pending first and is polled again when it fires: {sleeping:?}"
    );
    // A wide margin: the polls of a timer take microseconds; only time
    // spent between the polls (the wait itself) could reach half the pause.
    assert!(
        sleeping.time_in_poll < PAUSE / 2,
        "the timer's polls took {:?} in all, yet it waited outside them: only the time \
         inside the wrapped future's poll counts, not the time between polls",
        sleeping.time_in_poll
    );
}
