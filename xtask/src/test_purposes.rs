//! Each test's one-line purpose, read from its `///` doc comment.
//!
//! The workbook's test files put a one-line doc comment before every test's
//! attributes. The runner prints it next to ✓/✗, so a learner sees what a
//! test demands without opening the file. A line scan is enough for that
//! convention; it does not try to be a Rust parser.

use std::collections::BTreeMap;

/// Test function name → the text of its doc comment (lines joined by spaces).
pub fn extract_purposes(source: &str) -> BTreeMap<String, String> {
    let mut purposes = BTreeMap::new();
    let mut doc: Vec<String> = Vec::new();
    for line in source.lines() {
        let line = line.trim();
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.trim().to_string());
        } else if line.starts_with("#[") || line.is_empty() && doc.is_empty() {
            // Attributes sit between the doc comment and the function.
        } else if let Some(name) = function_name(line) {
            let text = doc.join(" ").trim().to_string();
            if !text.is_empty() {
                purposes.insert(name.to_string(), text);
            }
            doc.clear();
        } else {
            doc.clear();
        }
    }
    purposes
}

/// `async fn name(` / `pub fn name<T>(` → `name`.
fn function_name(line: &str) -> Option<&str> {
    let mut rest = line;
    for prefix in ["pub ", "pub(crate) ", "async ", "unsafe "] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    (end > 0).then(|| &rest[..end])
}

/// The purpose of the libtest test `name` (possibly `module::name`).
pub fn purpose_of<'a>(purposes: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    let short = name.rsplit("::").next().unwrap_or(name);
    purposes
        .get(name)
        .or_else(|| purposes.get(short))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"
//! Tests for step 1.

use std::time::Duration;

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

/// A helper, documented but not a test.
fn helper() {}

#[test]
fn undocumented() {}

mod nested {
    /// Inside a module.
    #[test]
    fn inner() {}
}
"#;

    #[test]
    fn purposes_come_from_the_doc_comment_before_the_attributes() {
        let purposes = extract_purposes(SOURCE);
        assert_eq!(
            purposes["concurrent_fetch_takes_the_slowest_latency"],
            "The concurrent fetch takes about the slowest upstream's latency, not the sum."
        );
        assert_eq!(
            purposes["a_failing_upstream_is_named"],
            "A failing upstream is named in the error."
        );
        assert_eq!(
            purposes["blocking_matches"],
            "The blocking version returns the same product when run on plain threads."
        );
        assert!(!purposes.contains_key("undocumented"));
    }

    #[test]
    fn a_module_path_finds_the_purpose_by_function_name() {
        let purposes = extract_purposes(SOURCE);
        assert_eq!(
            purpose_of(&purposes, "nested::inner"),
            Some("Inside a module.")
        );
        assert_eq!(purpose_of(&purposes, "undocumented"), None);
    }
}
