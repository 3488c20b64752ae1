//! Part "a worker pool": `WorkerPool` in `src/pool.rs`, workers fed by a bounded queue.
//!
//! No sockets here: the jobs are in-process fakes that record what they do
//! (which job started, how many run at once, which were cancelled) and wait
//! at a *gate* the test opens one job at a time. So a test decides exactly
//! when a worker becomes free, and can check what the pool does while every
//! worker is busy.
//!
//! Timing: the tests about a full queue pause tokio's clock. That is safe
//! because nothing they wait for is served by another thread: the pool's
//! workers and the jobs run on the test's own runtime, and the clock only
//! jumps ahead when all of them are waiting. "Does not complete" is then
//! checked by giving a future [`SETTLE`] of paused time, which costs no real
//! time. The claims about concurrency (no job lost or run twice, at most N at
//! once, no task left behind) also run on four worker threads, under load.

use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fake_upstreams::testing::{PATIENCE, wait_until, within_time_limit};
use step3_backpressure::{JobLost, SubmitError, Ticket, WorkerPool};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How long a paused-clock test lets the pool run before it looks at what
/// happened (or did not). Free on a paused clock: time jumps ahead as soon
/// as every task waits.
const SETTLE: Duration = Duration::from_secs(1);

fn non_zero(value: usize) -> NonZeroUsize {
    NonZeroUsize::new(value).expect("the test passes a non-zero size")
}

/// What the fake jobs saw, shared between the test and the pool's handler.
#[derive(Debug)]
struct Probe {
    /// Jobs whose handler has started and not yet ended (finished or dropped).
    running: AtomicUsize,
    /// The most jobs ever running at once.
    peak: AtomicUsize,
    /// The ids of the jobs whose handler started, in the order they started.
    started: Mutex<Vec<u64>>,
    /// Jobs whose handler future was dropped before it finished.
    cancelled: AtomicUsize,
    /// A job finishes only with a permit from here: the test hands them out.
    gate: Semaphore,
    /// How long each job takes once through the gate.
    hold: Duration,
}

impl Probe {
    /// A probe whose gate is closed: every job waits until the test opens it.
    fn gated() -> Arc<Probe> {
        Arc::new(Probe {
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            started: Mutex::new(Vec::new()),
            cancelled: AtomicUsize::new(0),
            gate: Semaphore::new(0),
            hold: Duration::ZERO,
        })
    }

    /// A probe whose gate never holds a job back, and whose jobs take
    /// `hold` each.
    fn open(hold: Duration) -> Arc<Probe> {
        Arc::new(Probe {
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            started: Mutex::new(Vec::new()),
            cancelled: AtomicUsize::new(0),
            gate: Semaphore::new(Semaphore::MAX_PERMITS),
            hold,
        })
    }

    /// Lets `jobs` more jobs finish.
    fn let_through(&self, jobs: usize) {
        self.gate.add_permits(jobs);
    }

    /// The ids of the jobs started so far, in order.
    fn started(&self) -> Vec<u64> {
        self.started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn started_count(&self) -> usize {
        self.started().len()
    }

    /// The fake job: records that it runs, waits at the gate (yielding a few
    /// times first, so jobs on several threads interleave), takes its `hold`,
    /// and answers ten times its id, so a test can tell whose result a
    /// ticket got.
    async fn job(self: Arc<Self>, id: u64) -> u64 {
        let running = Running::enter(&self, id);
        for _ in 0..id % 4 {
            tokio::task::yield_now().await;
        }
        self.gate
            .acquire()
            .await
            .expect("the test never closes the gate")
            .forget();
        if !self.hold.is_zero() {
            tokio::time::sleep(self.hold).await;
        }
        running.finish();
        id * 10
    }
}

/// Marks one job as running for as long as it lives; dropped before
/// [`Running::finish`], it counts the job as cancelled.
struct Running<'a> {
    probe: &'a Probe,
    finished: bool,
}

