//! Step 4's lab: what does the service cost, against the least that serves
//! the same page, and what does observability add?
//!
//! The whole service (router, layers, problem documents, spans, metrics)
//! runs on a real loopback socket in front of three fake upstreams (about
//! 50 ms each). Beside it, on the same fakes and in the same process, runs a
//! *minimal fan-out* (`minimal.rs`: axum, reqwest and `try_join!`, nothing
//! else) that answers the same JSON page. A closed loop drives
//! `GET /products/42` at each concurrency level (5, 50, 500 by default) in
//! short windows, in rounds that visit each variant twice, in mirrored
//! order: minimal, service with observability off, service as shipped
//! (observability on), then on, off, minimal. Every variant's two windows sit
//! at the same average position in the round, so drift within a round (a
//! warming cache, a neighbour's build) cannot favour one of them. See
//! `observability.rs` for what "on" and "off" mean;
//! `--variants minimal,off,metrics,spans,on,every-line` adds metrics alone,
//! and metrics with spans, between them, to split what observability costs,
//! and after them the service with an access line for every answer
//! (`log_every_request`), where as shipped only the answers that are not a
//! success get one.
//!
//! Besides throughput and latency it reports the CPU time the whole process
//! (load generator, fakes and servers together) spent per request: on a
//! shared machine, throughput moves with the neighbours' load, while CPU
//! per request mostly does not. The load generator and the fakes do the same
//! work for every variant, so the difference between two variants' CPU per
//! request is what the layers between them cost.
//!
//! One verdict, and only one: the service as shipped against the minimal
//! fan-out at c=500 (throughput at least 0.9× the minimal's, p99 at most
//! 1.2× its), shown as met or not met with the rounds' range beside it. The
//! cost of observability gets no verdict: two runs of the same code on one
//! machine can disagree by more than it costs, so the lab prints each
//! round's estimate and their spread.
//!
//! Run it with `cargo xtask lab step4` (your code) or
//! `cargo xtask lab step4 --solution` (the reference); always optimized (`.cargo/lab.toml`).

mod minimal;
mod observability;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use load_lab::report::{self, Row};
use load_lab::{Load, Measurement, Plan};
use minimal::MinimalUpstreams;
use observability::{Observability, Tracing};
use step4_service::{AppState, ServiceConfig, UpstreamUrls, bind_listener, router, serve};

/// The product every request asks for.
const PRODUCT_ID: u64 = 42;

/// The concurrency at which the service is judged against the minimal
/// fan-out: where the two cores, not the upstreams, set the pace.
const FLOOR_CONCURRENCY: usize = 500;

/// The service serves at least this share of the minimal fan-out's
/// throughput at [`FLOOR_CONCURRENCY`]...
const THROUGHPUT_FLOOR: f64 = 0.9;

/// ...with a p99 at most this multiple of the minimal fan-out's.
const P99_CEILING: f64 = 1.2;

/// Step 4's lab: the service end to end, against a minimal fan-out, with
/// observability off and on.
#[derive(Debug, Parser)]
struct Args {
    /// Folder for the report, the plot and the tables.
    #[arg(long, default_value = "lab-results")]
    out: PathBuf,
    /// Closed-loop concurrency levels to measure.
    #[arg(long, value_delimiter = ',', default_value = "5,50,500")]
    concurrency: Vec<usize>,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Warm-up before each window, in seconds (not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// How many rounds per level. Each round gives one estimate of every
    /// ratio; more rounds show how far the estimates spread.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Shorter windows (2 s, 1 s warm-up): a quick look, not a result to quote.
    #[arg(long)]
    quick: bool,
    /// What to measure, in the order of a round's first half (the second
    /// half mirrors it). `minimal,off,metrics,spans,on,every-line` adds
    /// observability one layer at a time; the floors need `minimal` and `on`.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "minimal,off,on"
    )]
    variants: Vec<Variant>,
    /// Latency of each fake upstream, in milliseconds.
    #[arg(long, default_value_t = 50)]
    upstream_latency_ms: u64,
    /// The service's request budget, in milliseconds. Longer than the
    /// service's default 200 ms so that a slow moment shows as latency here,
    /// not as 504s: the lab measures cost, not the SLO.
    #[arg(long, default_value_t = 1000)]
    budget_ms: u64,
}

