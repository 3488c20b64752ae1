//! Reading what a libtest test binary prints.
//!
//! The runner runs test binaries directly and reads their plain output:
//! `test <name> ... ok|FAILED|ignored` lines, the `---- <name> stdout ----`
//! failure sections, and `--list --format terse` listings. libtest's JSON
//! output is nightly-only, so the stable text format is what there is.

use std::collections::BTreeMap;

/// How one test ended: what libtest reported (`ok`, `FAILED`, `ignored`),
/// or what the runner saw instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStatus {
    /// Reported `ok`.
    Passed,
    /// Reported `FAILED`.
    Failed,
    /// Reported `ignored` (the workbook forbids `#[ignore]`, but the runner still reads it).
    Ignored,
    /// Still running when the time limit stopped the run.
    Unfinished,
    /// Its binary exited (crashed) before reporting it.
    NotRun,
}

/// Everything a test binary's run reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Each reported test with its verdict, in the order reported.
    pub verdicts: Vec<(String, TestStatus)>,
    /// The captured output of each failed test, by name.
    pub failure_output: BTreeMap<String, String>,
}

/// Parses a test binary's standard output.
pub fn parse_report(stdout: &str) -> Report {
    let mut report = Report::default();
    let mut section: Option<(String, String)> = None;
    for line in stdout.lines() {
        if let Some(name) = section_header(line) {
            if let Some((done, text)) = section.take() {
                report.failure_output.insert(done, text);
            }
            section = Some((name.to_string(), String::new()));
            continue;
        }
        if let Some((_, text)) = section.as_mut() {
            // The list of failed names after the sections starts with a bare
            // `failures:` line; `test result:` ends everything.
            if line == "failures:" || line.starts_with("test result:") {
                if let Some((done, text)) = section.take() {
                    report.failure_output.insert(done, text);
                }
            } else {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        if let Some(verdict) = verdict_line(line) {
            report.verdicts.push(verdict);
        }
    }
    if let Some((done, text)) = section {
        report.failure_output.insert(done, text);
    }
    report
}

/// `---- name stdout ----` (or `stderr`) → `name`.
fn section_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("---- ")?.strip_suffix(" ----")?;
    inner
        .strip_suffix(" stdout")
        .or_else(|| inner.strip_suffix(" stderr"))
}

/// `test name ... ok` → `(name, Passed)`.
fn verdict_line(line: &str) -> Option<(String, TestStatus)> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.rsplit_once(" ... ")?;
    let name = name.strip_suffix(" - should panic").unwrap_or(name);
    let verdict = if result == "ok" {
        TestStatus::Passed
    } else if result == "FAILED" {
        TestStatus::Failed
    } else if result.starts_with("ignored") {
        TestStatus::Ignored
    } else {
        return None;
    };
    Some((name.to_string(), verdict))
}

/// Parses `<exe> --list --format terse`: `name: test` lines → names.
pub fn parse_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect()
}

/// The few lines of a failure worth showing a learner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureSummary {
    /// The panic message (or other output), cleaned up and capped.
    pub lines: Vec<String>,
    /// `file:line:col` of the first panic, if there was one.
    pub location: Option<String>,
}

/// How many lines of a failure are shown under its test.
const MAX_FAILURE_LINES: usize = 6;
/// Longer lines are cut: one giant `Debug` dump should not flood the screen.
/// Generous, because a test's message often ends with its advice.
const MAX_LINE_CHARS: usize = 600;

