//! File descriptors: the limit this one process runs into past the knee.
//!
//! The lab runs the generator, the edge and the fakes in one process, so
//! every loopback connection costs it *two* descriptors, one for each end:
//! a page in flight holds one connection from the generator to the edge and
//! one from the edge to each of the three upstreams, 8 descriptors, more
//! with a hedge or a retry. Separate processes would each have a limit of
//! their own; here they share one (`ulimit -n`, `RLIMIT_NOFILE`). An
//! earlier version of this lab let the open loop keep up to 10,000 requests
//! outstanding, hit the limit past the knee, and measured "too many open
//! files" (failed connects, and transport errors that opened breakers on
//! healthy upstreams) instead of the service.
//!
//! So the open loop's outstanding requests are capped to what fits
//! ([`max_outstanding`]); an arrival past the cap is counted as the
//! generator's error `dropped: too many outstanding`, not sent. And each
//! cell reports the most descriptors it held ([`Watch`]), so a run that
//! still came near the limit says so. Read from Linux's `/proc`; elsewhere
//! nothing is known and the cap stays at the lab's default.
//!
//! Given: this whole file (lab code; there is nothing to write in it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The open loop's cap where the limit is unknown, or high enough.
pub const DEFAULT_MAX_OUTSTANDING: usize = 10_000;

/// Descriptors one outstanding page can hold: two ends of its own
/// connection, two ends of each of three upstream calls, and one more for
/// a hedge or retry now and then.
const FILES_PER_PAGE: u64 = 9;

/// Descriptors kept for everything else: runtimes, clients' idle pools,
/// the scraper, the report's files.
const RESERVE: u64 = 512;

/// How often a [`Watch`] counts the open descriptors. Counting lists
/// `/proc/self/fd`, thousands of entries under load, so not too often.
const WATCH_PERIOD: Duration = Duration::from_millis(200);

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let name = "Max open files";
    let line = limits.lines().find(|line| line.starts_with(name))?;
    // "Max open files            20000                20000                files"
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Descriptors this process holds now.
fn open_now() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count() as u64)
}

/// The open loop's cap on outstanding requests: as many pages as fit in
/// `limit` descriptors, at most [`DEFAULT_MAX_OUTSTANDING`].
pub fn max_outstanding(limit: Option<u64>) -> usize {
    limit.map_or(DEFAULT_MAX_OUTSTANDING, |limit| {
        let pages = limit.saturating_sub(RESERVE) / FILES_PER_PAGE;
        usize::try_from(pages)
            .unwrap_or(usize::MAX)
            .clamp(1, DEFAULT_MAX_OUTSTANDING)
    })
}

/// The most descriptors held since the last [`Watch::reset`].
#[derive(Clone, Default)]
pub struct Watch {
    peak: Arc<AtomicU64>,
}

impl Watch {
    /// Counts for ever on the runtime that polls it (spawn it there).
    pub async fn count(self) {
        loop {
            if let Some(open) = open_now() {
                self.peak.fetch_max(open, Ordering::Relaxed);
            }
            tokio::time::sleep(WATCH_PERIOD).await;
        }
    }

    /// Forgets the peak: a cell starts.
    pub fn reset(&self) {
        self.peak.store(open_now().unwrap_or(0), Ordering::Relaxed);
    }

    /// The peak since the last reset (0 where `/proc` is unknown).
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}
