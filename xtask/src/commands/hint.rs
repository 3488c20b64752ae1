//! `cargo xtask hint [step] [--all]`: the next rung of a hint ladder.
//!
//! Hints live in `steps/hints/<short>.toml`, behind a spoiler warning: one
//! ladder per topic (a function the learner writes), from the idea to which
//! API to the code. `hint` opens the next rung of the topic of the first
//! failing test of the last `verify` (without one, of the first topic with a
//! rung left) and records it; `--all` shows that topic's whole ladder. This is
//! the only command that shows a hint (`verify` only says which comes next).

use std::process::ExitCode;

use anstream::println;
use anyhow::Result;
use clap::Args;

use crate::layout::Layout;
use crate::progress::{Progress, StepState};
use crate::steps::Catalogue;
use crate::term;
use crate::text;

/// Arguments of `hint`.
#[derive(Debug, Args)]
pub struct HintArgs {
    /// The step (default: your current step).
    pub step: Option<String>,
    /// Show every rung of the topic's ladder at once.
    #[arg(long)]
    pub all: bool,
}

/// Entry point of `hint`.
pub fn run(layout: &Layout, args: &HintArgs) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let mut progress = Progress::load(layout)?;
    let step = progress.step_or_current(&catalogue, args.step.as_deref())?;
    let entry = progress.get(&step.name);
    let green = entry.state == StepState::Done && entry.first_failing.is_none() && !args.all;
    let clue = entry.first_failing.as_deref();
    let topic = step.hints.topic_for(clue, |name| entry.opened(name));
    let Some(topic) = topic.filter(|_| !green) else {
        // Green is the last run passing (done, then red again, gets hints); the next rung may be code.
        let why = match green {
            true => "is green (`--all` shows a ladder)",
            false => "has no hints",
        };
        let chapter = step.chapter_path();
        println!("{} {why}; the chapter is {chapter}.", step.short);
        return Ok(ExitCode::SUCCESS);
    };
    let (opened, count) = (entry.opened(&topic.name), topic.ladder.len());
    // Once every rung is open, show the whole ladder again rather than nothing.
    let rungs = if args.all || opened >= count {
        1..=count
    } else {
        opened + 1..=opened + 1
    };
    for rung in rungs.clone() {
        let kind = match rung {
            1 => "the idea",
            last if last == count => "the code",
            _ => "which API",
        };
        let heading = format!("{} — hint {rung} of {count}: {kind}", topic.name);
        println!(
            "{} {}",
            term::yellow(&heading),
            term::dim(&format!("({})", topic.file))
        );
        for line in text::wrap(&topic.ladder[rung - 1], text::text_width(), "  ") {
            println!("{line}");
        }
        progress.record_rung(&step.name, &topic.name, rung);
    }
    let left = count.saturating_sub(*rungs.end());
    if left > 0 {
        let command = term::cyan(&format!("cargo xtask hint {}", step.short));
        println!("  {left} more for {}: {command}", topic.name);
    }
    println!("  the chapter: {}", step.chapter_path());
    progress.save(layout)?;
    Ok(ExitCode::SUCCESS)
}
