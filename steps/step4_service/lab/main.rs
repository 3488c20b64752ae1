//! Step 4's lab: what does observability cost?
//!
//! The whole service (router, tower-http layers, problem documents, spans,
//! metrics) runs on a real loopback socket in front of three fake upstreams
//! (about 50 ms each). A closed loop drives `GET /products/42` at each
//! concurrency level (5, 50, 500 by default) in short windows, alternating
//! observability off and on in the order off, on, on, off (twice by
//! default), so that drift over time (a warming cache, a neighbour's build)
//! cannot favour one side. Each side's windows are added up. See `observability.rs` for what "on" and "off" mean.
//!
//! Besides throughput and latency it reports the CPU time the whole process
//! (load generator, fakes and service together) spent per request: on a
//! shared machine, throughput moves with the neighbours' load, while CPU
//! per request mostly does not, so the difference between off and on is the
//! steadier measure of what observability costs.
//!
//! Run it with `cargo xtask lab step4` (your code) or
//! `cargo xtask lab step4 --solution` (the reference); always in release mode.

mod observability;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use load_lab::report::{self, Row};
use load_lab::{Load, Measurement, Plan};
use observability::Observability;
use step4_service::{AppState, ServiceConfig, UpstreamUrls, bind_listener, router, serve};

/// The product every request asks for.
const PRODUCT_ID: u64 = 42;

/// The most observability may cost at the highest concurrency, as a share of
/// throughput (the step's floor).
const COST_FLOOR: f64 = 0.10;

/// Step 4's lab: the service end to end, observability off vs on.
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
    /// How many times to run the off, on, on, off sequence per level. More,
    /// shorter windows average out a busy neighbour better than a few long ones.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Shorter windows (2 s, 1 s warm-up): a quick look, not a result to quote.
    #[arg(long)]
    quick: bool,
    /// Latency of each fake upstream, in milliseconds.
    #[arg(long, default_value_t = 50)]
    upstream_latency_ms: u64,
    /// The service's request budget, in milliseconds. Longer than the
    /// service's default 200 ms so that a slow moment shows as latency here,
    /// not as 504s: the lab measures cost, not the SLO.
    #[arg(long, default_value_t = 1000)]
    budget_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build, so its numbers mean little; `cargo xtask lab step4` builds in release mode"
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
    let machine = load_lab::machine::Machine::detect();
    let upstream_latency = Duration::from_millis(args.upstream_latency_ms);
    println!("step 4 lab on {machine}");
    println!(
        "upstreams: 3 fakes at {upstream_latency:?} each; request budget {} ms; windows: {warmup:?} warm-up + {window:?}, {} per level (off, on, on, off, ...)",
        args.budget_ms,
        4 * args.rounds.max(1)
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
    // No shedding in this lab: at 500 requests in flight each upstream sees
    // 500 calls, and a shed request would be a fast error, not a cost.
    config.max_in_flight_per_upstream = 4096;
    let (state_off, state_on) = observability.states(config)?;
    let (url_off, server_off) = start_server(state_off)?;
    let (url_on, server_on) = start_server(state_on)?;

    let client = load_lab::load_client(Duration::from_secs(30));
    let rounds: Vec<bool> = [false, true, true, false].repeat(args.rounds.max(1));
    let total = (warmup + window) * u32::try_from(args.concurrency.len() * rounds.len())?;
    let progress = load_lab::progress_bar(total, "step 4");
    let mut rows = Vec::new();
    let mut log_lines_while_on = 0;
    for &concurrency in &args.concurrency {
        let load = Load::Closed { concurrency };
        let mut off: Option<Measurement> = None;
        let mut on: Option<Measurement> = None;
        // (CPU time, requests) per side, for the CPU-per-request column.
        let mut cpu_off = (Duration::ZERO, 0_u64);
        let mut cpu_on = (Duration::ZERO, 0_u64);
        for &observed in &rounds {
            observability.set_tracing(observed)?;
            let url = if observed { &url_on } else { &url_off };
            progress.set_message(format!("observability {}, {load}", on_off(observed)));
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
                load_lab::http_get(client.clone(), url.clone()),
            )
            .await;
            // Every request calls inventory once, warm-up included, like the CPU time.
            let requests = inventory.counters().requests - requests_before;
            if let (Some(before), Some(after)) = (cpu_before, observability::process_cpu_time()) {
                let cpu = if observed { &mut cpu_on } else { &mut cpu_off };
                cpu.0 += after.saturating_sub(before);
                cpu.1 += requests;
            }
            if observed {
                log_lines_while_on +=
                    observability.log_lines.load(Ordering::Relaxed) - lines_before;
            }
            let slot = if observed { &mut on } else { &mut off };
            match slot {
                // `merge` adds counts for workers sharing one window; these
                // windows ran one after another, so their lengths add up too.
                Some(sum) => {
                    sum.merge(&measurement);
                    sum.window += measurement.window;
                }
                None => *slot = Some(measurement),
            }
        }
        for (observed, measurement, cpu) in [(false, off, cpu_off), (true, on, cpu_on)] {
            if let Some(measurement) = measurement {
                let cpu_per_request = if cpu.1 > 0 {
                    format!("{:.0}", cpu.0.as_secs_f64() * 1e6 / cpu.1 as f64)
                } else {
                    "n/a".to_owned()
                };
                rows.push(Row {
                    scenario: format!("observability {}", on_off(observed)),
                    measurement,
                    extra: vec![("CPU µs/req".to_owned(), cpu_per_request)],
                });
            }
        }
    }
    progress.finish_and_clear();
    observability.set_tracing(false)?;
    server_off.abort();
    server_on.abort();

    let mut counters: Vec<String> = observability
        .metrics
        .render()
        .lines()
        .filter(|line| line.starts_with("upstream_requests_total"))
        .map(str::to_owned)
        .collect();
    counters.sort();
    let served: f64 = counters
        .iter()
        .filter(|line| line.contains("upstream=\"inventory\""))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    let evidence = format!(
        "While on (warm-ups included), the service served {served:.0} requests and wrote {log_lines_while_on} JSON log lines ({:.2} per request, {} bytes in all) into a counting sink. Its upstream call counters at the end:\n\n```text\n{}\n```",
        log_lines_while_on as f64 / served.max(1.0),
        observability.log_bytes.load(Ordering::Relaxed),
        counters.join("\n")
    );
    print_and_save(&args, &machine, &rows, &evidence)
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

