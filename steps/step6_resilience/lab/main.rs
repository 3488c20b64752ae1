//! Step 6's capstone lab: the product page served over HTTP, across a
//! matrix of failures, and past the knee.
//!
//! The edge (`step6_resilience::edge`, as `product-page` runs it) serves on
//! a tokio runtime of its own, in this process, in front of three fake
//! upstreams on a second runtime of their own; the load generator, on the
//! lab's runtime, sends `GET /products/42` over loopback (`server.rs` says
//! why three runtimes, and what they still share). It runs, in order:
//!
//! 1. **the matrix**, closed loop: concurrency (5, 50, 500) × upstream
//!    profile (healthy; 1 % 1 s stalls; 20 % failures; reviews dead) ×
//!    resilience (off: no mechanism, admission admits everything; on: the
//!    service's mechanisms, and admission that sheds as the binary's does);
//! 2. **the floor against the minimal fan-out**: step 4's `minimal.rs`
//!    (axum, reqwest, `try_join!`) and the service with everything on, at
//!    concurrency 500 on healthy upstreams, in mirrored rounds, with the
//!    service with resilience off beside them to split the gap;
//! 3. **the sweep**, open loop at rising rates on healthy upstreams,
//!    resilience off and on, to find the knee: the rate where the p99 with
//!    resilience off first exceeds 200 ms;
//! 4. **past the knee**: off and on again at 1.5× that rate.
//!
//! After each edge cell it reads the service's own `/metrics` (the request
//! histogram, the requests shed and the heartbeat's lag, scraped when the
//! window opens and after it closes) and prints that p99 beside the
//! generator's, with how far behind each runtime ran (`lag.rs`). It judges
//! the floors (`findings.rs`),
//! draws the slowest sampled requests as waterfalls from the run's spans
//! (`waterfall.rs`), plots the two knees, and writes a report.
//!
//! Run it with `cargo xtask lab step6 --solution` (or without `--solution`
//! for your own code); always optimized (`.cargo/lab.toml`).

mod cell;
mod cpu;
mod files;
mod findings;
mod lag;
mod matrix;
#[path = "../../step4_service/lab/minimal.rs"]
mod minimal;
mod scrape;
mod server;
mod waterfall;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use load_lab::report::{self, Row};
use load_lab::{Load, Plan};
use step6_resilience::edge::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_RUNTIME_LAG};
use step6_resilience::telemetry::json_logs;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::cell::{
    Cell, Heartbeats, Part, Server, Setup, Upstreams, run_edge_cell, run_minimal_cell,
};
use crate::findings::{FLOOR_CONCURRENCY, P99_GOAL_MS, PAST_KNEE};
use crate::lag::{Heartbeat, Lag};
use crate::matrix::{Mode, Profile};
use crate::scrape::bound_ms;
use crate::server::ServerRuntime;
use crate::waterfall::Waterfall;

