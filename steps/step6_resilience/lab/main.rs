//! Step 6's capstone lab: the resilient fan-out across a matrix of failures.
//!
//! Concurrency (5, 50, 500) × upstream profile (healthy; rare 1 s stalls;
//! 20 % failures; reviews dead) × resilience (off; on = breaker + hedge), in
//! a closed loop, then an open loop at fixed arrival rates for the stalling
//! profile. It prints the table, writes two knee plots and a report, and
//! checks two classic results against this code:
//!
//! * *The Tail at Scale*: with rare stalls, hedging at about the p95 cuts
//!   the aggregate p99 by at least 5× for at most 10 % extra upstream calls;
//! * *the breaker*: with reviews dead, calls to it drop by at least 90 % once
//!   the breaker is open, and the p99 stays at or under 200 ms, with the
//!   pages served partial.
//!
//! Run it with `cargo xtask lab step6 --solution` (or without `--solution`
//! for your own code); always optimized (`.cargo/lab.toml`). `--quick` takes under a minute.

mod cell;
mod findings;
mod matrix;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use fake_upstreams::fast::FastUpstream;
use load_lab::report::{self, Row};
use load_lab::{Load, Plan};

use crate::cell::{Tally, Upstreams, run_cell};
use crate::matrix::{Mode, Profile};

/// Step 6's capstone lab: breakers, hedging and partial responses under failure.
#[derive(Debug, Parser)]
struct Args {
    /// Folder for the report, the plots and the tables.
    #[arg(long, default_value = "lab-results")]
    out: PathBuf,
    /// Closed-loop concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "5,50,500")]
    concurrency: Vec<usize>,
    /// Open-loop arrival rates (pages per second) for the stalling profile.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,4000,6000")]
    rates: Vec<f64>,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up before each window, in seconds (the dead-upstream cells warm
    /// up until their breaker has seen enough timeouts to open: as many
    /// deadlines as it takes, plus half a second).
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// The page's deadline, in milliseconds. Generous on purpose: the
    /// stalls (1 s) show in full, so what cuts them is the mechanism under
    /// test, not the timeout.
    #[arg(long, default_value_t = 2000)]
    deadline_ms: u64,
    /// Concurrency 50 only, open loop at 500 and 1000/s, 1.5 s windows: a
    /// quick look in under a minute, not a result to quote.
    #[arg(long)]
    quick: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.concurrency = vec![50];
        args.rates = vec![500.0, 1000.0];
        args.seconds = 1.5;
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build, so its numbers mean little; `cargo xtask lab step6` builds it optimized"
        );
    }
    let machine = load_lab::machine::Machine::detect();
    let window = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup_seconds);
    let deadline = Duration::from_millis(args.deadline_ms);
    // With a dead upstream, the breaker opens once `failure_threshold`
    // calls have timed out. A closed loop at concurrency c sends them in
    // waves of c, each taking the deadline, so the warm-up lasts that many
    // waves plus half a second: the measured window starts once the breaker
    // is open, which is what the reproduction is about.
    let dead_warmup = |concurrency: usize| {
        let threshold = matrix::BREAKER.failure_threshold as usize;
        let waves = u32::try_from(threshold.div_ceil(concurrency.max(1))).unwrap_or(u32::MAX);
        warmup.max(deadline * waves + Duration::from_millis(500))
    };
    println!("step 6 lab on {machine}");
    println!(
        "upstreams: log-normal, median 20 ms; page deadline {deadline:?}; windows: {warmup:?} warm-up (longer with a dead upstream, until its breaker has opened) + {window:?}"
    );
    println!(
        "resilience on: breaker {:?}; hedge {:?}",
        matrix::BREAKER,
        matrix::HEDGE
    );

    let upstreams = Upstreams {
        fakes: [
            FastUpstream::start(Default::default()).await?,
            FastUpstream::start(Default::default()).await?,
            FastUpstream::start(Default::default()).await?,
        ],
    };
    // The same settings as the load generator's client: no proxy, an
    // unbounded pool, HTTP/1. Its own timeout is only a backstop; the
    // page's deadline ends calls first.
    let client = load_lab::load_client(Duration::from_secs(10));

    // The plan: every closed-loop cell, then the open-loop cells.
    let mut cells: Vec<(Profile, Mode, Load)> = Vec::new();
    for &concurrency in &args.concurrency {
        for profile in Profile::ALL {
            for mode in Mode::ALL {
                cells.push((profile, mode, Load::Closed { concurrency }));
            }
        }
    }
    for &rate_per_sec in &args.rates {
        for mode in Mode::ALL {
            cells.push((
                Profile::Stalls,
                mode,
                Load::Open {
                    rate_per_sec,
                    max_outstanding: 10_000,
                },
            ));
        }
    }
    let warmup_of = |profile: Profile, load: Load| match (profile, load) {
        (Profile::ReviewsDead, Load::Closed { concurrency }) => dead_warmup(concurrency),
        _ => warmup,
    };
    let total: Duration = cells
        .iter()
        .map(|&(profile, _, load)| warmup_of(profile, load) + window)
        .sum();
    let progress = load_lab::progress_bar(total, "step 6");

    let mut results: Vec<(Profile, Mode, Row, Tally)> = Vec::new();
    for (profile, mode, load) in cells {
        for (fake, behaviour) in upstreams.fakes.iter().zip(profile.behaviours()) {
            fake.set_behaviour(behaviour);
        }
        let scenario = format!("{}, resilience {}", profile.name(), mode.name());
        progress.set_message(format!("{scenario}, {load}"));
        let plan = Plan {
            load,
            warmup: warmup_of(profile, load),
            measure: window,
        };
        let (row, tally) = run_cell(
            &upstreams,
            &client,
            mode.resilience(),
            deadline,
            &plan,
            &progress,
            scenario,
        )
        .await?;
        results.push((profile, mode, row, tally));
    }
    progress.finish_and_clear();

    save(&args, &machine, deadline, &results)
}

