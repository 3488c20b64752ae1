//! Running a step's test binaries under its time limit and collecting
//! per-test results: the engine under `verify`, `watch` and `check`.
//!
//! Each binary is first listed (`--list --format terse`) so that, if the time
//! limit stops the run, the tests that never reported are known by name:
//! unfinished = listed − reported.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cargo::TestExecutable;
pub use crate::libtest::TestStatus;
use crate::libtest::{self, FailureSummary};
use crate::run_limit::{Completion, run_with_limit};
use crate::test_purposes::{self, TestFn};
use crate::text::last_lines;

/// Listing tests runs no test code, so a short fixed limit is plenty.
const LIST_LIMIT: Duration = Duration::from_secs(30);

/// After a time-out, how long the re-run that recovers failure messages may take.
const DETAILS_LIMIT: Duration = Duration::from_secs(10);

/// A test binary and the tests it holds.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The binary.
    pub executable: TestExecutable,
    /// Its tests, as libtest names them, in the order of the test files.
    pub tests: Vec<String>,
    /// The functions of its test files, in order, with their purposes.
    pub functions: Vec<TestFn>,
}

/// Lists the tests of each binary, in the order of its files, with purposes.
///
/// # Errors
/// Fails if a binary cannot be run or does not list its tests in time.
pub fn list_suites(executables: &[TestExecutable]) -> Result<Vec<Suite>> {
    let mut suites = Vec::new();
    for executable in executables {
        let mut command = test_command(executable);
        command.args(["--list", "--format", "terse"]);
        let listing = run_with_limit(&mut command, LIST_LIMIT)?;
        let listed_ok =
            matches!(listing.completion, Completion::Exited(status) if status.success());
        if !listed_ok {
            anyhow::bail!(
                "the test binary `{}` could not list its tests:\n{}{}",
                executable.target,
                listing.stdout,
                listing.stderr
            );
        }
        let functions = test_purposes::read_target(&executable.src_path);
        let mut tests = libtest::parse_list(&listing.stdout);
        // Stable: tests not found in the files keep libtest's order, at the end.
        tests.sort_by_key(|name| test_purposes::position(&functions, name).unwrap_or(usize::MAX));
        suites.push(Suite {
            executable: executable.clone(),
            tests,
            functions,
        });
    }
    Ok(suites)
}

/// One test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// The `[[test]]` target holding it.
    pub binary: String,
    /// The libtest name.
    pub name: String,
    /// Its doc comment, if any.
    pub purpose: Option<String>,
    /// How it ended.
    pub status: TestStatus,
    /// What to show when it failed.
    pub failure: Option<FailureSummary>,
}

/// The outcome of running all of a step's test binaries.
#[derive(Debug, Clone, Default)]
pub struct TestRun {
    /// Every listed test, in listing order.
    pub tests: Vec<TestResult>,
    /// `Some(limit)` when the time limit stopped the run.
    pub stopped_after: Option<Duration>,
    /// Trouble not tied to one test (a binary that crashed).
    pub problems: Vec<String>,
    /// Everything the binaries printed, for `check` to show when it must.
    pub raw_output: String,
    /// Wall-clock time spent running the binaries.
    pub elapsed: Duration,
}

impl TestRun {
    /// Green: at least one test, all passed, nothing stopped or crashed.
    pub fn all_passed(&self) -> bool {
        !self.tests.is_empty()
            && self.stopped_after.is_none()
            && self.problems.is_empty()
            && self
                .tests
                .iter()
                .all(|test| test.status == TestStatus::Passed)
    }
}

