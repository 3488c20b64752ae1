//! A fresh folder per lab run, named after the lab and the time it started.
//!
//! Runs never overwrite each other, so a learner can compare today's numbers with yesterday's
//! and an instructor can keep the run that was projected.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

/// The folder one lab run writes its table, plot and report into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsDir {
    /// The folder, which exists once [`ResultsDir::create`] returns.
    pub path: PathBuf,
}

impl ResultsDir {
    /// Creates `root/<lab>-<YYYYmmdd-HHMMSS>/` (UTC), and `root` itself if needed.
    ///
    /// If that folder already exists (two runs in the same second), a counter is appended:
    /// `<lab>-<timestamp>-2`, `-3`, and so on. An existing folder is never reused.
    ///
    /// # Errors
    ///
    /// If a folder cannot be created (permissions, a file in the way, a full disk).
    pub fn create(root: &Path, lab: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating results folder {}", root.display()))?;

        let stem = format!("{lab}-{}", utc_timestamp(SystemTime::now()));
        for attempt in 1u32.. {
            let name = if attempt == 1 {
                stem.clone()
            } else {
                format!("{stem}-{attempt}")
            };
            let path = root.join(name);
            // `create_dir` (not `create_dir_all`) fails if the folder exists: that is the
            // check, done atomically by the file system, so two labs cannot share a folder.
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(ResultsDir { path }),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("creating results folder {}", path.display()));
                }
            }
        }
        unreachable!("the counter runs out only after four billion runs in one second")
    }

    /// The path of a file inside the folder, e.g. `results.file("p99.svg")`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// `YYYYmmdd-HHMMSS` in UTC. UTC because the standard library knows no time zones, and a
/// timestamp that sorts correctly matters more here than a local clock.
fn utc_timestamp(now: SystemTime) -> String {
    // A clock before 1970 is a broken clock; the epoch is as good a name as any then.
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let days = seconds / 86_400;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// The calendar date `days` after 1970-01-01, by Howard Hinnant's `civil_from_days`
/// (<https://howardhinnant.github.io/date_algorithms.html>), restricted to dates after 1970.
fn civil_date(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that the leap day ends each 400-year era.
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_epoch_is_named_after_the_first_second_of_1970() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "19700101-000000");
    }

    #[test]
    fn a_leap_day_and_its_time_of_day_are_named_correctly() {
        // 2024-02-29 13:45:07 UTC.
        let leap_day = UNIX_EPOCH + Duration::from_secs(1_709_214_307);

        assert_eq!(utc_timestamp(leap_day), "20240229-134507");
    }

    #[test]
    fn the_last_second_of_a_year_is_still_that_year() {
        // 1999-12-31 23:59:59 UTC.
        let last_second = UNIX_EPOCH + Duration::from_secs(946_684_799);

        assert_eq!(utc_timestamp(last_second), "19991231-235959");
    }
}