/// One configuration, measured in windows of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Variant {
    /// `minimal.rs`: axum, reqwest and `try_join!`, nothing else.
    Minimal,
    /// The service with its metric handles on a no-op recorder and tracing off.
    Off,
    /// The service with Prometheus metrics, tracing off.
    Metrics,
    /// Metrics and spans, without the access log line.
    Spans,
    /// The service as it ships: metrics, spans, and a JSON access line for
    /// each answer that is not a success.
    On,
    /// As shipped, but with a JSON access line for every answer
    /// (`log_every_request`).
    EveryLine,
}

impl Variant {
    /// How many there are (the size of a [`Tally`]).
    const COUNT: usize = 6;

    fn label(self) -> &'static str {
        match self {
            Variant::Minimal => "minimal fan-out",
            Variant::Off => "service, observability off",
            Variant::Metrics => "service + metrics",
            Variant::Spans => "service + metrics + spans",
            Variant::On => "service, observability on",
            Variant::EveryLine => "service, every answer logged",
        }
    }

    /// The tracing filter its windows run under.
    fn tracing(self) -> Tracing {
        match self {
            Variant::Minimal | Variant::Off | Variant::Metrics => Tracing::Off,
            Variant::Spans => Tracing::SpansOnly,
            Variant::On | Variant::EveryLine => Tracing::On,
        }
    }
}

/// One round's windows: the variants, then the same in reverse, so each
/// variant's two windows are centred on the middle of the round.
fn round_order(variants: &[Variant]) -> Vec<Variant> {
    variants
        .iter()
        .chain(variants.iter().rev())
        .copied()
        .collect()
}

/// Where each variant is served.
struct Servers {
    minimal: String,
    service_off: String,
    service_on: String,
    service_every_line: String,
}

impl Servers {
    fn url(&self, variant: Variant) -> &str {
        match variant {
            Variant::Minimal => &self.minimal,
            Variant::Off => &self.service_off,
            // Every variant with metrics uses the copy whose handles record.
            Variant::Metrics | Variant::Spans | Variant::On => &self.service_on,
            // A copy of its own: which answers get a line is fixed when the
            // router is built.
            Variant::EveryLine => &self.service_every_line,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build, so its numbers mean little; `cargo xtask lab step4` builds it optimized"
        );
    }
    let (warmup, window) = if args.quick {
        (Duration::from_secs(1), Duration::from_secs(2))
    } else {
        (
            Duration::from_secs_f64(args.warmup_seconds),
            Duration::from_secs_f64(args.seconds),
        )
    };
    let mut variants = args.variants.clone();
    // Each variant once: a repeated one would be a second pair of windows
    // in the round, not a second row.
    let mut seen = Vec::new();
    variants.retain(|variant| {
        let first = !seen.contains(variant);
        seen.push(*variant);
        first
    });
    let variants = variants.as_slice();
    let order = round_order(variants);
    let machine = load_lab::machine::Machine::detect();
    let upstream_latency = Duration::from_millis(args.upstream_latency_ms);
    println!("step 4 lab on {machine}");
    println!(
        "upstreams: 3 fakes at {upstream_latency:?} each; request budget {} ms; windows: {warmup:?} warm-up + {window:?}; {} rounds of ({}) per level",
        args.budget_ms,
        args.rounds.max(1),
        short_labels(&order)
    );

