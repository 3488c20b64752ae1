//! `cargo xtask status`: each step done, started or not started, with the
//! hints opened before it went green.

use std::process::ExitCode;

use anstream::println;
use anyhow::Result;

use crate::layout::Layout;
use crate::progress::{Progress, StepState};
use crate::steps::{Catalogue, Step};
use crate::term;

/// Entry point of `status`.
pub fn run(layout: &Layout) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let progress = Progress::load(layout)?;
    let widest = |width: fn(&Step) -> usize| catalogue.steps().iter().map(width).max();
    let short_width = widest(|step| step.short.len()).unwrap_or(0);
    let title_width = widest(|step| step.title.chars().count()).unwrap_or(0);
    for step in catalogue.steps() {
        let entry = progress.get(&step.name);
        let (mark, word) = match entry.state {
            StepState::Done => (term::pass_mark(), "done"),
            StepState::Started => (term::yellow("…"), "started"),
            StepState::NotStarted => (term::dim("·"), "not started"),
        };
        let hints = match step.hints.rung_count() {
            0 => String::new(),
            count => format!("hints {} of {count}", entry.hints_before_done),
        };
        // Widths count characters, as the titles' dashes and quotes need.
        let (short, title) = (&step.short, &step.title);
        let hints = term::dim(&hints);
        println!("{mark} {short:short_width$}  {title:title_width$}  {word:11}  {hints}");
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
