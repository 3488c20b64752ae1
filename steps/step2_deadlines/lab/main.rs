//! Step 2's lab: what timeouts and jittered retries do to the tail, and why
//! the jitter matters.
//!
//! Two experiments:
//!
//! 1. **The tail** (`tail.rs`, real time, loopback): three fake upstreams at
//!    ~20 ms with 2% of calls stalled for 1 s, driven at concurrency 50
//!    through your `fetch_product`, with no timeouts, with timeouts only, and
//!    with timeouts plus jittered retries: p50/p95/p99, timeouts, and the
//!    upstream calls each request cost.
//! 2. **Contention** (`contention.rs`, paused time, in process): many clients
//!    retrying optimistic writes to one resource, with exponential backoff
//!    with and without jitter: total calls and time to finish, after
//!    Brooker's "Exponential Backoff and Jitter".
//!
//! Run it with `cargo xtask lab step2` (your code) or
//! `cargo xtask lab step2 --solution` (the reference); always optimized (`.cargo/lab.toml`).

mod contention;
mod tail;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fake_upstreams::fast::{Behaviour, FastUpstream, Latency};
use load_lab::report::{self, Row, Series};
use load_lab::{Load, Measurement};
use step2_deadlines::{RetryConfig, RetryPolicy, UpstreamUrls};

/// Step 2's lab: timeouts and jittered retries against a rare stall, and
/// backoff with and without jitter under contention.
#[derive(Debug, Parser)]
struct Args {
    /// Folder for the report, the plots and the tables.
    #[arg(long, default_value = "lab-results")]
    out: PathBuf,
    /// Closed-loop concurrency of the tail experiment.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up before each window, in seconds (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup_seconds: f64,
    /// Shorter windows (3 s, 1 s warm-up): a quick look, not a result to quote.
    #[arg(long)]
    quick: bool,
    /// Each fake upstream's latency, in the fake's text form: `fixed:20ms`,
    /// `lognormal:20ms,0.3`, `stalls:<base>,<probability>,<stall>`.
    #[arg(long, default_value = "stalls:20ms,0.02,1s")]
    upstream_latency: Latency,
    /// The request's budget: its deadline is this long after it starts.
    #[arg(long, default_value_t = 200)]
    budget_ms: u64,
    /// The longest one attempt may take before it is abandoned and retried.
    #[arg(long, default_value_t = 70)]
    attempt_timeout_ms: u64,
    /// Time kept back from the deadline for the answer.
    #[arg(long, default_value_t = 10)]
    margin_ms: u64,
    /// The least time worth giving an attempt.
    #[arg(long, default_value_t = 20)]
    min_attempt_ms: u64,
    /// Attempts per upstream call, the first included.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// The backoff range before the first retry (it doubles each retry).
    #[arg(long, default_value_t = 10)]
    base_delay_ms: u64,
    /// The cap on the backoff range.
    #[arg(long, default_value_t = 40)]
    max_delay_ms: u64,
    /// Client counts for the contention experiment.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,100,200")]
    contention_clients: Vec<usize>,
    /// Skip the tail experiment (real time) and run only the contention one.
    #[arg(long)]
    contention_only: bool,
}

/// The contention experiment's backoff: 10 ms doubling to a 1 s cap, and a
/// read-modify-write of 5 ms.
const CONTENTION_BASE: Duration = Duration::from_millis(10);
const CONTENTION_CAP: Duration = Duration::from_secs(1);
const CONTENTION_WORK: Duration = Duration::from_millis(5);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build, so its numbers mean little; `cargo xtask lab step2` builds it optimized"
        );
    }
    let ms = Duration::from_millis;
    let policy = RetryPolicy::new(RetryConfig {
        budget: ms(args.budget_ms),
        attempt_timeout: ms(args.attempt_timeout_ms),
        margin: ms(args.margin_ms),
        min_attempt: ms(args.min_attempt_ms),
        max_attempts: args.max_attempts,
        base_delay: ms(args.base_delay_ms),
        max_delay: ms(args.max_delay_ms),
    })
    .context("the retry options do not fit together")?;
    let machine = load_lab::machine::Machine::detect();
    println!("step 2 lab on {machine}");

    let tail = if args.contention_only {
        None
    } else {
        // A multi-threaded runtime for the real-time experiment, as a server
        // would have. The contention experiment builds its own, paused one.
        let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
        Some(runtime.block_on(run_tail(&args, &policy))?)
    };

    let contention_policy = RetryPolicy::new(RetryConfig {
        budget: Duration::from_secs(3600),
        attempt_timeout: Duration::from_secs(60),
        margin: Duration::ZERO,
        min_attempt: Duration::ZERO,
        max_attempts: u32::MAX,
        base_delay: CONTENTION_BASE,
        max_delay: CONTENTION_CAP,
    })?;
    let contention = contention::run_all(
        &args.contention_clients,
        &contention_policy,
        CONTENTION_WORK,
    )?;

    print_and_save(&args, &machine, &policy, tail.as_ref(), &contention)
}

