//! Blocking in async: CPU work inside the async server's handlers, measured.
//!
//! The async server of this lab, with one change: after the fan-out, each
//! request does some milliseconds of CPU work (a stand-in for rendering a
//! template, hashing a password, scoring reviews). Done inline, in the
//! handler, that work runs inside one poll of the request's task and holds a
//! runtime worker thread for its whole length; done through
//! `tokio::task::spawn_blocking`, it runs on tokio's blocking pool while the
//! workers stay free to poll other tasks. That pool grows to 512 threads by
//! default, because it is meant for calls that *wait*; CPU work on hundreds
//! of threads competes for the same few cores as the runtime's workers. So
//! a third placement bounds it as tokio's documentation suggests: a
//! semaphore with one permit per core in front of `spawn_blocking`.
//!
//! Besides throughput and latency, the server's runtime runs a *heartbeat*:
//! a task that asks to wake up every [`TICK`] and records how late it woke.
//! That lateness is the event loop's lag (asyncio and Node.js call it the
//! same): how long a task that became ready had to wait for a worker. Every
//! request's next step (a socket became readable, a timer fired) waits just
//! as long, so the lag shows up in the latency of everything else the
//! server does.
//!
//! The server gets a runtime of its own (tokio's default multi-thread
//! runtime, one worker per core), so that the heartbeat measures the
//! server's workers only, and a worker blocked by a handler does not also
//! stall the load generator or the fake upstreams, which stay on the lab's
//! runtime. On a small machine all of them still share the same cores.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use load_lab::{Load, Measurement, Plan};
use step1_baseline::{Product, UpstreamUrls, fetch_product_concurrent};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How often the heartbeat asks to be woken.
pub const TICK: Duration = Duration::from_millis(10);

/// Where a request's CPU work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the handler, on the runtime worker that polls the request.
    Inline,
    /// On tokio's blocking pool, awaited by the handler.
    SpawnBlocking,
    /// On the blocking pool, at most one computation per core at a time.
    BoundedSpawnBlocking,
}

impl Placement {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Placement::Inline => "inline",
            Placement::SpawnBlocking => "spawn_blocking",
            Placement::BoundedSpawnBlocking => "spawn_blocking, 1 per core",
        }
    }
}

/// One server configuration: how much work per request, and where it runs.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// CPU work per request, in milliseconds of one core (0: none).
    pub work_ms: u64,
    /// Where that work runs (irrelevant when there is none).
    pub placement: Placement,
}

impl Setup {
    /// The configurations to measure for these amounts of work: no work
    /// once, as the baseline, and every other amount in each placement.
    pub fn all(work_ms: &[u64]) -> Vec<Setup> {
        let mut setups = Vec::new();
        for &work_ms in work_ms {
            if work_ms == 0 {
                setups.push(Setup {
                    work_ms,
                    placement: Placement::Inline,
                });
            } else {
                for placement in [
                    Placement::Inline,
                    Placement::SpawnBlocking,
                    Placement::BoundedSpawnBlocking,
                ] {
                    setups.push(Setup { work_ms, placement });
                }
            }
        }
        setups
    }

    /// The row's name in the tables.
    pub fn label(self) -> String {
        if self.work_ms == 0 {
            "no CPU work".to_owned()
        } else {
            format!("{} ms CPU, {}", self.work_ms, self.placement.label())
        }
    }
}

/// A fixed amount of CPU work, calibrated once per lab run.
///
/// Not [`step1_baseline::score_reviews`]: that one spins until a wall clock
/// says its time is up, so on an oversubscribed machine (500 blocking
/// threads on 2 cores) each call would finish its "5 ms" having used a
/// fraction of that in CPU, and the blocking pool would look free. Here the
/// work is a number of iterations, so 5 ms costs 5 ms of a core however
/// many threads share the cores.
#[derive(Debug, Clone, Copy)]
pub struct CpuWork {
    /// Iterations of [`spin`] that take one millisecond on one core.
    iterations_per_ms: u64,
}

