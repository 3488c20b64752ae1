//! `cargo xtask book [--open] [--build]`: serve or build the mdBook.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::commands::lab::exit_code_of;
use crate::layout::Layout;

/// The line that installs the mdBook version the book is written for.
pub const MDBOOK_INSTALL: &str = "cargo install mdbook --locked --version ^0.5";

/// Where `cargo xtask book` serves the book. Not mdBook's default (3000):
/// step 4's service listens there, and a learner reads the chapter while
/// the service runs.
pub const BOOK_PORT: u16 = 3300;

/// Entry point of `book`.
pub fn run(layout: &Layout, open: bool, build: bool) -> Result<ExitCode> {
    if mdbook_version().is_none() {
        bail!("mdbook is not installed; install it with:\n  {MDBOOK_INSTALL}");
    }
    let mut command = Command::new("mdbook");
    command
        .current_dir(layout.root())
        .arg(if build { "build" } else { "serve" })
        .arg("book");
    if !build {
        command.args(["--port", &BOOK_PORT.to_string()]);
    }
    if open {
        command.arg("--open");
    }
    let status = command.status().context("cannot run mdbook")?;
    Ok(exit_code_of(status))
}

/// `mdbook --version`'s output (e.g. `mdbook v0.5.4`), or `None` if absent.
pub fn mdbook_version() -> Option<String> {
    let output = Command::new("mdbook").arg("--version").output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}
