//! `cargo xtask lab <step> [--solution] [lab args...]`: measure a step.
//!
//! Runs the step's lab example in release mode (timings of a debug build
//! teach the wrong lesson) with the terminal attached, so its progress bar and
//! table show live. Results go to `lab-results/` at the root (gitignored).

use std::process::{ExitCode, Stdio};

use anyhow::{Context, Result};

use crate::cargo::cargo_command;
use crate::layout::Layout;
use crate::steps::{Catalogue, Flavor};

/// Entry point of `lab`.
pub fn run(layout: &Layout, query: &str, solution: bool, args: &[String]) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let step = catalogue.resolve(query)?;
    let flavor = if solution {
        Flavor::Solution
    } else {
        Flavor::Exercise
    };
    let status = cargo_command()
        .current_dir(layout.root())
        .args(["run", "--release", "--package", &step.package(flavor)])
        .args(["--example", &step.lab, "--", "--out"])
        .arg(layout.lab_results_dir())
        .args(args)
        .stdin(Stdio::inherit())
        .status()
        .context("cannot run cargo (is it installed and on PATH?)")?;
    Ok(exit_code_of(status))
}

/// The child's exit code as ours (1 when it has none, e.g. killed by a signal).
pub fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}
