//! What one in-flight request costs in memory: a parked thread vs a task.
//!
//! The lab starts a child process (this same binary, with `--hold`) that
//! sends N requests to a deliberately slow upstream and keeps them all in
//! flight. Once the fake upstream sees every call arrive, the parent tells the
//! child to read its memory again: the growth divided by N is the price of one
//! waiting request. A separate process keeps the load generator and the
//! servers out of the figure. Three ways of waiting are measured:
//!
//! * one OS thread per request, blocking fan-out (one upstream call in flight);
//! * one tokio task per request, *sequential* async fan-out (also one call in
//!   flight): the same work as the threads, so the difference is the waiting
//!   unit alone;
//! * one tokio task per request, concurrent fan-out (three calls in flight):
//!   what step 1's async server really holds, connections included.
//!
//! Resident memory (RSS) is what the machine must really provide. Virtual
//! size shows what threads *reserve*: each gets its own stack mapping (2 MiB
//! by default for Rust threads), which counts against address space and
//! thread limits long before RSS does. Both come from `/proc`, so this part
//! of the lab runs on Linux only.

use std::fmt;
use std::io::BufRead as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fake_upstreams::fast::{Behaviour, FastUpstream};
use load_lab::machine::process_rss_bytes;
use step1_baseline::{
    UpstreamUrls, fetch_product_blocking, fetch_product_concurrent, fetch_product_sequential,
};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// How the child holds its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HoldMode {
    /// One OS thread per request, running the blocking fan-out.
    Threads,
    /// One tokio task per request, running the sequential async fan-out.
    TasksSequential,
    /// One tokio task per request, running the concurrent fan-out.
    TasksConcurrent,
}

impl HoldMode {
    const ALL: [HoldMode; 3] = [
        HoldMode::Threads,
        HoldMode::TasksSequential,
        HoldMode::TasksConcurrent,
    ];

    /// The flag value that selects this mode in the child.
    fn flag(self) -> &'static str {
        match self {
            HoldMode::Threads => "threads",
            HoldMode::TasksSequential => "tasks-sequential",
            HoldMode::TasksConcurrent => "tasks-concurrent",
        }
    }

    /// How many upstream calls each held request has in flight.
    fn calls_per_request(self) -> usize {
        match self {
            HoldMode::Threads | HoldMode::TasksSequential => 1,
            HoldMode::TasksConcurrent => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            HoldMode::Threads => "OS thread, blocking (1 call in flight)",
            HoldMode::TasksSequential => "tokio task, sequential (1 call in flight)",
            HoldMode::TasksConcurrent => "tokio task, concurrent (3 calls in flight)",
        }
    }
}

/// How much a child's memory grew while it held its requests.
#[derive(Debug, Clone, Copy)]
struct Growth {
    resident: u64,
    virtual_size: u64,
}

/// Memory growth while holding requests, one line per mode.
#[derive(Debug)]
pub struct MemoryReport {
    in_flight: usize,
    samples: Vec<(HoldMode, Growth)>,
}

/// Runs the child once per mode and collects the RSS growth of each.
pub async fn measure(in_flight: usize) -> anyhow::Result<Option<MemoryReport>> {
    if process_rss_bytes().is_none() {
        println!("memory: not measured (this needs Linux's /proc)");
        return Ok(None);
    }
    let mut samples = Vec::new();
    for mode in HoldMode::ALL {
        // Slow enough that nothing answers while we measure.
        let upstream = FastUpstream::start(Behaviour::fixed(Duration::from_secs(60))).await?;
        let expected_calls = mode.calls_per_request() * in_flight;
        let growth = run_child(mode, in_flight, &upstream, expected_calls).await?;
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
) -> anyhow::Result<Growth> {
    let mode_name = mode.flag();
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
    let numbers: Vec<u64> = line
        .split_whitespace()
        .map(str::parse::<u64>)
        .collect::<Result<_, _>>()
        .with_context(|| format!("the {mode_name} child answered {line:?}"))?;
    match numbers[..] {
        [rss_before, vm_before, rss_during, vm_during] => Ok(Growth {
            resident: rss_during.saturating_sub(rss_before),
            virtual_size: vm_during.saturating_sub(vm_before),
        }),
        _ => bail!("the {mode_name} child answered {line:?}, not four byte counts"),
    }
}

/// The child's side: start `in_flight` requests, wait for the parent's word,
/// print memory before and during, exit without cleaning up.
pub fn hold_requests(mode: HoldMode, in_flight: usize, upstream: &str) -> ! {
    let urls = UpstreamUrls {
        inventory: upstream.to_owned(),
        pricing: upstream.to_owned(),
        reviews: upstream.to_owned(),
    };
    // Fixed costs (a client, a runtime) are paid before the baseline, so
    // only the per-request cost shows in the growth.
    match mode {
        HoldMode::Threads => {
            let client = reqwest::blocking::Client::builder()
                .no_proxy()
                .build()
                .expect("a blocking client builds");
            let before = memory_now();
            for product_id in 0..in_flight as u64 {
                let client = client.clone();
                let urls = urls.clone();
                std::thread::spawn(move || fetch_product_blocking(&client, &urls, product_id));
            }
            report_when_asked(before)
        }
        HoldMode::TasksSequential | HoldMode::TasksConcurrent => {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime starts");
            let client = reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("a client builds");
            let before = memory_now();
            for product_id in 0..in_flight as u64 {
                let client = client.clone();
                let urls = urls.clone();
                runtime.spawn(async move {
                    if mode == HoldMode::TasksSequential {
                        fetch_product_sequential(&client, &urls, product_id).await
                    } else {
                        fetch_product_concurrent(&client, &urls, product_id).await
                    }
                });
            }
            report_when_asked(before)
        }
    }
}

/// Resident and virtual size of this process, in bytes (0 where unknown).
fn memory_now() -> (u64, u64) {
    (
        process_rss_bytes().unwrap_or(0),
        proc_status_kib("VmSize:").unwrap_or(0) * 1024,
    )
}

/// A `kB` field of `/proc/self/status`, such as `VmSize:`.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for a line on stdin, prints the four byte counts, exits.
fn report_when_asked((rss_before, vm_before): (u64, u64)) -> ! {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let (rss_during, vm_during) = memory_now();
    println!("{rss_before} {vm_before} {rss_during} {vm_during}");
    // Exit at once: the requests are parked on purpose and will never finish.
    std::process::exit(0)
}

impl MemoryReport {
    /// KiB per held request.
    fn per_request_kib(&self, bytes: u64) -> f64 {
        bytes as f64 / self.in_flight as f64 / 1024.0
    }

    /// The same figures as a markdown table.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "| {} requests held by | resident per request | virtual per request |\n|---|---:|---:|\n",
            self.in_flight
        );
        for &(mode, growth) in &self.samples {
            out += &format!(
                "| {} | {:.1} KiB | {:.1} KiB |\n",
                mode.label(),
                self.per_request_kib(growth.resident),
                self.per_request_kib(growth.virtual_size)
            );
        }
        out
    }
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "memory per request, {} requests held in flight by a child process:",
            self.in_flight
        )?;
        writeln!(
            f,
            "  {:<44} {:>12} {:>12}",
            "held by", "resident", "virtual"
        )?;
        for &(mode, growth) in &self.samples {
            writeln!(
                f,
                "  {:<44} {:>8.1} KiB {:>8.1} KiB",
                mode.label(),
                self.per_request_kib(growth.resident),
                self.per_request_kib(growth.virtual_size)
            )?;
        }
        Ok(())
    }
}