fn on_off(observed: bool) -> &'static str {
    if observed { "on" } else { "off" }
}

/// Prints the table and the cost per level, and writes the report and plot.
fn print_and_save(
    args: &Args,
    machine: &load_lab::machine::Machine,
    rows: &[Row],
    evidence: &str,
) -> anyhow::Result<()> {
    let headline = headline(rows);
    println!();
    println!("{}", report::text_table(rows));
    for line in &headline {
        println!("{line}");
    }
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
        "Step 4: latency against concurrency, observability off vs on",
        "concurrency",
        "latency (ms)",
        true,
        &series,
    )?;
    let sections = vec![
        ("Results".to_owned(), report::markdown_table(rows)),
        ("Cost of observability".to_owned(), headline.join("\n\n")),
        ("What was recorded".to_owned(), evidence.to_owned()),
        (
            "Plot".to_owned(),
            "![latency against concurrency](latency.svg)".to_owned(),
        ),
    ];
    let report_path = results.path.join("report.md");
    report::write_markdown_report(
        &report_path,
        "Step 4 lab: the cost of observability",
        machine,
        &sections,
    )?;
    println!();
    println!("report: {}", report_path.display());
    println!("plot:   {}", plot.display());
    Ok(())
}

/// Per level: throughput and p99 on vs off, and the floor at the highest level.
fn headline(rows: &[Row]) -> Vec<String> {
    let find = |concurrency: usize, scenario: &str| {
        rows.iter().find(|row| {
            row.measurement.load == Load::Closed { concurrency } && row.scenario == scenario
        })
    };
    let mut levels: Vec<usize> = rows
        .iter()
        .filter_map(|row| match row.measurement.load {
            Load::Closed { concurrency } => Some(concurrency),
            Load::Open { .. } => None,
        })
        .collect();
    levels.sort_unstable();
    levels.dedup();
    let mut lines = Vec::new();
    for &level in &levels {
        let (Some(off_row), Some(on_row)) = (
            find(level, "observability off"),
            find(level, "observability on"),
        ) else {
            continue;
        };
        let (off, on) = (&off_row.measurement, &on_row.measurement);
        let cost = 1.0 - on.throughput() / off.throughput().max(f64::MIN_POSITIVE);
        let p99 = |m: &Measurement| m.percentile(99.0).as_secs_f64() * 1e3;
        let mut line = format!(
            "at concurrency {level}: {:.0} req/s off, {:.0} req/s on: observability costs {:.1}% of throughput; p99 {:.1} ms off, {:.1} ms on",
            off.throughput(),
            on.throughput(),
            cost * 100.0,
            p99(off),
            p99(on),
        );
        let cpu = |row: &Row| {
            row.extra
                .iter()
                .find(|(header, _)| header == "CPU µs/req")
                .and_then(|(_, value)| value.parse::<f64>().ok())
        };
        if let (Some(cpu_off), Some(cpu_on)) = (cpu(off_row), cpu(on_row)) {
            line.push_str(&format!(
                "; CPU per request {cpu_off:.0} µs off, {cpu_on:.0} µs on (+{:.0} µs, whole process)",
                cpu_on - cpu_off
            ));
        }
        if Some(&level) == levels.last() {
            let verdict = if cost <= COST_FLOOR { "within" } else { "OVER" };
            line.push_str(&format!(
                " ({verdict} the {:.0}% floor)",
                COST_FLOOR * 100.0
            ));
        }
        lines.push(line);
    }
    lines
}
