//! `cargo xtask book [--open] [--build]`: serve or build the mdBook.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::child::{MDBOOK_INSTALL, exit_code_of, mdbook_version};
use crate::layout::Layout;

/// Where `cargo xtask book` serves the book. Not mdBook's default (3000):
/// step 4's service listens there, and a learner reads the chapter while
/// the service runs.
pub const BOOK_PORT: u16 = 3300;

/// Arguments of `book`.
#[derive(Debug, Args)]
pub struct BookArgs {
    /// Open the book in a browser.
    #[arg(long)]
    pub open: bool,
    /// Build into book/book/ instead of serving.
    #[arg(long)]
    pub build: bool,
}

/// Entry point of `book`.
pub fn run(layout: &Layout, args: &BookArgs) -> Result<ExitCode> {
    if mdbook_version().is_none() {
        bail!("mdbook is not installed; install it with:\n  {MDBOOK_INSTALL}");
    }
    let mut command = Command::new("mdbook");
    command
        .current_dir(layout.root())
        .arg(if args.build { "build" } else { "serve" })
        .arg("book");
    if !args.build {
        command.args(["--port", &BOOK_PORT.to_string()]);
    }
    if args.open {
        command.arg("--open");
    }
    let status = command.status().context("cannot run mdbook")?;
    Ok(exit_code_of(status))
}
