//! Checks that every `{{#include}}` in the book resolves to real, non-empty code.
//!
//! mdBook renders an empty code block, silently, when an include's anchor is
//! missing or its line range is past the end of the file. The book's code is
//! meant to be the tested code, so `check` resolves every include itself,
//! following mdBook's rules: `{{#include path}}`, `path:anchor`, `path:N`
//! (one line), `path:N:M`, `path:N:`, `path::M` (1-based, inclusive), and the
//! same for `{{#rustdoc_include ...}}`; anchors are `ANCHOR: name` ...
//! `ANCHOR_END: name` in the included file, and anchor lines are left out.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::files;

/// One include directive found in a markdown file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The markdown file.
    pub markdown: PathBuf,
    /// 1-based line of the directive.
    pub line: usize,
    /// The directive's argument, e.g. `../../solutions/x/src/lib.rs:concurrent`.
    pub argument: String,
}

/// An include that does not resolve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeProblem {
    /// The include.
    pub include: Include,
    /// What is wrong.
    pub problem: String,
}

/// What part of a file an include selects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selection {
    Whole,
    Anchor(String),
    /// 1-based, inclusive; `None` is open-ended.
    Lines(Option<usize>, Option<usize>),
}

/// Checks every include in every `.md` file below `src_dir`. Returns how many
/// includes were found and the ones that do not resolve.
///
/// # Errors
/// Fails only if the book's directory cannot be read.
pub fn check_book(src_dir: &Path) -> Result<(usize, Vec<IncludeProblem>)> {
    let mut count = 0;
    let mut problems = Vec::new();
    for relative in files::relative_files(src_dir)? {
        if relative.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let markdown = src_dir.join(&relative);
        let text = files::read_text(&markdown)?;
        for include in find_includes(&markdown, &text) {
            count += 1;
            if let Err(problem) = resolve(&include) {
                problems.push(IncludeProblem { include, problem });
            }
        }
    }
    Ok((count, problems))
}

/// Finds `{{#include ...}}` and `{{#rustdoc_include ...}}` directives, skipping
/// escaped ones (`\{{#include ...}}`), which mdBook prints literally.
pub fn find_includes(markdown: &Path, text: &str) -> Vec<Include> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut rest = line;
        let mut consumed = 0;
        while let Some(start) = rest.find("{{#") {
            let escaped = start > 0 && rest[..start].ends_with('\\');
            let after = &rest[start + 3..];
            let Some(end) = after.find("}}") else {
                break;
            };
            let body = after[..end].trim();
            let argument = body
                .strip_prefix("include ")
                .or_else(|| body.strip_prefix("rustdoc_include "));
            if let (Some(argument), false) = (argument, escaped) {
                found.push(Include {
                    markdown: markdown.to_path_buf(),
                    line: index + 1,
                    argument: argument.trim().to_string(),
                });
            }
            consumed += start + 3 + end + 2;
            rest = &line[consumed..];
        }
    }
    found
}

/// The text an include would produce, or why it would produce nothing useful.
pub fn resolve(include: &Include) -> Result<String, String> {
    let (path, selection) = split_argument(&include.argument);
    let base = include.markdown.parent().unwrap_or(Path::new("."));
    let target = base.join(path);
    let text = std::fs::read_to_string(&target)
        .map_err(|error| format!("cannot read {}: {error}", target.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let selected: Vec<&str> = match &selection {
        Selection::Whole => lines.clone(),
        Selection::Anchor(name) => anchored(&lines, name)
            .map_err(|problem| format!("{problem} in {}", target.display()))?,
        Selection::Lines(start, end) => {
            let first = start.unwrap_or(1);
            let last = end.unwrap_or(lines.len());
            if first == 0 || first > lines.len() || last > lines.len() || first > last {
                return Err(format!(
                    "lines {}:{} are out of range: {} has {} lines",
                    start.map_or(String::new(), |n| n.to_string()),
                    end.map_or(String::new(), |n| n.to_string()),
                    target.display(),
                    lines.len()
                ));
            }
            lines[first - 1..last].to_vec()
        }
    };
    // mdBook drops every anchor marker line from what it includes.
    let kept: Vec<&str> = selected
        .into_iter()
        .filter(|line| anchor_name(line, "ANCHOR:").is_none())
        .filter(|line| anchor_name(line, "ANCHOR_END:").is_none())
        .collect();
    let included = kept.join("\n");
    if included.trim().is_empty() {
        return Err(format!("the included text is empty ({})", target.display()));
    }
    Ok(included)
}

/// `path:rest` → the path and what `rest` selects, as mdBook reads it.
fn split_argument(argument: &str) -> (&str, Selection) {
    // mdBook takes the first word as the path and selection.
    let argument = argument.split_whitespace().next().unwrap_or("");
    let Some((path, rest)) = argument.split_once(':') else {
        return (argument, Selection::Whole);
    };
    let mut parts = rest.splitn(2, ':');
    let first = parts.next().unwrap_or("");
    let second = parts.next();
    let start = first.parse::<usize>().ok();
    if start.is_none() && !first.is_empty() {
        return (path, Selection::Anchor(first.to_string()));
    }
    let selection = match (start, second) {
        (Some(n), None) => Selection::Lines(Some(n), Some(n)),
        (start, Some(end)) => Selection::Lines(start, end.parse().ok()),
        (None, None) => Selection::Whole,
    };
    (path, selection)
}

/// The lines strictly between `ANCHOR: name` and `ANCHOR_END: name`.
fn anchored<'a>(lines: &[&'a str], name: &str) -> Result<Vec<&'a str>, String> {
    let start = lines
        .iter()
        .position(|line| anchor_name(line, "ANCHOR:") == Some(name))
        .ok_or_else(|| format!("anchor `{name}` (ANCHOR: {name}) not found"))?;
    let end = lines[start + 1..]
        .iter()
        .position(|line| anchor_name(line, "ANCHOR_END:") == Some(name))
        .ok_or_else(|| format!("anchor `{name}` has no ANCHOR_END: {name}"))?;
    Ok(lines[start + 1..start + 1 + end].to_vec())
}

