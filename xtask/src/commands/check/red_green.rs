//! Per step: every test is red on the untouched exercise (a test that passes
//! there asserts nothing about the learner's work) and green on the reference
//! solution, both crates run the same tests, and in a tests step the
//! reference tests catch every mutant. Each test's red run and green run
//! count as one check each.
//!
//! The runs are `verification` reports, the same `verify` renders, with the
//! compiler's messages and the expected-red output captured: they are shown
//! only under a check that fails.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;

use crate::cargo::Diagnostics;
use crate::layout::Layout;
use crate::step_run::{TestRun, TestStatus};
use crate::steps::{Flavor, MUTANT_ENV, Step, StepKind};
use crate::tally::Tally;
use crate::verification::{self, Options, Outcome, Ran, Report};

/// Runs the exercise and the solution of `step` and records what they show.
///
/// # Errors
/// Fails only when cargo or a test binary cannot be started at all.
pub fn check_step(layout: &Layout, step: &Step, tally: &mut Tally) -> Result<()> {
    let options = Options {
        diagnostics: Diagnostics::Capture,
        time_limit: Duration::from_secs(step.time_limit_secs),
    };
    let stub = verification::verify_step(layout, step, Flavor::Exercise, options, |_| {})?;
    let stub = stub_is_red(step, &stub, tally);
    let solution = verification::verify_step(layout, step, Flavor::Solution, options, |_| {})?;
    let solution = solution_is_green(step, &solution, tally);
    if let (Some(stub), Some(solution)) = (stub, solution) {
        tally.record(
            &format!(
                "{}: the exercise and the solution run the same tests",
                step.short
            ),
            same_tests(&stub.tests, &solution.tests),
        );
    }
    if let (StepKind::Tests, Some(solution)) = (step.kind, solution) {
        mutants_are_caught(step, solution, tally);
    }
    Ok(())
}

/// The tests that ran, or a failed check saying why none did.
fn ran<'a>(report: &'a Report, step: &Step, tally: &mut Tally) -> Option<&'a Ran> {
    let which = match report.flavor {
        Flavor::Exercise => "exercise",
        Flavor::Solution => "solution",
    };
    let name = format!("{}: the {which}'s tests compile", step.short);
    match &report.outcome {
        Outcome::Ran(ran) => Some(ran),
        Outcome::DoesNotCompile { compiler_output } => {
            tally.fail(&name, compiler_output);
            None
        }
        Outcome::CannotList { details } => {
            tally.fail(&name, details);
            None
        }
    }
}

/// Every test of the exercise fails, fast, and says what it is for.
fn stub_is_red<'a>(step: &Step, report: &'a Report, tally: &mut Tally) -> Option<&'a Ran> {
    let prefix = &step.short;
    let ran = ran(report, step, tally)?;
    let run = &ran.tests;
    if run.tests.is_empty() {
        tally.fail(
            &format!("{prefix}: the exercise has tests"),
            &run.raw_output,
        );
        return Some(ran);
    }
    // The runner prints each test's purpose next to ✓/✗; a test without one
    // leaves the learner guessing what it wants.
    let undocumented: Vec<&str> = run
        .tests
        .iter()
        .filter(|test| test.purpose.is_none())
        .map(|test| test.name.as_str())
        .collect();
    tally.record(
        &format!("{prefix}: every test has a one-line /// purpose"),
        if undocumented.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "no doc comment before: {}",
                undocumented.join(", ")
            ))
        },
    );
    let mut unexpected = false;
    for test in &run.tests {
        let name = format!("{prefix}: `{}` is red on the exercise", test.name);
        let problem = match test.status {
            TestStatus::Failed => None,
            TestStatus::Passed => {
                Some("it passes on the stub: it asserts nothing about the learner's work".into())
            }
            TestStatus::Ignored => Some("it is ignored".into()),
            TestStatus::Unfinished => Some(format!(
                "it did not finish within {} s on the stub: a learner would wait for the \
                 time limit; make the stub fail fast (todo!())",
                step.time_limit_secs
            )),
            TestStatus::NotRun => Some("its test binary exited before running it".into()),
        };
        unexpected |= matches!(test.status, TestStatus::Unfinished | TestStatus::NotRun);
        tally.record(&name, problem.map_or(Ok(()), Err));
    }
    if unexpected || !run.problems.is_empty() {
        tally.fail(
            &format!("{prefix}: the exercise's test binaries ran cleanly"),
            &format!("{}\n{}", run.problems.join("\n"), run.raw_output),
        );
    }
    Some(ran)
}

/// Every test of the solution passes.
fn solution_is_green<'a>(step: &Step, report: &'a Report, tally: &mut Tally) -> Option<&'a Ran> {
    let prefix = &step.short;
    let ran = ran(report, step, tally)?;
    let run = &ran.tests;
    for test in &run.tests {
        let name = format!("{prefix}: `{}` is green on the solution", test.name);
        if test.status == TestStatus::Passed {
            tally.pass(&name);
            continue;
        }
        let mut details = match test.status {
            TestStatus::Unfinished => format!("did not finish within {} s", step.time_limit_secs),
            TestStatus::NotRun => "its test binary exited before running it".to_string(),
            TestStatus::Ignored => "it is ignored".to_string(),
            TestStatus::Failed | TestStatus::Passed => String::new(),
        };
        if let Some(failure) = &test.failure {
            details.push_str(&failure.lines.join("\n"));
            if let Some(location) = &failure.location {
                details.push_str(&format!("\nat {location}"));
            }
        }
        tally.fail(&name, &details);
    }
    if !run.all_passed() {
        tally.fail(
            &format!("{prefix}: the solution's test binaries ran cleanly"),
            &format!("{}\n{}", run.problems.join("\n"), run.raw_output),
        );
    }
    Some(ran)
}

/// For a tests step: one check per mutant, caught by the reference tests.
/// A mutant counts as not caught when the tests were not green on the
/// correct code, since "caught" would then mean nothing.
fn mutants_are_caught(step: &Step, solution: &Ran, tally: &mut Tally) {
    let name = |mutant: &str| {
        format!(
            "{}: mutant `{mutant}` is caught by the reference tests",
            step.short
        )
    };
    if !solution.tests.all_passed() {
        for mutant in &step.hints.mutant {
            let why = "not run: the reference tests are not green on the correct code";
            tally.fail(&name(&mutant.name), why);
        }
        return;
    }
    for outcome in &solution.mutants {
        let missed = format!(
            "every reference test passed with {MUTANT_ENV}={}",
            outcome.name
        );
        let result = if outcome.caught { Ok(()) } else { Err(missed) };
        tally.record(&name(&outcome.name), result);
    }
}

/// Both runs list the same tests, binary by binary.
fn same_tests(stub: &TestRun, solution: &TestRun) -> Result<(), String> {
    let names = |run: &TestRun| -> BTreeSet<String> {
        run.tests
            .iter()
            .map(|test| format!("{}: {}", test.binary, test.name))
            .collect()
    };
    let (mine, theirs) = (names(stub), names(solution));
    if mine == theirs {
        return Ok(());
    }
    let only_stub: Vec<_> = mine.difference(&theirs).collect();
    let only_solution: Vec<_> = theirs.difference(&mine).collect();
    Err(format!(
        "only in the exercise: {only_stub:?}\nonly in the solution: {only_solution:?}"
    ))
}
