//! `cargo xtask check`: everything CI checks, one line per check.
//!
//! Per step: the two crates are laid out as the runner expects
//! (`step_layout`), every test is red on the untouched exercise and green on
//! the reference solution, and a tests step's reference tests catch every
//! mutant (`red_green`). Then, workspace-wide: fmt, clippy `-D warnings`, the
//! workspace's own tests (without the stubs), benches run once, the chapters
//! in `SUMMARY.md`, `mdbook build`, the built pages read from disk
//! (`book_check pages`), and the conventions of `tidy` (headers, no skipped
//! tests, book includes, given copies).
//!
//! The expected-red stub runs are captured and shown only if a check about
//! them fails, so the log ends with `check: N passed, M failed` and never on
//! an expected red run.

mod red_green;
mod step_layout;

use std::process::{Command, ExitCode};

use anstream::println;
use anyhow::Result;

use crate::cargo::cargo_command;
use crate::child::{MDBOOK_INSTALL, mdbook_version, run_quietly};
use crate::layout::Layout;
use crate::steps::{Catalogue, Flavor, Step};
use crate::tally::{self, Tally};
use crate::term;
use crate::tidy;

/// Entry point of `check`.
pub fn run(layout: &Layout) -> Result<ExitCode> {
    let mut tally = Tally::default();
    let catalogue = Catalogue::load(layout)
        .inspect_err(|error| tally.fail("steps/info.toml is valid", &format!("{error:#}")))
        .ok();
    let steps: &[Step] = catalogue.as_ref().map_or(&[], |c| c.steps());
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(layout.root())
        .no_deps()
        .exec()
        .inspect_err(|error| tally.fail("cargo metadata reads the workspace", &error.to_string()))
        .ok();

    for step in steps {
        println!("{}", term::bold(&format!("{} — {}", step.name, step.title)));
        if let Some(metadata) = &metadata {
            tally.record(
                &format!("{}: {}", step.short, step_layout::title(step)),
                step_layout::check(layout, metadata, step),
            );
        }
        red_green::check_step(layout, step, &mut tally)?;
    }

    println!("{}", term::bold("workspace"));
    check_workspace(layout, steps, &mut tally);
    check_book(layout, steps, &mut tally);
    for convention in &tidy::CONVENTIONS {
        tally.record(convention.name, (convention.check)(layout));
    }
    Ok(tally.finish("check"))
}

/// fmt, clippy, the tests of everything but the stubs, the benches once.
fn check_workspace(layout: &Layout, steps: &[Step], tally: &mut Tally) {
    let in_root = |command: &mut Command| run_quietly(command.current_dir(layout.root()));
    // Step 6's OTLP exporter is a cargo feature: its test runs on the reference.
    let otlp = "--features=step6_resilience_solution/otlp".to_string();
    let mut without_stubs = vec!["--workspace".to_string(), otlp];
    for step in steps {
        without_stubs.extend(["--exclude".to_string(), step.package(Flavor::Exercise)]);
    }
    tally.record(
        "cargo fmt --all --check",
        // rustfmt colours its diff even into a pipe unless told not to.
        in_root(cargo_command().args(["fmt", "--all", "--check", "--", "--color=never"])),
    );
    tally.record(
        "cargo clippy --workspace --all-targets --all-features -- -D warnings",
        in_root(cargo_command().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ])),
    );
    tally.record(
        "cargo test --workspace, without the exercise stubs (solutions, support, runner, tidy, doc tests)",
        in_root(cargo_command().args(["test", "--quiet"]).args(&without_stubs)),
    );
    // Running benches in test mode runs each criterion benchmark once: it
    // proves they compile *and* run, for seconds rather than minutes.
    tally.record(
        "benches compile and run once (cargo test --benches)",
        in_root(
            cargo_command()
                .args(["test", "--quiet", "--benches"])
                .args(&without_stubs),
        ),
    );
}

/// The chapters are linked, the book builds, and the built pages show code.
fn check_book(layout: &Layout, steps: &[Step], tally: &mut Tally) {
    tally.record(
        "every step's chapter is in book/src/SUMMARY.md",
        chapters_in_summary(layout, steps),
    );
    let built = match mdbook_version() {
        None => Err(format!(
            "mdbook is not installed; install it with:\n{MDBOOK_INSTALL}"
        )),
        Some(_) => run_quietly(
            Command::new("mdbook")
                .current_dir(layout.root())
                .args(["build", "book"]),
        ),
    };
    let pages = match built {
        // The book folder is named, in case book_check was built from another checkout.
        Ok(()) => run_quietly(
            cargo_command()
                .current_dir(layout.root())
                .args(["run", "--quiet", "--package", "book_check", "--", "--book"])
                .arg(layout.book_dir())
                .arg("pages"),
        ),
        Err(_) => Err("not run: the book did not build".to_string()),
    };
    tally.record("mdbook build book", built);
    tally.record(
        "the built book: every chapter rendered, no raw {{#include, no empty code block",
        pages,
    );
}

/// Every step's chapter is linked (`](chapter)` or `](./chapter)`) from `SUMMARY.md`.
fn chapters_in_summary(layout: &Layout, steps: &[Step]) -> Result<(), String> {
    let path = layout.book_dir().join("src").join("SUMMARY.md");
    let summary = std::fs::read_to_string(&path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let linked = |chapter: &str| {
        ["](", "](./"]
            .iter()
            .any(|at| summary.contains(&format!("{at}{chapter})")))
    };
    let missing = steps.iter().filter(|step| !linked(&step.chapter));
    tally::outcome(
        missing
            .map(|step| format!("not linked from SUMMARY.md: {}", step.chapter))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapters_are_found_in_the_summary() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::at(root.path().to_path_buf());
        let summary = "# Summary\n\n[Introduction](README.md)\n- [Step 1](./step1-baseline.md)\n";
        std::fs::create_dir_all(layout.book_dir().join("src")).unwrap();
        std::fs::write(layout.book_dir().join("src/SUMMARY.md"), summary).unwrap();
        let steps = crate::steps::Catalogue::parse(
            "[[step]]\nname = \"a\"\nshort = \"s1\"\ntitle = \"T\"\nchapter = \"step1-baseline.md\"\n\
             time_limit_secs = 1\nlab = \"l\"\n\n[[step]]\nname = \"b\"\nshort = \"s2\"\ntitle = \"T\"\n\
             chapter = \"step2-deadlines.md\"\ntime_limit_secs = 1\nlab = \"l\"\n",
        )
        .unwrap();
        let problems = chapters_in_summary(&layout, steps.steps());
        assert_eq!(
            problems,
            Err("not linked from SUMMARY.md: step2-deadlines.md".into())
        );
    }
}
