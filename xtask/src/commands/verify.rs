//! `cargo xtask verify [step] [--solution] [--time-limit SECS]`.
//!
//! Runs the step (see `verification`), renders the report (✓/✗ per test with
//! its purpose and the first lines of each failure), then records the
//! learner's progress from it, once. It writes only to `.workbook/`, never to
//! the learner's files, and it never shows or counts a hint: when the tests
//! are red it says which hint comes next and how to ask for it
//! (`cargo xtask hint`), so hints advance only when the learner asks.
//!
//! In a `kind = "tests"` step (the learner writes the tests), green tests
//! are not yet enough: they run again once per mutant, and every mutant must
//! make at least one of them fail ("caught k of n mutants").

use std::process::ExitCode;
use std::time::Duration;

use anstream::println;
use anyhow::Result;
use clap::Args;

use crate::cargo::Diagnostics;
use crate::layout::Layout;
use crate::mutants::{self, MutantOutcome};
use crate::progress::Progress;
use crate::step_run::{TestResult, TestRun, TestStatus};
use crate::steps::{Catalogue, Flavor, Step};
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
    Ok(if green {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
        progress.record_run(&step.name, report.is_green());
        progress.save(layout)?;
    }
    Ok(report.is_green())
}

fn print_stage(stage: Stage) {
    match stage {
        Stage::Running { tests, limit } => println!(
            "running {tests} test{} {}",
            plural(tests),
            term::dim(&format!(
                "(stopped after {} s if they hang)",
                limit.as_secs()
            ))
        ),
        Stage::Mutants { count } => println!(
            "they pass; running them again against {count} broken version{} (mutants) {}",
            plural(count),
            term::dim("(each must make at least one test fail)")
        ),
    }
}

/// Prints a report: the results, then what to do next.
fn render(report: &Report, catalogue: &Catalogue, step: &Step, progress: &Progress) {
    let solution = report.flavor == Flavor::Solution;
    let ran = match &report.outcome {
        Outcome::Ran(ran) => ran,
        Outcome::DoesNotCompile { .. } => {
            let what = if solution {
                "the reference solution does not compile (messages above): a bug in the workbook."
            } else {
                "your code does not compile yet — the compiler's messages are above."
            };
            println!("\n{} {what}", term::fail_mark());
            return;
        }
        Outcome::CannotList { details } => {
            println!("\n{} {details}", term::fail_mark());
            return;
        }
    };
    print_results(&ran.tests, ran.binaries > 1);
    if !ran.mutants.is_empty() {
        print_mutants(&ran.mutants);
    }
    if report.is_green() {
        print_green(catalogue, step, ran, solution);
    } else if ran.tests.all_passed() {
        print_mutants_red(step, &ran.mutants, solution);
    } else {
        print_red(step, &ran.tests, progress, solution);
    }
}

/// One line per test, then the first lines of each failure below it.
fn print_results(run: &TestRun, show_binary: bool) {
    for test in &run.tests {
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
        if let Some(failure) = &test.failure {
            for line in &failure.lines {
                println!("      {line}");
            }
            if let Some(location) = &failure.location {
                println!("      {}", term::dim(&format!("at {location}")));
            }
        }
    }
    for problem in &run.problems {
        println!("{} {problem}", term::fail_mark());
    }
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

/// One line per mutant, caught (and by which test) or slipped through, then
/// the count.
fn print_mutants(outcomes: &[MutantOutcome]) {
    for outcome in outcomes {
        if !outcome.caught() {
            println!(
                "  {} {} {}",
                term::fail_mark(),
                outcome.name,
                term::dim("— slipped through: every test passed with this bug in place")
            );
            continue;
        }
        let by = outcome
            .caught_by
            .first()
            .or(outcome.problems.first())
            .cloned()
            .unwrap_or_default();
        let more = match outcome.caught_by.len() {
            0 | 1 => String::new(),
            many => format!(" (+{} more)", many - 1),
        };
        println!(
            "  {} {} {}",
            term::pass_mark(),
            outcome.name,
            term::dim(&format!("— caught by {by}{more}"))
        );
    }
    println!();
    println!("{}.", mutants::summary(outcomes));
}

/// The mutants that slipped through, each with the kind of test that catches it.
fn print_mutants_red(step: &Step, outcomes: &[MutantOutcome], solution: bool) {
    println!();
    println!("slipped through, and what kind of test catches each:");
    for outcome in outcomes.iter().filter(|outcome| !outcome.caught()) {
        println!("  {} {}", term::fail_mark(), term::bold(&outcome.name));
        println!("      {}", outcome.hint);
    }
    if solution {
        println!(
            "{} the reference tests miss a mutant: that is a bug in the workbook.",
            term::fail_mark()
        );
        return;
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
/// chapter, and which hint comes next (shown only when asked for).
fn print_red(step: &Step, run: &TestRun, progress: &Progress, solution: bool) {
    println!();
    println!(
        "{} of {} test{} pass {}.",
        run.passed(),
        run.tests.len(),
        plural(run.tests.len()),
        term::dim(&format!("({:.1} s)", run.elapsed.as_secs_f64()))
    );
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
        println!(
            "{} the reference solution fails: that is a bug in the workbook.",
            term::fail_mark()
        );
        return;
    }
    println!();
    println!("  the chapter: {}", step.chapter_path());
    let seen = progress.get(&step.name).hints_shown;
    let count = step.hints.len();
    if seen < count {
        println!(
            "  stuck? hint {} of {count}: {}",
            seen + 1,
            term::cyan(&format!("cargo xtask hint {}", step.short))
        );
    } else if count > 0 {
        println!(
            "  you have seen all {count} hints: {}",
            term::cyan(&format!("cargo xtask hint {} --all", step.short))
        );
    }
}
