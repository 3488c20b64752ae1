//! A worker pool: a fixed number of workers fed by a bounded queue.
//!
//! The bulkhead caps work by counting permits; a pool caps it by counting
//! *workers*. `workers` tasks take jobs from one queue, a bounded
//! `tokio::sync::mpsc` channel with room for `queue` jobs, and run them one at
//! a time each. So at most `workers` jobs ever run at once, and at most
//! `queue` jobs wait for a worker. This is Go's worker pool (goroutines
//! ranging over a buffered channel), in tokio.
//!
//! The bound on the queue is what makes it *backpressure*: when the queue is
//! full, a producer cannot add to it. [`WorkerPool::submit`] then waits for
//! room, so a producer that outruns the workers is slowed down to their pace;
//! [`WorkerPool::try_submit`] refuses at once instead, handing the job back
//! (load shedding). An unbounded queue would accept everything and turn
//! overload into latency and memory, without limit.
//!
//! Each job's result comes back through its own one-shot channel, as a
//! [`Ticket`]: submitting a job and waiting for its result are two steps, so
//! a caller can see when the pool *accepted* a job apart from when it ran.
//!
//! Yours to write: [`WorkerPool::new`] (and the workers it starts),
//! [`WorkerPool::submit`] and [`WorkerPool::try_submit`], with any private
//! helpers you want. How the workers share one queue is your decision.
//!
//! Given: `Job` (a job and the sender for its result), [`Ticket`],
//! [`SubmitError`], [`JobLost`], the [`WorkerPool`] type and
//! [`WorkerPool::workers`].

use std::future::Future;
use std::num::NonZeroUsize;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

// GIVEN: pool_types (given code, the same as in the reference solution)
/// One job in the queue: its input, and where its result goes.
#[derive(Debug)]
struct Job<In, Out> {
    /// What the pool's handler is called with.
    input: In,
    /// Where the result goes. Sending fails if the caller dropped its
    /// [`Ticket`]: nobody wants the result any more.
    reply: oneshot::Sender<Out>,
}

impl<In, Out> Job<In, Out> {
    /// A job for `input`, and the ticket its result will arrive on.
    fn with_ticket(input: In) -> (Job<In, Out>, Ticket<Out>) {
        let (reply, result) = oneshot::channel();
        (Job { input, reply }, Ticket { result })
    }
}

/// A claim on the result of one job the pool accepted.
#[derive(Debug)]
pub struct Ticket<Out> {
    result: oneshot::Receiver<Out>,
}

impl<Out> Ticket<Out> {
    /// Waits until a worker has run the job, and returns its output.
    ///
    /// Dropping the ticket (or this future) does not cancel the job: a
    /// worker still runs it, and its output is thrown away.
    ///
    /// # Errors
    ///
    /// [`JobLost`] if the job will never finish: the pool was dropped before
    /// a worker ran it, or while one was running it.
    pub async fn outcome(self) -> Result<Out, JobLost> {
        // The only way the sender goes away unsent is that the job was
        // dropped: still queued, or mid-run, when the pool's workers stopped.
        self.result.await.map_err(|_sender_dropped| JobLost)
    }
}

/// Why a pool did not accept a job. The job comes back with the error, so
/// the caller can retry it, send it elsewhere or report it.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError<In> {
    /// The queue had no room ([`WorkerPool::try_submit`] only): the job was
    /// shed, not queued.
    #[error("the worker pool's queue is full: job shed")]
    Full(In),
    /// No worker is left to take jobs from the queue.
    #[error("the worker pool has no workers left: job refused")]
    Closed(In),
}

impl<In> SubmitError<In> {
    /// The job that was not accepted.
    pub fn into_job(self) -> In {
        match self {
            SubmitError::Full(job) | SubmitError::Closed(job) => job,
        }
    }
}

/// The pool stopped before this job produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the job will never finish: its worker pool was dropped")]
pub struct JobLost;