    let observability = Observability::install().context("installing tracing and metrics")?;
    let upkeep = observability.metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });

    // Three separate fake upstreams, as in production: one per service.
    let behaviour = Behaviour::fixed(upstream_latency);
    let inventory = FastUpstream::start(behaviour.clone()).await?;
    let pricing = FastUpstream::start(behaviour.clone()).await?;
    let reviews = FastUpstream::start(behaviour).await?;
    let mut config = ServiceConfig::new(UpstreamUrls {
        inventory: inventory.base_url(),
        pricing: pricing.base_url(),
        reviews: reviews.base_url(),
    });
    config.request_budget = Duration::from_millis(args.budget_ms);
    config.server_timeout = config.request_budget * 5;
    // One attempt may use the whole budget (minus the margin): a slow
    // moment shows as latency, never as a timeout and a retry.
    config.attempt_timeout = config.request_budget;
    // No shedding in this lab: at 500 requests in flight each upstream sees
    // 500 calls, and a shed request would be a fast error, not a cost.
    config.max_in_flight_per_upstream = 4096;
    let (state_off, state_on, state_every_line) = observability.states(config)?;
    let (url_off, server_off) = start_server(state_off)?;
    let (url_on, server_on) = start_server(state_on)?;
    let (url_every_line, server_every_line) = start_server(state_every_line)?;
    let (minimal_addr, server_minimal) = minimal::start(MinimalUpstreams {
        inventory: inventory.base_url(),
        pricing: pricing.base_url(),
        reviews: reviews.base_url(),
    })?;
    let servers = Servers {
        minimal: format!("http://{minimal_addr}/products/{PRODUCT_ID}"),
        service_off: url_off,
        service_on: url_on,
        service_every_line: url_every_line,
    };

    let client = load_lab::load_client(Duration::from_secs(30));
    check_same_page(&client, &servers).await?;
    let rounds = args.rounds.max(1);
    let total = (warmup + window) * u32::try_from(args.concurrency.len() * rounds * order.len())?;
    let progress = load_lab::progress_bar(total, "step 4");
    let mut levels = Vec::new();
    let mut on_windows = OnWindows::default();
    for &concurrency in &args.concurrency {
        let load = Load::Closed { concurrency };
        let mut level = Level {
            concurrency,
            rounds: Vec::new(),
            total: Tally::default(),
        };
        for _ in 0..rounds {
            let mut round = Tally::default();
            for &variant in &order {
                observability.set_tracing(variant.tracing())?;
                progress.set_message(format!("{}, {load}", variant.label()));
                let plan = Plan {
                    load,
                    warmup,
                    measure: window,
                };
                let lines_before = observability.log_lines.load(Ordering::Relaxed);
                let cpu_before = observability::process_cpu_time();
                let requests_before = inventory.counters().requests;
                let measurement = load_lab::run(
                    &plan,
                    &progress,
                    load_lab::http_get(client.clone(), servers.url(variant).to_owned()),
                )
                .await;
                // Every request calls inventory once, warm-up included, like the CPU time.
                let requests = inventory.counters().requests - requests_before;
                let cpu = match (cpu_before, observability::process_cpu_time()) {
                    (Some(before), Some(after)) => Some(after.saturating_sub(before)),
                    _ => None,
                };
                if variant == Variant::On {
                    on_windows.requests += requests;
                    on_windows.log_lines +=
                        observability.log_lines.load(Ordering::Relaxed) - lines_before;
                }
                round.add(variant, &measurement, cpu, requests);
                level.total.add(variant, &measurement, cpu, requests);
            }
            level.rounds.push(round);
        }
        levels.push(level);
    }
    progress.finish_and_clear();
    observability.set_tracing(Tracing::Off)?;
    server_off.abort();
    server_on.abort();
    server_every_line.abort();
    server_minimal.abort();

    let rows = table_rows(&levels, variants);
    let evidence = evidence(&observability, &on_windows);
    print_and_save(&args, &machine, &rows, &levels, variants, &evidence)
}

