//! One lab scenario: a limit, and the request the load loop sends through it.
//!
//! Every scenario ends in the same `fetch_product`, so the comparison is about
//! the limit and nothing else. The bulkhead scenarios differ only in the
//! [`Bulkhead`] they build:
//!
//! * **uncapped**: a cap far above the number of clients, so it never binds;
//! * **capped (queue)**: the cap, and a wait long enough that nothing is shed
//!   ([`QUEUE_WAIT`]): the excess waits in the semaphores' queues;
//! * **capped + shedding**: the cap, and a short wait (or none): the excess
//!   is refused.
//!
//! The pool scenarios put a [`WorkerPool`] in front instead: as many workers
//! as the cap, each fetching one page at a time (through a bulkhead that never
//! binds), so each upstream again sees at most the cap. A client either waits
//! for room in the pool's queue (`submit`) or is refused when it is full
//! (`try_submit`).
//!
//! `load_lab` records latency for successes only, so shed requests are timed
//! here, into their own histogram.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use load_lab::{ErrorKind, RequestOutcome};
use step3_backpressure::{
    Bulkhead, FetchError, JobLost, Product, SubmitError, UpstreamUrls, WorkerPool, fetch_product,
};
use tokio::time::Instant;

/// The product every request asks for.
const PRODUCT_ID: u64 = 42;

/// A cap no load in this lab reaches: "no limit", through the same code.
pub const UNCAPPED: usize = 1_000_000;

/// The "capped (queue)" scenario's wait for permits: far longer than any
/// queue a working run builds here (500 clients ÷ 2,500 pages a second is
/// 0.2 s), so nothing is shed and the excess only queues. Yet finite: pages
/// whose admission deadlocks (each holding a permit the other waits for)
/// stand still for as long as the wait lasts. With this wait they are shed
/// after a few seconds, and the lab's observations say what that means,
/// instead of a run that stands still.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// How long it took to shed each request sent after the warm-up.
#[derive(Debug)]
pub struct ShedLatencies {
    /// Requests started before this are warm-up, and not recorded.
    measure_from: Instant,
    /// Microseconds, three significant digits, like `load_lab`'s own histogram.
    histogram: Mutex<Histogram<u64>>,
}

impl ShedLatencies {
    /// Records sheds of requests started from `measure_from` on.
    pub fn starting_at(measure_from: Instant) -> Self {
        ShedLatencies {
            measure_from,
            histogram: Mutex::new(Histogram::new(3).expect("3 significant digits is within 0..=5")),
        }
    }

    fn record(&self, started: Instant) {
        if started < self.measure_from {
            return;
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        // A poisoned lock still holds a whole histogram: keep counting.
        let mut histogram = self
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        histogram
            .record(micros)
            .expect("an auto-resizing histogram accepts any u64");
    }

    /// The shed latency at percentile `q` (0..=100), if anything was shed.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let histogram = self
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (!histogram.is_empty())
            .then(|| Duration::from_micros(histogram.value_at_quantile(q / 100.0)))
    }
}

/// A pool whose workers fetch one product page each.
pub type ProductPool = WorkerPool<u64, Result<Product, FetchError>>;

/// A pool of `workers` workers and `queue` places, each worker fetching one
/// page at a time through a bulkhead that never binds: the workers are the
/// only limit.
pub fn product_pool(
    client: &reqwest::Client,
    urls: &Arc<UpstreamUrls>,
    workers: NonZeroUsize,
    queue: NonZeroUsize,
) -> anyhow::Result<ProductPool> {
    let unbounded = Arc::new(Bulkhead::new(UNCAPPED, QUEUE_WAIT)?);
    let (client, urls) = (client.clone(), Arc::clone(urls));
    Ok(WorkerPool::new(workers, queue, move |product_id| {
        let (client, urls, bulkhead) = (client.clone(), Arc::clone(&urls), Arc::clone(&unbounded));
        async move { fetch_product(&client, &urls, &bulkhead, product_id).await }
    }))
}

