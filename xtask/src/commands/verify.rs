//! `cargo xtask verify <step> [--solution] [--time-limit SECS]`.
//!
//! Builds the step's tests (compiler messages shown as the compiler prints
//! them), runs the test binaries under the step's time limit, prints ✓/✗ per
//! test with its purpose and the first lines of each failure, then either
//! marks the step done or shows the next hint. It writes only to
//! `.workbook/`, never to the learner's files.
//!
//! In a `kind = "tests"` step (the learner writes the tests), green tests
//! are not yet enough: they run again once per mutant, and every mutant must
//! make at least one of them fail ("caught k of n mutants").

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use crate::cargo::{self, Build, Diagnostics};
use crate::commands::hint;
use crate::layout::Layout;
use crate::mutants::{self, MutantOutcome};
use crate::progress::Progress;
use crate::step_run::{self, TestResult, TestRun, TestStatus};
use crate::steps::{Catalogue, Flavor, Step, StepKind};
use crate::term;

/// What happens with hints when the tests are red.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintPolicy {
    /// Show the next hint not yet seen (`verify`).
    Advance,
    /// Show the latest hint again, so saving a file repeatedly in `watch`
    /// does not burn through them.
    Repeat,
}

/// How a verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every test passed.
    Green,
    /// Some test failed, crashed or did not finish.
    Red,
    /// The code does not compile.
    DoesNotCompile,
}

impl Outcome {
    /// 0 for green, 1 otherwise.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Green => ExitCode::SUCCESS,
            Outcome::Red | Outcome::DoesNotCompile => ExitCode::FAILURE,
        }
    }
}

/// Entry point of `verify`.
pub fn run(
    layout: &Layout,
    query: &str,
    solution: bool,
    time_limit: Option<u64>,
) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let step = catalogue.resolve(query)?;
    let flavor = if solution {
        Flavor::Solution
    } else {
        Flavor::Exercise
    };
    let outcome = verify(
        layout,
        &catalogue,
        step,
        flavor,
        time_limit,
        HintPolicy::Advance,
    )?;
    Ok(outcome.exit_code())
}

/// Verifies one step and prints the report; shared with `watch`.
pub fn verify(
    layout: &Layout,
    catalogue: &Catalogue,
    step: &Step,
    flavor: Flavor,
    time_limit: Option<u64>,
    hints: HintPolicy,
) -> Result<Outcome> {
    let package = step.package(flavor);
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

    let executables = match cargo::build_tests(layout.root(), &package, Diagnostics::Show)? {
        Build::Built(executables) => executables,
        Build::Failed { .. } => {
            println!();
            match flavor {
                Flavor::Exercise => println!(
                    "{} your code does not compile yet — the compiler's messages are above.",
                    term::fail_mark()
                ),
                Flavor::Solution => println!(
                    "{} the reference solution does not compile (messages above): a bug in the workbook.",
                    term::fail_mark()
                ),
            }
            return Ok(Outcome::DoesNotCompile);
        }
    };

    let suites = step_run::list_suites(&executables)?;
    let total: usize = suites.iter().map(|suite| suite.tests.len()).sum();
    let limit_secs = time_limit.unwrap_or(step.time_limit_secs);
    println!(
        "running {total} test{} {}",
        plural(total),
        term::dim(&format!("(stopped after {limit_secs} s if they hang)"))
    );
    let run = step_run::run_suites(&suites, Duration::from_secs(limit_secs))?;
    print_results(&run, suites.len() > 1);

    if !run.all_passed() {
        print_red(layout, step, flavor, &run, hints)?;
        return Ok(Outcome::Red);
    }
    if step.kind == StepKind::Tests {
        println!();
        println!(
            "the tests pass on the correct code; now against {} broken version{} \
             (mutants) {}",
            step.mutants.len(),
            plural(step.mutants.len()),
            term::dim("(each must make at least one test fail)")
        );
        let outcomes = mutants::run_mutants(step, &suites, Duration::from_secs(limit_secs))?;
        print_mutants(&outcomes);
        println!();
        println!("{}.", mutants::summary(&outcomes));
        if outcomes.iter().any(|outcome| !outcome.caught()) {
            print_mutants_red(layout, step, flavor, &outcomes)?;
            return Ok(Outcome::Red);
        }
    }
    print_green(layout, catalogue, step, flavor, &run)?;
    Ok(Outcome::Green)
}