/// Fetches one page from the service and one from the minimal fan-out, and
/// refuses to measure if they differ: the comparison is only fair if both
/// do the same work.
async fn check_same_page(client: &reqwest::Client, servers: &Servers) -> anyhow::Result<()> {
    let page = |url: String| async move {
        let response = client.get(&url).send().await?.error_for_status()?;
        let page: serde_json::Value = response.json().await?;
        anyhow::Ok(page)
    };
    let service = page(servers.service_on.clone())
        .await
        .context("fetching a page from the service before measuring")?;
    let minimal = page(servers.minimal.clone())
        .await
        .context("fetching a page from the minimal fan-out before measuring")?;
    anyhow::ensure!(
        service == minimal,
        "the service and the minimal fan-out answer different pages, so comparing them would not be fair:\n  service: {service}\n  minimal: {minimal}"
    );
    Ok(())
}

/// What the service produced in the windows with observability on.
#[derive(Default)]
struct OnWindows {
    /// Requests served, warm-ups included (counted at the inventory fake).
    requests: u64,
    /// JSON log lines written (and discarded).
    log_lines: u64,
}

/// One variant's windows added up: the measurement, and CPU time per request.
#[derive(Default)]
struct Side {
    measurement: Option<Measurement>,
    /// CPU time and requests, over the windows where CPU time was known.
    cpu: Duration,
    cpu_requests: u64,
}

impl Side {
    fn cpu_per_request_us(&self) -> Option<f64> {
        (self.cpu_requests > 0).then(|| self.cpu.as_secs_f64() * 1e6 / self.cpu_requests as f64)
    }

    fn throughput(&self) -> Option<f64> {
        Some(self.measurement.as_ref()?.throughput())
    }

    fn p99_ms(&self) -> Option<f64> {
        let measurement = self.measurement.as_ref()?;
        Some(measurement.percentile(99.0).as_secs_f64() * 1e3)
    }
}

/// Every variant, each added up over some windows (one round's, or a level's).
#[derive(Default)]
struct Tally {
    sides: [Side; Variant::COUNT],
}

impl Tally {
    fn side(&self, variant: Variant) -> &Side {
        &self.sides[variant as usize]
    }

    fn add(
        &mut self,
        variant: Variant,
        measurement: &Measurement,
        cpu: Option<Duration>,
        requests: u64,
    ) {
        let side = &mut self.sides[variant as usize];
        match &mut side.measurement {
            // `merge` adds counts for workers sharing one window; these
            // windows ran one after another, so their lengths add up too.
            Some(sum) => {
                sum.merge(measurement);
                sum.window += measurement.window;
            }
            None => side.measurement = Some(measurement.clone()),
        }
        if let Some(cpu) = cpu {
            side.cpu += cpu;
            side.cpu_requests += requests;
        }
    }

    /// `variant`'s throughput as a multiple of the minimal fan-out's.
    fn throughput_vs_minimal(&self, variant: Variant) -> Option<f64> {
        let minimal = self.side(Variant::Minimal).throughput()?;
        let this = self.side(variant).throughput()?;
        (minimal > 0.0).then(|| this / minimal)
    }

    /// `variant`'s p99 as a multiple of the minimal fan-out's.
    fn p99_vs_minimal(&self, variant: Variant) -> Option<f64> {
        let minimal = self.side(Variant::Minimal).p99_ms()?;
        let this = self.side(variant).p99_ms()?;
        (minimal > 0.0).then(|| this / minimal)
    }

    /// The throughput cost of observability (1 - on / off).
    fn observability_cost(&self) -> Option<f64> {
        let off = self.side(Variant::Off).throughput()?;
        let on = self.side(Variant::On).throughput()?;
        (off > 0.0).then(|| 1.0 - on / off)
    }

    /// CPU µs per request, `variant` minus `base`.
    fn cpu_over(&self, variant: Variant, base: Variant) -> Option<f64> {
        Some(self.side(variant).cpu_per_request_us()? - self.side(base).cpu_per_request_us()?)
    }

