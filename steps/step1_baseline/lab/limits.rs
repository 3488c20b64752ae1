//! The operating system's limits that the memory experiment runs into.
//!
//! Holding ten thousand requests in flight is cheap for tokio, but the kernel
//! still counts what they use:
//!
//! * every connection is a **file descriptor**, once in the child that opened
//!   it and once in the fake upstream (in this process) that accepted it, and
//!   `ulimit -n` (`RLIMIT_NOFILE`) caps both processes;
//! * every thread is a **kernel task**: `ulimit -u` (`RLIMIT_NPROC`, which
//!   counts threads too), `kernel.threads-max`, and `vm.max_map_count`, since
//!   each thread's stack and its guard page are two memory mappings;
//! * every connection to one address needs its own **local port**, drawn from
//!   `net.ipv4.ip_local_port_range`.
//!
//! The experiment holds as many requests as fit and says which limit stopped
//! it, rather than failing half-way with "too many open files". Everything is
//! read from Linux's `/proc`; elsewhere nothing is known and nothing is capped.

use std::fmt::Write as _;

/// File descriptors, threads and ports kept free for everything else a
/// process does (its runtime, its client, its standard streams).
const RESERVE: u64 = 256;

/// What this machine allows, as far as `/proc` says.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The soft `RLIMIT_NOFILE` of this process; the child inherits it.
    open_files: Option<u64>,
    /// File descriptors this process has open already.
    open_now: Option<u64>,
    /// The tightest of the thread limits, and its name.
    threads: Option<(u64, &'static str)>,
    /// How many local ports one destination can be reached from.
    ports: Option<u64>,
}

impl Limits {
    /// Reads the limits as they are now.
    pub fn read() -> Limits {
        let processes = limits_field("Max processes").map(|limit| (limit, "`ulimit -u`"));
        let threads_max =
            proc_number("/proc/sys/kernel/threads-max").map(|limit| (limit, "kernel.threads-max"));
        // Two mappings per thread: its stack and the guard page below it.
        let mappings = proc_number("/proc/sys/vm/max_map_count")
            .map(|limit| (limit / 2, "vm.max_map_count (two mappings per thread)"));
        let threads = [processes, threads_max, mappings]
            .into_iter()
            .flatten()
            .min_by_key(|&(limit, _)| limit);
        Limits {
            open_files: limits_field("Max open files"),
            open_now: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as u64),
            threads,
            ports: local_port_count(),
        }
    }

    /// One line for the lab's header: what the experiment has to work with.
    pub fn summary(&self) -> String {
        let show = |value: Option<u64>| value.map_or("unknown".to_owned(), |v| v.to_string());
        format!(
            "limits: {} open files (`ulimit -n`), {} threads ({}), {} local ports per destination",
            show(self.open_files),
            show(self.threads.map(|(limit, _)| limit)),
            self.threads.map_or("unknown", |(_, name)| name),
            show(self.ports),
        )
    }

    /// How many of `wanted` requests fit, if each holds `connections` open
    /// (each to a different fake upstream) and, with `one_thread_each`, a
    /// thread of its own; and, when fewer fit, a sentence saying why.
    pub fn fit(
        &self,
        wanted: usize,
        connections: usize,
        one_thread_each: bool,
    ) -> (usize, Option<String>) {
        let connections = connections.max(1) as u64;
        let mut fits = wanted as u64;
        let mut reasons = String::new();

        if let Some(open_files) = self.open_files {
            // The fakes live in this process, so it is the tighter of the two.
            let free = open_files.saturating_sub(self.open_now.unwrap_or(0) + RESERVE);
            if free / connections < fits {
                fits = free / connections;
                let _ = write!(
                    reasons,
                    "{wanted} requests with {connections} connection(s) each need {} open files here \
                     and as many in the child, but `ulimit -n` is {open_files} and this process has \
                     {} open already (raise it with `ulimit -n 65536` if the hard limit, \
                     `ulimit -Hn`, allows); ",
                    wanted as u64 * connections,
                    self.open_now.unwrap_or(0),
                );
            }
        }
        if let (true, Some((limit, name))) = (one_thread_each, self.threads) {
            let free = limit.saturating_sub(RESERVE);
            if free < fits {
                fits = free;
                let _ = write!(
                    reasons,
                    "{wanted} threads exceed {name}, which is {limit}; "
                );
            }
        }
        if let Some(ports) = self.ports {
            let free = ports.saturating_sub(RESERVE);
            if free < fits {
                fits = free;
                let _ = write!(
                    reasons,
                    "{wanted} connections to one address need more than the {ports} local ports of \
                     net.ipv4.ip_local_port_range; "
                );
            }
        }

        let fits = usize::try_from(fits).unwrap_or(wanted).min(wanted);
        let reasons = reasons.trim_end_matches("; ");
        (fits, (fits < wanted).then(|| reasons.to_owned()))
    }
}

/// The soft limit named `name` in `/proc/self/limits` (`None` if unlimited
/// or unknown).
fn limits_field(name: &str) -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with(name))?;
    // "Max open files            20000                20000                files"
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// A file in `/proc` that holds one number.
fn proc_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The size of the ephemeral port range, e.g. 28,232 for `32768 60999`.
fn local_port_count() -> Option<u64> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut bounds = range.split_whitespace().map(str::parse::<u64>);
    match (bounds.next()?, bounds.next()?) {
        (Ok(low), Ok(high)) if high >= low => Some(high - low + 1),
        _ => None,
    }
}
