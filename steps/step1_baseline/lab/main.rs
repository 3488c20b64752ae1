//! Step 1's lab: the same product route served two ways, measured side by side.
//!
//! * **blocking**: a pool of OS threads, each taking one connection at a
//!   time and running `fetch_product_blocking`, the way a classic
//!   thread-per-request server does. Two pools by default: 32 threads, a
//!   typical fixed size, and 512, enough for every client of the largest
//!   load, so the thread count is no longer the limit;
//! * **async**: an axum server running `fetch_product_concurrent` as one tokio
//!   task per request.
//!
//! Both sit in front of the same fake upstreams (about 50 ms each) and take
//! the same load: a closed loop at each concurrency level (5, 50, 500 by
//! default) and, with `--rates`, an open loop at fixed arrival rates. First,
//! while the machine is still quiet, a child process holds 10,000 requests in
//! flight, once on threads and once on tasks, to measure what each in-flight
//! request costs in memory.
//!
//! A second scenario, *blocking in async* (`--scenario blocking-in-async`),
//! puts milliseconds of CPU work into the async server's handler, inline or
//! through `spawn_blocking`, and measures the server's event-loop lag beside
//! its latency (see `blocking_in_async.rs`). `--scenario all`, the default,
//! runs both.
//!
//! Run it with `cargo xtask lab step1` (your code) or
//! `cargo xtask lab step1 --solution` (the reference); always optimized (`.cargo/lab.toml`).

mod async_server;
mod blocking_in_async;
mod blocking_server;
mod limits;
mod memory;
mod preflight;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use load_lab::report::{self, Row};
use load_lab::{Load, Plan};
use step1_baseline::UpstreamUrls;

/// The product every request asks for.
const PRODUCT_ID: u64 = 42;

/// Which experiments a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// Both of the others.
    All,
    /// Blocking thread pools against the async server (and the memory experiment).
    Servers,
    /// CPU work inside the async server's handlers, inline and on spawn_blocking.
    BlockingInAsync,
}

/// Step 1's lab: blocking thread pool vs async server, same route, same upstreams.
#[derive(Debug, Parser)]
struct Args {
    /// Which experiments to run.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// Folder for the report, the plot and the tables.
    #[arg(long, default_value = "lab-results")]
    out: PathBuf,
    /// Closed-loop concurrency levels to measure.
    #[arg(long, value_delimiter = ',', default_value = "5,50,500")]
    concurrency: Vec<usize>,
    /// Open-loop arrival rates (requests per second) to measure as well.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up before each window, in seconds (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup_seconds: f64,
    /// Shorter windows (3 s, 1 s warm-up): a quick look, not a result to quote.
    #[arg(long)]
    quick: bool,
    /// Latency of each fake upstream, in milliseconds.
    #[arg(long, default_value_t = 50)]
    upstream_latency_ms: u64,
    /// Blocking servers to measure, by their number of worker threads: one
    /// server per value.
    #[arg(long, value_delimiter = ',', default_value = "32,512")]
    threads: Vec<usize>,
    /// blocking-in-async: milliseconds of CPU work per request, one server
    /// per value (0: the baseline without work).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,5")]
    work_ms: Vec<u64>,
    /// blocking-in-async: closed-loop concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "50,500")]
    work_concurrency: Vec<usize>,
    /// Requests held in flight by the memory experiment (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    memory_in_flight: usize,
    /// Internal: run as the memory experiment's child process.
    #[arg(long, hide = true)]
    hold: Option<memory::HoldMode>,
    /// Internal: the three upstream base URLs the memory child calls.
    #[arg(long, hide = true, value_delimiter = ',')]
    hold_upstreams: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(mode) = args.hold {
        // The memory experiment's child: hold requests, report RSS, exit.
        memory::hold_requests(mode, args.memory_in_flight, &args.hold_upstreams);
    }

    // Not `#[tokio::main]`: the memory child above must run without a
    // runtime, because its blocking client may not live inside one.
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(run_lab(args))
}

