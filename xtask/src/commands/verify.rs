//! `cargo xtask verify [step] [--solution] [--time-limit SECS]`.
//!
//! Runs the step (see `verification`), renders the report (✓/✗ per test with
//! its purpose, in the order of the test files, part by part with k of n per
//! part; the first lines of each failure, and one line for a failure that
//! several tests share), then records the learner's progress from it, once.
//! It writes only to `.workbook/`, never to the learner's files, and it never
//! shows or counts a hint: when the tests are red it says which topic's hint
//! comes next and how to ask for it (`cargo xtask hint`).
//!
//! In a `kind = "tests"` step (the learner writes the tests), green tests
//! are not yet enough: they run again once per mutant, and every mutant must
//! make at least one of them fail ("caught k of n mutants"). Only a mutant
//! that slipped through is named, with its hint.

use std::process::ExitCode;
use std::time::Duration;

use anstream::println;
use anyhow::Result;
use clap::Args;

use crate::cargo::Diagnostics;
use crate::layout::Layout;
use crate::libtest::FailureSummary;
use crate::mutants::{self, MutantOutcome};
use crate::progress::Progress;
use crate::step_run::{TestResult, TestRun, TestStatus};
use crate::steps::{Catalogue, Flavor, Part, Step};
use crate::term;
use crate::text::plural;
use crate::verification::{self, Options, Outcome, Ran, Report, Stage};

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The step: step1, 1 or step1_baseline (default: your current step).
    pub step: Option<String>,
    /// Run the reference solution instead of your code (progress untouched).
    #[arg(long)]
    pub solution: bool,
    /// Stop the tests after this many seconds (default: the step's limit).
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<u64>,
}

/// Entry point of `verify`.
pub fn run(layout: &Layout, args: &VerifyArgs) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let step = Progress::load(layout)?.step_or_current(&catalogue, args.step.as_deref())?;
    let flavor = if args.solution {
        Flavor::Solution
    } else {
        Flavor::Exercise
    };
    let green = verify_and_record(layout, &catalogue, step, flavor, args.time_limit)?;
    Ok(ExitCode::from(u8::from(!green)))
}

/// Verifies `step`, prints the report, and records the learner's progress
/// from it (never for the solution). Returns whether it was green. Shared
/// with `watch`.
pub fn verify_and_record(
    layout: &Layout,
    catalogue: &Catalogue,
    step: &Step,
    flavor: Flavor,
    time_limit: Option<u64>,
) -> Result<bool> {
    let crate_dir = match flavor {
        Flavor::Exercise => layout.step_dir(&step.name),
        Flavor::Solution => layout.solution_dir(&step.name),
    };
    println!(
        "{} {}  {}",
        term::bold(&step.short),
        term::bold(&step.title),
        term::dim(&format!("({}/)", layout.display(&crate_dir)))
    );
    let options = Options {
        diagnostics: Diagnostics::Show,
        time_limit: Duration::from_secs(time_limit.unwrap_or(step.time_limit_secs)),
    };
    let report = verification::verify_step(layout, step, flavor, options, print_stage)?;
    // Loaded after the run: in `watch`, the learner may have asked for a hint meanwhile.
    let mut progress = Progress::load(layout)?;
    render(&report, catalogue, step, &progress);
    if flavor == Flavor::Exercise {
        let first_failing = first_failing(&report).map(hint_clue);
        progress.record_run(&step.name, first_failing, report.is_green());
        progress.save(layout)?;
    }
    Ok(report.is_green())
}

fn print_stage(stage: Stage) {
    match stage {
        Stage::Running { tests, limit } => {
            let hang = format!("(stopped after {} s if they hang)", limit.as_secs());
            println!("running {tests} test{} {}", plural(tests), term::dim(&hang));
        }
        Stage::Mutants { count } => println!(
            "they pass; running them again against {count} broken version{} (mutants) {}",
            plural(count),
            term::dim("(each must make at least one test fail)")
        ),
    }
}

/// What `hint` needs of a failing test: its name, and `@function` when it
/// stopped at a stub's `todo!("function: goal")`.
fn hint_clue(test: &TestResult) -> String {
    let mut lines = test.failure.iter().flat_map(|failure| &failure.lines);
    let todo = lines.find_map(|line| line.strip_prefix("not implemented yet: "));
    match todo.and_then(|goal| goal.split_once(": ")) {
        Some((function, _)) => format!("{}@{function}", test.name),
        None => test.name.clone(),
    }
}