/// Distils a failure section: the first panic's message and location, with
/// backtraces and libtest's notes dropped, and `todo!()`'s "not yet
/// implemented" worded for a learner. A snapshot (insta) failure is kept
/// whole: its diff and its instructions are the message.
pub fn summarize_failure(section: &str) -> FailureSummary {
    let whole = section.contains("Snapshot Summary");
    let mut summary = FailureSummary::default();
    // Output before the first panic (e.g. `Error: ...` from a test returning
    // `Result`) and the first panic's message are what explain the failure.
    let mut before_panic = Vec::new();
    let mut panic_message = Vec::new();
    let mut panics_seen = 0;
    let mut in_backtrace = false;
    for line in section.lines() {
        if in_backtrace {
            if line.starts_with(' ') {
                continue;
            }
            in_backtrace = false;
        }
        if line.starts_with("stack backtrace:") {
            in_backtrace = true;
            continue;
        }
        if line.trim().is_empty() || line.starts_with("note: ") {
            continue;
        }
        if let Some(location) = panic_location(line) {
            panics_seen += 1;
            if summary.location.is_none() {
                summary.location = Some(location);
            }
            continue;
        }
        let cleaned = if whole {
            line.to_string()
        } else {
            learner_wording(line)
        };
        match panics_seen {
            0 => before_panic.push(cleaned),
            1 => panic_message.push(cleaned),
            _ => {}
        }
    }
    let mut lines = before_panic;
    lines.extend(panic_message);
    if lines.len() > MAX_FAILURE_LINES && !whole {
        lines.truncate(MAX_FAILURE_LINES);
        lines.push("…".to_string());
    }
    summary.lines = lines;
    summary
}

/// `thread 'name' (123) panicked at src/lib.rs:1:2:` → `src/lib.rs:1:2`.
fn panic_location(line: &str) -> Option<String> {
    if !line.starts_with("thread '") {
        return None;
    }
    let (_, after) = line.split_once(" panicked at ")?;
    Some(after.trim_end().trim_end_matches(':').to_string())
}

