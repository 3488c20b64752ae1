//! One cell of the lab: a fresh edge over HTTP, one load, and what the
//! generator, the service's own `/metrics` and the upstreams saw.
//!
//! Each cell builds the service and its edge anew (so no breaker, hedge or
//! histogram state leaks from one cell to the next), serves it on the
//! edge's runtime (`server.rs`) exactly as `product-page` does, resets the
//! fakes' counters (the fakes run on a runtime of their own), and drives
//! `GET /products/42` through a real loopback socket. The generator's client
//! is not the service's: the service calls its upstreams with a client of
//! its own, as the binary does. Over the measured window it also records
//! how far behind each runtime ran (`lag.rs`; the edge's from its own
//! `/metrics`).
//!
//! What a request's answer means to the generator:
//!
//! * `200`: a page (complete, or degraded: the body's `degraded` is not empty);
//! * `503` with the `overloaded` problem type: **shed** by admission. Its
//!   latency is kept apart, timed from when the request was actually sent
//!   (printed beside the edge's own, which the shed floor uses: see
//!   `findings.rs`). In a closed loop the worker then waits out the
//!   answer's `Retry-After`, as a client that obeys it would; an open loop's
//!   arrivals are new clients, so it does not;
//! * any other status: an error labelled by the status, the upstream the
//!   problem document blames and what happened, e.g. `504 reviews: timeout`.
//!
//! Given: this whole file (lab code; there is nothing to write in it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use fake_upstreams::fast::FastUpstream;
use hdrhistogram::Histogram;
use load_lab::report::Row;
use load_lab::{ErrorKind, Load, Plan};
use serde::Deserialize;
use step6_resilience::edge::{EdgeConfig, EdgeState};
use step6_resilience::{ProductService, Upstream, UpstreamUrls};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cpu::{CoresUsed, CpuReading};
use crate::lag::{Heartbeat, Lag};
use crate::matrix::{Mode, Profile};
use crate::minimal::MinimalUpstreams;
use crate::scrape::{self, BucketQuantile, PartQuantile};
use crate::server::ServerRuntime;
use crate::waterfall::Waterfall;

/// The product every request asks for.
pub const PRODUCT_ID: u64 = 42;

/// The three fakes the lab runs against.
pub struct Upstreams {
    pub fakes: [FastUpstream; 3],
}

impl Upstreams {
    /// Starts the three fakes on `runtime`, where their server tasks stay.
    pub async fn start(runtime: &ServerRuntime) -> anyhow::Result<Upstreams> {
        let start = || async {
            runtime
                .run(FastUpstream::start(Default::default()))
                .await?
                .context("starting a fake upstream")
        };
        Ok(Upstreams {
            fakes: [start().await?, start().await?, start().await?],
        })
    }

    pub fn urls(&self) -> UpstreamUrls {
        UpstreamUrls {
            inventory: self.fakes[0].base_url(),
            pricing: self.fakes[1].base_url(),
            reviews: self.fakes[2].base_url(),
        }
    }

    pub fn minimal_urls(&self) -> MinimalUpstreams {
        let urls = self.urls();
        MinimalUpstreams {
            inventory: urls.inventory,
            pricing: urls.pricing,
            reviews: urls.reviews,
        }
    }

    /// Every fake behaves as `profile` says, its counters at zero.
    pub fn prepare(&self, profile: Profile) {
        for (fake, behaviour) in self.fakes.iter().zip(profile.behaviours()) {
            fake.set_behaviour(behaviour);
            fake.reset_counters();
        }
    }
}

/// What is served in a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The edge and the service, resilience off or on.
    Edge(Mode),
    /// Step 4's minimal fan-out: axum, reqwest, `try_join!`.
    Minimal,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Edge(Mode::Off) => "resilience off",
            Server::Edge(Mode::On) => "resilience on",
            Server::Minimal => "minimal fan-out",
        }
    }
}

/// Which part of the lab a cell belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Closed loop, every profile and mode.
    Matrix,
    /// Closed loop at the floor's concurrency: everything on against the
    /// minimal fan-out.
    Floor,
    /// Open loop, healthy upstreams, rising rates.
    Sweep,
    /// Open loop at 1.5× the knee.
    PastKnee,
}

