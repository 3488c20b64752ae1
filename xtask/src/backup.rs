//! Backups of the learner's code before `solution --apply` or `reset` replace it.
//!
//! Nothing a learner wrote is ever lost: before the runner overwrites
//! `steps/<name>/src/` (or `tests/`, for a step where the learner writes the
//! tests), it copies that directory to
//! `.workbook/backups/<name>-<UTC timestamp>/<dir>/` and says where.

use std::path::PathBuf;
use std::time::SystemTime;

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
    // RFC 3339 (`2024-02-29T12:34:56Z`) without the characters a file name
    // should not hold.
    let rfc3339 = humantime::format_rfc3339_seconds(time).to_string();
    rfc3339.replace(['-', ':', 'Z'], "").replace('T', "-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
