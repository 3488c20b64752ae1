//! The built book in Debian's headless Chromium: each chapter renders, the
//! search finds a chapter, and a screenshot of every page is kept.
//!
//! Pages are opened straight from disk (`file://`): mdBook's output works
//! without a server, search included (its index is a script file), so there
//! is no server to write or start. Each visit gets a fresh profile and a time
//! limit, and the browser is killed if it passes.
//!
//! Nothing here installs a browser: `.ci/install-chromium` does, from
//! Debian's packages.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use scraper::Html;
use tokio::process::Command;

use crate::pages::select;

/// Overrides where Chromium is looked for.
pub const CHROMIUM_ENV: &str = "CHROMIUM";

/// Browsers tried, in order, when `$CHROMIUM` is not set.
const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// A page that has not finished in this time is killed and fails. A chapter
/// takes about a second and a half on a 2-core machine.
const PAGE_LIMIT: Duration = Duration::from_secs(30);

/// Virtual milliseconds Chromium lets scripts and timers run before it dumps
/// the DOM. mdBook's search loads its index with a script tag added after the
/// load event; the budget makes the dump wait for the results (and for
/// highlight.js) however fast the machine is.
const VIRTUAL_TIME_BUDGET_MS: u32 = 5000;

/// Headless, as root, with no GPU and no background connections (each would
/// be refused here, and some make start-up slow or noisy).
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // 1280 wide like a laptop, and tall enough to show a chapter's code.
    "--window-size=1280,6000",
];

/// Headless Chromium, ready to visit pages.
pub struct Browser {
    program: PathBuf,
    /// Fresh profiles, one per visit, removed on drop.
    profiles: tempfile::TempDir,
}

impl Browser {
    /// `$CHROMIUM`, else the first of [`CHROMIUM_NAMES`] on `PATH`.
    ///
    /// # Errors
    /// Says how to install Chromium when none is found.
    pub fn find() -> Result<Self> {
        let program = match std::env::var_os(CHROMIUM_ENV).filter(|value| !value.is_empty()) {
            Some(program) => PathBuf::from(program),
            None => CHROMIUM_NAMES
                .iter()
                .find_map(|name| on_path(name))
                .with_context(|| {
                    format!(
                        "no Chromium found (tried {} on PATH; set ${CHROMIUM_ENV} to use \
                         another); install Debian's: apt-get install -y chromium \
                         (or .ci/install-chromium)",
                        CHROMIUM_NAMES.join(", ")
                    )
                })?,
        };
        let profiles = tempfile::Builder::new()
            .prefix("book-check-")
            .tempdir()
            .context("cannot create a folder for browser profiles")?;
        Ok(Self { program, profiles })
    }

    /// The browser's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Opens `page` (a built file), writes a screenshot to `shot`, and returns
    /// the page as it stands once its scripts have run.
    pub async fn visit(&self, page: &Path, query: &str, shot: &Path) -> Result<Html, String> {
        let url = format!("file://{}{query}", page.display());
        let profile = tempfile::tempdir_in(self.profiles.path())
            .map_err(|error| format!("cannot create a browser profile: {error}"))?;
        let mut command = Command::new(&self.program);
        command
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
            .arg(format!("--screenshot={}", shot.display()))
            .arg("--dump-dom")
            .arg(&url)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(PAGE_LIMIT, command.output())
            .await
            .map_err(|_| {
                format!(
                    "chromium did not finish {url} within {} s; it was killed",
                    PAGE_LIMIT.as_secs()
                )
            })?
            .map_err(|error| format!("cannot run {}: {error}", self.program.display()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
            return Err(format!(
                "chromium exited with {} on {url}\n{}",
                output.status,
                tail.join("\n")
            ));
        }
        match std::fs::metadata(shot) {
            Ok(metadata) if metadata.len() > 0 => {}
            _ => return Err(format!("no screenshot written to {}", shot.display())),
        }
        Ok(Html::parse_document(&String::from_utf8_lossy(
            &output.stdout,
        )))
    }
}

/// The page rendered: it has a heading inside `<main>`.
pub fn check_rendered(dom: &Html) -> Result<(), String> {
    match select(dom, "main h1").first() {
        Some(heading) if !heading.trim().is_empty() => Ok(()),
        _ => Err("the page did not render: no <main> with a non-empty <h1>".to_string()),
    }
}

/// The search results list links to `expected_page`.
pub fn check_search(dom: &Html, expected_page: &str) -> Result<(), String> {
    // mdBook 0.5 prefixes its ids with `mdbook-`; 0.4 did not.
    let links = format!(
        "#mdbook-searchresults a[href^=\"{expected_page}\"], #searchresults a[href^=\"{expected_page}\"]"
    );
    if !select(dom, &links).is_empty() {
        return Ok(());
    }
    let header = select(dom, "#mdbook-searchresults-header, #searchresults-header");
    let said = header
        .first()
        .map_or("nothing: did the search script load?", |h| h.trim());
    Err(format!(
        "no result links to {expected_page}; the search said {said:?}"
    ))
}

/// The file `name` would run as from `PATH`, if any.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Fails unless the book has been built into `built`.
pub fn require_built(built: &Path) -> Result<()> {
    if !built.join("index.html").is_file() {
        bail!(
            "{} has no built book: run `mdbook build book` (or `cargo xtask check`) first",
            built.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_results_must_link_the_expected_chapter() {
        let found = Html::parse_document(
            "<div id=\"mdbook-searchresults-header\">2 search results for 'hedging':</div>\
             <ul id=\"mdbook-searchresults\"><li><a href=\"step6-resilience.html?highlight=hedging#x\">\
             Step 6</a></li></ul>",
        );
        let none = Html::parse_document(
            "<div id=\"mdbook-searchresults-header\">No search results for 'hedging'.</div>\
             <ul id=\"mdbook-searchresults\"></ul>",
        );

        assert_eq!(check_search(&found, "step6-resilience.html"), Ok(()));
        let error = check_search(&none, "step6-resilience.html").unwrap_err();
        assert!(error.contains("No search results"), "{error}");
        let blank = Html::parse_document("<main></main>");
        assert!(check_search(&blank, "step6-resilience.html").is_err());
    }

    #[test]
    fn a_page_renders_when_main_has_a_heading() {
        let rendered = Html::parse_document("<main><h1>Step 1</h1></main>");
        let blank = Html::parse_document("<body><p>loading</p></body>");

        assert_eq!(check_rendered(&rendered), Ok(()));
        assert!(check_rendered(&blank).is_err());
    }
}