/// Runs every suite, all within one `limit` counted from the first start,
/// with extra environment variables for every test binary (how a tests step
/// plants a mutant: `WORKBOOK_MUTANT=<name>`).
///
/// # Errors
/// Fails only if a binary cannot be started.
pub fn run_suites(suites: &[Suite], limit: Duration, env: &[(&str, &str)]) -> Result<TestRun> {
    let deadline = Instant::now() + limit;
    let mut run = TestRun::default();
    for suite in suites {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            run.stopped_after = Some(limit);
            record(
                &mut run,
                suite,
                &libtest::Report::default(),
                TestStatus::Unfinished,
            );
            continue;
        }
        let mut command = test_command(&suite.executable);
        command.envs(env.iter().copied());
        let outcome = run_with_limit(&mut command, remaining)
            .with_context(|| format!("cannot run the test binary `{}`", suite.executable.target))?;
        run.raw_output.push_str(&format!(
            "==== {} ({}) ====\n{}{}",
            suite.executable.target,
            suite.executable.path.display(),
            outcome.stdout,
            outcome.stderr
        ));
        run.elapsed += outcome.elapsed;
        let mut report = libtest::parse_report(&outcome.stdout);
        match outcome.completion {
            Completion::TimedOut => {
                run.stopped_after = Some(limit);
                recover_failure_details(suite, env, &mut report);
                record(&mut run, suite, &report, TestStatus::Unfinished);
            }
            Completion::Exited(status) => {
                record(&mut run, suite, &report, TestStatus::NotRun);
                let any_failed = report
                    .verdicts
                    .iter()
                    .any(|(_, v)| *v == TestStatus::Failed);
                if !status.success() && !any_failed {
                    run.problems.push(format!(
                        "the test binary `{}` exited with {status} without reporting a failed test; \
                         its last output:\n{}",
                        suite.executable.target,
                        last_lines(&format!("{}{}", outcome.stdout, outcome.stderr), 12)
                    ));
                }
            }
        }
    }
    Ok(run)
}

/// libtest prints failure messages only at the end of a run, so a run
/// killed at the time limit loses them. The tests that did report `FAILED`
/// failed fast, so re-running just those (with `--exact`) recovers their
/// messages cheaply; if that hangs too, they simply stay without details.
fn recover_failure_details(suite: &Suite, env: &[(&str, &str)], report: &mut libtest::Report) {
    let failed: Vec<String> = report
        .verdicts
        .iter()
        .filter(|(name, verdict)| {
            *verdict == TestStatus::Failed && !report.failure_output.contains_key(name)
        })
        .map(|(name, _)| name.clone())
        .collect();
    if failed.is_empty() {
        return;
    }
    let mut command = test_command(&suite.executable);
    command.envs(env.iter().copied());
    command.arg("--exact").args(&failed);
    let Ok(rerun) = run_with_limit(&mut command, DETAILS_LIMIT) else {
        return;
    };
    let details = libtest::parse_report(&rerun.stdout);
    for name in failed {
        if let Some(section) = details.failure_output.get(&name) {
            report.failure_output.insert(name, section.clone());
        }
    }
}

/// Adds one suite's tests to `run`; listed tests without a verdict get `missing`.
fn record(run: &mut TestRun, suite: &Suite, report: &libtest::Report, missing: TestStatus) {
    // A test libtest reported but did not list (it should not happen) still counts.
    let unlisted = report.verdicts.iter().map(|(name, _)| name);
    let unlisted = unlisted.filter(|name| !suite.tests.contains(name));
    let names: Vec<String> = suite.tests.iter().chain(unlisted).cloned().collect();
    for name in names {
        let reported = report
            .verdicts
            .iter()
            .find(|(reported, _)| *reported == name);
        let status = reported.map_or(missing, |(_, status)| *status);
        let failure = report
            .failure_output
            .get(&name)
            .map(|section| libtest::summarize_failure(section));
        run.tests.push(TestResult {
            binary: suite.executable.target.clone(),
            purpose: test_purposes::position(&suite.functions, &name)
                .and_then(|at| suite.functions[at].purpose.clone()),
            name,
            status,
            failure,
        });
    }
}

/// Runs a test binary the way `cargo test` would: from its package directory,
/// with `CARGO_MANIFEST_DIR` set (some test helpers read it at run time)
/// and without any mutant selected.
fn test_command(executable: &TestExecutable) -> Command {
    let mut command = Command::new(&executable.path);
    // A mutant left set in the learner's shell must not stand in for the
    // correct code; mutant runs set it again explicitly.
    command.env_remove(crate::steps::MUTANT_ENV);
    if executable.package_dir != Path::new("") {
        command
            .current_dir(&executable.package_dir)
            .env("CARGO_MANIFEST_DIR", &executable.package_dir);
    }
    command
}
