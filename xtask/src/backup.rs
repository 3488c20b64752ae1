//! Backups of the learner's code before `solution --apply` or `reset` replace it.
//!
//! Nothing a learner wrote is ever lost: before the runner overwrites
//! `steps/<name>/src/` (or `tests/`, for a step where the learner writes the
//! tests), it copies that directory to
//! `.workbook/backups/<name>-<UTC timestamp>/<dir>/` and says where.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::files;
use crate::layout::Layout;

/// Copies `steps/<name>/src/` into a fresh backup directory and returns the
/// backup's root (`.workbook/backups/<name>-<timestamp>/`).
pub fn back_up_learner_src(layout: &Layout, name: &str) -> Result<PathBuf> {
    back_up_learner_dir(layout, name, "src")
}

/// Copies `steps/<name>/<dir>/` into a fresh backup directory and returns
/// the backup's root (`.workbook/backups/<name>-<timestamp>/`).
pub fn back_up_learner_dir(layout: &Layout, name: &str, dir: &str) -> Result<PathBuf> {
    let source = layout.step_dir(name).join(dir);
    let backup = fresh_backup_dir(layout, name, SystemTime::now())?;
    files::copy_tree(&source, &backup.join(dir))
        .with_context(|| format!("cannot back up {}", source.display()))?;
    Ok(backup)
}

/// A directory name that does not exist yet: two backups within one second
/// get `-2`, `-3`, ... rather than overwriting each other.
fn fresh_backup_dir(layout: &Layout, name: &str, now: SystemTime) -> Result<PathBuf> {
    let backups = layout.backups_dir();
    std::fs::create_dir_all(&backups)
        .with_context(|| format!("cannot create {}", backups.display()))?;
    let stem = format!("{name}-{}", utc_timestamp(now));
    let mut candidate = backups.join(&stem);
    let mut counter = 2;
    // create_dir (not create_dir_all) fails if the directory exists, which
    // makes the check and the claim one step.
    loop {
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                candidate = backups.join(format!("{stem}-{counter}"));
                counter += 1;
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot create {}", candidate.display()));
            }
        }
    }
}

/// `YYYYMMDD-HHMMSS` in UTC: sorts by time and is valid on every file system.
pub fn utc_timestamp(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0);
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        of_day / 3600,
        (of_day % 3600) / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`), so the runner needs no date crate for one file name.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_dates_and_times() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "19700101-000000");
        // 2024-02-29 12:34:56 UTC, a leap day.
        let leap_day = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(utc_timestamp(leap_day), "20240229-123456");
    }

    #[test]
    fn a_backup_copies_the_learner_src_and_never_reuses_a_directory() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::at(root.path().to_path_buf());
        let src = layout.step_dir("step1_baseline").join("src");
        std::fs::create_dir_all(src.join("nested")).unwrap();
        std::fs::write(src.join("lib.rs"), "// mine\n").unwrap();
        std::fs::write(src.join("nested/more.rs"), "// more\n").unwrap();

        let first = back_up_learner_src(&layout, "step1_baseline").unwrap();
        let second = back_up_learner_src(&layout, "step1_baseline").unwrap();

        assert_ne!(first, second);
        for backup in [&first, &second] {
            assert!(backup.starts_with(layout.backups_dir()));
            let text = std::fs::read_to_string(backup.join("src/lib.rs")).unwrap();
            assert_eq!(text, "// mine\n");
            assert!(backup.join("src/nested/more.rs").is_file());
        }
    }
}
