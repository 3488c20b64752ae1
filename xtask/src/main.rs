//! The workbook's runner: `cargo xtask <command>`.
//!
//! Learners use it to verify a step (per-test ✓/✗ with each test's purpose and
//! the next hint), watch, read hints, see their progress, compare with or
//! apply the reference solution, reset a step, run its lab and open the book.
//! Maintainers use `check` (everything CI runs), `browser` (the built book in
//! headless Chromium) and `doctor` (is this machine ready for a classroom?).
//!
//! # Layout
//! - `layout`, `steps`, `progress`: where things are, which steps exist, how far
//!   the learner got (`.workbook/progress.txt`).
//! - `cargo`, `run_limit`, `libtest`, `test_purposes`, `step_run`: build a
//!   step's tests, run the binaries under a time limit, read their output.
//! - `backup`, `files`: nothing a learner wrote is lost.
//! - `book_includes`, `tidy`, `debounce`: small checkers used by commands.
//! - `static_server`: serves the built book on loopback for `browser`.
//! - `commands/`: one file per command.
//!
//! Exit codes: 0 success, 1 red tests or a failed check, 2 bad input (an
//! unknown step, a bad flag).

mod backup;
mod book_includes;
mod cargo;
mod commands;
mod debounce;
mod files;
mod layout;
mod libtest;
mod mutants;
mod progress;
mod run_limit;
mod static_server;
mod step_run;
mod steps;
mod term;
mod test_purposes;
mod tidy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Build and run a step's tests: ✓/✗ per test, the next hint when red.
    Verify {
        /// The step: step1, 1 or step1_baseline.
        step: String,
        /// Run the reference solution instead of your code (progress untouched).
        #[arg(long)]
        solution: bool,
        /// Stop the tests after this many seconds (default: the step's limit).
        #[arg(long, value_name = "SECS")]
        time_limit: Option<u64>,
    },
    /// Re-run verify whenever a file of the step changes (Ctrl-C to stop).
    Watch {
        /// The step (default: your current step).
        step: Option<String>,
        /// Poll for changes instead of OS notifications (WSL, network drives).
        #[arg(long)]
        poll: bool,
        /// Stop each test run after this many seconds (default: the step's limit).
        #[arg(long, value_name = "SECS")]
        time_limit: Option<u64>,
    },
    /// Show the next hint for a step (they get more specific each time).
    Hint {
        /// The step (default: your current step).
        step: Option<String>,
        /// Show every hint at once.
        #[arg(long)]
        all: bool,
    },
    /// Show your progress: each step done, started or not started.
    Status,
    /// Diff your code against the reference solution (--apply to use it).
    Solution {
        /// The step.
        step: String,
        /// Replace your src/ with the solution's, after backing yours up.
        #[arg(long)]
        apply: bool,
    },
    /// Restore a step's src/ to its committed state, after backing yours up.
    Reset {
        /// The step.
        step: String,
        /// The git revision to restore from.
        #[arg(long, value_name = "REV", default_value = "HEAD")]
        from: String,
    },
    /// Run a step's lab (release build); extra arguments go to the lab.
    Lab {
        /// The step.
        step: String,
        /// Measure the reference solution instead of your code.
        #[arg(long)]
        solution: bool,
        /// Arguments for the lab, e.g. --concurrency 5,50,500.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "LAB ARGS"
        )]
        args: Vec<String>,
    },
    /// Serve the book locally with mdbook (or --build it).
    Book {
        /// Open the book in a browser.
        #[arg(long)]
        open: bool,
        /// Build into book/book/ instead of serving.
        #[arg(long)]
        build: bool,
    },
    /// Check everything CI checks: red stubs, green solutions, fmt, clippy, book.
    Check,
    /// Check the built book in headless Chromium: every chapter, search, screenshots.
    Browser,
    /// Check this machine: toolchain, mdbook, git, open-file limit, offline readiness.
    Doctor,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let layout = Layout::discover();
    let result = match cli.command {
        None => commands::overview::run(&layout),
        Some(Command::Verify {
            step,
            solution,
            time_limit,
        }) => commands::verify::run(&layout, &step, solution, time_limit),
        Some(Command::Watch {
            step,
            poll,
            time_limit,
        }) => commands::watch::run(&layout, step.as_deref(), poll, time_limit),
        Some(Command::Hint { step, all }) => commands::hint::run(&layout, step.as_deref(), all),
        Some(Command::Status) => commands::status::run(&layout),
        Some(Command::Solution { step, apply }) => commands::solution::run(&layout, &step, apply),
        Some(Command::Reset { step, from }) => commands::reset::run(&layout, &step, &from),
        Some(Command::Lab {
            step,
            solution,
            args,
        }) => commands::lab::run(&layout, &step, solution, &args),
        Some(Command::Book { open, build }) => commands::book::run(&layout, open, build),
        Some(Command::Check) => commands::check::run(&layout),
        Some(Command::Browser) => commands::browser::run(&layout),
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