    /// p99 in ms, off and on.
    fn p99_off_on(&self) -> Option<(f64, f64)> {
        Some((
            self.side(Variant::Off).p99_ms()?,
            self.side(Variant::On).p99_ms()?,
        ))
    }
}

/// The rounds measured at one concurrency level, and their sum.
struct Level {
    concurrency: usize,
    rounds: Vec<Tally>,
    total: Tally,
}

/// The results table: per level, one row per variant (all its windows),
/// with CPU per request, both ratios to the minimal fan-out, and the CPU
/// each variant adds over the one before it.
fn table_rows(levels: &[Level], variants: &[Variant]) -> Vec<Row> {
    let mut rows = Vec::new();
    for level in levels {
        let mut before: Option<Variant> = None;
        for &variant in variants {
            let side = level.total.side(variant);
            let Some(measurement) = &side.measurement else {
                continue;
            };
            let ratio = |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), times);
            let added_cpu = before
                .and_then(|base| level.total.cpu_over(variant, base))
                .map_or_else(|| "".to_owned(), |us| format!("{us:+.0}"));
            rows.push(Row {
                scenario: variant.label().to_owned(),
                measurement: measurement.clone(),
                extra: vec![
                    (
                        "req/s ÷ minimal".to_owned(),
                        ratio(level.total.throughput_vs_minimal(variant)),
                    ),
                    (
                        "p99 ÷ minimal".to_owned(),
                        ratio(level.total.p99_vs_minimal(variant)),
                    ),
                    (
                        "CPU µs/req".to_owned(),
                        side.cpu_per_request_us()
                            .map_or_else(|| "n/a".to_owned(), |us| format!("{us:.0}")),
                    ),
                    ("CPU µs added".to_owned(), added_cpu),
                ],
            });
            before = Some(variant);
        }
    }
    rows
}

/// What the on windows produced, and the upstream counters at the end: a
/// cost measured for work that never happened would be no measurement.
fn evidence(observability: &Observability, on_windows: &OnWindows) -> String {
    let mut counters: Vec<String> = observability
        .metrics
        .render()
        .lines()
        .filter(|line| line.starts_with("upstream_requests_total"))
        .map(str::to_owned)
        .collect();
    counters.sort();
    format!(
        "In the windows with observability on (warm-ups included), the service served {} requests and wrote {} JSON log lines ({:.2} per request, {} bytes in all) into a counting sink. Its upstream call counters at the end (every window served by a copy with Prometheus metrics):\n\n```text\n{}\n```",
        on_windows.requests,
        on_windows.log_lines,
        on_windows.log_lines as f64 / on_windows.requests.max(1) as f64,
        observability.log_bytes.load(Ordering::Relaxed),
        counters.join("\n")
    )
}

/// Serves `state` on a loopback port; returns the product URL and the task.
fn start_server(
    state: std::sync::Arc<AppState>,
) -> anyhow::Result<(
    String,
    tokio::task::JoinHandle<Result<(), step4_service::ServeError>>,
)> {
    let listener = bind_listener(([127, 0, 0, 1], 0).into())?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(serve(
        listener,
        router(state),
        std::future::pending(),
        Duration::from_secs(5),
    ));
    Ok((format!("http://{addr}/products/{PRODUCT_ID}"), server))
}

/// A ratio such as `0.93×`.
fn times(ratio: f64) -> String {
    format!("{ratio:.2}×")
}

/// A round's order in short words: `minimal, off, on, on, off, minimal`.
fn short_labels(order: &[Variant]) -> String {
    let short = |variant: &Variant| match variant {
        Variant::Minimal => "minimal",
        Variant::Off => "off",
        Variant::Metrics => "metrics",
        Variant::Spans => "spans",
        Variant::On => "on",
        Variant::EveryLine => "every-line",
    };
    order.iter().map(short).collect::<Vec<_>>().join(", ")
}