impl CpuWork {
    /// Times a batch of iterations a few times and keeps the fastest: on a
    /// busy machine a slower run means the thread was preempted, not that
    /// the work costs more.
    pub fn calibrate() -> CpuWork {
        const BATCH: u64 = 2_000_000;
        let fastest = (0..7)
            .map(|_| {
                let started = std::time::Instant::now();
                std::hint::black_box(spin(BATCH));
                started.elapsed()
            })
            .min()
            .expect("seven runs were timed");
        let per_ms = BATCH as f64 / (fastest.as_secs_f64() * 1e3);
        CpuWork {
            iterations_per_ms: per_ms.max(1.0) as u64,
        }
    }

    /// Does `ms` milliseconds of work, never yielding.
    pub fn run(self, ms: u64) -> u64 {
        spin(self.iterations_per_ms * ms)
    }
}

/// A busy loop the optimiser cannot shorten: each step depends on the last,
/// and `black_box` hides the value.
fn spin(iterations: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..iterations {
        x = std::hint::black_box(
            x.wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407),
        );
    }
    x
}

/// What every request needs.
struct AppState {
    client: reqwest::Client,
    urls: UpstreamUrls,
    work: CpuWork,
    setup: Setup,
    /// One permit per core, for [`Placement::BoundedSpawnBlocking`].
    cpu_slots: Arc<Semaphore>,
}

/// A running server: its own runtime, its address and the heartbeat's record.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Each heartbeat tick: when it was due, and how late it woke.
    ticks: Arc<Mutex<Vec<(Instant, Duration)>>>,
}

impl Server {
    /// Starts the server and its heartbeat on a new multi-thread runtime.
    pub async fn start(urls: UpstreamUrls, work: CpuWork, setup: Setup) -> anyhow::Result<Server> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("blocking-lab-server")
            .enable_all()
            .build()?;
        let state = Arc::new(AppState {
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()?,
            urls,
            work,
            setup,
            cpu_slots: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, usize::from),
            )),
        });
        // Spawned on the server's runtime, so that `axum::serve` and every
        // task it spawns per connection run there.
        let addr = runtime.spawn(serve(state)).await??;
        let ticks = Arc::new(Mutex::new(Vec::new()));
        runtime.spawn(heartbeat(Arc::clone(&ticks)));
        Ok(Server {
            runtime,
            addr,
            ticks,
        })
    }

    /// The heartbeat's lateness over `from..until`, in a histogram.
    ///
    /// A heartbeat that wakes 2 s late has missed the 199 ticks it would
    /// have taken meanwhile, so counting only the ticks that happened would
    /// under-sample exactly the stalls (coordinated omission, as in the
    /// open loop). HdrHistogram's `record_correct` fills in the missed ticks,
    /// with the lateness each would have had: 1.99 s, 1.98 s, and so on.
    pub fn lag_between(&self, from: Instant, until: Instant, load: Load) -> Measurement {
        let mut lag = Measurement::new(load, until - from);
        let tick_us = u64::try_from(TICK.as_micros()).expect("a 10 ms tick fits in u64");
        let ticks = self.ticks.lock().unwrap_or_else(|e| e.into_inner());
        for &(due, late) in ticks.iter() {
            if due >= from && due < until {
                let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
                lag.ok += 1;
                lag.latency_us
                    .record_correct(late_us, tick_us)
                    .expect("an auto-resizing histogram accepts any u64 value");
            }
        }
        lag
    }

    /// Stops the server without waiting for its tasks (a worker may be in
    /// the middle of a handler's CPU work; its threads finish on their own).
    pub fn stop(self) {
        self.runtime.shutdown_background();
    }
}

/// Binds, spawns `axum::serve` on the current runtime, returns the address.
async fn serve(state: Arc<AppState>) -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route("/products/{id}", get(product))
        .with_state(state);
    // A deep accept queue, as for the other servers of this lab.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    let listener = socket.listen(4096)?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("blocking-in-async server stopped: {error}");
        }
    });
    Ok(addr)
}

/// `GET /products/{id}`: the concurrent fan-out, then the CPU work.
async fn product(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Json<Product>, (StatusCode, String)> {
    let product = fetch_product_concurrent(&state.client, &state.urls, id)
        .await
        .map_err(|error| (StatusCode::BAD_GATEWAY, error.to_string()))?;
    let (work, ms) = (state.work, state.setup.work_ms);
    match state.setup.placement {
        // No `.await` until the work is done: this poll holds its worker.
        Placement::Inline => {
            std::hint::black_box(work.run(ms));
        }
        // The worker is free while the blocking pool does the work.
        Placement::SpawnBlocking => {
            let result = tokio::task::spawn_blocking(move || work.run(ms)).await;
            std::hint::black_box(
                result.map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?,
            );
        }
        // The permit moves into the closure, so it is released when the
        // work ends, even if this request is dropped while it waits.
        Placement::BoundedSpawnBlocking => {
            let permit = Arc::clone(&state.cpu_slots)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let result = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                work.run(ms)
            })
            .await;
            std::hint::black_box(
                result.map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?,
            );
        }
    }
    Ok(Json(product))
}