/// The first test that did not pass, in the order of the test files.
fn first_failing(report: &Report) -> Option<&TestResult> {
    match &report.outcome {
        Outcome::Ran(ran) => ran
            .tests
            .tests
            .iter()
            .find(|t| t.status != TestStatus::Passed),
        Outcome::DoesNotCompile { .. } | Outcome::CannotList { .. } => None,
    }
}

/// Prints a report: the results, then what to do next.
fn render(report: &Report, catalogue: &Catalogue, step: &Step, progress: &Progress) {
    let solution = report.flavor == Flavor::Solution;
    let ran = match &report.outcome {
        Outcome::Ran(ran) => ran,
        Outcome::DoesNotCompile { .. } if solution => {
            println!();
            return workbook_bug("the reference solution does not compile (messages above)");
        }
        Outcome::DoesNotCompile { .. } => {
            let what = "your code does not compile yet — the compiler's messages are above.";
            return println!("\n{} {what}", term::fail_mark());
        }
        Outcome::CannotList { details } => {
            println!("\n{} {details}", term::fail_mark());
            return;
        }
    };
    print_results(&ran.tests, step, ran.binaries > 1);
    if !ran.mutants.is_empty() {
        println!("\n{}.", mutants::summary(&ran.mutants));
    }
    if report.is_green() {
        print_green(catalogue, step, ran, solution);
    } else if ran.tests.all_passed() {
        print_mutants(step, &ran.mutants, solution);
    } else {
        print_red(step, report, progress, solution);
    }
}

/// One line per test (under its part's heading), the first lines of each
/// failure below it, then one line per failure that several tests share.
fn print_results(run: &TestRun, step: &Step, show_binary: bool) {
    let mut shared: Vec<(&FailureSummary, usize)> = Vec::new();
    for failure in run.tests.iter().filter_map(|test| test.failure.as_ref()) {
        match shared.iter_mut().find(|(seen, _)| *seen == failure) {
            Some((_, count)) => *count += 1,
            None => shared.push((failure, 1)),
        }
    }
    shared.retain(|(_, count)| *count > 1);
    let mut current_part = None;
    for test in &run.tests {
        let part = part_of(step, test);
        if let Some(part) = part.filter(|_| current_part != part) {
            let tests = run.tests.iter().filter(|t| part_of(step, t) == Some(part));
            let (passed, total) = tests.fold((0, 0), |(passed, total), test| {
                (
                    passed + usize::from(test.status == TestStatus::Passed),
                    total + 1,
                )
            });
            let count = format!("({}: {passed} of {total} pass)", part.name);
            println!("{} {}", term::bold(&part.title), term::dim(&count));
        }
        current_part = part;
        println!("{}", result_line(test, show_binary));
        let note = match test.status {
            TestStatus::Unfinished => Some("did not finish before the time limit"),
            TestStatus::NotRun => Some("not run: its test binary exited first (see below)"),
            TestStatus::Ignored => Some("ignored: the workbook's tests are never ignored"),
            TestStatus::Passed | TestStatus::Failed => None,
        };
        if let Some(note) = note {
            println!("      {}", term::yellow(note));
        }
        match &test.failure {
            Some(failure) if !shared.iter().any(|(seen, _)| *seen == failure) => {
                for line in &failure.lines {
                    println!("      {line}");
                }
                if let Some(location) = &failure.location {
                    println!("      {}", term::dim(&format!("at {location}")));
                }
            }
            _ => {}
        }
    }
    for (failure, count) in shared {
        let at = failure.location.as_ref().map(|at| format!(" at {at}"));
        let mut lines = failure.lines.iter();
        let first = lines.next().map(String::as_str).unwrap_or("");
        let (mark, at) = (term::fail_mark(), at.unwrap_or_default());
        println!("{mark} {count} tests stop{at} — {first}");
        lines.for_each(|line| println!("      {line}"));
    }
    for problem in &run.problems {
        println!("{} {problem}", term::fail_mark());
    }
}

/// The part a test is in: its top-level module in the test target, else the
/// target itself (tests at a target's root belong to the part named after it).
fn part_of<'a>(step: &'a Step, test: &TestResult) -> Option<&'a Part> {
    let module = test.name.split_once("::").map_or("", |(module, _)| module);
    let part = |name: &str| step.parts.iter().find(|part| part.name == name);
    part(module).or_else(|| part(&test.binary))
}

