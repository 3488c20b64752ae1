//! `cargo xtask hint [step] [--all]`: progressive hints.
//!
//! Hints live in `steps/info.toml`, each more specific than the last. This is
//! the only command that shows a hint, and it records each one it shows in the
//! progress file, so the next call moves on to the following one. (`verify`
//! only says which hint comes next.)

use std::process::ExitCode;

use anstream::println;
use anyhow::Result;
use clap::Args;

use crate::layout::Layout;
use crate::progress::Progress;
use crate::steps::{Catalogue, Step};
use crate::term;
use crate::text;

/// Arguments of `hint`.
#[derive(Debug, Args)]
pub struct HintArgs {
    /// The step (default: your current step).
    pub step: Option<String>,
    /// Show every hint at once.
    #[arg(long)]
    pub all: bool,
}

/// Entry point of `hint`.
pub fn run(layout: &Layout, args: &HintArgs) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let mut progress = Progress::load(layout)?;
    let step = progress.step_or_current(&catalogue, args.step.as_deref())?;
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
    if args.all || shown >= count {
        // Everything was seen already: show the lot rather than nothing.
        for index in 0..count {
            print_hint(step, index);
        }
        progress.record_hints_shown(&step.name, count);
    } else {
        print_hint(step, shown);
        progress.record_hints_shown(&step.name, shown + 1);
        let left = count - shown - 1;
        if left > 0 {
            println!(
                "  {left} more: {}",
                term::cyan(&format!("cargo xtask hint {}", step.short))
            );
        }
    }
    println!("  the chapter: {}", step.chapter_path());
    progress.save(layout)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints hint `index` (0-based) of `step` as `hint 2 of 3 (step1): ...`.
fn print_hint(step: &Step, index: usize) {
    let heading = format!(
        "hint {} of {} ({}):",
        index + 1,
        step.hints.len(),
        step.short
    );
    println!("{}", term::yellow(&heading));
    for line in text::wrap(&step.hints[index], text::text_width(), "  ") {
        println!("{line}");
    }
}