/// What the tail experiment hands to the report.
struct TailReport {
    rows: Vec<Row>,
    results: Vec<tail::TailResult>,
    setup: String,
}

async fn run_tail(args: &Args, policy: &RetryPolicy) -> anyhow::Result<TailReport> {
    let (warmup, window) = if args.quick {
        (Duration::from_secs(1), Duration::from_secs(3))
    } else {
        (
            Duration::from_secs_f64(args.warmup_seconds),
            Duration::from_secs_f64(args.seconds),
        )
    };
    let config = policy.config();
    let setup = format!(
        "upstreams: 3 fakes, latency `{}`; closed loop at c={}; windows: {warmup:?} warm-up + {window:?}; budget {:?}, attempt timeout {:?}, margin {:?}, min attempt {:?}, {} attempts, backoff {:?} doubling to {:?}",
        args.upstream_latency,
        args.concurrency,
        config.budget,
        config.attempt_timeout,
        config.margin,
        config.min_attempt,
        config.max_attempts,
        config.base_delay,
        config.max_delay
    );
    println!("{setup}");

    // Three separate fakes, one per service, as in production: a stall on
    // one does not slow the others.
    let behaviour = Behaviour::default().with_latency(args.upstream_latency.clone());
    let fakes = [
        FastUpstream::start(behaviour.clone()).await?,
        FastUpstream::start(behaviour.clone()).await?,
        FastUpstream::start(behaviour).await?,
    ];
    let urls = UpstreamUrls {
        inventory: fakes[0].base_url(),
        pricing: fakes[1].base_url(),
        reviews: fakes[2].base_url(),
    };
    let upstreams = tail::Upstreams { fakes, urls };
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true)
        // A safety net only: every scenario's own budget is far shorter.
        .timeout(Duration::from_secs(30))
        .build()?;

    let scenarios = tail::scenarios(policy)?;
    let load = Load::Closed {
        concurrency: args.concurrency,
    };
    let total = (warmup + window) * u32::try_from(scenarios.len())?;
    let progress = load_lab::progress_bar(total, "step 2");
    let mut results = Vec::new();
    for scenario in &scenarios {
        results.push(
            tail::run_scenario(
                scenario, &upstreams, &client, load, warmup, window, &progress,
            )
            .await,
        );
    }
    progress.finish_and_clear();
    let rows = results.iter().map(|result| result.row.clone()).collect();
    Ok(TailReport {
        rows,
        results,
        setup,
    })
}

/// The percentiles on the tail plot, as "nines": p50, p90, p95, p99, p99.9.
const PLOT_PERCENTILES: [f64; 5] = [50.0, 90.0, 95.0, 99.0, 99.9];