/// Step 6's capstone lab: the page over HTTP under failures and past the
/// knee, with the service's /metrics beside the load generator's numbers.
///
/// Three tokio runtimes in one process: the edge's, the fakes' and the
/// generator's (this one), each with a worker per core. They are separate
/// queues, not separate CPUs: all of them share this machine's cores, and
/// the OS gives each busy thread its fair share. Each cell reports how far
/// behind each runtime ran, so a slow number can be traced to its owner.
///
/// The full run takes about 6 minutes of measuring (more on a busy
/// machine: every cell also drains); `--quick` about one.
#[derive(Debug, Parser)]
struct Args {
    /// Folder for the report, the plots and the tables.
    #[arg(long, default_value = "lab-results")]
    out: PathBuf,
    /// Closed-loop concurrency levels of the matrix.
    #[arg(long, value_delimiter = ',', default_value = "5,50,500")]
    concurrency: Vec<usize>,
    /// Open-loop arrival rates (pages per second) of the sweep, healthy
    /// upstreams, in rising order. The sweep stops after the first rate
    /// where the p99 with resilience off exceeds 200 ms (the knee), and the
    /// overload cells run at 1.5× that rate, so the steps are finest where
    /// a 2-core machine's knee lies: a coarse step there would put the
    /// "knee" (and 1.5× it) well past the real one.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "500,1000,2000,3000,4000,5000,6000,8000"
    )]
    rates: Vec<f64>,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up before each window, in seconds (the dead-upstream cells warm
    /// up until their breaker has seen enough timeouts to open).
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// The edge's request budget (the page's deadline), in milliseconds.
    /// Generous on purpose: the 1 s stalls show in full, so what cuts them
    /// is the mechanism under test, not the timeout.
    #[arg(long, default_value_t = 2000)]
    deadline_ms: u64,
    /// The edge's in-flight limit with resilience on (off admits all), and
    /// the size of each bulkhead.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// With resilience on, admission sheds a growing share of the pages
    /// while the edge's runtime runs more than this far behind, in
    /// milliseconds (off never sheds).
    #[arg(long, default_value_t = DEFAULT_MAX_RUNTIME_LAG.as_millis() as u64)]
    max_runtime_lag_ms: u64,
    /// Rounds of the floor against the minimal fan-out; each is minimal,
    /// everything on, resilience off, resilience off, everything on,
    /// minimal.
    #[arg(long, default_value_t = 2)]
    floor_rounds: usize,
    /// Concurrency 50 only, rates 2000 to 6000 pages/s (the knee of a
    /// 2-core machine is in there), one floor round (minimal, everything
    /// on, resilience off), 1.5 s windows: a look in about a minute, not a
    /// result to quote.
    #[arg(long)]
    quick: bool,
}