/// The name after `marker` on `line` (letters, digits, `_`, `-`), if any.
fn anchor_name<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let at = line.find(marker)?;
    let rest = line[at + marker.len()..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "\
//! A solution file.
// ANCHOR: concurrent
pub async fn fetch_all() {
    // ANCHOR: inner
    let x = 1;
    // ANCHOR_END: inner
}
// ANCHOR_END: concurrent
// ANCHOR: empty
// ANCHOR_END: empty
// ANCHOR: unterminated
fn tail() {}
";

    /// A book in a temporary directory: book/src/chapter.md including
    /// solutions/s/src/lib.rs, with `includes` as the chapter's directives.
    fn book_with(includes: &str) -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("book/src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(root.path().join("solutions/s/src")).unwrap();
        std::fs::write(root.path().join("solutions/s/src/lib.rs"), CODE).unwrap();
        std::fs::write(
            src.join("chapter.md"),
            format!("# Chapter\n\n```rust\n{includes}\n```\n"),
        )
        .unwrap();
        (root, src)
    }

    fn problems_of(includes: &str) -> Vec<String> {
        let (_root, src) = book_with(includes);
        let (_, problems) = check_book(&src).unwrap();
        problems.into_iter().map(|p| p.problem).collect()
    }

    #[test]
    fn a_good_anchor_include_resolves_without_marker_lines() {
        let (_root, src) = book_with("{{#include ../../solutions/s/src/lib.rs:concurrent}}");
        let (count, problems) = check_book(&src).unwrap();
        assert_eq!((count, problems), (1, vec![]));

        let include = find_includes(
            &src.join("chapter.md"),
            "{{#include ../../solutions/s/src/lib.rs:concurrent}}",
        );
        let text = resolve(&include[0]).unwrap();
        assert_eq!(text, "pub async fn fetch_all() {\n    let x = 1;\n}");
    }

    #[test]
    fn line_ranges_and_whole_files_resolve() {
        for good in [
            "{{#include ../../solutions/s/src/lib.rs}}",
            "{{#include ../../solutions/s/src/lib.rs:3}}",
            "{{#include ../../solutions/s/src/lib.rs:3:5}}",
            "{{#include ../../solutions/s/src/lib.rs:3:}}",
            "{{#rustdoc_include ../../solutions/s/src/lib.rs::3}}",
        ] {
            assert_eq!(problems_of(good), Vec::<String>::new(), "{good}");
        }
    }

    #[test]
    fn a_missing_file_is_reported() {
        let problems = problems_of("{{#include ../../solutions/s/src/nope.rs:concurrent}}");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("cannot read"), "{problems:?}");
    }

    #[test]
    fn a_missing_anchor_or_anchor_end_is_reported() {
        let missing = problems_of("{{#include ../../solutions/s/src/lib.rs:concurrentt}}");
        assert!(missing[0].contains("`concurrentt`"), "{missing:?}");
        // A prefix of an existing anchor's name is not that anchor.
        let prefix = problems_of("{{#include ../../solutions/s/src/lib.rs:concur}}");
        assert!(prefix[0].contains("not found"), "{prefix:?}");
        let unterminated = problems_of("{{#include ../../solutions/s/src/lib.rs:unterminated}}");
        assert!(unterminated[0].contains("ANCHOR_END"), "{unterminated:?}");
    }

    #[test]
    fn an_empty_include_is_reported() {
        let problems = problems_of("{{#include ../../solutions/s/src/lib.rs:empty}}");
        assert!(problems[0].contains("empty"), "{problems:?}");
    }

    #[test]
    fn out_of_range_lines_are_reported() {
        let problems = problems_of("{{#include ../../solutions/s/src/lib.rs:40:50}}");
        assert!(problems[0].contains("out of range"), "{problems:?}");
        let problems = problems_of("{{#include ../../solutions/s/src/lib.rs:2:99}}");
        assert!(problems[0].contains("out of range"), "{problems:?}");
    }

    #[test]
    fn escaped_directives_and_other_helpers_are_skipped() {
        let found = find_includes(
            Path::new("book/src/x.md"),
            "\\{{#include nope.rs}} {{#title T}} {{#include a.rs:x}} and {{#rustdoc_include b.rs}}",
        );
        let arguments: Vec<_> = found.iter().map(|i| i.argument.as_str()).collect();
        assert_eq!(arguments, ["a.rs:x", "b.rs"]);
    }
}