fn result_line(test: &TestResult, show_binary: bool) -> String {
    let mark = if test.status == TestStatus::Passed {
        term::pass_mark()
    } else {
        term::fail_mark()
    };
    let name = if show_binary {
        format!("{}: {}", test.binary, test.name)
    } else {
        test.name.clone()
    };
    match &test.purpose {
        Some(purpose) => format!("  {mark} {name} {}", term::dim(&format!("— {purpose}"))),
        None => format!("  {mark} {name}"),
    }
}

/// Only the mutants that slipped through, each with the kind of test that
/// catches it: the caught ones stay unnamed.
fn print_mutants(step: &Step, outcomes: &[MutantOutcome], solution: bool) {
    for outcome in outcomes.iter().filter(|outcome| !outcome.caught) {
        let slipped = "slipped through: every test passed with this bug in place";
        println!(
            "  {} {} {}",
            term::fail_mark(),
            term::bold(&outcome.name),
            term::dim(slipped)
        );
        println!("      {}", outcome.hint);
    }
    if solution {
        return workbook_bug("the reference tests miss a mutant");
    }
    println!();
    println!(
        "  run one mutant yourself:  {}",
        term::cyan(&format!(
            "WORKBOOK_MUTANT=<name> cargo test -p {}",
            step.package(Flavor::Exercise)
        ))
    );
    println!("  the chapter: {}", step.chapter_path());
}

fn print_green(catalogue: &Catalogue, step: &Step, ran: &Ran, solution: bool) {
    let total = ran.tests.tests.len();
    println!();
    if solution {
        println!(
            "{} the reference solution passes all {total} test{}.",
            term::pass_mark(),
            plural(total)
        );
        return;
    }
    println!(
        "{} all {total} test{} pass {}: {} is done. Well done!",
        term::pass_mark(),
        plural(total),
        term::dim(&format!("({:.1} s)", ran.tests.elapsed.as_secs_f64())),
        step.short
    );
    println!(
        "  measure what you built:  {}",
        term::cyan(&format!("cargo xtask lab {}", step.short))
    );
    match catalogue.next_after(step) {
        Some(next) => println!(
            "  next: {} — {}: read {}, then {}",
            next.short,
            next.title,
            next.chapter_path(),
            term::cyan(&format!("cargo xtask verify {}", next.short))
        ),
        None => println!("  that was the last step: the whole workbook is done."),
    }
}

/// How many tests pass, why a run was stopped, and where to look next: the
/// chapter, and which topic's hint comes next (shown only when asked for).
fn print_red(step: &Step, report: &Report, progress: &Progress, solution: bool) {
    let Outcome::Ran(Ran { tests: run, .. }) = &report.outcome else {
        return;
    };
    let passed = run.tests.iter().filter(|t| t.status == TestStatus::Passed);
    let (passed, total) = (passed.count(), run.tests.len());
    let took = term::dim(&format!("({:.1} s)", run.elapsed.as_secs_f64()));
    println!("\n{passed} of {total} test{} pass {took}.", plural(total));
    if let Some(limit) = run.stopped_after {
        println!(
            "{}",
            term::yellow(&format!(
                "Stopped after {} s: a future that never completes? Look for an .await that waits \
                 for something that never happens (a channel nobody sends on, a lock held across \
                 an .await, blocking code on the runtime). More time: --time-limit <secs>.",
                limit.as_secs()
            ))
        );
    }
    if solution {
        return workbook_bug("the reference solution fails");
    }
    println!();
    println!("  the chapter: {}", step.chapter_path());
    let entry = progress.get(&step.name);
    let first = first_failing(report).map(hint_clue);
    if let Some(topic) = step
        .hints
        .topic_for(first.as_deref(), |name| entry.opened(name))
    {
        let (opened, count) = (entry.opened(&topic.name), topic.ladder.len());
        let command = term::cyan(&format!("cargo xtask hint {}", step.short));
        let next = match opened < count {
            true => format!("stuck? {} — hint {} of {count}", topic.name, opened + 1),
            false => format!("every hint for {} is open; to read them again", topic.name),
        };
        println!("  {next}: {command}");
    }
}

/// Something only the workbook's authors can fix.
fn workbook_bug(what: &str) {
    println!(
        "{} {what}: that is a bug in the workbook.",
        term::fail_mark()
    );
}
