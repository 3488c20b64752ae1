//! The workbook's conventions, checked over its files: by `check`, and by a
//! plain `cargo test` (this module's tests run them on the real workbook, the
//! way rust-analyzer's `tidy` tests do).
//!
//! - Every `.rs` file opens with a `//!` header saying what it is for.
//! - No test is ever ignored or expected to panic (`#[ignore]` hides a red
//!   test; `#[should_panic]` passes on any panic, a stub's `todo!()` included).
//! - Every `{{#include}}` in the book resolves to non-empty code.
//! - Given code copied into several places is identical to its original.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::book_includes;
use crate::copies;
use crate::files;
use crate::layout::Layout;
use crate::tally;

/// Folders whose `.rs` files must open with a `//!` header.
const HEADER_DIRS: [&str; 4] = ["steps", "solutions", "support", "xtask"];
/// Folders where tests live, so where `#[ignore]`/`#[should_panic]` are banned.
const TEST_DIRS: [&str; 2] = ["steps", "solutions"];

/// A convention: what `check` prints for it, and the check itself.
pub struct Convention {
    /// The check's line in `check`'s log.
    pub name: &'static str,
    /// `Err` lists every place that breaks it, one per line.
    pub check: fn(&Layout) -> Result<(), String>,
}

/// Every convention, in the order `check` prints them.
pub const CONVENTIONS: [Convention; 4] = [
    Convention {
        name: "every .rs file in steps/ solutions/ support/ xtask/ opens with a //! header",
        check: headers,
    },
    Convention {
        name: "no #[ignore] or #[should_panic] in steps/ or solutions/",
        check: no_skipped_tests,
    },
    Convention {
        name: "every {{#include}} in book/src resolves to non-empty code",
        check: includes,
    },
    Convention {
        name: "given code copied into several places is identical to its original",
        check: given_copies,
    },
];

fn headers(layout: &Layout) -> Result<(), String> {
    let mut problems = Vec::new();
    for path in rust_files(layout.root(), &HEADER_DIRS)? {
        if !has_module_header(&read(&path)?) {
            let path = layout.display(&path);
            problems.push(format!("{path}: no //! header saying what the file is for"));
        }
    }
    tally::outcome(problems)
}

fn no_skipped_tests(layout: &Layout) -> Result<(), String> {
    let mut problems = Vec::new();
    for path in rust_files(layout.root(), &TEST_DIRS)? {
        for (index, line) in read(&path)?.lines().enumerate() {
            if is_forbidden_attribute(line) {
                let path = layout.display(&path);
                problems.push(format!("{path}:{}: {}", index + 1, line.trim()));
            }
        }
    }
    tally::outcome(problems)
}

fn includes(layout: &Layout) -> Result<(), String> {
    let src = layout.book_dir().join("src");
    if !src.is_dir() {
        return Err(format!("{} does not exist", src.display()));
    }
    let (_, problems) = book_includes::check_book(&src).map_err(|error| format!("{error:#}"))?;
    let problems = problems.iter().map(|problem| {
        let include = &problem.include;
        format!(
            "{}:{}: {{{{#include {}}}}}: {}",
            layout.display(&include.markdown),
            include.line,
            include.argument,
            problem.problem
        )
    });
    tally::outcome(problems.collect())
}

fn given_copies(layout: &Layout) -> Result<(), String> {
    let declared = copies::declared(layout.root()).map_err(|error| format!("{error:#}"))?;
    let drifted = declared
        .iter()
        .filter_map(|copy| copies::drift(layout.root(), copy));
    tally::outcome(drifted.collect())
}

fn rust_files(root: &Path, dirs: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    for dir in dirs {
        found.extend(files::rust_files(&root.join(dir)).map_err(|error| format!("{error:#}"))?);
    }
    Ok(found)
}

fn read(path: &Path) -> Result<String, String> {
    files::read_text(path).map_err(|error| format!("{error:#}"))
}

/// Whether the first non-blank line starts with `//!`.
pub fn has_module_header(text: &str) -> bool {
    text.lines()
        .find(|line| !line.trim().is_empty())
        .is_some_and(|line| line.trim_start().starts_with("//!"))
}

/// An `#[ignore]` or `#[should_panic]` attribute; comment lines may name them.
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

    /// The real workbook this runner belongs to.
    fn workbook() -> Layout {
        let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
        Layout::at(xtask.parent().unwrap().to_path_buf())
    }

    fn assert_kept(name: &str) {
        let convention = CONVENTIONS.iter().find(|c| c.name.contains(name)).unwrap();
        if let Err(problems) = (convention.check)(&workbook()) {
            panic!("{}:\n{problems}", convention.name);
        }
    }

    #[test]
    fn every_rust_file_opens_with_a_header() {
        assert_kept("//! header");
    }

    #[test]
    fn no_test_is_ignored_or_expects_a_panic() {
        assert_kept("#[ignore]");
    }

    #[test]
    fn every_book_include_and_anchor_resolves() {
        assert_kept("{{#include}}");
    }

    #[test]
    fn given_copies_are_identical_to_their_originals() {
        assert_kept("given code");
    }

    /// Styled text reaches the terminal only through anstream, which strips
    /// the styles from a stream that is not a terminal; std's `println!`
    /// would write escape codes into pipes and logs.
    #[test]
    fn the_runner_prints_through_anstream() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for path in files::rust_files(&src).unwrap() {
            let text = files::read_text(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let words = |line: &str| -> Vec<String> {
                line.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .map(str::to_string)
                    .collect()
            };
            for printer in ["println", "eprintln"] {
                let call = format!("{printer}!(");
                let used = code.lines().any(|line| {
                    line.match_indices(&call).any(|(at, _)| {
                        !line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
                });
                let imported = code.lines().any(|line| {
                    line.starts_with("use anstream::") && words(line).iter().any(|w| w == printer)
                });
                assert!(
                    !used || imported,
                    "{}: `{printer}!` without `use anstream::{printer}`",
                    path.display()
                );
            }
        }
    }
}