async fn run_lab(args: Args) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build, so its numbers mean little; `cargo xtask lab step1` builds it optimized"
        );
    }
    let (warmup, window) = if args.quick {
        (Duration::from_secs(1), Duration::from_secs(3))
    } else {
        (
            Duration::from_secs_f64(args.warmup_seconds),
            Duration::from_secs_f64(args.seconds),
        )
    };
    let machine = load_lab::machine::Machine::detect();
    let upstream_latency = Duration::from_millis(args.upstream_latency_ms);
    println!("step 1 lab on {machine}");
    println!(
        "upstreams: 3 fakes at {upstream_latency:?} each; windows: {warmup:?} warm-up + {window:?}"
    );
    if args.scenario != Scenario::BlockingInAsync {
        println!("blocking servers: {:?} threads", args.threads);
    }
    if args.scenario != Scenario::Servers {
        println!(
            "blocking in async: {:?} ms of CPU work per request at concurrency {:?}",
            args.work_ms, args.work_concurrency
        );
    }
    println!("{}", limits::Limits::read().summary());
    preflight::check_the_fan_outs_answer(PRODUCT_ID).await?;

    // Memory first, while nothing else holds sockets or threads: the fakes
    // it starts share this process's open-file limit, and the figures are
    // cleanest on a quiet machine.
    let compare_servers = args.scenario != Scenario::BlockingInAsync;
    let blocking_in_async = args.scenario != Scenario::Servers;
    let memory = if compare_servers && args.memory_in_flight > 0 {
        memory::measure(args.memory_in_flight).await?
    } else {
        None
    };

    // Three separate fake upstreams, as in production: one per service.
    let behaviour = Behaviour::fixed(upstream_latency);
    let inventory = FastUpstream::start(behaviour.clone()).await?;
    let pricing = FastUpstream::start(behaviour.clone()).await?;
    let reviews = FastUpstream::start(behaviour).await?;
    let urls = UpstreamUrls {
        inventory: inventory.base_url(),
        pricing: pricing.base_url(),
        reviews: reviews.base_url(),
    };

    let rows = if compare_servers {
        measure_servers(&args, &urls, warmup, window).await?
    } else {
        Vec::new()
    };
    let blocking = if blocking_in_async {
        blocking_in_async::measure(&urls, &args.work_ms, &args.work_concurrency, warmup, window)
            .await?
    } else {
        Vec::new()
    };

    print_and_save(
        &args,
        &machine,
        upstream_latency,
        &rows,
        memory.as_ref(),
        &blocking,
    )
}

