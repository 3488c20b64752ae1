//! Tidy checks over the workbook's Rust files (run by `check`).
//!
//! Two conventions the workbook promises: every file opens with a `//!`
//! header saying what it is for, and no test is ever ignored or expected to
//! panic (`#[ignore]` hides a red test; `#[should_panic]` passes on any panic,
//! including a stub's `todo!()`).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::files;

/// `.rs` files below `dirs` (relative to `root`) whose first non-blank line
/// is not a `//!` comment.
pub fn files_without_header(root: &Path, dirs: &[&str]) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    for dir in dirs {
        for path in files::rust_files(&root.join(dir))? {
            let text = files::read_text(&path)?;
            if !has_module_header(&text) {
                missing.push(path);
            }
        }
    }
    Ok(missing)
}

/// Whether the first non-blank line starts with `//!`.
pub fn has_module_header(text: &str) -> bool {
    text.lines()
        .find(|line| !line.trim().is_empty())
        .is_some_and(|line| line.trim_start().starts_with("//!"))
}

/// `(file, 1-based line, line text)` of every `#[ignore]` or `#[should_panic]`
/// attribute below `dirs`. Comment lines are skipped so prose may name them.
pub fn forbidden_test_attributes(
    root: &Path,
    dirs: &[&str],
) -> Result<Vec<(PathBuf, usize, String)>> {
    let mut found = Vec::new();
    for dir in dirs {
        for path in files::rust_files(&root.join(dir))? {
            let text = files::read_text(&path)?;
            for (index, line) in text.lines().enumerate() {
                if is_forbidden_attribute(line) {
                    found.push((path.clone(), index + 1, line.trim().to_string()));
                }
            }
        }
    }
    Ok(found)
}

fn is_forbidden_attribute(line: &str) -> bool {
    let line = line.trim_start();
    if line.starts_with("//") {
        return false;
    }
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains("#[ignore") || compact.contains("#[should_panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_may_follow_blank_lines_but_nothing_else() {
        assert!(has_module_header("//! What this is.\n"));
        assert!(has_module_header("\n\n  //! Indented is fine.\nfn x() {}"));
        assert!(!has_module_header("// A plain comment.\n//! Too late.\n"));
        assert!(!has_module_header("use std::io;\n"));
        assert!(!has_module_header(""));
    }

    #[test]
    fn ignore_and_should_panic_attributes_are_found_outside_comments() {
        assert!(is_forbidden_attribute("    #[ignore]"));
        assert!(is_forbidden_attribute("#[ignore = \"slow\"]"));
        assert!(is_forbidden_attribute("#[should_panic(expected = \"x\")]"));
        assert!(!is_forbidden_attribute("/// Never use #[ignore] here."));
        assert!(!is_forbidden_attribute("#[tokio::test]"));
    }

    #[test]
    fn the_runner_itself_passes_its_own_tidy_checks() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let missing = files_without_header(root, &["src", "tests"]).unwrap();
        assert!(
            missing.is_empty(),
            "files without a //! header: {missing:?}"
        );
    }
}