/// A fixed pool of workers that run `handler(input)` for jobs taken from one
/// bounded queue.
pub struct WorkerPool<In, Out> {
    /// The sending side of the queue: a bounded channel with room for the
    /// `queue` jobs that may wait for a worker.
    queue: mpsc::Sender<Job<In, Out>>,
    /// The pool's tasks. A `JoinSet` aborts every task it holds when it is
    /// dropped, so the workers cannot outlive the pool. Never read: it is
    /// kept for what its `Drop` does.
    #[allow(dead_code, reason = "held for its Drop, which aborts the workers")]
    workers: JoinSet<()>,
    /// How many jobs may run at once: the `workers` the pool was built with
    /// (not always the number of tasks: one dispatcher task handing jobs to
    /// that many slots is a correct design too).
    size: usize,
}
// GIVEN_END: pool_types

impl<In, Out> WorkerPool<In, Out>
where
    In: Send + 'static,
    Out: Send + 'static,
{
    /// Starts a pool of `workers` workers, each running `handler` on one job
    /// at a time, fed by a queue with room for `queue` waiting jobs;
    /// [`workers`](Self::workers) then reports `workers`.
    ///
    /// At most `workers` jobs run at once, and every one of them runs when
    /// that many jobs are available: a worker that is free takes the next
    /// job from the queue at once, while another worker's job is still
    /// running.
    ///
    /// # Dropping the pool
    ///
    /// Stops every worker: the jobs running are cancelled (their handler's
    /// future is dropped), the jobs still queued never run, and every
    /// [`Ticket`] of those jobs resolves to [`JobLost`] instead of waiting
    /// forever. No task of the pool outlives it.
    ///
    /// # Panics
    ///
    /// If called outside a tokio runtime (the workers are tasks), or if
    /// `queue` is more than a tokio channel can hold
    /// (`tokio::sync::Semaphore::MAX_PERMITS`). `handler` must not panic:
    /// what a panicking handler does to its worker is not part of this
    /// contract.
    pub fn new<Handler, Fut>(workers: NonZeroUsize, queue: NonZeroUsize, handler: Handler) -> Self
    where
        Handler: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Out> + Send + 'static,
    {
        todo!("WorkerPool::new: start the workers, all fed by one bounded queue")
    }

    // GIVEN: workers (given code, the same as in the reference solution)
    /// How many jobs the pool runs at once at most: the `workers` it was
    /// built with.
    pub fn workers(&self) -> usize {
        self.size
    }
    // GIVEN_END: workers
    /// Queues `input` as a job, waiting for room in the queue if it is full,
    /// and returns the [`Ticket`] its result will arrive on.
    ///
    /// This is backpressure: while the queue is full, the returned future
    /// does not complete, so a producer that awaits it runs at the workers'
    /// pace. It completes as soon as a worker takes a job out of the queue
    /// and frees a place. Producers waiting for room get it in the order
    /// they started waiting.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`], with the job, if no worker is left. While the
    /// pool exists that happens only after handlers panicked, which this
    /// contract leaves open, so a correct pool may never return it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves nothing behind: the
    /// job was not queued and never runs, and the waiter takes no place in
    /// the queue with it.
    pub async fn submit(&self, input: In) -> Result<Ticket<Out>, SubmitError<In>> {
        todo!("WorkerPool::submit: queue the job, waiting while the queue is full")
    }

    /// Queues `input` as a job only if the queue has room right now, and
    /// returns the [`Ticket`] its result will arrive on. Never waits.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Full`], with the job, if the queue is full: the job is
    /// shed and never runs. [`SubmitError::Closed`], with the job, if no
    /// worker is left (as for [`submit`](Self::submit): in practice never).
    pub fn try_submit(&self, input: In) -> Result<Ticket<Out>, SubmitError<In>> {
        todo!("WorkerPool::try_submit: queue the job if there is room now, or shed it")
    }
}
