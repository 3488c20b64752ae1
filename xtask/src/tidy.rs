//! The workbook's conventions, checked over its files: by `check`, and by a
//! plain `cargo test` (this module's tests run them on the real workbook, the
//! way rust-analyzer's `tidy` tests do).
//!
//! - Every `.rs` file opens with a `//!` header saying what it is for.
//! - No test is ever ignored or expected to panic (`#[ignore]` hides a red
//!   test; `#[should_panic]` passes on any panic, a stub's `todo!()` included).
//! - Every `{{#include}}` in the book resolves to non-empty code.
//! - Given code (whole copies; `// GIVEN:` regions) is identical to its twin.
//! - Stubs state contracts, not recipes: no `// TODO` in `steps/*/src`
//!   spells out a code call, and every hint ladder has at least three rungs,
//!   of which only the last shows code.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::book_includes;
use crate::copies;
use crate::files;
use crate::layout::Layout;
use crate::steps::Catalogue;
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
pub const CONVENTIONS: [Convention; 6] = [
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
    Convention {
        name: "no // TODO in a stub (steps/*/src) spells out a code call",
        check: todos_without_code,
    },
    Convention {
        name: "every hint topic climbs at least 3 rungs and only its last shows code",
        check: hint_ladders,
    },
];

/// What marks a backticked span as code in a stub's `// TODO`, and in a
/// hint rung (which may also not show a statement or a block).
const CODE_IN_TODO: [&str; 4] = ["(", "::", ".await", "=>"];
const CODE_IN_RUNG: [&str; 6] = ["(", "::", ".await", "=>", ";", "{"];

/// The first backticked span of `text` that holds one of `markers`
/// (`todo!()` is the stub's own placeholder, not the answer).
fn code_in<'a>(text: &'a str, markers: &[&str]) -> Option<&'a str> {
    let mut spans = text.split('`').skip(1).step_by(2);
    spans.find(|span| !span.starts_with("todo!") && markers.iter().any(|m| span.contains(m)))
}

fn todos_without_code(layout: &Layout) -> Result<(), String> {
    let mut problems = Vec::new();
    let stubs = layout.root().join("steps");
    for path in rust_files(layout.root(), &["steps"])? {
        // steps/<crate>/src/...: the stubs' code, not their tests.
        let in_src = path
            .strip_prefix(&stubs)
            .ok()
            .and_then(|p| p.components().nth(1));
        if in_src.is_none_or(|part| part.as_os_str() != "src") {
            continue;
        }
        let mut in_todo = false;
        for (index, line) in read(&path)?.lines().enumerate() {
            let comment = line
                .trim_start()
                .strip_prefix("//")
                .filter(|c| !c.starts_with(['/', '!']));
            in_todo = comment.is_some_and(|c| in_todo || c.trim_start().starts_with("TODO"));
            if let Some(code) = comment
                .filter(|_| in_todo)
                .and_then(|c| code_in(c, &CODE_IN_TODO))
            {
                let path = layout.display(&path);
                problems.push(format!(
                    "{path}:{}: `{code}` spells out the code",
                    index + 1
                ));
            }
        }
    }
    tally::outcome(problems)
}

