//! `cargo xtask status`: each step done, started or not started, with hints used.

use std::process::ExitCode;

use anstream::println;
use anyhow::Result;

use crate::layout::Layout;
use crate::progress::{Progress, StepState};
use crate::steps::Catalogue;
use crate::term;

/// Entry point of `status`.
pub fn run(layout: &Layout) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let progress = Progress::load(layout)?;
    let short_width = catalogue
        .steps()
        .iter()
        .map(|step| step.short.len())
        .max()
        .unwrap_or(0);
    let title_width = catalogue
        .steps()
        .iter()
        .map(|step| step.title.chars().count())
        .max()
        .unwrap_or(0);
    for step in catalogue.steps() {
        let entry = progress.get(&step.name);
        let (mark, word) = match entry.state {
            StepState::Done => (term::pass_mark(), "done"),
            StepState::Started => (term::yellow("…"), "started"),
            StepState::NotStarted => (term::dim("·"), "not started"),
        };
        let hints = if step.hints.is_empty() {
            String::new()
        } else {
            format!(
                "hints {} of {}",
                entry.hints_shown.min(step.hints.len()),
                step.hints.len()
            )
        };
        let title_pad = title_width - step.title.chars().count();
        println!(
            "{mark} {:short_width$}  {}{}  {:11}  {}",
            step.short,
            step.title,
            " ".repeat(title_pad),
            word,
            term::dim(&hints)
        );
    }
    println!();
    match progress.current_step(&catalogue) {
        Some(step) => println!(
            "current step: {} — {}: {}",
            step.short,
            step.title,
            term::cyan(&format!("cargo xtask verify {}", step.short))
        ),
        None => println!("every step is done."),
    }
    Ok(ExitCode::SUCCESS)
}