/// Prints the table, the floors and the rounds, and writes the report and plot.
fn print_and_save(
    args: &Args,
    machine: &load_lab::machine::Machine,
    rows: &[Row],
    levels: &[Level],
    variants: &[Variant],
    evidence: &str,
) -> anyhow::Result<()> {
    let floors = floors(levels);
    let by_round = by_round(levels, variants);
    println!();
    println!("{}", report::text_table(rows));
    for line in &floors {
        println!("{line}");
    }
    println!();
    println!("{}", by_round.join("\n\n"));
    println!();
    println!("{evidence}");

    let results = report::ResultsDir::create(&args.out, "step4")?;
    let mut series = Vec::new();
    for percentile in [50.0, 99.0] {
        for mut one in report::latency_series(rows, percentile) {
            one.label = format!("{} p{percentile}", one.label);
            series.push(one);
        }
    }
    let plot = results.path.join("latency.svg");
    report::plot_svg(
        &plot,
        "Step 4: latency against concurrency, minimal fan-out and service",
        "concurrency",
        "latency (ms)",
        true,
        &series,
    )?;
    let sections = vec![
        ("Results".to_owned(), report::markdown_table(rows)),
        (
            format!("The service against the minimal fan-out at c={FLOOR_CONCURRENCY}"),
            floors.join("\n"),
        ),
        ("Round by round".to_owned(), by_round.join("\n\n")),
        ("What was recorded".to_owned(), evidence.to_owned()),
        (
            "Plot".to_owned(),
            "![latency against concurrency](latency.svg)".to_owned(),
        ),
    ];
    let report_path = results.path.join("report.md");
    report::write_markdown_report(
        &report_path,
        "Step 4 lab: the service against a minimal fan-out, and the cost of observability",
        machine,
        &sections,
    )?;
    println!();
    println!("report: {}", report_path.display());
    println!("plot:   {}", plot.display());
    Ok(())
}

/// The one verdict: the service as shipped (observability on) against the
/// minimal fan-out at [`FLOOR_CONCURRENCY`], from all windows of that level
/// together, with each round's ratio beside it so noise can be told apart.
fn floors(levels: &[Level]) -> Vec<String> {
    let Some(level) = levels
        .iter()
        .find(|level| level.concurrency == FLOOR_CONCURRENCY)
    else {
        return vec![format!(
            "floors: judged at c={FLOOR_CONCURRENCY}, which this run did not measure"
        )];
    };
    let total = &level.total;
    let (Some(throughput), Some(p99)) = (
        total.throughput_vs_minimal(Variant::On),
        total.p99_vs_minimal(Variant::On),
    ) else {
        return vec![format!(
            "floors: need successful requests from both `minimal` and `on` at c={FLOOR_CONCURRENCY}"
        )];
    };
    let round_throughput: Vec<f64> = level
        .rounds
        .iter()
        .filter_map(|round| round.throughput_vs_minimal(Variant::On))
        .collect();
    let round_p99: Vec<f64> = level
        .rounds
        .iter()
        .filter_map(|round| round.p99_vs_minimal(Variant::On))
        .collect();
    let service = total.side(Variant::On);
    let minimal = total.side(Variant::Minimal);
    let value = |side: &Side, read: fn(&Side) -> Option<f64>| read(side).unwrap_or(0.0);
    let meets_floor = |ratio: f64| ratio >= THROUGHPUT_FLOOR;
    let meets_ceiling = |ratio: f64| ratio <= P99_CEILING;
    vec![
        format!(
            "service as shipped (observability on) ÷ minimal fan-out at c={FLOOR_CONCURRENCY}, all rounds together:"
        ),
        format!(
            "- throughput: {:.0} ÷ {:.0} req/s = {} (floor ≥ {}): {}",
            value(service, Side::throughput),
            value(minimal, Side::throughput),
            times(throughput),
            times(THROUGHPUT_FLOOR),
            verdict(throughput, &round_throughput, meets_floor),
        ),
        format!(
            "- p99: {:.1} ÷ {:.1} ms = {} (ceiling ≤ {}): {}",
            value(service, Side::p99_ms),
            value(minimal, Side::p99_ms),
            times(p99),
            times(P99_CEILING),
            verdict(p99, &round_p99, meets_ceiling),
        ),
    ]
}

