//! `cargo xtask hint [step] [--all]`: progressive hints.
//!
//! Hints live in `steps/info.toml`, each more specific than the last. The
//! number shown is kept in the progress file so the next call (and the next
//! red `verify`) moves on to the following one.

use std::process::ExitCode;

use anyhow::Result;

use crate::layout::Layout;
use crate::progress::Progress;
use crate::steps::{Catalogue, Step};
use crate::term;

/// Entry point of `hint`.
pub fn run(layout: &Layout, query: Option<&str>, all: bool) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let mut progress = Progress::load(layout)?;
    let step = match query {
        Some(query) => catalogue.resolve(query)?,
        None => progress
            .current_step(&catalogue)
            .unwrap_or(&catalogue.steps()[catalogue.steps().len() - 1]),
    };
    if step.hints.is_empty() {
        println!(
            "{} has no hints yet; the chapter is {}.",
            step.short,
            step.chapter_path()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let count = step.hints.len();
    let shown = progress.get(&step.name).hints_shown;
    if all {
        for index in 0..count {
            print_hint(step, index);
        }
        progress.record_hints_shown(&step.name, count);
    } else if shown < count {
        print_hint(step, shown);
        progress.record_hints_shown(&step.name, shown + 1);
        let left = count - shown - 1;
        if left > 0 {
            println!(
                "  {left} more: {}",
                term::cyan(&format!("cargo xtask hint {}", step.short))
            );
        }
    } else {
        // Everything was seen already: show the lot rather than nothing.
        for index in 0..count {
            print_hint(step, index);
        }
        println!("That was every hint for {}.", step.short);
    }
    println!("  the chapter: {}", step.chapter_path());
    progress.save(layout)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints hint `index` (0-based) of `step` as `hint 2 of 3 (step1): ...`.
pub fn print_hint(step: &Step, index: usize) {
    let heading = format!(
        "hint {} of {} ({}):",
        index + 1,
        step.hints.len(),
        step.short
    );
    println!("{}", term::yellow(&heading));
    for line in term::wrap(&step.hints[index], term::text_width(), "  ") {
        println!("{line}");
    }
}