/// What the lab settles once for every cell.
pub struct Setup<'a> {
    pub upstreams: &'a Upstreams,
    /// The edge's runtime (the fakes run on another).
    pub servers: &'a ServerRuntime,
    /// The heartbeats of the generator's and the fakes' runtimes.
    pub heartbeats: &'a Heartbeats,
    /// The most file descriptors the process held, per cell.
    pub open_files: &'a crate::files::Watch,
    /// How many it may hold, if known.
    pub open_files_limit: Option<u64>,
    /// The generator's client.
    pub client: &'a reqwest::Client,
    /// The scraper's client: its own pool, so its connection to the edge is
    /// opened before the load starts and kept, as Prometheus keeps its
    /// connections to the targets it scrapes.
    pub scraper: &'a reqwest::Client,
    /// The edge's request budget: the page's deadline.
    pub budget: Duration,
    /// The edge's in-flight limit with resilience on.
    pub max_in_flight: usize,
    /// The edge's runtime-lag limit with resilience on.
    pub max_runtime_lag: Duration,
    pub waterfall: &'a Waterfall,
}

/// A heartbeat on each runtime the lab runs besides the edge's.
#[derive(Clone)]
pub struct Heartbeats {
    pub generator: Heartbeat,
    pub fakes: Heartbeat,
}

impl Heartbeats {
    /// Forgets what was recorded: a window starts.
    fn reset(&self) {
        self.generator.reset();
        self.fakes.reset();
    }

    fn lags(&self) -> Lags {
        Lags {
            generator: self.generator.lag(),
            fakes: self.fakes.lag(),
        }
    }
}

/// What the lab reads of its own process over a cell's measured window.
struct OwnWindow {
    /// The cores each runtime used (`None` where `/proc` is not).
    cores: Option<CoresUsed>,
    lags: Lags,
}

/// Reads the process over the window `plan` opens `warmup` from now (call
/// it as the run starts): the heartbeats start afresh and the CPU is read
/// when the window opens, and both are read again when it closes.
///
/// When it closes, not when the run returns: a run returns after its drain,
/// and in a closed loop the drain waits for every client, shed ones
/// included, which sleep out `Retry-After` (a second) while the machine has
/// little left to do. Read then, a cell that shed had its cores divided by
/// a second more of wall time than they were busy (with 5 s windows, 1.2
/// cores read as 1.0 and the CPU per page a sixth too low), and the
/// generator's and the fakes' lags diluted by a quiet second. (The edge's
/// lag comes from its `/metrics`, scraped after the drain with the rest of
/// its histograms, so it still counts the drain's heartbeats: with 5 s
/// windows, a fifth more beats, nearly all on time, so in a cell that
/// shed its p99 is about the window's own 98.8th percentile.)
fn read_own_window(plan: &Plan, heartbeats: &Heartbeats) -> JoinHandle<OwnWindow> {
    let opens = Instant::now() + plan.warmup;
    let closes = opens + plan.measure;
    let heartbeats = heartbeats.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(opens).await;
        heartbeats.reset();
        let cpu_at_open = CpuReading::now();
        tokio::time::sleep_until(closes).await;
        OwnWindow {
            cores: CpuReading::cores_between(cpu_at_open, CpuReading::now()),
            lags: heartbeats.lags(),
        }
    })
}

/// How far behind the generator's and the fakes' runtimes ran over a
/// cell's measured window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lags {
    pub generator: Lag,
    pub fakes: Lag,
}

/// One cell measured.
pub struct Cell {
    pub profile: Profile,
    pub server: Server,
    pub part: Part,
    pub row: Row,
    pub tally: Tally,
    /// The edge's own view; `None` for the minimal fan-out.
    pub edge: Option<EdgeView>,
    /// The generator's and the fakes' runtimes over the window.
    pub lags: Lags,
    /// The most file descriptors the process held during the cell,
    /// warm-up included (0 where unknown).
    pub open_files_peak: u64,
    /// How many it may hold, if known.
    pub open_files_limit: Option<u64>,
    /// The cores each runtime used over the measured window, if known.
    pub cores: Option<CoresUsed>,
}