/// What stands between the clients and the upstreams.
#[derive(Clone)]
pub enum Limit {
    /// `fetch_product` called by the client itself, through this bulkhead.
    Bulkhead(Arc<Bulkhead>),
    /// The page handed to a worker pool: with `shed`, by `try_submit`
    /// (refused when the queue is full), otherwise by `submit` (the client
    /// waits for room).
    Pool {
        /// The pool, shared by every client.
        pool: Arc<ProductPool>,
        /// Refuse instead of waiting when the queue is full.
        shed: bool,
    },
}

/// Everything one request needs, shared by every client of the closed loop.
#[derive(Clone)]
pub struct Scenario {
    /// The shared HTTP client (a handle to one connection pool).
    pub client: reqwest::Client,
    /// Where the three fake upstreams listen.
    pub urls: Arc<UpstreamUrls>,
    /// This scenario's limit.
    pub limit: Limit,
    /// Where shed requests are timed.
    pub sheds: Arc<ShedLatencies>,
    /// How long a shed client pauses before its next request, as a
    /// well-behaved client honouring `Retry-After` would. Without it, a
    /// closed loop turns every shed into an instant retry: a retry storm
    /// that measures the load generator, not the service.
    pub shed_backoff: Duration,
}

impl Scenario {
    /// The request `load_lab::run` sends: one product page, through this
    /// scenario's limit.
    ///
    /// The future owns clones of everything it uses (`use<>`: it borrows
    /// nothing from `self`), because the load loop runs it as a task.
    pub fn send(&self) -> impl Future<Output = RequestOutcome> + Send + use<> {
        let scenario = self.clone();
        async move {
            let started = Instant::now();
            let outcome = match &scenario.limit {
                Limit::Bulkhead(bulkhead) => Page::Fetched(
                    fetch_product(&scenario.client, &scenario.urls, bulkhead, PRODUCT_ID).await,
                ),
                Limit::Pool { pool, shed } => through_pool(pool, *shed).await,
            };
            match outcome {
                Page::Fetched(Ok(_product)) => Ok(()),
                Page::Fetched(Err(FetchError::Overloaded { .. })) | Page::Refused => {
                    scenario.sheds.record(started);
                    tokio::time::sleep(scenario.shed_backoff).await;
                    Err(ErrorKind::new("shed"))
                }
                Page::Fetched(Err(error)) => Err(kind_of(&error)),
                Page::Lost => Err(ErrorKind::new("lost")),
            }
        }
    }
}

/// How one request through a limit ended.
enum Page {
    /// The page was fetched, or failed on its way.
    Fetched(Result<Product, FetchError>),
    /// The pool's queue was full and the page was shed.
    Refused,
    /// The pool stopped before the page was fetched.
    Lost,
}

/// Hands one page to `pool`, waiting for room unless `shed`, and waits for it.
async fn through_pool(pool: &ProductPool, shed: bool) -> Page {
    let accepted = if shed {
        pool.try_submit(PRODUCT_ID)
    } else {
        pool.submit(PRODUCT_ID).await
    };
    match accepted {
        Ok(ticket) => match ticket.outcome().await {
            Ok(fetched) => Page::Fetched(fetched),
            Err(JobLost) => Page::Lost,
        },
        Err(SubmitError::Full(_)) => Page::Refused,
        Err(SubmitError::Closed(_)) => Page::Lost,
    }
}

/// A short label per failure, for the table's "errors by kind".
fn kind_of(error: &FetchError) -> ErrorKind {
    match error {
        FetchError::Status { status, .. } => ErrorKind(format!("status {status}")),
        FetchError::Transport { source, .. } if source.is_timeout() => ErrorKind::new("timeout"),
        FetchError::Transport { .. } => ErrorKind::new("transport"),
        FetchError::Decode { .. } => ErrorKind::new("decode"),
        FetchError::Overloaded { .. } => ErrorKind::new("shed"),
    }
}
