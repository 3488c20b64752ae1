//! `cargo xtask solution <step> [--apply]`: compare with the reference solution.
//!
//! Without `--apply` it only prints a unified diff from the learner's
//! `steps/<name>/src/` to `solutions/<name>/src/`, file by file. With
//! `--apply` it backs the learner's `src/` up, then makes it equal to the
//! solution's. Only `src/` is touched: the two crates' Cargo.toml differ on
//! purpose (the solution borrows the exercise's tests and lab).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anstream::println;
use anyhow::{Context, Result, bail};
use clap::Args;
use similar::TextDiff;

use crate::backup;
use crate::files;
use crate::layout::Layout;
use crate::steps::{Catalogue, StepKind};
use crate::term;

/// Arguments of `solution`.
#[derive(Debug, Args)]
pub struct SolutionArgs {
    /// The step.
    pub step: String,
    /// Replace your src/ with the solution's, after backing yours up.
    #[arg(long)]
    pub apply: bool,
}

/// Entry point of `solution`.
pub fn run(layout: &Layout, args: &SolutionArgs) -> Result<ExitCode> {
    let apply = args.apply;
    let catalogue = Catalogue::load(layout)?;
    let step = catalogue.resolve(&args.step)?;
    // In a tests step the learner writes tests/, and the code in src/ is
    // shared: the reference to compare with is the solution's tests/.
    let written = step.learner_dir();
    if step.kind == StepKind::Tests && apply {
        bail!(
            "in {} you write the tests, so there is nothing to apply: \
             `cargo xtask solution {}` shows the reference tests as a diff",
            step.short,
            step.short
        );
    }
    let learner_src = layout.step_dir(&step.name).join(written);
    let solution_src = layout.solution_dir(&step.name).join(written);
    if !solution_src.is_dir() {
        bail!(
            "there is no reference solution at {}",
            solution_src.display()
        );
    }

    if !apply {
        let diff = src_diff(layout, &learner_src, &solution_src)?;
        if diff.is_empty() {
            println!(
                "Your {}/ is identical to the reference solution.",
                layout.display(&learner_src)
            );
        } else {
            print_coloured(&diff);
            println!(
                "To replace your code with the solution (yours is backed up first): {}",
                term::cyan(&format!("cargo xtask solution {} --apply", step.short))
            );
        }
        return Ok(ExitCode::SUCCESS);
    }

    let backup = backup::back_up_learner_src(layout, &step.name)?;
    let removed = make_equal(&learner_src, &solution_src)?;
    println!(
        "{} {}/ now holds the reference solution.",
        term::pass_mark(),
        layout.display(&learner_src)
    );
    for path in removed {
        println!("  removed {} (it is in the backup)", layout.display(&path));
    }
    println!("Your code was backed up to {}/", layout.display(&backup));
    Ok(ExitCode::SUCCESS)
}

/// The unified diff of two `src/` trees, empty when they are identical.
pub fn src_diff(layout: &Layout, learner_src: &Path, solution_src: &Path) -> Result<String> {
    let mine = files::relative_files(learner_src)?;
    let theirs = files::relative_files(solution_src)?;
    let mut out = String::new();
    for relative in mine.union(&theirs) {
        let old_path = learner_src.join(relative);
        let new_path = solution_src.join(relative);
        let old = read_if_present(&old_path, mine.contains(relative))?;
        let new = read_if_present(&new_path, theirs.contains(relative))?;
        if old == new {
            continue;
        }
        let old_name = if mine.contains(relative) {
            layout.display(&old_path)
        } else {
            "/dev/null".to_string()
        };
        let new_name = if theirs.contains(relative) {
            layout.display(&new_path)
        } else {
            "/dev/null".to_string()
        };
        let diff = TextDiff::from_lines(&old, &new);
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&old_name, &new_name)
                .to_string(),
        );
    }
    Ok(out)
}

fn read_if_present(path: &Path, present: bool) -> Result<String> {
    if present {
        files::read_text(path)
    } else {
        Ok(String::new())
    }
}

/// Copies every solution file over the learner's and removes learner-only
/// files; returns the removed paths. Call only after a backup.
fn make_equal(learner_src: &Path, solution_src: &Path) -> Result<Vec<PathBuf>> {
    let mine = files::relative_files(learner_src)?;
    let theirs = files::relative_files(solution_src)?;
    for relative in &theirs {
        files::copy_file(&solution_src.join(relative), &learner_src.join(relative))?;
    }
    let mut removed = Vec::new();
    for relative in mine.difference(&theirs) {
        let path = learner_src.join(relative);
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        removed.push(path);
    }
    Ok(removed)
}

fn print_coloured(diff: &str) {
    for line in diff.lines() {
        let shown = if line.starts_with("+++") || line.starts_with("---") {
            term::bold(line)
        } else if line.starts_with('+') {
            term::green(line)
        } else if line.starts_with('-') {
            term::red(line)
        } else if line.starts_with("@@") {
            term::cyan(line)
        } else {
            line.to_string()
        };
        println!("{shown}");
    }
}
