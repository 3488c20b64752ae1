//! CPU time by runtime: who used the machine's cores during a cell's window.
//!
//! The generator, the fakes and the edge share the machine's cores (see
//! `server.rs`). When the edge answers fewer pages at a higher offered rate,
//! the first question is where the cores went: to the edge's own work, to
//! the fakes, or to the generator, which sends more requests at a higher
//! rate whether they are answered or shed. Each thread's CPU time tells it;
//! the runtimes' threads carry names (`edge-worker`, `fake-worker`), and
//! everything else in the process is the lab's own: the generator, the
//! scraper, its main thread.
//!
//! Read from Linux's `/proc/self/task/*/stat` (user + system time, in clock
//! ticks of 10 ms: 100 per second on every mainstream Linux, as step 4's lab
//! also assumes); elsewhere nothing is known. A window of a few seconds on
//! two cores is hundreds of ticks, so a tick's granularity is a rounding,
//! not an error.
//!
//! Given: this whole file (lab code; there is nothing to write in it).

use std::time::{Duration, Instant};

/// The edge's runtime's threads (`ServerRuntime::start("edge-worker")`);
/// the minimal fan-out runs on that runtime too.
const EDGE_THREADS: &str = "edge-worker";
/// The fakes' runtime's threads.
const FAKE_THREADS: &str = "fake-worker";

/// CPU time used so far, by runtime.
#[derive(Debug, Clone, Copy)]
pub struct CpuReading {
    at: Instant,
    edge: Duration,
    fakes: Duration,
    lab: Duration,
}

/// Cores used over a window, by runtime: CPU time divided by wall time, so
/// 1.0 is one core kept busy all the window.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoresUsed {
    pub edge: f64,
    pub fakes: f64,
    /// The generator, the scraper and the rest of the lab.
    pub lab: f64,
}

impl CoresUsed {
    /// All three together: how much of the machine the cell kept busy.
    pub fn total(&self) -> f64 {
        self.edge + self.fakes + self.lab
    }
}

/// `1.21 / 0.38 / 0.41`: edge / fakes / lab, the order every table uses.
impl std::fmt::Display for CoresUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} / {:.2} / {:.2}", self.edge, self.fakes, self.lab)
    }
}

impl CpuReading {
    /// Reads every thread of this process; `None` where `/proc` is not.
    pub fn now() -> Option<CpuReading> {
        let mut reading = CpuReading {
            at: Instant::now(),
            edge: Duration::ZERO,
            fakes: Duration::ZERO,
            lab: Duration::ZERO,
        };
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            // A thread may end between the listing and the read: skip it.
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let Some((name, used)) = thread_cpu(&stat) else {
                continue;
            };
            match name {
                EDGE_THREADS => reading.edge += used,
                FAKE_THREADS => reading.fakes += used,
                _ => reading.lab += used,
            }
        }
        Some(reading)
    }

    /// The cores each runtime used from `start` to `end`, if both were read.
    pub fn cores_between(start: Option<CpuReading>, end: Option<CpuReading>) -> Option<CoresUsed> {
        Some(end?.since(&start?))
    }

    /// The cores each runtime used from `earlier` to this reading. (A
    /// thread that ended in between takes its time with it; the runtimes'
    /// workers live for the whole run.)
    fn since(&self, earlier: &CpuReading) -> CoresUsed {
        let wall = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return CoresUsed::default();
        }
        let cores = |now: Duration, then: Duration| now.saturating_sub(then).as_secs_f64() / wall;
        CoresUsed {
            edge: cores(self.edge, earlier.edge),
            fakes: cores(self.fakes, earlier.fakes),
            lab: cores(self.lab, earlier.lab),
        }
    }
}

/// A thread's name and CPU time (user + system) from its `stat` line.
fn thread_cpu(stat: &str) -> Option<(&str, Duration)> {
    // "tid (name) state ...": the name may hold spaces and parentheses, so
    // it ends at the *last* closing parenthesis; utime and stime are fields
    // 14 and 15 of the line, the 12th and 13th after the name.
    let (head, after_name) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, Duration::from_millis((utime + stime) * 10)))
}
