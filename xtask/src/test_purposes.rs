//! A test target's test functions in file order, each with its one-line
//! purpose (its `///` doc comment).
//!
//! The workbook's test files put a one-line doc comment before every test's
//! attributes. The runner prints it next to ✓/✗, so a learner sees what a
//! test demands without opening the file, and lists the tests in the order
//! of the file (the teaching order), following `mod name;` into the files of
//! the target's modules (a step split into parts). A line scan is enough for
//! that convention; it does not try to be a Rust parser.

use std::path::{Path, PathBuf};

/// A function of a test target: `breaker::opens_after_five` and its purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFn {
    /// Its path below the target's root, as libtest names tests.
    pub path: String,
    /// Its doc comment, lines joined by spaces.
    pub purpose: Option<String>,
}

/// The functions of the test target whose root file is `root`, in file
/// order, modules' files included where they are declared. Files that
/// cannot be read are skipped: they only cost the order and purposes.
pub fn read_target(root: &Path) -> Vec<TestFn> {
    let mut found = Vec::new();
    if let Ok(source) = std::fs::read_to_string(root) {
        read_module(&source, root, true, "", &mut found);
    }
    found
}

/// Reads one file of the target. `owns_dir`: a crate root or `mod.rs`,
/// whose submodules sit next to it rather than in a folder named after it.
fn read_module(source: &str, file: &Path, owns_dir: bool, prefix: &str, found: &mut Vec<TestFn>) {
    let dir = file.parent().unwrap_or(Path::new(""));
    let children = match (owns_dir, file.file_stem()) {
        (false, Some(stem)) => dir.join(stem),
        _ => dir.to_path_buf(),
    };
    let mut doc: Vec<&str> = Vec::new();
    let mut path_attribute: Option<PathBuf> = None;
    for line in source.lines().map(str::trim) {
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.trim());
            continue;
        }
        if let Some(path) = line.strip_prefix("#[path = \"") {
            path_attribute = Some(dir.join(path.trim_end_matches("\"]")));
        } else if line.starts_with("#[") || line.is_empty() && doc.is_empty() {
            // Attributes sit between the doc comment and the item.
            continue;
        } else if let Some((name, ";")) = item_name(line, "mod ") {
            // `mod name;`: a module in a file of its own (not `mod name {`).
            let by_attribute = path_attribute.take();
            let owns = by_attribute.is_some();
            let candidates = [
                children.join(format!("{name}.rs")),
                children.join(name).join("mod.rs"),
            ];
            let module =
                by_attribute.or_else(|| candidates.into_iter().find(|path| path.is_file()));
            if let Some(module) = module
                && let Ok(source) = std::fs::read_to_string(&module)
            {
                let owns = owns || module.ends_with("mod.rs");
                read_module(&source, &module, owns, &format!("{prefix}{name}::"), found);
            }
        } else if let Some((name, _)) = item_name(line, "fn ") {
            let purpose = doc.join(" ").trim().to_string();
            found.push(TestFn {
                path: format!("{prefix}{name}"),
                purpose: (!purpose.is_empty()).then_some(purpose),
            });
        }
        doc.clear();
    }
}

/// The name an item line declares after `keyword` (`fn `, `mod `), past
/// any `pub`, `async` or `unsafe`, and what follows the name:
/// `pub async fn name(` → `("name", "(")`.
fn item_name<'a>(line: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let mut rest = line;
    for prefix in ["pub ", "pub(crate) ", "async ", "unsafe ", "async "] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix(keyword)?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    (end > 0).then(|| rest.split_at(end))
}

/// Where the libtest test `name` is among `functions`: by its full path, else
/// (a test in an inline module) by its function name.
pub fn position(functions: &[TestFn], name: &str) -> Option<usize> {
    let short = name.rsplit("::").next().unwrap_or(name);
    let short_of = |f: &TestFn| f.path.rsplit("::").next() == Some(short);
    functions
        .iter()
        .position(|f| f.path == name)
        .or_else(|| functions.iter().position(short_of))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"
//! Tests for step 1.

use std::time::Duration;

mod breaker;
#[path = "elsewhere/odd.rs"]
mod odd;

/// The concurrent fetch takes about the slowest upstream's latency, not the sum.
#[tokio::test]
async fn concurrent_fetch_takes_the_slowest_latency() {}

/// A failing upstream is named in the error.
#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::too_many_lines)]
async fn a_failing_upstream_is_named() -> anyhow::Result<()> { Ok(()) }

/// The blocking version returns the same product
/// when run on plain threads.
#[test]
fn blocking_matches() {}

#[test]
fn undocumented() {}

mod nested {
    /// Inside a module.
    #[test]
    fn inner() {}
}
"#;

    fn target() -> (tempfile::TempDir, Vec<TestFn>) {
        let dir = tempfile::tempdir().unwrap();
        let write = |relative: &str, text: &str| {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("tests/step1/main.rs", SOURCE);
        write(
            "tests/step1/breaker.rs",
            "mod deep;\n/// Opens.\n#[test]\nfn opens() {}\n",
        );
        write("tests/step1/breaker/deep.rs", "#[test]\nfn deepest() {}\n");
        write(
            "tests/step1/elsewhere/odd.rs",
            "/// Odd.\n#[test]\nfn odd_one() {}\n",
        );
        let functions = read_target(&dir.path().join("tests/step1/main.rs"));
        (dir, functions)
    }

    #[test]
    fn tests_come_in_file_order_with_their_modules_files_where_declared() {
        let (_dir, functions) = target();
        let paths: Vec<_> = functions.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "breaker::deep::deepest",
                "breaker::opens",
                "odd::odd_one",
                "concurrent_fetch_takes_the_slowest_latency",
                "a_failing_upstream_is_named",
                "blocking_matches",
                "undocumented",
                "inner",
            ]
        );
    }

    #[test]
    fn purposes_come_from_the_doc_comment_before_the_attributes() {
        let (_dir, functions) = target();
        let purpose = |name: &str| {
            functions[position(&functions, name).unwrap()]
                .purpose
                .clone()
        };
        assert_eq!(purpose("breaker::opens").as_deref(), Some("Opens."));
        assert_eq!(
            purpose("a_failing_upstream_is_named").as_deref(),
            Some("A failing upstream is named in the error.")
        );
        assert_eq!(
            purpose("blocking_matches").as_deref(),
            Some("The blocking version returns the same product when run on plain threads.")
        );
        assert_eq!(purpose("undocumented"), None);
        assert_eq!(
            purpose("nested::inner").as_deref(),
            Some("Inside a module.")
        );
        assert_eq!(position(&functions, "missing"), None);
    }
}
