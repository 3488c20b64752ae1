//! What one in-flight request costs in memory: a parked thread vs a task.
//!
//! The lab starts a child process (this same binary, with `--hold`) that
//! sends N requests to a deliberately slow upstream and keeps them all in
//! flight, either one OS thread per request or one tokio task per request.
//! Once the fake upstream sees every call arrive, the parent tells the child
//! to read its resident memory (RSS) again: the growth divided by N is the
//! price of one waiting request. A separate process keeps the load generator
//! and the servers out of the figure.
//!
//! RSS comes from `/proc`, so this part of the lab runs on Linux only.

use std::fmt;
use std::io::BufRead as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fake_upstreams::fast::{Behaviour, FastUpstream};
use load_lab::machine::process_rss_bytes;
use step1_baseline::{UpstreamUrls, fetch_product_blocking, fetch_product_concurrent};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// How the child holds its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HoldMode {
    /// One OS thread per request, running the blocking fan-out.
    Threads,
    /// One tokio task per request, running the concurrent fan-out.
    Tasks,
}

/// Memory growth while holding requests, one line per mode.
#[derive(Debug)]
pub struct MemoryReport {
    in_flight: usize,
    samples: Vec<(HoldMode, u64)>,
}

/// Runs the child once per mode and collects the RSS growth of each.
pub async fn measure(in_flight: usize) -> anyhow::Result<Option<MemoryReport>> {
    if process_rss_bytes().is_none() {
        println!("memory: not measured (this needs Linux's /proc)");
        return Ok(None);
    }
    let mut samples = Vec::new();
    for mode in [HoldMode::Threads, HoldMode::Tasks] {
        // Slow enough that nothing answers while we measure.
        let upstream = FastUpstream::start(Behaviour::fixed(Duration::from_secs(60))).await?;
        // The blocking fan-out has one call in flight per request (the first);
        // the concurrent one has all three.
        let calls_per_request = match mode {
            HoldMode::Threads => 1,
            HoldMode::Tasks => 3,
        };
        let growth = run_child(mode, in_flight, &upstream, calls_per_request * in_flight).await?;
        samples.push((mode, growth));
    }
    Ok(Some(MemoryReport { in_flight, samples }))
}

/// Starts the child, waits until the upstream sees `expected_calls`, then
/// asks the child for its RSS growth.
async fn run_child(
    mode: HoldMode,
    in_flight: usize,
    upstream: &FastUpstream,
    expected_calls: usize,
) -> anyhow::Result<u64> {
    let mode_name = match mode {
        HoldMode::Threads => "threads",
        HoldMode::Tasks => "tasks",
    };
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--hold", mode_name, "--memory-in-flight"])
        .arg(in_flight.to_string())
        .arg("--hold-upstream")
        .arg(upstream.base_url())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the memory experiment's child process")?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while upstream.counters().in_flight < expected_calls as u64 {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the {mode_name} child got only {} of {expected_calls} upstream calls in flight within 30 s",
                upstream.counters().in_flight
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut stdin = child.stdin.take().context("child stdin")?;
    stdin.write_all(b"measure\n").await?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("child stdout")?)
        .read_line(&mut line)
        .await?;
    child.wait().await?;
    let mut numbers = line.split_whitespace().map(str::parse::<u64>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(before)), Some(Ok(during))) => Ok(during.saturating_sub(before)),
        _ => bail!("the {mode_name} child answered {line:?}, not two byte counts"),
    }
}

/// The child's side: start `in_flight` requests, wait for the parent's word,
/// print RSS before and during, exit without cleaning up.
pub fn hold_requests(mode: HoldMode, in_flight: usize, upstream: &str) -> ! {
    let urls = UpstreamUrls {
        inventory: upstream.to_owned(),
        pricing: upstream.to_owned(),
        reviews: upstream.to_owned(),
    };
    // Fixed costs (a client, a runtime) are paid before the baseline, so
    // only the per-request cost shows in the growth.
    let _keep_alive: Box<dyn std::any::Any> = match mode {
        HoldMode::Threads => {
            let client = reqwest::blocking::Client::builder()
                .no_proxy()
                .build()
                .expect("a blocking client builds");
            let before = process_rss_bytes().unwrap_or(0);
            for product_id in 0..in_flight as u64 {
                let client = client.clone();
                let urls = urls.clone();
                std::thread::spawn(move || fetch_product_blocking(&client, &urls, product_id));
            }
            report_when_asked(before)
        }
        HoldMode::Tasks => {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime starts");
            let client = reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("a client builds");
            let before = process_rss_bytes().unwrap_or(0);
            for product_id in 0..in_flight as u64 {
                let client = client.clone();
                let urls = urls.clone();
                runtime.spawn(async move { fetch_product_concurrent(&client, &urls, product_id).await });
            }
            report_when_asked(before)
        }
    };
}

/// Waits for a line on stdin, prints `before during`, exits the process.
fn report_when_asked(before: u64) -> ! {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let during = process_rss_bytes().unwrap_or(0);
    println!("{before} {during}");
    // Exit at once: the requests are parked on purpose and will never finish.
    std::process::exit(0)
}

impl MemoryReport {
    /// Bytes per in-flight request for a mode.
    fn per_request(&self, growth: u64) -> f64 {
        growth as f64 / self.in_flight as f64
    }

    /// The same figures as a markdown table.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "| {} requests in flight | RSS growth | per request |\n|---|---:|---:|\n",
            self.in_flight
        );
        for &(mode, growth) in &self.samples {
            out += &format!(
                "| {} | {:.1} MiB | {:.1} KiB |\n",
                mode_label(mode),
                growth as f64 / (1024.0 * 1024.0),
                self.per_request(growth) / 1024.0
            );
        }
        out
    }
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "memory with {} requests in flight (RSS growth of a child process):", self.in_flight)?;
        for &(mode, growth) in &self.samples {
            writeln!(
                f,
                "  {:<34} {:>8.1} MiB  {:>7.1} KiB per request",
                mode_label(mode),
                growth as f64 / (1024.0 * 1024.0),
                self.per_request(growth) / 1024.0
            )?;
        }
        Ok(())
    }
}

fn mode_label(mode: HoldMode) -> &'static str {
    match mode {
        HoldMode::Threads => "one OS thread per request (blocking)",
        HoldMode::Tasks => "one tokio task per request (async)",
    }
}
