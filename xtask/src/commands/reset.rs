//! `cargo xtask reset <step> [--from REV]`: back to the step's starting code.
//!
//! Backs up what the learner edits (`steps/<name>/src/`, or `tests/` for a
//! step where the learner writes the tests), then restores it from git
//! (`HEAD` unless `--from` says otherwise), so the result is exactly the
//! committed tree: files the learner added are removed (they are in the
//! backup), files they deleted come back. The step's progress is cleared
//! too, so `status` no longer calls it done; the backup's path and the
//! command that brings the code back are printed.

use std::process::{Command, ExitCode, Stdio};

use anstream::println;
use anyhow::{Context, Result, bail};
use clap::Args;

use crate::backup;
use crate::layout::Layout;
use crate::progress::Progress;
use crate::steps::Catalogue;
use crate::term;

/// Arguments of `reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The step.
    pub step: String,
    /// The git revision to restore from.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub from: String,
}

/// Entry point of `reset`.
pub fn run(layout: &Layout, args: &ResetArgs) -> Result<ExitCode> {
    let from = args.from.as_str();
    let catalogue = Catalogue::load(layout)?;
    let step = catalogue.resolve(&args.step)?;
    let dir = step.learner_dir();
    let src_relative = format!("steps/{}/{dir}", step.name);

    // Check everything git needs before touching a file.
    let version = git(layout, &["--version"]).output();
    if !version.is_ok_and(|output| output.status.success()) {
        bail!("git is not installed (or not on PATH): reset restores the step from git");
    }
    // `./` makes the path relative to the workbook root, which may sit below
    // the repository's top level.
    let tree = format!("{from}:./{src_relative}");
    let tracked = git(layout, &["rev-parse", "--verify", "--quiet", &tree])
        .stdout(Stdio::null())
        .status()
        .context("cannot run git")?;
    if !tracked.success() {
        bail!(
            "cannot reset: {src_relative} is not tracked by git at `{from}` \
             (is this a git clone of the workbook, and is `{from}` a revision?)"
        );
    }

    let backup = backup::back_up_learner_dir(layout, &step.name, dir)?;
    let src = layout.step_dir(&step.name).join(dir);
    if src.exists() {
        std::fs::remove_dir_all(&src).with_context(|| {
            format!(
                "cannot clear {} (your code is backed up in {})",
                src.display(),
                backup.display()
            )
        })?;
    }
    let restored = git(layout, &["checkout", from, "--", &src_relative])
        .status()
        .context("cannot run git")?;
    if !restored.success() {
        bail!(
            "git could not restore {src_relative}; your code is backed up in {}",
            backup.display()
        );
    }
    let mut progress = Progress::load(layout)?;
    progress.forget(&step.name);
    progress.save(layout)?;
    println!(
        "{} {src_relative}/ is back to its state at `{from}`, and {} is not started.",
        term::pass_mark(),
        step.short
    );
    let saved = layout.display(&backup.join(dir));
    println!("Your code was backed up to {saved}/");
    println!(
        "  to bring it back:  {}",
        term::cyan(&format!("cp -R {saved}/. {src_relative}/"))
    );
    Ok(ExitCode::SUCCESS)
}

fn git(layout: &Layout, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(layout.root()).args(args);
    command
}