/// Every cell the run will measure, in order.
struct Schedule {
    matrix: Vec<(Profile, Mode, usize)>,
    floor: Vec<Server>,
    /// Rates, each measured off then on, until the knee.
    sweep: Vec<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.concurrency = vec![50];
        args.rates = vec![2000.0, 4000.0, 5000.0, 6000.0];
        args.seconds = 1.5;
        args.floor_rounds = 1;
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build, so its numbers mean little; `cargo xtask lab step6` builds it optimized"
        );
    }
    let waterfall = Waterfall::new();
    install_tracing(&waterfall)?;

    let machine = load_lab::machine::Machine::detect();
    let window = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup_seconds);
    let budget = Duration::from_millis(args.deadline_ms);
    let max_runtime_lag = Duration::from_millis(args.max_runtime_lag_ms);
    println!("step 6 lab on {machine}");
    println!(
        "over HTTP: the edge, the fakes and the generator on three runtimes of their own, sharing this machine's cores; upstreams log-normal, median 20 ms; request budget {budget:?}; windows {warmup:?} warm-up + {window:?}"
    );
    println!(
        "resilience on: {:?}; admission sheds past {} in flight or {max_runtime_lag:?} of runtime lag (off admits everything)",
        Mode::On.resilience(args.max_in_flight, max_runtime_lag),
        args.max_in_flight
    );

    let fakes_runtime = ServerRuntime::start("fake-worker")?;
    let upstreams = Upstreams::start(&fakes_runtime).await?;
    let servers = ServerRuntime::start("edge-worker")?;
    let heartbeats = Heartbeats {
        generator: Heartbeat::new(),
        fakes: Heartbeat::new(),
    };
    tokio::spawn(heartbeats.generator.clone().beat());
    fakes_runtime.spawn(heartbeats.fakes.clone().beat());
    let open_files_limit = files::open_files_limit();
    let max_outstanding = files::max_outstanding(open_files_limit);
    let open_files = files::Watch::default();
    tokio::spawn(open_files.clone().count());
    if let Some(limit) = open_files_limit {
        println!(
            "open files: this process may hold {limit} (`ulimit -n`), and every loopback connection takes two; the open loop keeps at most {max_outstanding} requests outstanding, so that they fit (see lab/files.rs)"
        );
    }
    // The generator's client: no proxy, an unbounded pool, HTTP/1. Its
    // timeout is a backstop; the edge's deadline ends pages first.
    let client = load_lab::load_client(Duration::from_secs(10));
    let scraper = load_lab::load_client(Duration::from_secs(30));
    let setup = Setup {
        upstreams: &upstreams,
        servers: &servers,
        client: &client,
        scraper: &scraper,
        budget,
        max_in_flight: args.max_in_flight,
        max_runtime_lag,
        heartbeats: &heartbeats,
        open_files: &open_files,
        open_files_limit,
        waterfall: &waterfall,
    };

    cell::check_page_serves(&setup).await?;
    let schedule = schedule(&args);
    // With a dead upstream, the breaker opens once `failure_threshold`
    // calls have failed; a closed loop at concurrency c sends them in waves
    // of c, each waiting out the deadline, so the warm-up lasts that many
    // waves plus half a second.
    let dead_warmup = |concurrency: usize| {
        let threshold = matrix::BREAKER.failure_threshold as usize;
        let waves = u32::try_from(threshold.div_ceil(concurrency.max(1))).unwrap_or(u32::MAX);
        warmup.max(budget * waves + Duration::from_millis(500))
    };
    let warmup_of = |profile: Profile, concurrency: usize| match profile {
        Profile::ReviewsDead => dead_warmup(concurrency),
        _ => warmup,
    };
    let cells_planned = schedule.matrix.len() + schedule.floor.len() + 2 * schedule.sweep.len() + 2;
    let total: Duration = schedule
        .matrix
        .iter()
        .map(|&(profile, _, concurrency)| warmup_of(profile, concurrency) + window)
        .sum::<Duration>()
        + (warmup + window) * u32::try_from(cells_planned - schedule.matrix.len())?;
    let progress = load_lab::progress_bar(total, "step 6");
    let traced_concurrency = args
        .concurrency
        .iter()
        .copied()
        .find(|&c| c == 50)
        .or_else(|| args.concurrency.first().copied());

    let mut cells: Vec<Cell> = Vec::new();
    for &(profile, mode, concurrency) in &schedule.matrix {
        let load = Load::Closed { concurrency };
        let scenario = format!("{}, resilience {}, {load}", profile.name(), mode.name());
        progress.set_message(scenario.clone());
        let plan = Plan {
            load,
            warmup: warmup_of(profile, concurrency),
            measure: window,
        };
        let trace_as = (Some(concurrency) == traced_concurrency).then_some(scenario);
        cells.push(
            run_edge_cell(
                &setup,
                profile,
                mode,
                Part::Matrix,
                &plan,
                &progress,
                trace_as,
            )
            .await?,
        );
    }
    let floor_plan = Plan {
        load: Load::Closed {
            concurrency: FLOOR_CONCURRENCY,
        },
        warmup,
        measure: window,
    };
    for &server in &schedule.floor {
        progress.set_message(format!("floor: {}, c={FLOOR_CONCURRENCY}", server.name()));
        cells.push(match server {
            Server::Minimal => {
                run_minimal_cell(
                    &setup,
                    Profile::Healthy,
                    Part::Floor,
                    &floor_plan,
                    &progress,
                )
                .await?
            }
            Server::Edge(mode) => {
                run_edge_cell(
                    &setup,
                    Profile::Healthy,
                    mode,
                    Part::Floor,
                    &floor_plan,
                    &progress,
                    None,
                )
                .await?
            }
        });
    }
    let open_plan = |rate_per_sec: f64| Plan {
        load: Load::Open {
            rate_per_sec,
            max_outstanding,
        },
        warmup,
        measure: window,
    };
    for &rate in &schedule.sweep {
        for mode in Mode::ALL {
            progress.set_message(format!(
                "sweep: healthy, resilience {}, {rate}/s",
                mode.name()
            ));
            let plan = open_plan(rate);
            cells.push(
                run_edge_cell(
                    &setup,
                    Profile::Healthy,
                    mode,
                    Part::Sweep,
                    &plan,
                    &progress,
                    None,
                )
                .await?,
            );
        }
        // Past the knee, higher rates only overload the machine more.
        if findings::knee_rate(&cells).is_some() {
            break;
        }
    }
    let knee = findings::knee_rate(&cells);
    if let Some(knee) = knee {
        let rate = (knee * PAST_KNEE).round();
        for mode in Mode::ALL {
            progress.set_message(format!(
                "past the knee: resilience {}, {rate}/s",
                mode.name()
            ));
            let plan = open_plan(rate);
            let trace_as =
                (mode == Mode::On).then(|| format!("past the knee, resilience on, {rate} req/s"));
            cells.push(
                run_edge_cell(
                    &setup,
                    Profile::Healthy,
                    mode,
                    Part::PastKnee,
                    &plan,
                    &progress,
                    trace_as,
                )
                .await?,
            );
        }
    }
    progress.finish_and_clear();
    drop(servers);
    drop(upstreams);
    drop(fakes_runtime);

    save(&args, &machine, budget, &cells, knee, &waterfall)
}

