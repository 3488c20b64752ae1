//! The workbook's runner: `cargo xtask <command>`.
//!
//! Learners use it to verify a step (per-test ✓/✗ with each test's purpose),
//! watch, read hints, see their progress, compare with or apply the reference
//! solution, reset a step, run its lab and open the book. Maintainers use
//! `check` (everything CI runs) and `doctor` (is this machine ready for a
//! classroom?). The rendered book is checked in a browser by a separate
//! maintainer crate, `support/book_check`, so no learner builds that.
//!
//! # Layout
//! - `layout`, `steps`, `hints`, `progress`: where things are, which steps
//!   exist, their hint ladders and mutants (`steps/hints/`), how far the
//!   learner got (`.workbook/progress.toml`).
//! - `cargo`, `run_limit`, `libtest`, `test_purposes`, `step_run`, `mutants`:
//!   build a step's tests, run the binaries under a time limit, read their output.
//! - `verification`: one step verified, as a plain-data report that `verify`,
//!   `watch` and `check` share.
//! - `backup`, `files`: nothing a learner wrote is lost.
//! - `tidy`, `book_includes`, `copies`: the workbook's conventions, checked by
//!   `check` and by `cargo test`.
//! - `term`, `text`, `tally`, `child`, `debounce`: output and small helpers.
//! - `commands/`: one module per command, each taking its own arguments struct.
//!
//! Exit codes: 0 success, 1 red tests or a failed check, 2 bad input (an
//! unknown step, a bad flag).

mod backup;
mod book_includes;
mod cargo;
mod child;
mod commands;
mod copies;
mod debounce;
mod files;
mod hints;
mod layout;
mod libtest;
mod mutants;
mod progress;
mod run_limit;
mod step_run;
mod steps;
mod tally;
mod term;
mod test_purposes;
mod text;
mod tidy;
mod verification;

use std::process::ExitCode;

use anstream::eprintln;
use clap::{Parser, Subcommand};

use crate::commands::{
    book::BookArgs, hint::HintArgs, lab::LabArgs, reset::ResetArgs, solution::SolutionArgs,
    verify::VerifyArgs, watch::WatchArgs,
};
use crate::layout::Layout;
use crate::steps::UnknownStep;

/// The async fan-out workbook's runner.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "The async fan-out workbook's runner. Run it bare to see where you are.",
    after_help = "Steps can be named step1, 1 or step1_baseline."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build and run a step's tests: ✓/✗ per test, and where to look when red.
    Verify(VerifyArgs),
    /// Re-run verify whenever a file of the step changes (Ctrl-C to stop).
    Watch(WatchArgs),
    /// Show the next hint for your first failing test: the idea, then the API, then the code.
    Hint(HintArgs),
    /// Show your progress: each step done, started or not started.
    Status,
    /// Diff your code against the reference solution (--apply to use it).
    Solution(SolutionArgs),
    /// Restore a step's src/ to its committed state, after backing yours up.
    Reset(ResetArgs),
    /// Run a step's lab (an optimized build); extra arguments go to the lab.
    Lab(LabArgs),
    /// Serve the book locally with mdbook (or --build it).
    Book(BookArgs),
    /// Check everything CI checks: red stubs, green solutions, fmt, clippy, book.
    Check,
    /// Check this machine: toolchain, mdbook, git, open-file limit, offline readiness.
    Doctor,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let layout = Layout::discover();
    let result = match &cli.command {
        None => commands::overview::run(&layout),
        Some(Command::Verify(args)) => commands::verify::run(&layout, args),
        Some(Command::Watch(args)) => commands::watch::run(&layout, args),
        Some(Command::Hint(args)) => commands::hint::run(&layout, args),
        Some(Command::Status) => commands::status::run(&layout),
        Some(Command::Solution(args)) => commands::solution::run(&layout, args),
        Some(Command::Reset(args)) => commands::reset::run(&layout, args),
        Some(Command::Lab(args)) => commands::lab::run(&layout, args),
        Some(Command::Book(args)) => commands::book::run(&layout, args),
        Some(Command::Check) => commands::check::run(&layout),
        Some(Command::Doctor) => commands::doctor::run(&layout),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // Bad input is exit 2, like clap's own usage errors.
            if let Some(unknown) = error.downcast_ref::<UnknownStep>() {
                eprintln!("{unknown}");
                return ExitCode::from(2);
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
