//! Step 3's lab: 500 clients against upstreams that slow down when overloaded,
//! with no cap, with a cap that queues, with a cap that sheds, and with a
//! worker pool that makes clients wait or sheds them.
//!
//! Each fake upstream answers in `--base-latency-ms` while at most `--knee`
//! requests are in flight; every request in flight beyond the knee adds
//! `--per-request-us` to every answer (`Behaviour::degrading_past`). That is
//! how saturated services behave: queues for threads and connections, lock
//! contention, cache misses, garbage collection. The product fan-out is
//! called directly by a closed loop of `--concurrency` clients, through a
//! [`Bulkhead`](step3_backpressure::Bulkhead) configured per scenario, or
//! handed to a [`WorkerPool`](step3_backpressure::WorkerPool) of `--cap`
//! workers (see `scenario.rs`).
//!
//! Reported per scenario: goodput (successful products per second), latency
//! of successes (p50/p95/p99/max), the upstreams' peak in-flight calls, the
//! number of shed requests and how long shedding took (p99).
//!
//! Run it with `cargo xtask lab step3` (your code) or
//! `cargo xtask lab step3 --solution` (the reference); always optimized (`.cargo/lab.toml`).

mod scenario;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use load_lab::report::{self, Row, Series};
use load_lab::{Load, Plan};
use scenario::{Limit, QUEUE_WAIT, Scenario, ShedLatencies, UNCAPPED, product_pool};
use step3_backpressure::{Bulkhead, UpstreamUrls};
use tokio::time::Instant;

/// Step 3's lab: uncapped vs capped vs capped + shedding vs a worker pool, against degrading upstreams.
#[derive(Debug, Parser)]
struct Args {
    /// Folder for the report, the plot and the tables.
    #[arg(long, default_value = "lab-results")]
    out: PathBuf,
    /// Clients in the closed loop.
    #[arg(long, default_value_t = 500)]
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
    /// Each upstream's latency while it is not overloaded, in milliseconds.
    #[arg(long, default_value_t = 20)]
    base_latency_ms: u64,
    /// Requests in flight each upstream serves at full speed.
    #[arg(long, default_value_t = 50)]
    knee: u64,
    /// Extra latency per request in flight beyond the knee, in microseconds.
    #[arg(long, default_value_t = 1_000)]
    per_request_us: u64,
    /// The bulkhead's cap on calls in flight per upstream (capped scenarios).
    #[arg(long, default_value_t = 50)]
    cap: usize,
    /// How long a call waits for a permit before it is shed, in
    /// milliseconds: one shedding scenario per value (0 sheds at once).
    #[arg(long, value_delimiter = ',', default_value = "0,5")]
    shed_after_ms: Vec<u64>,
    /// How long a shed client pauses before its next request, in milliseconds.
    #[arg(long, default_value_t = 50)]
    shed_backoff_ms: u64,
    /// Places in the worker pool's queue (the pool has `--cap` workers).
    #[arg(long, default_value_t = 50)]
    pool_queue: usize,
}

/// One scenario's name and limit.
struct Setup {
    name: String,
    limit: LimitSetup,
}

/// The settings a scenario builds its limit from.
enum LimitSetup {
    /// A bulkhead with this cap and wait.
    Bulkhead {
        max_in_flight: usize,
        max_wait: Duration,
    },
    /// A worker pool of `--cap` workers and `--pool-queue` places; `shed`:
    /// `try_submit` instead of `submit`.
    Pool { shed: bool },
}

/// What one scenario measured beyond `load_lab`'s numbers.
struct Extras {
    peak_in_flight: u64,
    shed: u64,
    shed_p99: Option<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build, so its numbers mean little; `cargo xtask lab step3` builds it optimized"
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
    let machine = load_lab::Machine::detect();
    let base = Duration::from_millis(args.base_latency_ms);
    let per_request = Duration::from_micros(args.per_request_us);
    println!("step 3 lab on {machine}");
    println!(
        "upstreams: 3 fakes, {base:?} each up to {} in flight, +{per_request:?} per request beyond; \
         {} clients (closed loop); cap {} per upstream; shed after {:?} ms; \
         pool of {} workers, queue {}; windows: {warmup:?} warm-up + {window:?}",
        args.knee, args.concurrency, args.cap, args.shed_after_ms, args.cap, args.pool_queue
    );
    let (Some(pool_workers), Some(pool_queue)) = (
        NonZeroUsize::new(args.cap),
        NonZeroUsize::new(args.pool_queue),
    ) else {
        anyhow::bail!("--cap and --pool-queue must be at least 1");
    };

