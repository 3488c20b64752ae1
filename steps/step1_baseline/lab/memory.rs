//! What one in-flight request costs in memory: a parked thread vs a task.
//!
//! The lab starts a child process (this same binary, with `--hold`) that
//! sends N requests (10,000 by default) to fake upstreams that never answer,
//! and keeps them all in flight. Once the fakes see every call arrive, the
//! parent tells the child to read its memory again: the growth divided by N
//! is the price of one waiting request. A separate process keeps the load
//! generator and the servers out of the figure. Three ways of waiting are
//! measured:
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
//! thread limits long before RSS does. Neither shows the kernel's own stack
//! for each thread, so the child also reports the growth of `KernelStack` in
//! `/proc/meminfo` (machine-wide: other programs starting threads meanwhile
//! blur it a little). All of it comes from `/proc`, so this part of the lab
//! runs on Linux only. How many requests fit is set by the limits in
//! `limits.rs`; a mode that cannot hold them all holds fewer and says why.

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
use tokio::time::Instant;

use crate::limits::Limits;

/// If no new call reaches the fakes for this long, the child is stuck.
const STALL_LIMIT: Duration = Duration::from_secs(30);

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

/// How much memory grew while the child held its requests, in bytes.
#[derive(Debug, Clone, Copy)]
struct Growth {
    resident: u64,
    virtual_size: u64,
    /// Machine-wide: the kernel stacks of every thread on the machine.
    kernel_stacks: u64,
}

/// One mode's result.
#[derive(Debug)]
struct Sample {
    mode: HoldMode,
    /// Requests actually held: fewer than asked if a limit was in the way.
    held: usize,
    growth: Growth,
}

/// Memory growth while holding requests, one line per mode.
#[derive(Debug)]
pub struct MemoryReport {
    wanted: usize,
    samples: Vec<Sample>,
    /// Why a mode held fewer requests than asked, one sentence each.
    notes: Vec<String>,
}

/// Runs the child once per mode and collects its memory growth.
pub async fn measure(in_flight: usize) -> anyhow::Result<Option<MemoryReport>> {
    if process_rss_bytes().is_none() {
        println!("memory: not measured (this needs Linux's /proc)");
        return Ok(None);
    }
    let mut report = MemoryReport {
        wanted: in_flight,
        samples: Vec::new(),
        notes: Vec::new(),
    };
    for mode in HoldMode::ALL {
        // Read afresh each time: the last child's connections are gone.
        let limits = Limits::read();
        let (held, limited_by) = limits.fit(
            in_flight,
            mode.calls_per_request(),
            mode == HoldMode::Threads,
        );
        if let Some(reason) = limited_by {
            let note = format!(
                "{}: held {held} of {in_flight} requests: {reason}",
                mode.label()
            );
            eprintln!("memory: {note}");
            report.notes.push(note);
        }
        if held == 0 {
            continue;
        }
        eprintln!("memory: holding {held} requests, {}", mode.label());
        let growth = run_child(mode, held).await?;
        report.samples.push(Sample { mode, held, growth });
    }
    Ok(Some(report))
}