fn learner_wording(line: &str) -> String {
    let line = match line.strip_prefix("not yet implemented") {
        Some(message) => format!("not implemented yet{message}"),
        None => line.to_string(),
    };
    if line.chars().count() > MAX_LINE_CHARS {
        let cut: String = line.chars().take(MAX_LINE_CHARS).collect();
        format!("{cut}…")
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from a real test binary (rustc 1.95, RUST_BACKTRACE=1).
    const SAMPLE: &str = "
running 7 tests
test ign ... ignored, why
test eq ... FAILED
test ok ... ok
test ret ... FAILED
test inner::nested ... FAILED
test todo_msg ... FAILED
test todo_plain ... FAILED

failures:

---- eq stdout ----
some output

thread 'eq' (12763) panicked at tests/t.rs:7:36:
assertion `left == right` failed: numbers differ
  left: 1
 right: 2
stack backtrace:
   0: __rustc::rust_begin_unwind
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
   4: t::eq
             at ./tests/t.rs:7:36
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.

---- ret stdout ----
Error: \"bad thing\"

---- inner::nested stdout ----

thread '<unnamed>' (12765) panicked at tests/t.rs:15:57:
in thread
stack backtrace:
   0: __rustc::rust_begin_unwind
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.

thread 'inner::nested' (12764) panicked at tests/t.rs:15:85:
called `Result::unwrap()` on an `Err` value: Any { .. }
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.

---- todo_msg stdout ----

thread 'todo_msg' (12768) panicked at src/lib.rs:1:21:
not yet implemented: write f using tokio::join!
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- todo_plain stdout ----

thread 'todo_plain' panicked at src/lib.rs:1:80:
not yet implemented
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    eq
    inner::nested
    ret
    todo_msg
    todo_plain

test result: FAILED. 1 passed; 5 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.09s
";

    fn verdict(report: &Report, name: &str) -> Option<TestStatus> {
        let found = report
            .verdicts
            .iter()
            .find(|(reported, _)| reported == name);
        found.map(|(_, status)| *status)
    }

    #[test]
    fn verdict_lines_are_read_for_ok_failed_and_ignored() {
        let report = parse_report(SAMPLE);
        assert_eq!(report.verdicts.len(), 7);
        assert_eq!(verdict(&report, "ok"), Some(TestStatus::Passed));
        assert_eq!(verdict(&report, "eq"), Some(TestStatus::Failed));
        assert_eq!(verdict(&report, "ign"), Some(TestStatus::Ignored));
        assert_eq!(verdict(&report, "inner::nested"), Some(TestStatus::Failed));
        assert_eq!(verdict(&report, "missing"), None);
    }

    #[test]
    fn each_failure_section_is_kept_under_its_test_name() {
        let report = parse_report(SAMPLE);
        let names: Vec<_> = report.failure_output.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["eq", "inner::nested", "ret", "todo_msg", "todo_plain"]
        );
        assert!(report.failure_output["ret"].contains("Error: \"bad thing\""));
        // The list of names after the sections is not part of the last section.
        assert!(!report.failure_output["todo_plain"].contains("    eq"));
    }

    #[test]
    fn a_todo_reads_as_not_implemented_yet_with_its_location() {
        let report = parse_report(SAMPLE);
        let summary = summarize_failure(&report.failure_output["todo_msg"]);
        assert_eq!(
            summary.lines,
            ["not implemented yet: write f using tokio::join!"]
        );
        assert_eq!(summary.location.as_deref(), Some("src/lib.rs:1:21"));

        let plain = summarize_failure(&report.failure_output["todo_plain"]);
        assert_eq!(plain.lines, ["not implemented yet"]);
        assert_eq!(plain.location.as_deref(), Some("src/lib.rs:1:80"));
    }

    #[test]
    fn an_assertion_keeps_its_message_and_drops_the_backtrace() {
        let report = parse_report(SAMPLE);
        let summary = summarize_failure(&report.failure_output["eq"]);
        assert_eq!(
            summary.lines,
            [
                "some output",
                "assertion `left == right` failed: numbers differ",
                "  left: 1",
                " right: 2",
            ]
        );
        assert_eq!(summary.location.as_deref(), Some("tests/t.rs:7:36"));
    }

    #[test]
    fn the_first_panic_explains_a_failure_with_several() {
        let report = parse_report(SAMPLE);
        let summary = summarize_failure(&report.failure_output["inner::nested"]);
        assert_eq!(summary.lines, ["in thread"]);
        assert_eq!(summary.location.as_deref(), Some("tests/t.rs:15:57"));
    }

    #[test]
    fn a_test_returning_an_error_shows_the_error() {
        let report = parse_report(SAMPLE);
        let summary = summarize_failure(&report.failure_output["ret"]);
        assert_eq!(summary.lines, ["Error: \"bad thing\""]);
        assert_eq!(summary.location, None);
    }

    #[test]
    fn long_failures_are_capped() {
        let section: String = (0..20).map(|i| format!("line {i}\n")).collect();
        let summary = summarize_failure(&section);
        assert_eq!(summary.lines.len(), MAX_FAILURE_LINES + 1);
        assert_eq!(summary.lines.last().unwrap(), "…");
    }

    #[test]
    fn a_snapshot_failure_keeps_insta_s_instructions_whole() {
        let mut section =
            String::from("━━ Snapshot Summary ━━\nSnapshot file: tests/snapshots/x.snap\n");
        section.extend((0..12).map(|i| format!("-old line {i} {}\n", "x".repeat(250))));
        section.push_str("To update snapshots run `cargo insta review`\n");
        section.push_str(
            "thread 't' panicked at tests/t.rs:3:5:\nsnapshot assertion for 'x' failed in line 3\n",
        );
        let summary = summarize_failure(&section);
        assert_eq!(summary.lines.len(), 16, "{:?}", summary.lines);
        assert!(summary.lines[2].ends_with("xxx"));
        assert_eq!(
            summary.lines[14],
            "To update snapshots run `cargo insta review`"
        );
    }

    #[test]
    fn a_terse_listing_gives_the_test_names() {
        let listing = "eq: test\ninner::nested: test\nsome_bench: benchmark\n";
        assert_eq!(parse_list(listing), ["eq", "inner::nested"]);
    }

    #[test]
    fn a_hung_single_threaded_run_reports_no_verdict_for_the_hung_test() {
        let report = parse_report("running 2 tests\ntest quick ... ok\ntest hangs ... ");
        assert_eq!(report.verdicts, [("quick".to_string(), TestStatus::Passed)]);
    }
}