    // One fake per service, as in production: each has its own knee.
    let behaviour = Behaviour::fixed(base).degrading_past(args.knee, per_request);
    let upstreams = [
        FastUpstream::start(behaviour.clone()).await?,
        FastUpstream::start(behaviour.clone()).await?,
        FastUpstream::start(behaviour).await?,
    ];
    let urls = Arc::new(UpstreamUrls {
        inventory: upstreams[0].base_url(),
        pricing: upstreams[1].base_url(),
        reviews: upstreams[2].base_url(),
    });

    let bulkhead = |max_in_flight, max_wait| LimitSetup::Bulkhead {
        max_in_flight,
        max_wait,
    };
    let mut setups = vec![
        Setup {
            name: "uncapped".to_owned(),
            limit: bulkhead(UNCAPPED, QUEUE_WAIT),
        },
        Setup {
            name: format!("capped at {} (queue)", args.cap),
            limit: bulkhead(args.cap, QUEUE_WAIT),
        },
    ];
    setups.extend(args.shed_after_ms.iter().map(|&wait_ms| Setup {
        name: format!("capped at {} + shed after {wait_ms} ms", args.cap),
        limit: bulkhead(args.cap, Duration::from_millis(wait_ms)),
    }));
    // The pools come last, so the bulkhead rows keep their places.
    let bulkhead_rows = setups.len();
    for (how, shed) in [("submit", false), ("try_submit", true)] {
        setups.push(Setup {
            name: format!("pool of {} + queue {}, {how}", args.cap, args.pool_queue),
            limit: LimitSetup::Pool { shed },
        });
    }

    let load = Load::Closed {
        concurrency: args.concurrency,
    };
    let plan = Plan {
        load,
        warmup,
        measure: window,
    };
    let total = (warmup + window) * u32::try_from(setups.len())?;
    let progress = load_lab::progress_bar(total, "step 3");
    // No request timeout worth the name: the lab wants to see how slow the
    // uncapped run gets, not to cut it off.
    let client = load_lab::load_client(Duration::from_secs(30));
    let mut rows = Vec::new();
    let mut extras = Vec::new();
    for setup in &setups {
        progress.set_message(setup.name.clone());
        for upstream in &upstreams {
            upstream.reset_counters();
        }
        let sheds = Arc::new(ShedLatencies::starting_at(Instant::now() + warmup));
        let limit = match setup.limit {
            LimitSetup::Bulkhead {
                max_in_flight,
                max_wait,
            } => Limit::Bulkhead(Arc::new(Bulkhead::new(max_in_flight, max_wait)?)),
            LimitSetup::Pool { shed } => Limit::Pool {
                pool: Arc::new(product_pool(&client, &urls, pool_workers, pool_queue)?),
                shed,
            },
        };
        let scenario = Scenario {
            client: client.clone(),
            urls: Arc::clone(&urls),
            limit,
            sheds: Arc::clone(&sheds),
            shed_backoff: Duration::from_millis(args.shed_backoff_ms),
        };
        let measurement = load_lab::run(&plan, &progress, move || scenario.send()).await;

        let extra = Extras {
            peak_in_flight: upstreams
                .iter()
                .map(|upstream| upstream.counters().peak_in_flight)
                .max()
                .unwrap_or(0),
            shed: measurement.errors_of("shed"),
            shed_p99: sheds.percentile(99.0),
        };
        rows.push(Row {
            scenario: setup.name.clone(),
            measurement,
            extra: vec![
                ("upstream peak".to_owned(), extra.peak_in_flight.to_string()),
                ("shed".to_owned(), extra.shed.to_string()),
                (
                    "shed p99 ms".to_owned(),
                    extra
                        .shed_p99
                        .map_or("-".to_owned(), |p99| format!("{:.3}", millis(p99))),
                ),
            ],
        });
        extras.push(extra);
    }
    progress.finish_and_clear();