impl Cell {
    pub fn load(&self) -> Load {
        self.row.measurement.load
    }

    pub fn p99_ms(&self) -> f64 {
        millis(self.row.measurement.percentile(99.0))
    }

    /// Pages answered (`200`) per second.
    pub fn goodput(&self) -> f64 {
        self.row.measurement.throughput()
    }

    pub fn answered(&self) -> u64 {
        self.row.measurement.ok
    }

    /// Whether the process came within 5 % of its file limit in this cell:
    /// then some connections may have failed for the lab's reasons, not the
    /// service's (`files.rs`).
    pub fn near_file_limit(&self) -> bool {
        self.open_files_limit
            .is_some_and(|limit| self.open_files_peak * 20 >= limit * 19)
    }
}

/// What the upstreams and the service did during one cell (warm-up included).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Pages asked for, shed ones included.
    pub pages: u64,
    /// Pages served with a section missing.
    pub degraded: u64,
    /// Requests the three upstreams received, hedges and retries included.
    pub upstream_requests: u64,
    /// Requests reviews received.
    pub reviews_requests: u64,
    /// Backups sent by the hedges.
    pub hedges: u64,
    /// Requests shed by the edge's admission.
    pub shed: u64,
    /// Of them, the ones shed because the edge's runtime ran behind (the
    /// rest found no place under the in-flight limit), by the edge's own
    /// count.
    pub shed_lagging: u64,
    /// The edge's in-flight limit when the cell ended: the learnt one, or
    /// the hard cap (`None` for the minimal fan-out, which has none).
    pub limit_at_end: Option<usize>,
    /// The shed answers' p99 as the generator saw them, in milliseconds,
    /// from when each was sent: the edge's time, the loopback's, and the
    /// generator's own queue on a busy machine.
    pub shed_p99_ms: Option<f64>,
}

impl Tally {
    /// Pages admitted: asked for and not shed, the ones that could call
    /// an upstream.
    pub fn admitted(&self) -> u64 {
        self.pages.saturating_sub(self.shed)
    }

    /// `count` per admitted page (a shed page calls nothing, so counting it
    /// would make the calls look cheaper than they are).
    pub fn per_page(&self, count: u64) -> f64 {
        count as f64 / self.admitted().max(1) as f64
    }

    /// Hedges as a share of the other upstream requests (the extra load they cost).
    pub fn hedge_share(&self) -> f64 {
        self.hedges as f64 / self.upstream_requests.saturating_sub(self.hedges).max(1) as f64
    }
}

/// The edge's own request histogram over the measured window.
#[derive(Debug, Clone, Copy)]
pub struct EdgeView {
    /// The `2xx` answers' p99, as the buckets tell it.
    pub p99: Option<BucketQuantile>,
    /// `2xx` answers the edge counted.
    pub answered: f64,
    /// Requests the edge counted as shed.
    pub shed: f64,
    /// The shed answers' p99, bounded from the `5xx` buckets, which also
    /// hold the failed pages ([`scrape::quantile_of_part`]).
    pub shed_p99: Option<PartQuantile>,
    /// The p99 of the edge's heartbeat lateness.
    pub lag_p99: Option<BucketQuantile>,
    /// How long the scrape when the window opened took to answer: under
    /// overload, `/metrics` waits for a worker like every request.
    pub window_scrape: Duration,
}

/// The lab's own counters for one cell, shared by every request.
#[derive(Default)]
struct Counters {
    pages: AtomicU64,
    degraded: AtomicU64,
    shed: AtomicU64,
    shed_latency_us: Mutex<Option<Histogram<u64>>>,
}

impl Counters {
    fn record_shed(&self, took: Duration) {
        self.shed.fetch_add(1, Ordering::Relaxed);
        let mut histogram = self.shed_latency_us.lock().expect("not poisoned");
        let histogram = histogram
            .get_or_insert_with(|| Histogram::new(3).expect("3 significant digits is valid"));
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        histogram
            .record(micros)
            .expect("an auto-resizing histogram accepts any u64");
    }

    fn shed_p99_ms(&self) -> Option<f64> {
        let histogram = self.shed_latency_us.lock().expect("not poisoned");
        histogram
            .as_ref()
            .filter(|histogram| !histogram.is_empty())
            .map(|histogram| histogram.value_at_quantile(0.99) as f64 / 1e3)
    }
}