/// JSON logs as the binary writes them (into a sink that discards them: the
/// lab measures producing them, not a terminal), and the waterfall's layer
/// with a filter of its own.
fn install_tracing(waterfall: &Waterfall) -> anyhow::Result<()> {
    tracing_subscriber::registry()
        .with(json_logs(std::io::sink).with_filter(EnvFilter::new("info")))
        .with(waterfall.layer().with_filter(waterfall.filter()))
        .try_init()?;
    Ok(())
}

fn schedule(args: &Args) -> Schedule {
    let mut matrix = Vec::new();
    for &concurrency in &args.concurrency {
        for profile in Profile::ALL {
            for mode in Mode::ALL {
                matrix.push((profile, mode, concurrency));
            }
        }
    }
    // Mirrored rounds, so drift within a round favours no side. The
    // service with resilience off is there to split the gap: the same
    // edge, observability and page as on, without the mechanisms, and
    // with an admission that admits everything.
    let mut floor = Vec::new();
    let round = [
        Server::Minimal,
        Server::Edge(Mode::On),
        Server::Edge(Mode::Off),
    ];
    for _ in 0..args.floor_rounds.max(1) {
        floor.extend(round);
        if !args.quick {
            floor.extend(round.into_iter().rev());
        }
    }
    Schedule {
        matrix,
        floor,
        sweep: args.rates.clone(),
    }
}