/// One line per mutant: caught (and by which test) or slipped through.
fn print_mutants(outcomes: &[MutantOutcome]) {
    for outcome in outcomes {
        if outcome.caught() {
            let by = outcome
                .caught_by
                .first()
                .cloned()
                .or_else(|| outcome.problems.first().cloned())
                .unwrap_or_default();
            let more = outcome.caught_by.len().saturating_sub(1);
            let more = if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            };
            println!(
                "  {} {} {}",
                term::pass_mark(),
                outcome.name,
                term::dim(&format!("— caught by {by}{more}"))
            );
        } else {
            println!(
                "  {} {} {}",
                term::fail_mark(),
                outcome.name,
                term::dim("— slipped through: every test passed with this bug in place")
            );
        }
    }
}

/// The mutants that slipped through, each with the hint for catching it.
fn print_mutants_red(
    layout: &Layout,
    step: &Step,
    flavor: Flavor,
    outcomes: &[MutantOutcome],
) -> Result<()> {
    println!();
    println!("slipped through, and what kind of test catches each:");
    for outcome in outcomes.iter().filter(|outcome| !outcome.caught()) {
        println!("  {} {}", term::fail_mark(), term::bold(&outcome.name));
        println!("      {}", outcome.hint);
    }
    if flavor == Flavor::Solution {
        println!(
            "{} the reference tests miss a mutant: that is a bug in the workbook.",
            term::fail_mark()
        );
        return Ok(());
    }
    let mut progress = Progress::load(layout)?;
    progress.mark_started(&step.name);
    progress.save(layout)?;
    println!();
    println!(
        "  run one mutant yourself:  {}",
        term::cyan(&format!(
            "WORKBOOK_MUTANT=<name> cargo test -p {}",
            step.package(flavor)
        ))
    );
    println!("  the chapter: {}", step.chapter_path());
    Ok(())
}

/// One line per test, then the first lines of each failure below it.
pub fn print_results(run: &TestRun, show_binary: bool) {
    for test in &run.tests {
        println!("{}", result_line(test, show_binary));
        match test.status {
            TestStatus::Unfinished => {
                println!(
                    "      {}",
                    term::yellow("did not finish before the time limit")
                )
            }
            TestStatus::NotRun => println!(
                "      {}",
                term::yellow("not run: its test binary exited first (see below)")
            ),
            TestStatus::Ignored => println!(
                "      {}",
                term::yellow("ignored: the workbook's tests are never ignored")
            ),
            TestStatus::Passed | TestStatus::Failed => {}
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

fn print_green(
    layout: &Layout,
    catalogue: &Catalogue,
    step: &Step,
    flavor: Flavor,
    run: &TestRun,
) -> Result<()> {
    let total = run.tests.len();
    println!();
    if flavor == Flavor::Solution {
        println!(
            "{} the reference solution passes all {total} test{}.",
            term::pass_mark(),
            plural(total)
        );
        return Ok(());
    }
    let mut progress = Progress::load(layout)?;
    progress.mark_done(&step.name);
    progress.save(layout)?;
    println!(
        "{} all {total} test{} pass {}: {} is done. Well done!",
        term::pass_mark(),
        plural(total),
        term::dim(&format!("({:.1} s)", run.elapsed.as_secs_f64())),
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
    Ok(())
}

fn print_red(
    layout: &Layout,
    step: &Step,
    flavor: Flavor,
    run: &TestRun,
    hints: HintPolicy,
) -> Result<()> {
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
    if flavor == Flavor::Solution {
        println!(
            "{} the reference solution fails: that is a bug in the workbook.",
            term::fail_mark()
        );
        return Ok(());
    }
    let mut progress = Progress::load(layout)?;
    progress.mark_started(&step.name);
    let shown = progress.get(&step.name).hints_shown;
    let index = match hints {
        HintPolicy::Advance => shown,
        HintPolicy::Repeat => shown.saturating_sub(1),
    };
    println!();
    if index < step.hints.len() {
        hint::print_hint(step, index);
        progress.record_hints_shown(&step.name, index + 1);
        if index + 1 < step.hints.len() {
            println!(
                "  more hints: {}",
                term::cyan(&format!("cargo xtask hint {}", step.short))
            );
        }
    } else if !step.hints.is_empty() {
        println!(
            "You have seen all {} hints: {} shows them again.",
            step.hints.len(),
            term::cyan(&format!("cargo xtask hint {} --all", step.short))
        );
    }
    println!("  the chapter: {}", step.chapter_path());
    progress.save(layout)?;
    Ok(())
}

/// `"s"` unless there is exactly one.
pub fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