/// Prints the tables and headlines, and writes the report and the plots.
fn print_and_save(
    args: &Args,
    machine: &load_lab::machine::Machine,
    policy: &RetryPolicy,
    tail: Option<&TailReport>,
    contention: &[contention::ContentionResult],
) -> anyhow::Result<()> {
    let results = report::ResultsDir::create(&args.out, "step2")?;
    let mut sections = Vec::new();

    if let Some(tail) = tail {
        let headline = tail_headline(&tail.results, policy);
        println!();
        println!("{}", report::text_table(&tail.rows));
        for line in &headline {
            println!("{line}");
        }

        let series: Vec<Series> = tail
            .rows
            .iter()
            .map(|row| Series {
                label: row.scenario.clone(),
                points: PLOT_PERCENTILES
                    .iter()
                    .map(|&q| (nines(q), millis(&row.measurement, q)))
                    .collect(),
            })
            .collect();
        report::plot_svg(
            &results.file("tail-latency.svg"),
            "Step 2: latency of successful requests by percentile",
            "percentile, as nines (0.3 = p50, 1 = p90, 2 = p99, 3 = p99.9)",
            "latency (ms)",
            false,
            &series,
        )?;
        sections.push(("Setup".to_owned(), tail.setup.clone()));
        sections.push((
            "The tail: no timeouts, timeouts, timeouts + jittered retries".to_owned(),
            report::markdown_table(&tail.rows),
        ));
        sections.push(("Headline".to_owned(), headline.join("\n\n")));
        sections.push((
            "Plot: the tail".to_owned(),
            "![latency by percentile, per scenario](tail-latency.svg)".to_owned(),
        ));
    }

    let contention_table = contention::table(contention);
    println!();
    println!(
        "contention: clients each make one optimistic write (read, {CONTENTION_WORK:?} of work, compare-and-swap), backing off {CONTENTION_BASE:?} doubling to {CONTENTION_CAP:?}; paused clock"
    );
    println!("{contention_table}");
    let contention_headline = contention::headline(contention);
    if let Some(line) = &contention_headline {
        println!("{line}");
    }
    let series: Vec<Series> = [
        contention::Strategy::NoJitter,
        contention::Strategy::FullJitter,
    ]
    .into_iter()
    .map(|strategy| Series {
        label: strategy.name().to_owned(),
        points: contention
            .iter()
            .filter(|result| result.strategy == strategy)
            .map(|result| (result.clients as f64, result.calls as f64))
            .collect(),
    })
    .collect();
    report::plot_svg(
        &results.file("contention-calls.svg"),
        "Step 2: total calls until every client has written once",
        "contending clients",
        "total calls",
        true,
        &series,
    )?;
    sections.push((
        "Contention: backoff without and with jitter (paused clock)".to_owned(),
        format!(
            "Each client makes one optimistic write (read, {CONTENTION_WORK:?} of work, compare-and-swap) and backs off {CONTENTION_BASE:?} doubling to {CONTENTION_CAP:?} after a conflict.\n\n{contention_table}\n{}",
            contention_headline.unwrap_or_default()
        ),
    ));
    sections.push((
        "Plot: contention".to_owned(),
        "![total calls against clients](contention-calls.svg)".to_owned(),
    ));

    let report_path = results.file("report.md");
    report::write_markdown_report(
        &report_path,
        "Step 2 lab: deadlines and jittered retries",
        machine,
        &sections,
    )?;
    println!();
    println!("report: {}", report_path.display());
    println!("plots:  {}", results.path.display());
    Ok(())
}

/// The lines the chapter quotes, with the floors the reference solution is
/// expected to meet (reported, never enforced: numbers belong to a machine).
fn tail_headline(results: &[tail::TailResult], policy: &RetryPolicy) -> Vec<String> {
    let [unguarded, timeouts_only, retrying] = results else {
        return Vec::new();
    };
    let p99 = |result: &tail::TailResult| result.row.measurement.percentile(99.0);
    let budget = policy.budget();
    let extra = (retrying.calls_per_request / unguarded.calls_per_request.max(f64::MIN_POSITIVE)
        - 1.0)
        * 100.0;
    let mark = |ok: bool| if ok { "meets" } else { "MISSES" };
    vec![
        format!(
            "no timeouts: p99 {:.1} ms; timeouts only: p99 {:.1} ms but {} requests timed out; timeouts + retries: p99 {:.1} ms, {} timed out",
            ms(p99(unguarded)),
            ms(p99(timeouts_only)),
            timeouts_only.timeouts,
            ms(p99(retrying)),
            retrying.timeouts
        ),
        format!(
            "floor: timeouts + retries p99 {:.1} ms ≤ the {:.0} ms budget: {}",
            ms(p99(retrying)),
            ms(budget),
            mark(p99(retrying) <= budget)
        ),
        format!(
            "floor: retries cost {extra:+.1}% upstream calls ({:.3} against {:.3} per request) ≤ +10%: {}",
            retrying.calls_per_request,
            unguarded.calls_per_request,
            mark(extra <= 10.0)
        ),
    ]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn millis(measurement: &Measurement, percentile: f64) -> f64 {
    ms(measurement.percentile(percentile))
}

/// p90 → 1, p99 → 2, p99.9 → 3: the usual x axis of a latency-by-percentile plot.
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).log10()
}
