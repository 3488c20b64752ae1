//! Given code that exists in more than one place stays identical to its original.
//!
//! Some given code is copied on purpose: from a step's exercise into its
//! solution (so each crate stands alone), and from step to step (the product
//! and upstream types every step uses). A copy names its original, and
//! `check` (and `cargo test`, see `tidy`) fails as soon as the two differ.
//!
//! A copy names its original (a path from the workbook root) in a header
//! line, ``//! Given code: a copy of `steps/step1_baseline/src/product.rs`.``
//! Header lines of that form (with the blank `//!` line before them, if any)
//! are left out of the comparison, so an original may itself be a copy.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::files;

/// How a copy's header line starts; the original's path follows, in backticks.
pub const MARKER: &str = "//! Given code: a copy of `";

/// Folders searched for copies that declare themselves.
const DIRS: [&str; 3] = ["steps", "solutions", "support"];

/// One declared copy: paths relative to the workbook root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The copy.
    pub copy: PathBuf,
    /// The file it must equal.
    pub original: PathBuf,
}

/// Every copy declared below `root` by a header line.
///
/// # Errors
/// Fails if a file cannot be read.
pub fn declared(root: &Path) -> Result<Vec<Copy>> {
    let mut found = Vec::new();
    for dir in DIRS {
        for path in files::rust_files(&root.join(dir))? {
            let text = files::read_text(&path)?;
            if let Some(original) = text.lines().find_map(original_named_by) {
                let copy = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                found.push(Copy {
                    copy,
                    original: original.into(),
                });
            }
        }
    }
    Ok(found)
}

/// `//! Given code: a copy of `path`.` → `path`.
fn original_named_by(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix(MARKER)?;
    rest.split_once('`').map(|(path, _)| path)
}

/// `// ANCHOR: name` and `// ANCHOR_END: name` mark what the book includes.
/// The solution's copy of given code carries them and the exercise's does
/// not, so they are not part of the comparison.
fn is_book_marker(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("// ANCHOR:") || line.starts_with("// ANCHOR_END:")
}

/// What is wrong with one copy, if anything: missing files, or the first
/// line where it differs from its original.
pub fn drift(root: &Path, copy: &Copy) -> Option<String> {
    let read = |path: &Path| std::fs::read_to_string(root.join(path)).ok();
    let (Some(copied), Some(original)) = (read(&copy.copy), read(&copy.original)) else {
        return Some(format!(
            "{} or its original {} cannot be read",
            copy.copy.display(),
            copy.original.display()
        ));
    };
    let body = |text: &str| -> Vec<String> {
        let mut kept: Vec<String> = Vec::new();
        for line in text.lines().filter(|line| !is_book_marker(line)) {
            if original_named_by(line).is_some() {
                // The header line is a paragraph of its own: its blank `//!`
                // line goes with it.
                if kept.last().is_some_and(|last| last.trim() == "//!") {
                    kept.pop();
                }
                continue;
            }
            kept.push(line.to_string());
        }
        kept
    };
    let (copied, original) = (body(&copied), body(&original));
    if copied == original {
        return None;
    }
    let line = copied
        .iter()
        .zip(&original)
        .position(|(a, b)| a != b)
        .unwrap_or(copied.len().min(original.len()));
    Some(format!(
        "{} differs from its original {} (first at line {} of the copy, not counting its header line)",
        copy.copy.display(),
        copy.original.display(),
        line + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn book_anchor_lines_are_not_part_of_the_comparison() {
        let root = tempfile::tempdir().expect("a temp dir");
        write(
            root.path(),
            "steps/a/src/retry.rs",
            "//! Retry.\npub fn r() {}\n",
        );
        write(
            root.path(),
            "solutions/a/src/retry.rs",
            "//! Retry.\n// ANCHOR: r\npub fn r() {}\n// ANCHOR_END: r\n",
        );
        let copy = Copy {
            copy: PathBuf::from("solutions/a/src/retry.rs"),
            original: PathBuf::from("steps/a/src/retry.rs"),
        };
        assert_eq!(drift(root.path(), &copy), None);

        write(
            root.path(),
            "solutions/a/src/retry.rs",
            "//! Retry.\n// ANCHOR: r\npub fn r() { todo!() }\n// ANCHOR_END: r\n",
        );
        assert!(
            drift(root.path(), &copy).is_some(),
            "a changed line is still drift"
        );
    }

    #[test]
    fn copies_declared_by_header_are_compared_without_their_header() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(
            root,
            "steps/a/src/product.rs",
            "//! Products.\npub struct P;\n",
        );
        write(
            root,
            "solutions/a/src/product.rs",
            "//! Products.\n//!\n//! Given code: a copy of `steps/a/src/product.rs`.\npub struct P;\n",
        );
        write(
            root,
            "steps/b/src/product.rs",
            "//! Products.\n//! Given code: a copy of `steps/a/src/product.rs`.\npub struct Q;\n",
        );

        let copies = declared(root).unwrap();

        assert_eq!(
            copies,
            [
                Copy {
                    copy: "steps/b/src/product.rs".into(),
                    original: "steps/a/src/product.rs".into()
                },
                Copy {
                    copy: "solutions/a/src/product.rs".into(),
                    original: "steps/a/src/product.rs".into()
                },
            ]
        );
        assert_eq!(drift(root, &copies[1]), None);
        let drifted = drift(root, &copies[0]).unwrap();
        assert!(drifted.contains("first at line 2"), "{drifted}");
        let missing = Copy {
            copy: "steps/c/src/x.rs".into(),
            original: "steps/a/src/product.rs".into(),
        };
        assert!(drift(root, &missing).unwrap().contains("cannot be read"));
    }
}
