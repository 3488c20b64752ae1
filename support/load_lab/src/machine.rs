//! Which machine produced the numbers, and how much memory this process holds.
//!
//! Latency and throughput mean little without the hardware behind them: a report says which
//! machine it ran on, and the book quotes numbers only with that line attached. It also says
//! how busy the machine was (the load average before and after the run), because other
//! programs competing for the CPU lower every number and a learner cannot tell otherwise.

use std::fmt;

/// Also reachable from here, next to the other helpers a lab's `main` sets up first.
#[doc(no_inline)]
pub use crate::progress::progress_bar;

/// A one-line description of the machine a lab ran on.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// The CPU model, e.g. `AMD EPYC 7B13`; `"unknown"` where it cannot be read.
    pub cpu: String,
    /// The cores this process may use (which, in a container, can be fewer than the CPU has).
    pub cores: usize,
    /// Total memory in GiB, when known.
    pub memory_gib: Option<f64>,
    /// Operating system and architecture, e.g. `linux x86_64`.
    pub os: String,
    /// The one-minute load average when the machine was detected, that is before the lab ran
    /// (see [`load_average`]); `None` where it cannot be read.
    pub load_at_start: Option<f64>,
}

impl Machine {
    /// Describes the machine this process runs on.
    ///
    /// On Linux the CPU model comes from `/proc/cpuinfo` and the memory from `/proc/meminfo`;
    /// elsewhere they are `"unknown"` and `None` (asking macOS or Windows would mean running
    /// their own tools, which a portable workbook avoids).
    pub fn detect() -> Machine {
        Machine {
            cpu: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            // `available_parallelism` respects CPU affinity and cgroup quotas, which is what
            // the runtime will actually get. It only fails on exotic platforms.
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: total_memory_gib(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            load_at_start: load_average(),
        }
    }

    /// Whether a load average means other work competed with the lab for the CPU: more
    /// runnable processes, on average, than this process has cores.
    pub fn is_busy(&self, load: f64) -> bool {
        load > self.cores as f64
    }
}

/// The one-minute load average: how many processes were running or waiting for a CPU, on
/// average (Linux's `/proc/loadavg`; `None` elsewhere). It includes the lab itself while it
/// runs, so it means most when read just before and just after a run.
pub fn load_average() -> Option<f64> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().next()?.parse().ok()
}

impl fmt::Display for Machine {
    /// e.g. `AMD EPYC 7B13, 2 cores, 23.4 GiB, linux x86_64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cores = if self.cores == 1 { "core" } else { "cores" };
        write!(f, "{}, {} {cores}, ", self.cpu, self.cores)?;
        match self.memory_gib {
            Some(gib) => write!(f, "{gib:.1} GiB")?,
            None => write!(f, "memory unknown")?,
        }
        write!(f, ", {}", self.os)
    }
}

/// Resident set size of this process in bytes: the memory it actually occupies. `None` where
/// it cannot be read (outside Linux).
///
/// Read from `VmRSS` in `/proc/self/status`, which the kernel reports in kB. (Multiplying the
/// page count in `/proc/self/statm` by 4096 would be wrong on machines with larger pages.)
pub fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kilobytes_field(&status, "VmRSS:").map(|kb| kb * 1024)
}

/// The first `model name` in `/proc/cpuinfo`.
fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// `MemTotal` from `/proc/meminfo`, in GiB.
fn total_memory_gib() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = kilobytes_field(&meminfo, "MemTotal:")?;
    Some(kb as f64 / (1024.0 * 1024.0))
}

/// Reads a `Name:   12345 kB` line from a `/proc` file.
fn kilobytes_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kilobytes_field_is_read_from_proc_text() {
        let status = "Name:\tload_lab\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\n";

        assert_eq!(kilobytes_field(status, "VmRSS:"), Some(12345));
        assert_eq!(kilobytes_field(status, "VmSwap:"), None);
    }

    #[test]
    fn a_machine_displays_as_one_line() {
        let machine = Machine {
            cpu: "AMD EPYC 7B13".to_owned(),
            cores: 2,
            memory_gib: Some(23.43),
            os: "linux x86_64".to_owned(),
            load_at_start: Some(0.5),
        };

        assert_eq!(
            machine.to_string(),
            "AMD EPYC 7B13, 2 cores, 23.4 GiB, linux x86_64"
        );
    }

    #[test]
    fn unknown_memory_is_said_in_words() {
        let machine = Machine {
            cpu: "unknown".to_owned(),
            cores: 1,
            memory_gib: None,
            os: "windows x86_64".to_owned(),
            load_at_start: None,
        };

        assert_eq!(
            machine.to_string(),
            "unknown, 1 core, memory unknown, windows x86_64"
        );
    }
}