fn hint_ladders(layout: &Layout) -> Result<(), String> {
    let catalogue = Catalogue::load(layout).map_err(|error| format!("{error:#}"))?;
    let mut problems = Vec::new();
    for step in catalogue.steps() {
        for topic in &step.hints.topic {
            let name = format!("steps/hints/{}.toml: topic `{}`", step.short, topic.name);
            if topic.ladder.len() < 3 {
                problems.push(format!(
                    "{name} has {} rungs, not 3 or more",
                    topic.ladder.len()
                ));
            }
            let before_last = &topic.ladder[..topic.ladder.len().saturating_sub(1)];
            for (rung, text) in before_last.iter().enumerate() {
                if let Some(code) = code_in(text, &CODE_IN_RUNG) {
                    problems.push(format!("{name}, rung {}: `{code}` is code", rung + 1));
                }
            }
        }
    }
    tally::outcome(problems)
}

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
    use crate::steps::StepKind;

    #[test]
    fn a_header_may_follow_blank_lines_but_nothing_else() {
        assert!(has_module_header("//! What this is.\n"));
        assert!(has_module_header("\n\n  //! Indented is fine.\nfn x() {}"));
        assert!(!has_module_header("// A plain comment.\n//! Too late.\n"));
        assert!(!has_module_header("use std::io;\n"));
        assert!(!has_module_header(""));
    }

    #[test]
    fn code_is_a_backticked_call_path_await_or_match_arm() {
        let code = |text| code_in(text, &CODE_IN_RUNG);
        assert_eq!(code("use `tokio::join!` here"), Some("tokio::join!"));
        assert_eq!(code("call `f()` or `x.await`"), Some("f()"));
        assert_eq!(code("`Ok(v) => v`"), Some("Ok(v) => v"));
        assert_eq!(code("the `Semaphore` and `try_join!`, (not code)"), None);
        assert_eq!(code("`let a = 1;`"), Some("let a = 1;"));
        assert_eq!(code_in("`let a = 1;` or `todo!()`", &CODE_IN_TODO), None);
    }

    #[test]
    fn a_todo_comment_and_its_continuation_lines_are_checked_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let stub = "//! Stub.\n/// Docs may say `f()`.\n// TODO: the contract,\n//   then `g::h()`.\n\
                    fn x() {}\n// An ordinary `f()` comment.\n";
        let path = root.path().join("steps/step1_x/src/lib.rs");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, stub).unwrap();
        let problems = todos_without_code(&Layout::at(root.path().to_path_buf())).unwrap_err();
        assert_eq!(
            problems,
            "steps/step1_x/src/lib.rs:4: `g::h()` spells out the code"
        );
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

    /// The types and helpers given inside a learner's file, marked
    /// `// GIVEN: name` … `// GIVEN_END: name` in the exercise and the
    /// solution, are the same in both (`copies::regions`).
    #[test]
    fn given_regions_are_identical_in_exercise_and_solution() {
        let problems = copies::regions::drift(workbook().root()).unwrap();
        assert!(
            problems.is_empty(),
            "given code marked in a learner's file drifted from its twin:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn no_stub_todo_spells_out_code() {
        assert_kept("// TODO");
    }

    #[test]
    fn every_hint_ladder_climbs_to_code_on_its_last_rung_only() {
        assert_kept("hint topic");
    }

    /// `hint` opens the ladder of the first failing test's topic: a test that
    /// no topic claims would send the learner to an unrelated ladder. (A test
    /// is a `#[test]`/`#[tokio::test]` function; its name as libtest prints
    /// it, module path included, must contain one of a topic's `tests`.)
    #[test]
    fn every_test_of_a_code_step_belongs_to_a_hint_topic() {
        let layout = workbook();
        let catalogue = Catalogue::load(&layout).unwrap();
        let mut orphans = Vec::new();
        for step in catalogue
            .steps()
            .iter()
            .filter(|step| step.kind == StepKind::Code)
        {
            let tests = layout.step_dir(&step.name).join("tests");
            for file in files::rust_files(&tests).unwrap() {
                let relative = file.strip_prefix(&tests).unwrap().with_extension("");
                // `tests/step6/breaker.rs` holds `breaker::…`; `tests/step6.rs` the root.
                let module: Vec<String> = relative
                    .iter()
                    .skip(1)
                    .map(|part| part.to_string_lossy().into_owned())
                    .collect();
                let prefix: String = module.iter().map(|part| format!("{part}::")).collect();
                let text = files::read_text(&file).unwrap();
                let mut after_test_attribute = false;
                for line in text.lines().map(str::trim) {
                    if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
                        after_test_attribute = true;
                    } else if after_test_attribute && let Some(at) = line.find("fn ") {
                        let name = line[at + 3..].split(['(', '<']).next().unwrap_or_default();
                        let path = format!("{prefix}{name}");
                        let claimed = step.hints.topic.iter().any(|topic| {
                            topic.tests.iter().any(|part| path.contains(part.as_str()))
                        });
                        if !claimed {
                            orphans.push(format!("{}: {path}", step.short));
                        }
                        after_test_attribute = false;
                    }
                }
            }
        }
        assert!(
            orphans.is_empty(),
            "tests that no hint topic claims (add a part of their name to a topic's `tests` \
             in steps/hints/<step>.toml):\n{}",
            orphans.join("\n")
        );
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