/// The fields of a problem document the error label uses.
#[derive(Deserialize)]
struct ProblemFields {
    #[serde(rename = "type")]
    problem_type: String,
    upstream: Option<String>,
}

/// A runtime-lag limit no running runtime reaches: a heartbeat an hour
/// late means the process has stopped, not that it is busy. (Not
/// `Duration::MAX`: admission computes with the limit, and twice the
/// largest duration overflows.)
const NEVER_LAGGING: Duration = Duration::from_secs(3600);

/// The edge's settings in `mode`, with the lab's budget in both.
///
/// * On: admission as the binary ships it, shedding past `max_in_flight`
///   pages in flight and past `max_runtime_lag` of lag (the binary's
///   defaults unless the command line says otherwise).
/// * Off: admission admits everything, so "off" is the service with no
///   shedding at all: the cap at its largest (tokio's largest semaphore),
///   no limit learnt from latency, and a lag limit it never reaches
///   ([`NEVER_LAGGING`]).
///
/// The learnt limit's latency target stays the binary's default in "on"
/// (aimed at the 200 ms goal), not derived from the lab's budget as
/// `product-page` derives it from `--budget-ms`: the lab's budget is long
/// on purpose, so that the stalls show in full, and a target derived from
/// it would not aim at the goal the floors judge.
pub fn edge_config(
    mode: Mode,
    budget: Duration,
    max_in_flight: usize,
    max_runtime_lag: Duration,
) -> EdgeConfig {
    let shipped = EdgeConfig {
        request_budget: budget,
        // Everything else as the binary ships it.
        ..EdgeConfig::default()
    };
    match mode {
        Mode::On => EdgeConfig {
            max_in_flight,
            max_runtime_lag,
            ..shipped
        },
        Mode::Off => EdgeConfig {
            max_in_flight: tokio::sync::Semaphore::MAX_PERMITS,
            latency_target: None,
            max_runtime_lag: NEVER_LAGGING,
            ..shipped
        },
    }
}

/// Serves one page through a fresh edge before anything is measured, and
/// refuses to go on if it does not answer `200`: a page that is not written
/// yet (`todo!()`) panics in the edge's handler, and measuring that would
/// only count thousands of broken connections.
pub async fn check_page_serves(setup: &Setup<'_>) -> anyhow::Result<()> {
    let service = ProductService::new(
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the service's HTTP client")?,
        setup.upstreams.urls(),
        Mode::Off.resilience(setup.max_in_flight, setup.max_runtime_lag),
    )?;
    let config = edge_config(
        Mode::Off,
        setup.budget,
        setup.max_in_flight,
        setup.max_runtime_lag,
    );
    let state = Arc::new(EdgeState::new(service, config)?);
    let running = setup.servers.start_edge(state).await?;
    setup.upstreams.prepare(Profile::Healthy);
    let answer = setup
        .client
        .get(running.url(&format!("/products/{PRODUCT_ID}")))
        .send()
        .await;
    running.stop().await;
    match answer {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => anyhow::bail!(
            "the edge answered {} to a page on healthy upstreams, so there is nothing to measure yet; `cargo xtask verify step6` says what is missing",
            response.status()
        ),
        Err(error) => anyhow::bail!(
            "the edge served no page on healthy upstreams ({error}); if a `todo!()` panicked above, that part is not written yet: `cargo xtask verify step6` says which"
        ),
    }
}

