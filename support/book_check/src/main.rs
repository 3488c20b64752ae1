//! The maintainers' checks of the built book, kept out of the learner's
//! runner: `cargo run -p book_check -- pages` reads the built pages from disk
//! (`cargo xtask check` runs it), and `cargo run -p book_check -- browser`
//! opens them in headless Chromium (CI runs it after `check`).
//!
//! # Layout
//! - `summary`: the chapters `SUMMARY.md` links.
//! - `pages`: the checks on a built page's HTML (no browser).
//! - `browser`: Chromium: rendering, search, screenshots.
//!
//! Like `check`, each run ends with `<command>: N passed, M failed` and exits
//! 1 when anything failed.

mod browser;
mod pages;
mod summary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::browser::Browser;
use crate::summary::Chapter;

/// The word searched for, and the chapter the results must link to.
const SEARCH_TERM: &str = "hedging";
const SEARCH_EXPECTS: &str = "step6-resilience.html";

/// Checks of the built book.
#[derive(Debug, Parser)]
#[command(name = "book_check")]
struct Cli {
    /// The book's folder (with book.toml, src/ and the built book/).
    #[arg(long, default_value_os_t = default_book_dir())]
    book: PathBuf,
    #[command(subcommand)]
    command: Check,
}

#[derive(Debug, Subcommand)]
enum Check {
    /// The built pages, from disk: every chapter there, rendered, with no raw
    /// `{{#include` and no empty code block.
    Pages,
    /// Every chapter and the search in headless Chromium; screenshots in
    /// `book-screenshots/` at the workspace root.
    Browser,
}

/// `book/` in the workspace this crate belongs to (it is a maintainers' tool,
/// always run from the checkout it was built in).
fn default_book_dir() -> PathBuf {
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../book");
    book.canonicalize().unwrap_or(book)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Check::Pages => pages(&cli.book),
        Check::Browser => browser(&cli.book).await,
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

fn chapters(book: &Path) -> Result<Vec<Chapter>> {
    let path = book.join("src/SUMMARY.md");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(summary::chapters(&text))
}

fn pages(book: &Path) -> Result<ExitCode> {
    let built = book.join("book");
    let mut tally = Tally::default();
    for chapter in chapters(book)? {
        let outcome = pages::check_built_page(&built, &chapter.page);
        tally.record(&format!("{}: {}", chapter.page, chapter.title), outcome);
    }
    Ok(tally.finish("pages"))
}

async fn browser(book: &Path) -> Result<ExitCode> {
    let started = Instant::now();
    let built = book
        .join("book")
        .canonicalize()
        .unwrap_or(book.join("book"));
    browser::require_built(&built)?;
    let browser = Browser::find()?;
    let screenshots = book.parent().unwrap_or(book).join("book-screenshots");
    std::fs::create_dir_all(&screenshots)
        .with_context(|| format!("cannot create {}", screenshots.display()))?;
    println!("book in {}", browser.program().display());
    let mut tally = Tally::default();
    for chapter in chapters(book)? {
        let shot = screenshots.join(chapter.page.replace('/', "_").replace(".html", ".png"));
        let outcome = browser.visit(&built.join(&chapter.page), "", &shot).await;
        let outcome = outcome.and_then(|dom| browser::check_rendered(&dom));
        tally.record(&format!("{}: {}", chapter.page, chapter.title), outcome);
    }
    let shot = screenshots.join(format!("search-{SEARCH_TERM}.png"));
    let query = format!("?search={SEARCH_TERM}");
    let outcome = browser
        .visit(&built.join("index.html"), &query, &shot)
        .await;
    let outcome = outcome.and_then(|dom| browser::check_search(&dom, SEARCH_EXPECTS));
    tally.record(
        &format!("search for \"{SEARCH_TERM}\" lists {SEARCH_EXPECTS}"),
        outcome,
    );
    println!(
        "screenshots in {}, {:.1} s in all",
        screenshots.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(tally.finish("browser"))
}

/// Counts checks and prints one line for each, as `cargo xtask check` does.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.passed += 1;
                println!("✓ {name}");
            }
            Err(details) => {
                self.failed += 1;
                println!("✗ {name}");
                for line in details.trim_end().lines() {
                    println!("    {line}");
                }
            }
        }
    }

    fn finish(&self, command: &str) -> ExitCode {
        println!(
            "\n{command}: {} passed, {} failed",
            self.passed, self.failed
        );
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
