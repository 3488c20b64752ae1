//! Small file-tree helpers: list, copy, read.
//!
//! Kept apart so backups, the solution diff and the tidy checks walk trees the
//! same way: sorted, skipping `target/` and hidden directories.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use walkdir::{DirEntry, WalkDir};

/// Every file below `dir`, as paths relative to `dir`, sorted. A missing
/// directory has no files.
pub fn relative_files(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    if !dir.is_dir() {
        return Ok(found);
    }
    // Build output and editor/VCS metadata are never the learner's code.
    let skipped = |entry: &DirEntry| {
        let name = entry.file_name().to_string_lossy();
        entry.depth() > 0
            && entry.file_type().is_dir()
            && (name == "target" || name.starts_with('.'))
    };
    for entry in WalkDir::new(dir)
        .into_iter()
        .filter_entry(|entry| !skipped(entry))
    {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_type().is_file() {
            // strip_prefix cannot fail: the walk starts at `dir`.
            found.insert(entry.path().strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    Ok(found)
}

/// Every `.rs` file below `dir`, as full paths, sorted.
pub fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(relative_files(dir)?
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| dir.join(path))
        .collect())
}

/// Copies every file below `from` to the same relative place below `to`.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for relative in relative_files(from)? {
        copy_file(&from.join(&relative), &to.join(&relative))?;
    }
    Ok(())
}

/// Copies one file, creating the destination's directories.
pub fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Reads a file as text, naming it in the error.
pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