/// Runs one cell against a fresh edge in `mode`; the waterfall records its
/// sampled requests under `trace_as`, if given.
pub async fn run_edge_cell(
    setup: &Setup<'_>,
    profile: Profile,
    mode: Mode,
    part: Part,
    plan: &Plan,
    progress: &indicatif::ProgressBar,
    trace_as: Option<String>,
) -> anyhow::Result<Cell> {
    // The service's own client, as the binary builds it.
    let upstream_client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the service's HTTP client")?;
    let service = ProductService::new(
        upstream_client,
        setup.upstreams.urls(),
        mode.resilience(setup.max_in_flight, setup.max_runtime_lag),
    )
    .context("checking the breaker and hedge settings")?;
    let config = edge_config(
        mode,
        setup.budget,
        setup.max_in_flight,
        setup.max_runtime_lag,
    );
    let state = Arc::new(EdgeState::new(service, config).context("checking the edge settings")?);
    let running = setup.servers.start_edge(Arc::clone(&state)).await?;
    setup.upstreams.prepare(profile);
    setup.open_files.reset();

    let counters = Arc::new(Counters::default());
    let obeys_retry_after = matches!(plan.load, Load::Closed { .. });
    let send = page_request(
        setup.client.clone(),
        running.url(&format!("/products/{PRODUCT_ID}")),
        Arc::clone(&counters),
        obeys_retry_after,
    );

    // A first scrape opens the scraper's connection before any load.
    let metrics_url = running.url("/metrics");
    scrape::scrape(setup.scraper, &metrics_url).await?;
    // The window opens `warmup` after the run starts: scrape then, and
    // start sampling spans then.
    let at_window = {
        let scraper = setup.scraper.clone();
        let metrics_url = metrics_url.clone();
        let waterfall = setup.waterfall.clone();
        let warmup = plan.warmup;
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            if let Some(label) = trace_as {
                waterfall.record_as(&label);
            }
            let asked = Instant::now();
            let scraped = scrape::scrape(&scraper, &metrics_url).await;
            scraped.map(|histograms| (histograms, asked.elapsed()))
        })
    };
    let own = read_own_window(plan, setup.heartbeats);
    let measurement = load_lab::run(plan, progress, send).await;
    let open_files_peak = setup.open_files.peak();
    setup.waterfall.pause();
    let (before, window_scrape) = at_window.await.context("the window's scrape panicked")??;
    let OwnWindow { cores, lags } = own.await.context("the window's readings panicked")?;
    let after = scrape::scrape(setup.scraper, &metrics_url).await?;
    let window = after.since(&before);
    let answered = window.class("2xx");
    let failed = window.class("5xx");
    let edge = EdgeView {
        p99: answered.quantile(0.99),
        answered: answered.total(),
        shed: window.shed,
        shed_p99: scrape::quantile_of_part(&failed, window.shed, 0.99),
        lag_p99: window.lag.quantile(0.99),
        window_scrape,
    };

    let counters_seen = setup.upstreams.fakes.each_ref().map(FastUpstream::counters);
    let tally = Tally {
        pages: counters.pages.load(Ordering::Relaxed),
        degraded: counters.degraded.load(Ordering::Relaxed),
        upstream_requests: counters_seen.iter().map(|c| c.requests).sum(),
        reviews_requests: counters_seen[2].requests,
        hedges: Upstream::ALL
            .iter()
            .filter_map(|&upstream| state.service.hedge(upstream))
            .map(|hedge| hedge.hedges_sent())
            .sum(),
        shed: counters.shed.load(Ordering::Relaxed),
        shed_lagging: state.admission.shed_lagging(),
        limit_at_end: Some(state.admission.limit()),
        shed_p99_ms: counters.shed_p99_ms(),
    };
    running.stop().await;

    let server = Server::Edge(mode);
    let scenario = format!("{}, {}", profile.name(), server.name());
    let row = Row {
        scenario,
        extra: extra_columns(&tally, Some(&edge)),
        measurement,
    };
    Ok(Cell {
        profile,
        server,
        part,
        row,
        tally,
        edge: Some(edge),
        lags,
        open_files_peak,
        open_files_limit: setup.open_files_limit,
        cores,
    })
}