/// Wakes every [`TICK`] and records how late each wake-up was.
async fn heartbeat(ticks: Arc<Mutex<Vec<(Instant, Duration)>>>) {
    loop {
        let due = Instant::now() + TICK;
        tokio::time::sleep_until(due).await;
        let late = Instant::now() - due;
        ticks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((due, late));
    }
}

/// One measured configuration at one load.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which configuration.
    pub setup: Setup,
    /// The load's requests.
    pub requests: Measurement,
    /// The heartbeat's lateness over the same window.
    pub lag: Measurement,
}

/// Measures every setup at every concurrency level, a fresh server each.
pub async fn measure(
    urls: &UpstreamUrls,
    work_ms: &[u64],
    concurrency: &[usize],
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Vec<Outcome>> {
    let work = CpuWork::calibrate();
    let setups = Setup::all(work_ms);
    let runs = u32::try_from(setups.len() * concurrency.len())?;
    let progress = load_lab::progress_bar((warmup + window) * runs, "blocking in async");
    let client = load_lab::load_client(Duration::from_secs(30));
    let mut outcomes = Vec::new();
    for &concurrency in concurrency {
        for &setup in &setups {
            let load = Load::Closed { concurrency };
            progress.set_message(format!("{}, {load}", setup.label()));
            let server = Server::start(urls.clone(), work, setup).await?;
            let plan = Plan {
                load,
                warmup,
                measure: window,
            };
            let url = format!("http://{}/products/42", server.addr);
            let window_start = Instant::now() + warmup;
            let requests =
                load_lab::run(&plan, &progress, load_lab::http_get(client.clone(), url)).await;
            let lag = server.lag_between(window_start, window_start + window, load);
            server.stop();
            outcomes.push(Outcome {
                setup,
                requests,
                lag,
            });
        }
    }
    progress.finish_and_clear();
    Ok(outcomes)
}

/// The side-by-side table: per load and setup, throughput, latency and the
/// loop's lag, in milliseconds.
pub fn markdown_table(outcomes: &[Outcome]) -> String {
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
    let mut out = String::from(
        "| load | CPU work per request | req/s | p50 ms | p99 ms | loop lag p50 ms | loop lag p99 ms | loop lag max ms | errors |\n\
         | :--- | :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for outcome in outcomes {
        let (requests, lag) = (&outcome.requests, &outcome.lag);
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
            requests.load,
            outcome.setup.label(),
            requests.throughput(),
            ms(requests.percentile(50.0)),
            ms(requests.percentile(99.0)),
            ms(lag.percentile(50.0)),
            ms(lag.percentile(99.0)),
            ms(lag.max()),
            requests.error_count(),
        ));
    }
    out
}

/// The same table, aligned for a terminal.
pub fn text_table(outcomes: &[Outcome]) -> String {
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
    let mut out = format!(
        "{:<7} {:<37} {:>6} {:>8} {:>8} {:>9} {:>9} {:>9} {:>6}\n",
        "load",
        "CPU work per request",
        "req/s",
        "p50 ms",
        "p99 ms",
        "lag p50",
        "lag p99",
        "lag max",
        "errors"
    );
    for outcome in outcomes {
        let (requests, lag) = (&outcome.requests, &outcome.lag);
        out.push_str(&format!(
            "{:<7} {:<37} {:>6.0} {:>8} {:>8} {:>9} {:>9} {:>9} {:>6}\n",
            requests.load.to_string(),
            outcome.setup.label(),
            requests.throughput(),
            ms(requests.percentile(50.0)),
            ms(requests.percentile(99.0)),
            ms(lag.percentile(50.0)),
            ms(lag.percentile(99.0)),
            ms(lag.max()),
            requests.error_count(),
        ));
    }
    out
}