/// "met" or "NOT MET" for the level's total ratio, with each round's ratio
/// beside it. When the rounds disagree with each other the verdict is
/// within this run's noise, and it says so.
fn verdict(total: f64, rounds: &[f64], meets: impl Fn(f64) -> bool) -> String {
    let listed = list(rounds, times);
    let met = rounds.iter().filter(|ratio| meets(**ratio)).count();
    let word = if meets(total) { "met" } else { "NOT MET" };
    let agreeing = if meets(total) {
        met
    } else {
        rounds.len() - met
    };
    if agreeing == rounds.len() {
        format!("{word}; per round {listed}, every round on the same side")
    } else {
        format!(
            "{word} by all rounds together, but per round {listed}: {met} of {} meet it, so this run cannot tell",
            rounds.len()
        )
    }
}

/// Per level: each round's service-to-minimal ratios, its estimate of what
/// observability costs, and how far the estimates spread. A difference
/// smaller than the spread between rounds is noise.
fn by_round(levels: &[Level], variants: &[Variant]) -> Vec<String> {
    let mut lines = Vec::new();
    for level in levels {
        let rounds = &level.rounds;
        let per_round = |read: &dyn Fn(&Tally) -> Option<f64>| -> Vec<f64> {
            rounds.iter().filter_map(read).collect()
        };
        let throughput = per_round(&|round| round.throughput_vs_minimal(Variant::On));
        let p99 = per_round(&|round| round.p99_vs_minimal(Variant::On));
        let costs = per_round(&|round| round.observability_cost().map(|cost| cost * 100.0));
        let cpu = per_round(&|round| round.cpu_over(Variant::On, Variant::Off));
        let p99_off_on: Vec<String> = rounds
            .iter()
            .filter_map(Tally::p99_off_on)
            .map(|(off, on)| format!("{off:.1}/{on:.1} ms"))
            .collect();
        let signed_percent = |value: f64| format!("{value:+.1}%");
        let signed_us = |value: f64| format!("{value:+.0} µs");
        let mut line = format!(
            "at concurrency {}, {} rounds of ({}):\n- service as shipped ÷ minimal fan-out per round: throughput {} ({}); p99 {} ({})\n- throughput cost of observability per round: {} ({})\n- p99 per round, off/on: {}",
            level.concurrency,
            rounds.len(),
            short_labels(&round_order(variants)),
            list(&throughput, times),
            spread(&throughput, times),
            list(&p99, times),
            spread(&p99, times),
            list(&costs, signed_percent),
            spread(&costs, signed_percent),
            p99_off_on.join(", "),
        );
        if !cpu.is_empty() {
            line.push_str(&format!(
                "\n- CPU per request per round, on minus off (whole process): {} ({})",
                list(&cpu, signed_us),
                spread(&cpu, signed_us),
            ));
        }
        lines.push(line);
    }
    lines
}

fn list(values: &[f64], show: impl Fn(f64) -> String) -> String {
    values
        .iter()
        .map(|value| show(*value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "median m, from lo to hi" for a handful of values, each shown by `show`.
fn spread(values: &[f64], show: impl Fn(f64) -> String) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (Some(low), Some(high)) = (sorted.first(), sorted.last()) else {
        return "no rounds".to_owned();
    };
    let middle = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    };
    format!(
        "median {}, from {} to {}",
        show(median),
        show(*low),
        show(*high)
    )
}