impl<'a> Running<'a> {
    fn enter(probe: &'a Probe, id: u64) -> Running<'a> {
        probe
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.peak.fetch_max(now, Ordering::SeqCst);
        Running {
            probe,
            finished: false,
        }
    }

    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.probe.running.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.probe.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A pool of `workers` workers and `queue` places whose jobs are `probe`'s
/// fake jobs.
fn pool_of(workers: usize, queue: usize, probe: &Arc<Probe>) -> WorkerPool<u64, u64> {
    let probe = Arc::clone(probe);
    WorkerPool::new(non_zero(workers), non_zero(queue), move |id| {
        Arc::clone(&probe).job(id)
    })
}

/// Submits `id`, which must be accepted without waiting long: the queue has room.
async fn submit_with_room(pool: &WorkerPool<u64, u64>, id: u64) -> Ticket<u64> {
    match tokio::time::timeout(SETTLE, pool.submit(id)).await {
        Ok(Ok(ticket)) => ticket,
        Ok(Err(error)) => panic!("submit({id}) was refused ({error}) although the queue had room"),
        Err(_) => panic!(
            "submit({id}) still waited after {SETTLE:?} although the queue had room: does it \
             wait for the job to finish, or count the running jobs as queued?"
        ),
    }
}

/// The output of `ticket`'s job, failing the test if the job was lost.
async fn output_of(ticket: Ticket<u64>, id: u64) -> u64 {
    ticket
        .outcome()
        .await
        .unwrap_or_else(|JobLost| panic!("job {id} was accepted, yet its ticket says it was lost"))
}

/// A pool runs up to N jobs side by side, never more, and every ticket gets its own job's result.
#[tokio::test(start_paused = true)]
async fn a_pool_of_n_workers_runs_n_jobs_side_by_side_and_no_more() {
    within_time_limit(async {
        // Arrange: 3 workers, room for all 10 jobs in workers and queue.
        const WORKERS: usize = 3;
        let probe = Probe::gated();
        let pool = pool_of(WORKERS, 10, &probe);
        let mut tickets = Vec::new();
        for id in 1..=10 {
            tickets.push((id, submit_with_room(&pool, id).await));
        }

        // Act: let the pool run while no job can finish.
        wait_until(PATIENCE, || probe.started_count() >= WORKERS)
            .await
            .expect("3 jobs start");
        tokio::time::sleep(SETTLE).await;

        // Assert
        assert_eq!(
            probe.started_count(),
            WORKERS,
            "with {WORKERS} workers busy and 7 jobs queued, {} jobs have started: a worker runs \
             one job at a time, and every worker runs one while jobs wait",
            probe.started_count()
        );
        probe.let_through(10);
        for (id, ticket) in tickets {
            assert_eq!(
                output_of(ticket, id).await,
                id * 10,
                "the ticket of job {id} got another job's result"
            );
        }
        assert_eq!(probe.peak.load(Ordering::SeqCst), WORKERS);
        assert_eq!(
            pool.workers(),
            WORKERS,
            "`workers()` must report the {WORKERS} workers the pool was built with"
        );
    })
    .await;
}

/// On four threads, eight producers submit 400 jobs: each runs exactly once, and at most N (and all N) run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_many_threads_every_job_runs_exactly_once_and_at_most_n_at_a_time() {
    within_time_limit(async {
        // Arrange: 3 workers and a short queue, so the producers keep
        // running into a full queue; the gate is open, and each job takes a
        // millisecond, so the workers' jobs overlap.
        const WORKERS: usize = 3;
        const PRODUCERS: u64 = 8;
        const JOBS_EACH: u64 = 50;
        let probe = Probe::open(Duration::from_millis(1));
        let pool = Arc::new(pool_of(WORKERS, 2, &probe));

        // Act: half the producers wait for room, half retry a shed job.
        let mut producers = JoinSet::new();
        for producer in 0..PRODUCERS {
            let pool = Arc::clone(&pool);
            producers.spawn(async move {
                let mut results = Vec::new();
                for n in 0..JOBS_EACH {
                    let id = producer * JOBS_EACH + n;
                    let ticket = if producer % 2 == 0 {
                        pool.submit(id).await.expect("no worker is lost")
                    } else {
                        submit_or_retry(&pool, id).await
                    };
                    results.push((id, ticket));
                }
                let mut outputs = Vec::new();
                for (id, ticket) in results {
                    outputs.push((id, output_of(ticket, id).await));
                }
                outputs
            });
        }
        let mut outputs = Vec::new();
        while let Some(finished) = producers.join_next().await {
            outputs.extend(finished.unwrap_or_else(|error| {
                std::panic::resume_unwind(error.into_panic());
            }));
        }

        // Assert
        for (id, output) in &outputs {
            assert_eq!(
                *output,
                id * 10,
                "the ticket of job {id} got another job's result"
            );
        }
        let mut started = probe.started();
        started.sort_unstable();
        let expected: Vec<u64> = (0..PRODUCERS * JOBS_EACH).collect();
        assert!(
            started == expected,
            "every job submitted must run exactly once; {} runs for {} jobs (a job lost, or run \
             twice)",
            started.len(),
            expected.len()
        );
        let peak = probe.peak.load(Ordering::SeqCst);
        assert!(
            peak <= WORKERS,
            "{peak} jobs ran at once in a pool of {WORKERS} workers"
        );
        assert_eq!(
            peak, WORKERS,
            "never more than {peak} jobs ran at once although the queue was never empty: every \
             worker should run a job while jobs wait (is a lock held while a job runs?)"
        );
    })
    .await;
}

/// `try_submit` in a loop: a shed job comes back and is offered again.
async fn submit_or_retry(pool: &WorkerPool<u64, u64>, id: u64) -> Ticket<u64> {
    let mut job = id;
    loop {
        match pool.try_submit(job) {
            Ok(ticket) => return ticket,
            Err(SubmitError::Full(back)) => {
                job = back;
                tokio::task::yield_now().await;
            }
            Err(error) => {
                panic!("try_submit({id}) failed for a reason other than a full queue: {error}")
            }
        }
    }
}

/// While every worker is busy and the queue is full, `submit` waits; it completes once a worker frees a place.
#[tokio::test(start_paused = true)]
async fn a_full_queue_makes_submit_wait_until_a_worker_frees_room() {
    within_time_limit(async {
        // Arrange: 2 workers busy with jobs 1 and 2, jobs 3 to 5 fill the
        // queue's 3 places.
        let probe = Probe::gated();
        let pool = pool_of(2, 3, &probe);
        let mut tickets = Vec::new();
        for id in 1..=2 {
            tickets.push((id, submit_with_room(&pool, id).await));
        }
        wait_until(PATIENCE, || probe.started_count() == 2)
            .await
            .expect("both workers start a job");
        for id in 3..=5 {
            tickets.push((id, submit_with_room(&pool, id).await));
        }

        // Act: a sixth job, while nothing can finish.
        let mut sixth = pin!(pool.submit(6));
        let waited = tokio::time::timeout(SETTLE, &mut sixth).await;

        // Assert: pushed back until a worker takes a job off the queue.
        assert!(
            waited.is_err(),
            "submit(6) completed while both workers were busy and the queue's 3 places were \
             taken: a full queue must make the producer wait (is the queue bounded?)"
        );
        assert_eq!(
            probe.started(),
            [1, 2],
            "no worker was free, yet a job started"
        );
        probe.let_through(1);
        let ticket = match tokio::time::timeout(SETTLE, &mut sixth).await {
            Ok(accepted) => accepted.expect("the pool's workers are all alive"),
            Err(_) => panic!(
                "a worker finished a job and took the next from the queue, yet submit(6) still \
                 waits for room"
            ),
        };
        tickets.push((6, ticket));
        probe.let_through(5);
        for (id, ticket) in tickets {
            assert_eq!(output_of(ticket, id).await, id * 10);
        }
        let mut started = probe.started();
        started.sort_unstable();
        assert_eq!(started, [1, 2, 3, 4, 5, 6], "each job runs once");
    })
    .await;
}

/// Producers waiting for room in a full queue get it in the order they started waiting: a freed place goes to the one that has waited longest.
#[tokio::test(start_paused = true)]
async fn producers_waiting_for_room_get_it_in_the_order_they_came() {
    within_time_limit(async {
        // Arrange: 1 worker busy with job 1, job 2 in the queue's one place,
        // then job 3 and, after it, job 4 waiting for room.
        let probe = Probe::gated();
        let pool = pool_of(1, 1, &probe);
        let first = submit_with_room(&pool, 1).await;
        wait_until(PATIENCE, || probe.started_count() == 1)
            .await
            .expect("the worker starts job 1");
        let second = submit_with_room(&pool, 2).await;
        let mut third = pin!(pool.submit(3));
        assert!(
            tokio::time::timeout(SETTLE, third.as_mut()).await.is_err(),
            "submit(3) completed although the queue was full"
        );
        let mut fourth = pin!(pool.submit(4));
        assert!(
            tokio::time::timeout(SETTLE, fourth.as_mut()).await.is_err(),
            "submit(4) completed although the queue was full"
        );

        // Act: job 1 ends and the worker takes job 2 from the queue, which
        // frees its one place. Job 4's submit is asked first.
        probe.let_through(1);
        wait_until(PATIENCE, || probe.started_count() == 2)
            .await
            .expect("the worker starts job 2");
        let fourth_early = tokio::time::timeout(SETTLE, fourth.as_mut()).await;

        // Assert: the place is job 3's, which waited longer.
        assert!(
            fourth_early.is_err(),
            "the queue's freed place went to submit(4), although submit(3) had waited for room \
             longer: producers waiting for room get it in the order they started waiting (a \
             bounded channel's `send` queues its callers fairly; `try_send` retried in a loop \
             does not)"
        );
        let third = match tokio::time::timeout(SETTLE, third).await {
            Ok(accepted) => accepted.expect("the pool's worker is alive"),
            Err(_) => panic!("a place came free, yet submit(3), the longest waiting, still waits"),
        };
        probe.let_through(1);
        let fourth = match tokio::time::timeout(SETTLE, fourth).await {
            Ok(accepted) => accepted.expect("the pool's worker is alive"),
            Err(_) => panic!("the worker took job 3, yet submit(4) still waits for room"),
        };
        probe.let_through(2);
        for (id, ticket) in [(1, first), (2, second), (3, third), (4, fourth)] {
            assert_eq!(output_of(ticket, id).await, id * 10);
        }
        assert_eq!(
            probe.started(),
            [1, 2, 3, 4],
            "jobs run in the order they were queued"
        );
    })
    .await;
}

/// A `submit` dropped while it waits for room queues nothing: its job never runs, and it keeps no place.
#[tokio::test(start_paused = true)]
async fn a_submit_dropped_while_it_waits_for_room_queues_nothing() {
    within_time_limit(async {
        // Arrange: 1 worker busy with job 1, job 2 in the queue's one place.
        let probe = Probe::gated();
        let pool = pool_of(1, 1, &probe);
        let first = submit_with_room(&pool, 1).await;
        wait_until(PATIENCE, || probe.started_count() == 1)
            .await
            .expect("the worker starts job 1");
        let second = submit_with_room(&pool, 2).await;

        // Act: job 3 waits for room, and its caller gives up.
        let gave_up = tokio::time::timeout(SETTLE, pool.submit(3)).await;
        assert!(
            gave_up.is_err(),
            "submit(3) completed although the queue was full"
        );

        // Assert: jobs 1 and 2 run, job 3 never does.
        probe.let_through(2);
        assert_eq!(output_of(first, 1).await, 10);
        assert_eq!(output_of(second, 2).await, 20);
        // The pool is idle again: job 4 takes the worker, and job 5 must
        // find the queue's one place free.
        let fourth = submit_with_room(&pool, 4).await;
        wait_until(PATIENCE, || probe.started().contains(&4))
            .await
            .expect("the worker starts job 4");
        let fifth = pool.try_submit(5).unwrap_or_else(|error| {
            panic!(
                "the queue's one place should be free, but try_submit(5) was refused ({error}): \
                 did the cancelled submit keep a place?"
            )
        });
        probe.let_through(2);
        assert_eq!(output_of(fourth, 4).await, 40);
        assert_eq!(output_of(fifth, 5).await, 50);
        assert_eq!(
            probe.started(),
            [1, 2, 4, 5],
            "job 3's submit was dropped before the queue had room: its job must never run"
        );
    })
    .await;
}

/// With every worker busy and the queue full, `try_submit` sheds at once and hands the job back; the shed job never runs.
#[tokio::test(start_paused = true)]
async fn try_submit_sheds_at_once_when_the_queue_is_full() {
    within_time_limit(async {
        // Arrange: 2 workers busy with jobs 1 and 2.
        let probe = Probe::gated();
        let pool = pool_of(2, 3, &probe);
        let mut tickets = Vec::new();
        for id in 1..=2 {
            tickets.push((id, submit_with_room(&pool, id).await));
        }
        wait_until(PATIENCE, || probe.started_count() == 2)
            .await
            .expect("both workers start a job");

        // Act and assert: the queue takes 3, the fourth is shed.
        for id in 3..=5 {
            let ticket = pool.try_submit(id).unwrap_or_else(|error| {
                panic!("try_submit({id}) was refused ({error}) although the queue had room")
            });
            tickets.push((id, ticket));
        }
        match pool.try_submit(6) {
            Err(SubmitError::Full(job)) => assert_eq!(job, 6, "the shed job comes back unchanged"),
            Err(SubmitError::Closed(_)) => {
                panic!("try_submit(6) said the pool is closed; its queue is full, not closed")
            }
            Ok(_) => panic!(
                "try_submit(6) was accepted although both workers were busy and the queue's 3 \
                 places were taken"
            ),
        }
        // One job finishes, a worker takes job 3 from the queue: room again.
        probe.let_through(1);
        wait_until(PATIENCE, || probe.started_count() == 3)
            .await
            .expect("a worker starts job 3");
        let seventh = pool.try_submit(7).unwrap_or_else(|error| {
            panic!("a place came free, yet try_submit(7) was refused ({error})")
        });
        tickets.push((7, seventh));
        probe.let_through(5);
        for (id, ticket) in tickets {
            assert_eq!(output_of(ticket, id).await, id * 10);
        }
        let mut started = probe.started();
        started.sort_unstable();
        assert_eq!(
            started,
            [1, 2, 3, 4, 5, 7],
            "job 6 was shed: it must never run"
        );
    })
    .await;
}

/// Producers on many threads racing for a queue that fills and drains all the time: `try_submit` sheds with `Full`, never `Closed`, and every accepted job runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn try_submit_sheds_only_for_a_full_queue_when_many_threads_race() {
    within_time_limit(async {
        // Arrange: 2 workers and a queue of 1 place, jobs that finish at
        // once: the queue is full one moment and has room the next. A lost
        // race is rare per call, so the racers make many calls: up to
        // JOBS_EACH jobs each, for at most HAMMER_FOR of real time (a bound
        // on the work under load, not a claim about speed). The bound is
        // kept well under the deadlock test's 3 s stall limit: both run in
        // this binary at once, and this one keeps four threads busy.
        const RACERS: u64 = 4;
        const JOBS_EACH: u64 = 100_000;
        const HAMMER_FOR: Duration = Duration::from_millis(1_500);
        let probe = Probe::open(Duration::ZERO);
        let pool = Arc::new(pool_of(2, 1, &probe));

        // Act: each racer, on a thread of its own (`try_submit` never
        // waits, so it may be called from anywhere), offers its jobs again
        // and again until each one is accepted.
        let mut racers = JoinSet::new();
        for racer in 0..RACERS {
            let pool = Arc::clone(&pool);
            racers.spawn_blocking(move || {
                let stop_at = std::time::Instant::now() + HAMMER_FOR;
                let mut accepted = Vec::new();
                for n in 0..JOBS_EACH {
                    if std::time::Instant::now() >= stop_at {
                        break;
                    }
                    let id = racer * JOBS_EACH + n;
                    loop {
                        match pool.try_submit(id) {
                            Ok(ticket) => break accepted.push(ticket),
                            Err(SubmitError::Full(job)) => {
                                assert_eq!(job, id, "the shed job comes back unchanged");
                                std::thread::yield_now();
                            }
                            Err(SubmitError::Closed(_)) => panic!(
                                "try_submit({id}) said the pool is closed while its workers were \
                                 alive; a queue that just filled up is Full (is the room checked \
                                 first and then taken in a second step?)"
                            ),
                        }
                    }
                }
                accepted
            });
        }
        let mut tickets = Vec::new();
        while let Some(raced) = racers.join_next().await {
            tickets.extend(raced.unwrap_or_else(|error| {
                std::panic::resume_unwind(error.into_panic());
            }));
        }

        // Assert: every accepted job ran.
        let accepted = tickets.len();
        for ticket in tickets {
            ticket
                .outcome()
                .await
                .expect("an accepted job was lost although the pool is alive");
        }
        assert_eq!(
            probe.started_count(),
            accepted,
            "every accepted job runs exactly once"
        );
    })
    .await;
}

