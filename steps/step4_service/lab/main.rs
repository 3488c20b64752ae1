//! Step 4's lab: what does observability cost?
//!
//! The whole service (router, layers, problem documents, spans, metrics)
//! runs on a real loopback socket in front of three fake upstreams (about
//! 50 ms each). A closed loop drives `GET /products/42` at each concurrency
//! level (5, 50, 500 by default) in short windows, in rounds of four:
//! observability off, on, on, off (three rounds by default), so that drift
//! within a round (a warming cache, a neighbour's build) cannot favour one
//! side. See `observability.rs` for what "on" and "off" mean.
//!
//! Besides throughput and latency it reports the CPU time the whole process
//! (load generator, fakes and service together) spent per request: on a
//! shared machine, throughput moves with the neighbours' load, while CPU
//! per request mostly does not.
//!
//! It gives no verdict. Two runs of the same code on one machine can
//! disagree by more than observability costs, so it prints each round's
//! result and their spread: a difference between off and on smaller than
//! the spread between rounds is noise, not a cost.
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

/// The window order within one round: off, on, on, off.
const ROUND: [bool; 4] = [false, true, true, false];

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
    /// How many rounds (off, on, on, off) per level. Each round gives one
    /// estimate of the cost; more rounds show how far the estimates spread.
    #[arg(long, default_value_t = 3)]
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
        "upstreams: 3 fakes at {upstream_latency:?} each; request budget {} ms; windows: {warmup:?} warm-up + {window:?}; {} rounds of (off, on, on, off) per level",
        args.budget_ms,
        args.rounds.max(1)
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
    let (state_off, state_on) = observability.states(config)?;
    let (url_off, server_off) = start_server(state_off)?;
    let (url_on, server_on) = start_server(state_on)?;

    let client = load_lab::load_client(Duration::from_secs(30));
    let rounds = args.rounds.max(1);
    let total = (warmup + window) * u32::try_from(args.concurrency.len() * rounds * ROUND.len())?;
    let progress = load_lab::progress_bar(total, "step 4");
    let mut rows = Vec::new();
    let mut levels = Vec::new();
    let mut log_lines_while_on = 0;
    for &concurrency in &args.concurrency {
        let load = Load::Closed { concurrency };
        let mut level = Level {
            concurrency,
            rounds: Vec::new(),
        };
        // Every window of each side, for the table.
        let mut all = Sides::default();
        for _ in 0..rounds {
            let mut round = Sides::default();
            for observed in ROUND {
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
                let cpu = match (cpu_before, observability::process_cpu_time()) {
                    (Some(before), Some(after)) => Some(after.saturating_sub(before)),
                    _ => None,
                };
                if observed {
                    log_lines_while_on +=
                        observability.log_lines.load(Ordering::Relaxed) - lines_before;
                }
                round.add(observed, &measurement, cpu, requests);
                all.add(observed, &measurement, cpu, requests);
            }
            level.rounds.push(round);
        }
        for observed in [false, true] {
            let side = all.side(observed);
            if let Some(measurement) = &side.measurement {
                let cpu_per_request = side
                    .cpu_per_request_us()
                    .map_or_else(|| "n/a".to_owned(), |us| format!("{us:.0}"));
                rows.push(Row {
                    scenario: format!("observability {}", on_off(observed)),
                    measurement: measurement.clone(),
                    extra: vec![("CPU µs/req".to_owned(), cpu_per_request)],
                });
            }
        }
        levels.push(level);
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
    print_and_save(&args, &machine, &rows, &levels, &evidence)
}

/// One side's windows added up: the measurement, and CPU time per request.
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
}

/// Off and on, each added up over some windows.
#[derive(Default)]
struct Sides {
    off: Side,
    on: Side,
}

impl Sides {
    fn side(&self, observed: bool) -> &Side {
        if observed { &self.on } else { &self.off }
    }

    fn add(
        &mut self,
        observed: bool,
        measurement: &Measurement,
        cpu: Option<Duration>,
        requests: u64,
    ) {
        let side = if observed {
            &mut self.on
        } else {
            &mut self.off
        };
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

    /// This round's estimate of the throughput cost (1 - on / off).
    fn throughput_cost(&self) -> Option<f64> {
        let off = self.off.measurement.as_ref()?.throughput();
        let on = self.on.measurement.as_ref()?.throughput();
        (off > 0.0).then(|| 1.0 - on / off)
    }

    /// This round's CPU µs per request, on minus off.
    fn cpu_cost_us(&self) -> Option<f64> {
        Some(self.on.cpu_per_request_us()? - self.off.cpu_per_request_us()?)
    }

    /// This round's p99 in ms, off and on.
    fn p99_ms(&self) -> Option<(f64, f64)> {
        let p99 = |side: &Side| {
            side.measurement
                .as_ref()
                .map(|m| m.percentile(99.0).as_secs_f64() * 1e3)
        };
        Some((p99(&self.off)?, p99(&self.on)?))
    }
}

/// The rounds measured at one concurrency level.
struct Level {
    concurrency: usize,
    rounds: Vec<Sides>,
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
    levels: &[Level],
    evidence: &str,
) -> anyhow::Result<()> {
    let headline = headline(levels);
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
        (
            "Cost of observability, round by round".to_owned(),
            headline.join("\n\n"),
        ),
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

/// Per level: each round's estimate of what observability costs, and how
/// far the estimates spread. No verdict: a difference smaller than the
/// spread between rounds is noise.
fn headline(levels: &[Level]) -> Vec<String> {
    let mut lines = Vec::new();
    for level in levels {
        let costs: Vec<f64> = level
            .rounds
            .iter()
            .filter_map(|round| round.throughput_cost().map(|cost| cost * 100.0))
            .collect();
        let cpu: Vec<f64> = level.rounds.iter().filter_map(Sides::cpu_cost_us).collect();
        let p99: Vec<String> = level
            .rounds
            .iter()
            .filter_map(Sides::p99_ms)
            .map(|(off, on)| format!("{off:.1}/{on:.1} ms"))
            .collect();
        let mut line = format!(
            "at concurrency {}, {} rounds of (off, on, on, off):\n- throughput cost of observability per round: {} ({})\n- p99 per round, off/on: {}",
            level.concurrency,
            level.rounds.len(),
            list(&costs, |cost| format!("{cost:+.1}%")),
            spread(&costs, 1, "%"),
            p99.join(", "),
        );
        if !cpu.is_empty() {
            line.push_str(&format!(
                "\n- CPU per request per round, on minus off (whole process): {} ({})",
                list(&cpu, |us| format!("{us:+.0} µs")),
                spread(&cpu, 0, " µs"),
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

/// "median m, from lo to hi" for a handful of values, with `decimals`.
fn spread(values: &[f64], decimals: usize, unit: &str) -> String {
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
        "median {median:+.decimals$}{unit}, from {low:+.decimals$}{unit} to {high:+.decimals$}{unit}"
    )
}
