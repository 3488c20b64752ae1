//! Bare `cargo xtask`: where the learner is and what to do next.

use std::process::ExitCode;

use anstream::println;
use anyhow::Result;
use clap::CommandFactory;

use crate::layout::Layout;
use crate::progress::{Progress, StepState};
use crate::steps::Catalogue;
use crate::term;

/// Entry point of the bare command.
pub fn run(layout: &Layout) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let progress = Progress::load(layout)?;
    let done = catalogue
        .steps()
        .iter()
        .filter(|step| progress.get(&step.name).state == StepState::Done)
        .count();
    let total = catalogue.steps().len();

    println!("{}", term::bold("The async fan-out workbook"));
    match progress.current_step(&catalogue) {
        Some(step) => {
            println!(
                "You are on {} — {} ({done} of {total} steps done).",
                step.short, step.title
            );
            println!();
            println!("Next:");
            println!(
                "  1. read the chapter {} ({} serves the book)",
                step.chapter_path(),
                term::cyan("cargo xtask book --open")
            );
            println!(
                "  2. edit {}/src/ until {} is green ({} re-runs it on every save)",
                layout.display(&layout.step_dir(&step.name)),
                term::cyan(&format!("cargo xtask verify {}", step.short)),
                term::cyan("cargo xtask watch")
            );
            println!(
                "  3. measure it: {}",
                term::cyan(&format!("cargo xtask lab {}", step.short))
            );
        }
        None => {
            println!("Every step is done ({total} of {total}). Try the labs with other settings.")
        }
    }
    println!();
    println!("Commands:");
    // The learner's commands, as `--help` lists them (`check` is the maintainers').
    let cli = crate::Cli::command();
    for command in cli.get_subcommands().filter(|c| c.get_name() != "check") {
        let about = command
            .get_about()
            .map(ToString::to_string)
            .unwrap_or_default();
        let name = format!("cargo xtask {:8}", command.get_name());
        println!("  {}  {about}", term::cyan(&name));
    }
    println!("Steps can be named step1, 1 or step1_baseline; `cargo xtask --help` has every flag.");
    Ok(ExitCode::SUCCESS)
}
