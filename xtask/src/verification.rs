//! Verifying one step, as plain data: build its tests, run them under the
//! time limit and, in a tests step whose tests pass, run them once more per
//! mutant.
//!
//! The result is a [`Report`]. Nothing here prints a result or writes
//! progress: `verify` and `watch` render the report and record progress from
//! it, and `check` judges it.

use std::time::Duration;

use anyhow::Result;

use crate::cargo::{self, Build, Diagnostics};
use crate::layout::Layout;
use crate::mutants::{self, MutantOutcome};
use crate::step_run::{self, TestRun};
use crate::steps::{Flavor, Step, StepKind};

/// How to verify.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Compiler messages to the terminal (`verify`) or captured (`check`).
    pub diagnostics: Diagnostics,
    /// The whole run of the tests is stopped after this long.
    pub time_limit: Duration,
}

/// What a verification is busy with, so a command can say so while it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The tests are built and about to run.
    Running {
        /// How many tests.
        tests: usize,
        /// When they will be stopped.
        limit: Duration,
    },
    /// The tests passed; now they run once per mutant.
    Mutants {
        /// How many mutants.
        count: usize,
    },
}

/// Everything one verification found.
#[derive(Debug)]
pub struct Report {
    /// The exercise or the reference solution.
    pub flavor: Flavor,
    /// How far it got and what it saw.
    pub outcome: Outcome,
}

/// How far a verification got.
#[derive(Debug)]
pub enum Outcome {
    /// The tests do not compile. The compiler's messages are here when they
    /// were captured, and already on screen when they were shown.
    DoesNotCompile {
        /// The captured compiler output (empty when it was shown).
        compiler_output: String,
    },
    /// A test binary could not list its tests.
    CannotList {
        /// What went wrong.
        details: String,
    },
    /// The tests ran.
    Ran(Ran),
}

/// The results of tests that ran.
#[derive(Debug)]
pub struct Ran {
    /// Every test's result.
    pub tests: TestRun,
    /// How many test binaries there were (names are qualified when several).
    pub binaries: usize,
    /// One outcome per mutant: only in a tests step, and only once every
    /// test passed on the correct code.
    pub mutants: Vec<MutantOutcome>,
}

impl Report {
    /// Every test passed, and in a tests step every mutant was caught.
    pub fn is_green(&self) -> bool {
        match &self.outcome {
            Outcome::Ran(ran) => {
                ran.tests.all_passed() && ran.mutants.iter().all(|mutant| mutant.caught)
            }
            Outcome::DoesNotCompile { .. } | Outcome::CannotList { .. } => false,
        }
    }
}

/// Builds and runs the tests of `step`'s exercise or solution.
///
/// `on_stage` hears what the run is busy with (`verify` prints it; `check`
/// does not).
///
/// # Errors
/// Fails only when cargo or a test binary cannot be started at all.
pub fn verify_step(
    layout: &Layout,
    step: &Step,
    flavor: Flavor,
    options: Options,
    mut on_stage: impl FnMut(Stage),
) -> Result<Report> {
    let report = |outcome| Report { flavor, outcome };
    let package = step.package(flavor);
    let executables = match cargo::build_tests(layout.root(), &package, options.diagnostics)? {
        Build::Built(mut executables) => {
            executables.sort_by_key(|built| step.parts.iter().position(|p| p.name == built.target));
            executables
        }
        Build::Failed { compiler_output } => {
            return Ok(report(Outcome::DoesNotCompile { compiler_output }));
        }
    };
    let suites = match step_run::list_suites(&executables) {
        Ok(suites) => suites,
        Err(error) => {
            let details = format!("{error:#}");
            return Ok(report(Outcome::CannotList { details }));
        }
    };
    let limit = options.time_limit;
    let tests = suites.iter().map(|suite| suite.tests.len()).sum();
    on_stage(Stage::Running { tests, limit });
    let tests = step_run::run_suites(&suites, limit, &[])?;
    let mut mutants = Vec::new();
    if step.kind == StepKind::Tests && tests.all_passed() {
        on_stage(Stage::Mutants {
            count: step.hints.mutant.len(),
        });
        mutants = mutants::run_mutants(step, &suites, limit)?;
    }
    Ok(report(Outcome::Ran(Ran {
        tests,
        binaries: suites.len(),
        mutants,
    })))
}