/// Starts three fakes that never answer and the child that calls them, waits
/// until every call has arrived, then asks the child for its memory growth.
async fn run_child(mode: HoldMode, held: usize) -> anyhow::Result<Growth> {
    // One fake per upstream, so no single address needs more local ports
    // than there are requests.
    let never_answers = || FastUpstream::start(Behaviour::default().hanging());
    let fakes = [
        never_answers().await?,
        never_answers().await?,
        never_answers().await?,
    ];
    let upstreams: Vec<String> = fakes.iter().map(FastUpstream::base_url).collect();

    let mode_name = mode.flag();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--hold", mode_name, "--memory-in-flight"])
        .arg(held.to_string())
        .arg("--hold-upstreams")
        .arg(upstreams.join(","))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the memory experiment's child process")?;

    let expected_calls = (mode.calls_per_request() * held) as u64;
    let in_flight = || {
        fakes
            .iter()
            .map(|fake| fake.counters().in_flight)
            .sum::<u64>()
    };
    let (mut seen, mut last_progress) = (0, Instant::now());
    while seen < expected_calls {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the {mode_name} child exited ({status}) with {seen} of {expected_calls} calls in flight; its error is above"
            );
        }
        let now_in_flight = in_flight();
        if now_in_flight > seen {
            (seen, last_progress) = (now_in_flight, Instant::now());
        } else if last_progress.elapsed() > STALL_LIMIT {
            bail!(
                "the {mode_name} child has had {seen} of {expected_calls} upstream calls in flight for {STALL_LIMIT:?} without progress"
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
    // The child's exit closed its connections; let the fakes see every one
    // go, so their sockets are closed before the next mode counts how many
    // open files it may use.
    let closing_started = Instant::now();
    while in_flight() > 0 && closing_started.elapsed() < STALL_LIMIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let numbers: Vec<u64> = line
        .split_whitespace()
        .map(str::parse::<u64>)
        .collect::<Result<_, _>>()
        .with_context(|| format!("the {mode_name} child answered {line:?}"))?;
    match numbers[..] {
        [
            rss_before,
            vm_before,
            ks_before,
            rss_during,
            vm_during,
            ks_during,
        ] => Ok(Growth {
            resident: rss_during.saturating_sub(rss_before),
            virtual_size: vm_during.saturating_sub(vm_before),
            kernel_stacks: ks_during.saturating_sub(ks_before),
        }),
        _ => bail!("the {mode_name} child answered {line:?}, not six byte counts"),
    }
}

/// The child's side: start `in_flight` requests, wait for the parent's word,
/// print memory before and during, exit without cleaning up.
pub fn hold_requests(mode: HoldMode, in_flight: usize, upstreams: &[String]) -> ! {
    let [inventory, pricing, reviews] = upstreams else {
        eprintln!("memory child: --hold-upstreams needs three URLs, got {upstreams:?}");
        std::process::exit(2)
    };
    let urls = UpstreamUrls {
        inventory: inventory.clone(),
        pricing: pricing.clone(),
        reviews: reviews.clone(),
    };
    // Fixed costs (a client, a runtime and its worker threads) are paid
    // before the baseline, so only the per-request cost shows in the growth.
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
                let started = std::thread::Builder::new()
                    .spawn(move || fetch_product_blocking(&client, &urls, product_id));
                if let Err(error) = started {
                    // Typically EAGAIN: a thread limit the parent could not see.
                    eprintln!(
                        "memory child: could not start thread {} of {in_flight}: {error}",
                        product_id + 1
                    );
                    std::process::exit(1);
                }
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

/// Resident and virtual size of this process, and the machine's kernel
/// stacks, in bytes (0 where unknown).
fn memory_now() -> [u64; 3] {
    [
        process_rss_bytes().unwrap_or(0),
        kib_field("/proc/self/status", "VmSize:").unwrap_or(0) * 1024,
        kib_field("/proc/meminfo", "KernelStack:").unwrap_or(0) * 1024,
    ]
}

/// A `kB` field of a `/proc` file, such as `VmSize:` in `/proc/self/status`.
fn kib_field(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for a line on stdin, prints the six byte counts, exits.
fn report_when_asked(before: [u64; 3]) -> ! {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let during = memory_now();
    let numbers: Vec<String> = before.iter().chain(&during).map(u64::to_string).collect();
    println!("{}", numbers.join(" "));
    // Exit at once: the requests are parked on purpose and will never finish.
    std::process::exit(0)
}

impl Sample {
    /// KiB per held request.
    fn per_request_kib(&self, bytes: u64) -> f64 {
        bytes as f64 / self.held as f64 / 1024.0
    }
}

impl MemoryReport {
    /// The same figures as a markdown table, with the notes under it.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "| held by | requests held | resident per request | virtual per request | kernel stacks per request (machine-wide) |\n|---|---:|---:|---:|---:|\n",
        );
        for sample in &self.samples {
            out += &format!(
                "| {} | {} | {:.1} KiB | {:.1} KiB | {:.1} KiB |\n",
                sample.mode.label(),
                sample.held,
                sample.per_request_kib(sample.growth.resident),
                sample.per_request_kib(sample.growth.virtual_size),
                sample.per_request_kib(sample.growth.kernel_stacks),
            );
        }
        for note in &self.notes {
            out += &format!("\n{note}\n");
        }
        out
    }
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "memory per request, up to {} requests held in flight by a child process:",
            self.wanted
        )?;
        writeln!(
            f,
            "  {:<44} {:>7} {:>12} {:>12} {:>14}",
            "held by", "held", "resident", "virtual", "kernel stacks"
        )?;
        for sample in &self.samples {
            writeln!(
                f,
                "  {:<44} {:>7} {:>8.1} KiB {:>8.1} KiB {:>10.1} KiB",
                sample.mode.label(),
                sample.held,
                sample.per_request_kib(sample.growth.resident),
                sample.per_request_kib(sample.growth.virtual_size),
                sample.per_request_kib(sample.growth.kernel_stacks),
            )?;
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }
}