/// One row per edge cell: the generator's p99 beside the one `/metrics`
/// gives, the shed answers' p99 both ways, how far behind each runtime
/// ran, and the cores each used (`cpu.rs`), as a markdown table.
fn metrics_table(cells: &[Cell]) -> String {
    let mut out = String::from(
        "| part | scenario | load | generator p99 ms | /metrics p99 ms (interpolated) | its bucket ms | pages: generator / edge | shed: generator (whole cell) / edge (window) | shed p99 ms, generator | shed p99, /metrics | lag p99 ms: edge (bucket) | lag p99 / max ms: fakes | lag p99 / max ms: generator | open files, peak | window scrape ms | cores used: edge / fakes / lab |\n| :--- | :--- | :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for cell in cells {
        let Some(edge) = &cell.edge else { continue };
        let (interpolated, bucket) = match edge.p99 {
            Some(p99) => (format!("{:.1}", p99.interpolated * 1e3), bucket_ms(p99)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let part = match cell.part {
            Part::Matrix => "matrix",
            Part::Floor => "floor",
            Part::Sweep => "sweep",
            Part::PastKnee => "past knee",
        };
        let _ = writeln!(
            out,
            "| {part} | {} | {} | {:.1} | {interpolated} | {bucket} | {} / {:.0} | {} / {:.0} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            cell.row.scenario,
            cell.load(),
            cell.p99_ms(),
            cell.answered(),
            edge.answered,
            cell.tally.shed,
            edge.shed,
            cell.tally
                .shed_p99_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}")),
            edge.shed_p99
                .map_or_else(|| "-".to_owned(), |p99| p99.buckets_ms()),
            edge.lag_p99.map_or_else(|| "-".to_owned(), bucket_ms),
            lag_ms(cell.lags.fakes),
            lag_ms(cell.lags.generator),
            cell.open_files_peak,
            cell::millis(edge.window_scrape),
            cores_used(cell)
        );
    }
    out
}

/// The cores each runtime used over the cell's window: `1.21 / 0.38 / 0.41`.
fn cores_used(cell: &Cell) -> String {
    cell.cores
        .map_or_else(|| "-".to_owned(), |cores| cores.to_string())
}

/// A bucket in milliseconds: `(25, 50]`.
fn bucket_ms(quantile: scrape::BucketQuantile) -> String {
    format!(
        "({}, {}]",
        bound_ms(quantile.lower),
        bound_ms(quantile.upper)
    )
}

/// `p99 / max`, in milliseconds.
fn lag_ms(lag: Lag) -> String {
    format!("{:.1} / {:.1}", lag.p99_ms, lag.max_ms)
}

/// Prints the tables and floors, and writes the report, plots and waterfalls.
fn save(
    args: &Args,
    machine: &load_lab::machine::Machine,
    budget: Duration,
    cells: &[Cell],
    knee: Option<f64>,
    waterfall: &Waterfall,
) -> anyhow::Result<()> {
    let rows_of = |parts: &[Part]| -> Vec<Row> {
        cells
            .iter()
            .filter(|cell| parts.contains(&cell.part))
            .map(|cell| cell.row.clone())
            .collect()
    };
    let closed = rows_of(&[Part::Matrix]);
    let floor = rows_of(&[Part::Floor]);
    let open = rows_of(&[Part::Sweep, Part::PastKnee]);
    let floors = findings::floors(cells, knee, !args.rates.is_empty());
    let metrics = metrics_table(cells);

    println!();
    println!("closed loop:\n{}", report::text_table(&closed));
    println!(
        "floor, c={FLOOR_CONCURRENCY}, healthy:\n{}",
        report::text_table(&floor)
    );
    if !open.is_empty() {
        println!("open loop, healthy:\n{}", report::text_table(&open));
    }
    println!("the service's /metrics against the generator (answered pages, 2xx):\n{metrics}");
    for line in &floors {
        println!("{line}");
    }

    let results_dir = report::ResultsDir::create(&args.out, "step6")?;
    let concurrency_plot = results_dir.file("knee-concurrency.svg");
    report::plot_svg(
        &concurrency_plot,
        "Step 6 over HTTP: p99 against concurrency (closed loop)",
        "concurrency",
        "p99 latency (ms)",
        true,
        &report::latency_series(&closed, 99.0),
    )?;
    let rate_plot = results_dir.file("knee-rate.svg");
    let mut rate_series = Vec::new();
    for percentile in [50.0, 99.0] {
        for mut one in report::latency_series(&open, percentile) {
            one.label = format!("{} p{percentile}", one.label);
            rate_series.push(one);
        }
    }
    report::plot_svg(
        &rate_plot,
        "Step 6 over HTTP: latency against offered rate (open loop, healthy)",
        "offered rate (pages/s)",
        "latency (ms)",
        true,
        &rate_series,
    )?;

    let mut waterfall_files = Vec::new();
    let mut waterfall_notes = Vec::new();
    for (index, scenario) in waterfall.scenarios().iter().enumerate() {
        let name = format!("waterfall-{:02}-{}.svg", index + 1, slug(&scenario.label));
        let path = results_dir.file(&name);
        std::fs::write(
            &path,
            waterfall::render_svg(
                &format!("Slowest sampled requests: {}", scenario.label),
                scenario,
            ),
        )?;
        waterfall_notes.push(format!(
            "- {}: {} sampled, {} kept, {} with no upstream span under their request span \
             ([{name}]({name}))",
            scenario.label,
            scenario.sampled,
            scenario.requests.len(),
            scenario.without_calls
        ));
        waterfall_files.push(path);
    }

    let max_runtime_lag = Duration::from_millis(args.max_runtime_lag_ms);
    let setup = format!(
        "Over HTTP, in one process, on three tokio runtimes with a worker per core each: the \
         edge (`step6_resilience::edge`, as `product-page` serves it) on one, three fake \
         upstreams (log-normal latency, median 20 ms, σ 0.25) on another, and the load \
         generator on the lab's own. Separate runtimes are separate queues, not separate CPUs: \
         all three share this machine's cores, and under load the OS gives each busy thread its \
         fair share; the last table says how far behind each runtime ran. Request budget \
         {budget:?}. Resilience on: {:?}; admission sheds past {} pages in flight or \
         {max_runtime_lag:?} of runtime lag, as the binary's does. Resilience off: no \
         mechanism, and admission admits everything. A shed client in a closed loop waits out \
         `Retry-After` before its next request. JSON logs are written, into a sink. Upstream counts cover \
         the whole cell, warm-up included, per admitted (not shed) page; `degraded` is a share \
         of the admitted pages too. `/metrics` p99: the request histogram's `2xx` \
         answers on the page route between a scrape when the window opened and one after the \
         last answer, interpolated linearly inside its bucket (as `histogram_quantile` does); \
         the bucket is what the histogram actually knows. The shed answers' p99 from \
         `/metrics`: the `5xx` buckets hold the shed answers and the failed pages together, \
         and the shed counter says how many were shed, so the lab gives the buckets the shed \
         p99 must lie in, whatever the failed pages took (one bucket when nothing failed). \
         Lag: how late a heartbeat that asks to wake every 10 ms woke, on each runtime, over \
         the window (the edge's from its own `/metrics`).",
        Mode::On.resilience(args.max_in_flight, max_runtime_lag),
        args.max_in_flight
    );
    let mut sections = vec![
        ("Setup".to_owned(), setup),
        ("Floors".to_owned(), floors.join("\n\n")),
        (
            "Closed loop: the matrix".to_owned(),
            report::markdown_table(&closed),
        ),
        (
            format!(
                "Closed loop: everything on and resilience off against the minimal fan-out, \
                 c={FLOOR_CONCURRENCY}"
            ),
            report::markdown_table(&floor),
        ),
    ];
    if !open.is_empty() {
        let knee_text = knee.map_or_else(
            || format!("The p99 with resilience off never exceeded {P99_GOAL_MS} ms: no knee in this sweep."),
            |knee| format!("The p99 with resilience off first exceeds {P99_GOAL_MS} ms at {knee} pages/s; the last rows are at {PAST_KNEE}× that."),
        );
        sections.push((
            "Open loop: healthy, past the knee".to_owned(),
            format!("{knee_text}\n\n{}", report::markdown_table(&open)),
        ));
    }
    sections.push(("/metrics against the generator".to_owned(), metrics));
    sections.push((
        "Plots".to_owned(),
        "![p99 against concurrency](knee-concurrency.svg)\n\n![latency against offered rate](knee-rate.svg)"
            .to_owned(),
    ));
    sections.push(("Waterfalls".to_owned(), waterfall_notes.join("\n")));
    let report_path = results_dir.file("report.md");
    report::write_markdown_report(
        &report_path,
        "Step 6 lab: degrade, don't collapse, over HTTP",
        machine,
        &sections,
    )?;

    println!();
    println!("report:     {}", report_path.display());
    println!("plots:      {}", concurrency_plot.display());
    println!("            {}", rate_plot.display());
    for path in &waterfall_files {
        println!("waterfall:  {}", path.display());
    }
    Ok(())
}

/// `1% 1s stalls, resilience on, c=50` → `1-1s-stalls-resilience-on-c-50`.
fn slug(label: &str) -> String {
    let mut slug = String::new();
    for char in label.chars() {
        if char.is_ascii_alphanumeric() {
            slug.push(char.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}