    let mut observations = observations(&args, &rows[..bulkhead_rows], &extras[..bulkhead_rows]);
    observations.extend(pool_observations(&args, &rows, &extras, bulkhead_rows));
    println!();
    println!("{}", report::text_table(&rows));
    println!("goodput = req/s: successful products per second (shed and failed requests excluded)");
    for line in &observations {
        println!("{line}");
    }
    save(&args, &machine, &rows, &observations)
}

/// The floors issue 3 sets, checked and worded, never enforced: labs report.
///
/// `rows` and `extras` are in scenario order: uncapped, capped (queue), then
/// one capped + shedding run per wait.
fn observations(args: &Args, rows: &[Row], extras: &[Extras]) -> Vec<String> {
    let [uncapped, capped, shedding @ ..] = rows else {
        return Vec::new();
    };
    let (u, c) = (&uncapped.measurement, &capped.measurement);
    let yes = |holds: bool| if holds { "yes" } else { "NO" };
    let capped_peak = extras[1..]
        .iter()
        .map(|extra| extra.peak_in_flight)
        .max()
        .unwrap_or(0);
    let mut lines = vec![
        format!(
            "capped runs keep the upstreams' peak in-flight at or under the cap ({capped_peak} ≤ {}): {}",
            args.cap,
            yes(capped_peak <= args.cap as u64)
        ),
        format!(
            "capped (queue) p99 {:.1} ms vs uncapped {:.1} ms: better: {}",
            millis(c.percentile(99.0)),
            millis(u.percentile(99.0)),
            yes(c.percentile(99.0) < u.percentile(99.0))
        ),
        format!(
            "capped (queue) goodput {:.0} req/s vs uncapped {:.0} req/s: better: {}",
            c.throughput(),
            u.throughput(),
            yes(c.throughput() > u.throughput())
        ),
    ];
    if extras[1].shed > 0 {
        // Little's law: `concurrency` clients served `cap` at a time, each
        // for about the base latency, queue for about this long.
        let expected_queue = Duration::from_millis(args.base_latency_ms)
            .mul_f64(args.concurrency as f64 / args.cap.max(1) as f64);
        lines.push(if expected_queue * 2 < QUEUE_WAIT {
            format!(
                "capped (queue) shed {} requests, although its wait ({QUEUE_WAIT:?}) is far \
                 longer than the queue this load builds (about {expected_queue:?}): pages that \
                 wait that long are stuck, most likely holding permits while they wait for each \
                 other's (hold-and-wait; see the chapter)",
                extras[1].shed
            )
        } else {
            format!(
                "capped (queue) shed {} requests: {} clients served {} at a time queue for about \
                 {expected_queue:?}, longer than the scenario's wait ({QUEUE_WAIT:?})",
                extras[1].shed, args.concurrency, args.cap
            )
        });
    }
    for (row, extra) in shedding.iter().zip(&extras[2..]) {
        let s = &row.measurement;
        let shed = match extra.shed_p99 {
            Some(p99) => format!(
                "{} shed, shed p99 {:.3} ms (within 10 ms: {})",
                extra.shed,
                millis(p99),
                yes(p99 <= Duration::from_millis(10))
            ),
            None => "nothing shed".to_owned(),
        };
        lines.push(format!(
            "{}: p99 {:.1} ms, goodput {:.0} req/s (p99 and goodput better than uncapped: {}); {shed}",
            row.scenario,
            millis(s.percentile(99.0)),
            s.throughput(),
            yes(s.percentile(99.0) < u.percentile(99.0) && s.throughput() > u.throughput()),
        ));
    }
    lines
}