/// A caller that drops its ticket does not cancel its job, and the worker goes on to the next job.
#[tokio::test]
async fn a_worker_keeps_working_after_a_caller_drops_its_ticket() {
    within_time_limit(async {
        // Arrange: one worker, so a worker that stops stops the pool.
        let probe = Probe::open(Duration::ZERO);
        let pool = pool_of(1, 1, &probe);

        // Act: job 1's caller does not wait for the result.
        drop(pool.submit(1).await.expect("the worker is alive"));
        let second = pool.submit(2).await.expect("the worker is alive");

        // Assert
        let output = tokio::time::timeout(PATIENCE, second.outcome()).await;
        assert!(
            matches!(output, Ok(Ok(20))),
            "job 2 got no result ({output:?}): did the worker stop when job 1's result found \
             nobody waiting for it?"
        );
        assert_eq!(
            probe.started(),
            [1, 2],
            "a dropped ticket does not cancel its job"
        );
    })
    .await;
}

/// Dropping the pool cancels its running jobs, never starts its queued ones, ends every ticket with `JobLost` and leaves no task behind, on four threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_the_pool_cancels_its_jobs_and_leaves_no_task_behind() {
    within_time_limit(async {
        // Arrange: 8 workers busy with jobs that never finish, 8 more queued.
        const WORKERS: usize = 8;
        let metrics = tokio::runtime::Handle::current().metrics();
        let baseline = metrics.num_alive_tasks();
        let probe = Probe::gated();
        let pool = pool_of(WORKERS, WORKERS, &probe);
        let mut tickets = Vec::new();
        for id in 1..=WORKERS as u64 {
            tickets.push(submit_with_room(&pool, id).await);
        }
        wait_until(PATIENCE, || probe.started_count() == WORKERS)
            .await
            .expect("every worker starts a job");
        for id in WORKERS as u64 + 1..=2 * WORKERS as u64 {
            tickets.push(submit_with_room(&pool, id).await);
        }

        // Act
        drop(pool);

        // Assert
        for ticket in tickets {
            let outcome = tokio::time::timeout(PATIENCE, ticket.outcome()).await;
            assert!(
                matches!(outcome, Ok(Err(JobLost))),
                "after the pool was dropped, a ticket {}: its job should be lost (cancelled or \
                 never started), not left running",
                match outcome {
                    Err(_) => "still waits".to_owned(),
                    Ok(result) => format!("got {result:?}"),
                }
            );
        }
        wait_until(PATIENCE, || {
            probe.cancelled.load(Ordering::SeqCst) == WORKERS
        })
        .await
        .expect("every running job is cancelled");
        wait_until(PATIENCE, || metrics.num_alive_tasks() == baseline)
            .await
            .expect("the pool's tasks end");
        assert_eq!(
            probe.started_count(),
            WORKERS,
            "a queued job started after the pool was dropped"
        );
    })
    .await;
}