/// The first scenario: each blocking pool and the async server, at each load.
async fn measure_servers(
    args: &Args,
    urls: &UpstreamUrls,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Vec<Row>> {
    let mut servers = Vec::new();
    for &threads in &args.threads {
        servers.push((
            format!("blocking ({threads} threads)"),
            blocking_server::start(threads, urls.clone())?,
        ));
    }
    servers.push((
        "async (tokio tasks)".to_owned(),
        async_server::start(urls.clone()).await?,
    ));

    let mut loads: Vec<Load> = args
        .concurrency
        .iter()
        .map(|&concurrency| Load::Closed { concurrency })
        .collect();
    loads.extend(args.rates.iter().map(|&rate_per_sec| Load::Open {
        rate_per_sec,
        max_outstanding: 10_000,
    }));

    let total = (warmup + window) * u32::try_from(loads.len() * servers.len())?;
    let progress = load_lab::progress_bar(total, "step 1");
    let client = load_lab::load_client(Duration::from_secs(30));
    let mut rows = Vec::new();
    for &load in &loads {
        for (name, addr) in &servers {
            progress.set_message(format!("{name}, {load}"));
            let plan = Plan {
                load,
                warmup,
                measure: window,
            };
            let url = format!("http://{addr}/products/{PRODUCT_ID}");
            let measurement =
                load_lab::run(&plan, &progress, load_lab::http_get(client.clone(), url)).await;
            rows.push(Row {
                scenario: name.clone(),
                measurement,
                extra: Vec::new(),
            });
        }
    }
    progress.finish_and_clear();
    Ok(rows)
}

/// Prints the tables and headline ratios, and writes the report and plot.
fn print_and_save(
    args: &Args,
    machine: &load_lab::machine::Machine,
    upstream_latency: Duration,
    rows: &[Row],
    memory: Option<&memory::MemoryReport>,
    blocking: &[blocking_in_async::Outcome],
) -> anyhow::Result<()> {
    let results = load_lab::report::ResultsDir::create(&args.out, "step1")?;
    let mut sections = Vec::new();
    let mut plot = None;
    if !rows.is_empty() {
        plot = Some(results.path.join("latency.svg"));
        sections.extend(servers_sections(rows, upstream_latency, plot.as_deref())?);
    }
    if let Some(memory) = memory {
        println!();
        println!("{memory}");
        sections.push((
            "Memory per in-flight request".to_owned(),
            memory.to_markdown(),
        ));
    }
    if !blocking.is_empty() {
        println!();
        println!("blocking in async (the server's own runtime; loop lag = heartbeat lateness):");
        println!("{}", blocking_in_async::text_table(blocking));
        sections.push((
            "Blocking in async".to_owned(),
            format!(
                "CPU work per request in the async server's handler, inline or through \
                 `spawn_blocking`. Loop lag: how late a heartbeat task on the server's runtime \
                 woke from a {:?} sleep, over the same window.\n\n{}",
                blocking_in_async::TICK,
                blocking_in_async::markdown_table(blocking)
            ),
        ));
    }
    if plot.is_some() {
        sections.push((
            "Plot".to_owned(),
            "![latency against concurrency](latency.svg)".to_owned(),
        ));
    }
    let report_path = results.path.join("report.md");
    report::write_markdown_report(
        &report_path,
        "Step 1 lab: the cost of blocking",
        machine,
        &sections,
    )?;

    println!();
    println!("report: {}", report_path.display());
    if let Some(plot) = plot {
        println!("plot:   {}", plot.display());
    }
    Ok(())
}

/// The servers scenario: prints its table and headline, draws its plot at
/// `plot`, and returns its report sections.
fn servers_sections(
    rows: &[Row],
    upstream_latency: Duration,
    plot: Option<&std::path::Path>,
) -> anyhow::Result<Vec<(String, String)>> {
    let closed: Vec<&Row> = rows
        .iter()
        .filter(|row| matches!(row.measurement.load, Load::Closed { .. }))
        .collect();
    let headline = headline(&closed, upstream_latency);

    println!();
    println!("{}", report::text_table(rows));
    for line in &headline {
        println!("{line}");
    }

    if let Some(plot) = plot {
        let closed_rows: Vec<Row> = closed.into_iter().cloned().collect();
        let mut series = Vec::new();
        for percentile in [50.0, 99.0] {
            for mut one in report::latency_series(&closed_rows, percentile) {
                one.label = format!("{} p{percentile}", one.label);
                series.push(one);
            }
        }
        report::plot_svg(
            plot,
            "Step 1: latency against concurrency (closed loop)",
            "concurrency",
            "latency (ms)",
            true,
            &series,
        )?;
    }

    Ok(vec![
        ("Results".to_owned(), report::markdown_table(rows)),
        ("Headline".to_owned(), headline.join("\n\n")),
    ])
}

/// The numbers the chapter quotes: at the highest concurrency, the async
/// server's throughput against each blocking pool's (and the ceiling Little's
/// law sets for that pool); at the lowest, how close the async p50 gets to
/// the upstream latency.
fn headline(closed: &[&Row], upstream_latency: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    let levels: Vec<usize> = closed
        .iter()
        .filter_map(|row| match row.measurement.load {
            Load::Closed { concurrency } => Some(concurrency),
            Load::Open { .. } => None,
        })
        .collect();
    let (Some(&highest), Some(&lowest)) = (levels.iter().max(), levels.iter().min()) else {
        return lines;
    };
    let at = |concurrency: usize| {
        closed
            .iter()
            .filter(move |row| row.measurement.load == Load::Closed { concurrency })
    };
    let is_async = |row: &&&Row| !row.scenario.starts_with("blocking");
    // The blocking fan-out makes three calls one after another.
    let blocking_request = upstream_latency.as_secs_f64() * 3.0;

    if let Some(async_row) = at(highest).find(is_async) {
        let async_throughput = async_row.measurement.throughput();
        for blocking in at(highest).filter(|row| !is_async(row)) {
            let throughput = blocking.measurement.throughput();
            let ceiling = blocking_threads(&blocking.scenario)
                .map(|threads| threads.min(highest) as f64 / blocking_request);
            lines.push(format!(
                "at concurrency {highest}: async serves {async_throughput:.0} req/s, {} {throughput:.0} req/s{}: {:.1}× the throughput on the same machine",
                blocking.scenario,
                ceiling.map_or(String::new(), |ceiling| format!(
                    " (Little's law allows {ceiling:.0})"
                )),
                async_throughput / throughput.max(f64::MIN_POSITIVE),
            ));
        }
    }
    if let Some(async_row) = at(lowest).find(is_async) {
        let p50 = async_row.measurement.percentile(50.0);
        lines.push(format!(
            "at concurrency {lowest}: async p50 is {:.1} ms, {:.1} ms above the {:.0} ms the slowest upstream takes",
            p50.as_secs_f64() * 1e3,
            (p50.as_secs_f64() - upstream_latency.as_secs_f64()) * 1e3,
            upstream_latency.as_secs_f64() * 1e3
        ));
    }
    lines
}

/// The thread count in a scenario named "blocking (32 threads)".
fn blocking_threads(scenario: &str) -> Option<usize> {
    scenario
        .strip_prefix("blocking (")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