/// Runs one cell against step 4's minimal fan-out, on the same fakes.
pub async fn run_minimal_cell(
    setup: &Setup<'_>,
    profile: Profile,
    part: Part,
    plan: &Plan,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Cell> {
    let running = setup
        .servers
        .start_minimal(setup.upstreams.minimal_urls())
        .await?;
    setup.upstreams.prepare(profile);
    setup.open_files.reset();
    let send = load_lab::http_get(
        setup.client.clone(),
        running.url(&format!("/products/{PRODUCT_ID}")),
    );
    let own = read_own_window(plan, setup.heartbeats);
    let measurement = load_lab::run(plan, progress, send).await;
    let open_files_peak = setup.open_files.peak();
    let OwnWindow { cores, lags } = own.await.context("the window's readings panicked")?;
    let counters_seen = setup.upstreams.fakes.each_ref().map(FastUpstream::counters);
    running.stop().await;
    let tally = Tally {
        // Every page calls inventory once.
        pages: counters_seen[0].requests,
        upstream_requests: counters_seen.iter().map(|c| c.requests).sum(),
        reviews_requests: counters_seen[2].requests,
        ..Tally::default()
    };
    let server = Server::Minimal;
    let row = Row {
        scenario: format!("{}, {}", profile.name(), server.name()),
        extra: extra_columns(&tally, None),
        measurement,
    };
    Ok(Cell {
        profile,
        server,
        part,
        row,
        tally,
        edge: None,
        lags,
        open_files_peak,
        open_files_limit: setup.open_files_limit,
        cores,
    })
}

/// `GET url`, read to the end, and judged as the module documentation says.
fn page_request(
    client: reqwest::Client,
    url: String,
    counters: Arc<Counters>,
    obeys_retry_after: bool,
) -> impl Fn() -> load_lab::http::RequestFuture + Send + Sync + 'static {
    let url: reqwest::Url = url.parse().expect("the lab builds a valid loopback URL");
    move || {
        let request = client.get(url.clone());
        let counters = Arc::clone(&counters);
        Box::pin(async move {
            counters.pages.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let response = request
                .send()
                .await
                .map_err(|error| transport_kind(&error))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response
                .bytes()
                .await
                .map_err(|error| transport_kind(&error))?;
            if status.is_success() {
                if !contains(&body, br#""degraded":[]"#) {
                    counters.degraded.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(());
            }
            let problem = serde_json::from_slice::<ProblemFields>(&body).ok();
            let kind = problem.as_ref().map_or("", |problem| {
                problem.problem_type.rsplit('/').next().unwrap_or_default()
            });
            if kind == "overloaded" {
                counters.record_shed(sent.elapsed());
                if obeys_retry_after && let Some(wait) = retry_after {
                    tokio::time::sleep(wait).await;
                }
                return Err(ErrorKind::new(format!("{} shed", status.as_u16())));
            }
            let upstream = problem
                .as_ref()
                .and_then(|problem| problem.upstream.as_deref())
                .unwrap_or("-");
            Err(ErrorKind::new(format!(
                "{} {upstream}: {}",
                status.as_u16(),
                kind.replace('-', " ")
            )))
        })
    }
}

fn transport_kind(error: &reqwest::Error) -> ErrorKind {
    ErrorKind::new(if error.is_timeout() {
        "client timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "transport"
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The table's columns after the generator's own.
fn extra_columns(tally: &Tally, edge: Option<&EdgeView>) -> Vec<(String, String)> {
    let mut columns = vec![
        (
            "upstream calls/admitted page".to_owned(),
            format!("{:.2}", tally.per_page(tally.upstream_requests)),
        ),
        (
            "reviews calls/admitted page".to_owned(),
            format!("{:.3}", tally.per_page(tally.reviews_requests)),
        ),
        (
            "hedges".to_owned(),
            format!("{:.1}%", 100.0 * tally.hedge_share()),
        ),
        (
            "degraded".to_owned(),
            format!("{:.1}%", 100.0 * tally.per_page(tally.degraded)),
        ),
        ("shed".to_owned(), tally.shed.to_string()),
        (
            "of them for lag".to_owned(),
            if tally.shed == 0 {
                "-".to_owned()
            } else {
                tally.shed_lagging.to_string()
            },
        ),
        (
            "limit at end".to_owned(),
            tally
                .limit_at_end
                .filter(|&limit| limit < tokio::sync::Semaphore::MAX_PERMITS)
                .map_or_else(|| "-".to_owned(), |limit| limit.to_string()),
        ),
    ];
    let p99 = edge.and_then(|edge| edge.p99).map_or_else(
        || "-".to_owned(),
        |p99| format!("{:.1}", p99.interpolated * 1e3),
    );
    columns.push(("/metrics p99 ms".to_owned(), p99));
    columns
}

pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