/// Prints the tables and findings, and writes the report and plots.
fn save(
    args: &Args,
    machine: &load_lab::machine::Machine,
    deadline: Duration,
    results: &[(Profile, Mode, Row, Tally)],
) -> anyhow::Result<()> {
    let is_closed = |row: &Row| matches!(row.measurement.load, Load::Closed { .. });
    let closed: Vec<Row> = results
        .iter()
        .filter(|(_, _, row, _)| is_closed(row))
        .map(|(_, _, row, _)| row.clone())
        .collect();
    let open: Vec<Row> = results
        .iter()
        .filter(|(_, _, row, _)| !is_closed(row))
        .map(|(_, _, row, _)| row.clone())
        .collect();
    let findings = findings::findings(results);

    println!();
    println!("closed loop:\n{}", report::text_table(&closed));
    if !open.is_empty() {
        println!("open loop (1% 1s stalls):\n{}", report::text_table(&open));
    }
    for line in &findings {
        println!("{line}");
    }

    let results_dir = report::ResultsDir::create(&args.out, "step6")?;
    let concurrency_plot = results_dir.file("knee-concurrency.svg");
    report::plot_svg(
        &concurrency_plot,
        "Step 6: p99 against concurrency (closed loop)",
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
        "Step 6: latency against offered rate (open loop, 1% 1s stalls)",
        "offered rate (pages/s)",
        "latency (ms)",
        true,
        &rate_series,
    )?;

    let setup = format!(
        "Three fake upstreams (log-normal latency, median 20 ms, σ 0.25), called directly by \
         the load generator through `fetch_product_page` (no HTTP server in front). Page \
         deadline {deadline:?}. Resilience on: breaker {:?}; hedge {:?}. Upstream counts \
         cover the whole cell, warm-up included.",
        matrix::BREAKER,
        matrix::HEDGE
    );
    let mut sections = vec![
        ("Setup".to_owned(), setup),
        (
            "Closed loop: the matrix".to_owned(),
            report::markdown_table(&closed),
        ),
    ];
    if !open.is_empty() {
        sections.push((
            "Open loop: 1% 1s stalls".to_owned(),
            report::markdown_table(&open),
        ));
    }
    sections.push(("Reproductions".to_owned(), findings.join("\n\n")));
    sections.push((
        "Plots".to_owned(),
        "![p99 against concurrency](knee-concurrency.svg)\n\n![latency against offered rate](knee-rate.svg)"
            .to_owned(),
    ));
    let report_path = results_dir.file("report.md");
    report::write_markdown_report(
        &report_path,
        "Step 6 lab: degrade, don't collapse",
        machine,
        &sections,
    )?;

    println!();
    println!("report: {}", report_path.display());
    println!("plots:  {}", concurrency_plot.display());
    println!("        {}", rate_plot.display());
    Ok(())
}
