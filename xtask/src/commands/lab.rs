//! `cargo xtask lab <step> [--solution] [lab args...]`: measure a step.
//!
//! Runs the step's lab binary (feature `lab`) optimized (`.cargo/lab.toml`,
//! because the timings of a debug build teach the wrong lesson) with the
//! terminal attached, so its progress bar and table show live. Results go to
//! `lab-results/` at the root (gitignored).

use std::process::{ExitCode, Stdio};

use anstream::println;
use anyhow::{Context, Result};
use clap::Args;

use crate::cargo::cargo_command;
use crate::child::exit_code_of;
use crate::layout::Layout;
use crate::steps::{Catalogue, Flavor};
use crate::term;

/// The optimized settings labs are built with (it says why they are not a profile).
pub const LAB_CONFIG: &str = ".cargo/lab.toml";

/// Arguments of `lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The step.
    pub step: String,
    /// Measure the reference solution instead of your code.
    #[arg(long)]
    pub solution: bool,
    /// Only build the lab (ahead of time), do not run it.
    #[arg(long)]
    pub no_run: bool,
    /// Arguments for the lab, e.g. --quick or --concurrency 5,50,500
    /// (`cargo xtask lab <step> -- --help` lists them).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "LAB ARGS"
    )]
    pub args: Vec<String>,
}

/// Entry point of `lab`.
pub fn run(layout: &Layout, args: &LabArgs) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let step = catalogue.resolve(&args.step)?;
    let flavor = if args.solution {
        Flavor::Solution
    } else {
        Flavor::Exercise
    };
    println!(
        "{}",
        term::dim(&format!(
            "building the lab optimized (`{LAB_CONFIG}`); the first build compiles \
             its dependencies once: `cargo xtask lab {} --no-run` does that ahead of time",
            step.short
        ))
    );
    if args.args.iter().any(|arg| arg == "--quick") {
        println!(
            "{}",
            term::yellow(
                "--quick: shorter warm-up and measuring windows (and, in some labs, fewer \
                 cells): a first look whose numbers are noisier, not a result to quote"
            )
        );
    }
    let mut cargo = cargo_command();
    cargo
        .current_dir(layout.root())
        .arg(if args.no_run { "build" } else { "run" })
        .args(["--config", LAB_CONFIG, "--package"])
        .arg(step.package(flavor))
        .args(["--features", "lab", "--bin", &step.lab]);
    if !args.no_run {
        cargo.args(["--", "--out"]).arg(layout.lab_results_dir());
        cargo.args(&args.args);
    }
    let status = cargo
        .stdin(Stdio::inherit())
        .status()
        .context("cannot run cargo (is it installed and on PATH?)")?;
    Ok(exit_code_of(status))
}