/// The pool rows next to the bulkhead rows they compare with: the pool that
/// waits against the semaphore that queues, the pool that sheds against the
/// semaphore that sheds at once.
///
/// `rows` and `extras` hold every scenario; the pools start at `first_pool`.
fn pool_observations(
    args: &Args,
    rows: &[Row],
    extras: &[Extras],
    first_pool: usize,
) -> Vec<String> {
    let (Some(queue), Some(shed_at_once)) = (rows.get(1), rows.get(2)) else {
        return Vec::new();
    };
    let yes = |holds: bool| if holds { "yes" } else { "NO" };
    let mut lines = Vec::new();
    for (offset, bulkhead) in [queue, shed_at_once].into_iter().enumerate() {
        let index = first_pool + offset;
        let (Some(pool), Some(extra)) = (rows.get(index), extras.get(index)) else {
            continue;
        };
        let (p, b) = (&pool.measurement, &bulkhead.measurement);
        lines.push(format!(
            "{}: goodput {:.0} vs {:.0} req/s, p50 {:.1} vs {:.1} ms, p99 {:.1} vs {:.1} ms against \
             \"{}\"; {} shed; upstream peak {} (at or under {}: {})",
            pool.scenario,
            p.throughput(),
            b.throughput(),
            millis(p.percentile(50.0)),
            millis(b.percentile(50.0)),
            millis(p.percentile(99.0)),
            millis(b.percentile(99.0)),
            bulkhead.scenario,
            extra.shed,
            extra.peak_in_flight,
            args.cap,
            yes(extra.peak_in_flight <= args.cap as u64),
        ));
    }
    lines
}

/// Writes the report and the plot into a fresh folder under `--out`.
fn save(
    args: &Args,
    machine: &load_lab::Machine,
    rows: &[Row],
    observations: &[String],
) -> anyhow::Result<()> {
    let results = report::ResultsDir::create(&args.out, "step3")?;

    // Latency by percentile, one line per scenario: where each one's tail
    // goes. The x axis counts "nines" (1 = p90, 2 = p99, 3 = p99.9), which
    // spreads the tail out instead of squeezing it against p100.
    let percentiles = [50.0, 90.0, 95.0, 99.0, 99.9];
    let nines = |q: f64| -(1.0 - q / 100.0).log10();
    let series: Vec<Series> = rows
        .iter()
        .map(|row| Series {
            label: row.scenario.clone(),
            points: percentiles
                .iter()
                .map(|&q| (nines(q), millis(row.measurement.percentile(q))))
                .collect(),
        })
        .collect();
    let plot = results.file("latency.svg");
    report::plot_svg(
        &plot,
        &format!(
            "Step 3: latency of successful requests at {} clients",
            args.concurrency
        ),
        "percentile in nines (0.3 = p50, 1 = p90, 2 = p99, 3 = p99.9)",
        "latency (ms)",
        false,
        &series,
    )?;

    let setup = format!(
        "- upstreams: 3 fakes, {} ms each up to {} requests in flight, +{} µs per request in flight beyond that\n\
         - load: closed loop, {} clients, {} s warm-up + {} s measured per scenario\n\
         - bulkhead: cap {} per upstream; shedding after {:?} ms; a shed client pauses {} ms\n\
         - worker pool: {} workers (one page each), queue of {}; `submit` waits for room, `try_submit` sheds\n\
         - req/s is goodput: successful products per second",
        args.base_latency_ms,
        args.knee,
        args.per_request_us,
        args.concurrency,
        if args.quick { 1.0 } else { args.warmup_seconds },
        if args.quick { 3.0 } else { args.seconds },
        args.cap,
        args.shed_after_ms,
        args.shed_backoff_ms,
        args.cap,
        args.pool_queue,
    );
    let sections = vec![
        ("Setup".to_owned(), setup),
        ("Results".to_owned(), report::markdown_table(rows)),
        (
            "Observations".to_owned(),
            observations
                .iter()
                .map(|line| format!("- {line}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        (
            "Plot".to_owned(),
            "![latency by percentile](latency.svg)".to_owned(),
        ),
    ];
    let report_path = results.file("report.md");
    report::write_markdown_report(&report_path, "Step 3 lab: backpressure", machine, &sections)?;

    println!();
    println!("report: {}", report_path.display());
    println!("plot:   {}", plot.display());
    Ok(())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
