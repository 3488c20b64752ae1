//! `cargo xtask browser`: the built book, checked in a real headless browser.
//!
//! `check` proves every include resolves in the Markdown; this proves what a
//! learner actually sees. It builds the book, serves `book/book/` on loopback
//! (`static_server`), and opens every chapter of `SUMMARY.md` in Debian's
//! headless Chromium, one at a time under a time limit: the page rendered
//! (a `<main>` with an `<h1>`), no raw `{{#include` text, no empty code block
//! (mdBook renders a missing anchor as one, silently), and it is not the 404
//! page. Each chapter's screenshot goes to `book-screenshots/` (gitignored).
//! Then mdBook's search is opened with `?search=hedging` and must list the
//! step 6 chapter.
//!
//! The runner never installs a browser: `.ci/install-chromium` does, from
//! Debian's packages. Like `check`, the log ends `browser: N passed, M failed`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::commands::book::{MDBOOK_INSTALL, mdbook_version};
use crate::commands::check::Tally;
use crate::layout::Layout;
use crate::run_limit::{Completion, run_with_limit};
use crate::static_server::StaticServer;
use crate::term;

/// Overrides where Chromium is looked for.
pub const CHROMIUM_ENV: &str = "CHROMIUM";

/// Browser programs tried on `PATH`, after `/usr/bin/chromium`.
const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The fix when no browser is found. Debian's package, never a download.
const CHROMIUM_INSTALL: &str =
    "apt-get install -y chromium   (Debian/Ubuntu; or .ci/install-chromium)";

/// A page that has not finished in this time is killed and fails. A chapter
/// takes about a second and a half on a 2-core machine.
const PAGE_LIMIT: Duration = Duration::from_secs(30);

/// Virtual milliseconds Chromium lets scripts and timers run before it
/// dumps the DOM. mdBook's search loads its index with a script tag added
/// *after* the load event, so the results may come after `--dump-dom` would
/// otherwise fire; the budget makes the dump wait for them (and for
/// highlight.js) instead of depending on the machine's speed.
const VIRTUAL_TIME_BUDGET_MS: u32 = 5000;

/// The word searched for, and the chapter the results must link to.
const SEARCH_TERM: &str = "hedging";
const SEARCH_EXPECTS: &str = "step6-resilience.html";

/// The flags Debian's Chromium needs to run headless here, as root, behind a
/// closed network: no sandbox (root), no GPU, and no background connections
/// (each would be refused, and some make start-up slow or noisy).
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A chapter listed in `SUMMARY.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chapter {
    /// The link text in `SUMMARY.md`.
    pub title: String,
    /// The built page, e.g. `step1-baseline.html`.
    pub page: String,
}

/// Entry point of `browser`.
pub fn run(layout: &Layout) -> Result<ExitCode> {
    let started = Instant::now();
    let chromium = find_chromium()?;
    build_book(layout)?;
    let summary_path = layout.book_dir().join("src").join("SUMMARY.md");
    let summary = std::fs::read_to_string(&summary_path)
        .with_context(|| format!("cannot read {}", layout.display(&summary_path)))?;
    let chapters = parse_summary(&summary);
    let server = StaticServer::start(&layout.book_dir().join("book"))?;
    let screenshots = layout.root().join("book-screenshots");
    std::fs::create_dir_all(&screenshots)
        .with_context(|| format!("cannot create {}", layout.display(&screenshots)))?;
    let profiles = TempDir::new()?;
    let browser = Browser {
        program: chromium,
        profiles: profiles.path().to_path_buf(),
    };

    println!(
        "{}",
        term::bold(&format!("book in {}", browser.program.display()))
    );
    let mut tally = Tally::default();
    for chapter in &chapters {
        let shot = screenshots.join(screenshot_name(&chapter.page));
        let outcome = browser
            .visit(&server.url(&chapter.page), &shot)
            .and_then(|dom| check_page(&dom))
            .and_then(|()| check_screenshot(&shot));
        tally.record(&format!("{}: {}", chapter.page, chapter.title), outcome);
    }
    let shot = screenshots.join(format!("search-{SEARCH_TERM}.png"));
    let outcome = browser
        .visit(
            &server.url(&format!("index.html?search={SEARCH_TERM}")),
            &shot,
        )
        .and_then(|dom| check_search(&dom, SEARCH_EXPECTS));
    tally.record(
        &format!("search for \"{SEARCH_TERM}\" lists {SEARCH_EXPECTS}"),
        outcome,
    );

    println!(
        "{}",
        term::dim(&format!(
            "screenshots in {}/, {:.1} s in all",
            layout.display(&screenshots),
            started.elapsed().as_secs_f64()
        ))
    );
    Ok(tally.finish("browser"))
}

/// Runs `mdbook build book`, showing its output only if it fails.
fn build_book(layout: &Layout) -> Result<()> {
    if mdbook_version().is_none() {
        bail!("mdbook is not installed; install it with:\n  {MDBOOK_INSTALL}");
    }
    let output = Command::new("mdbook")
        .current_dir(layout.root())
        .args(["build", "book"])
        .output()
        .context("cannot run mdbook")?;
    if !output.status.success() {
        bail!(
            "mdbook build book failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The browser to drive: `$CHROMIUM`, `/usr/bin/chromium`, or the first of
/// [`CHROMIUM_NAMES`] on `PATH`.
///
/// # Errors
/// Says how to install Chromium when none is found.
fn find_chromium() -> Result<PathBuf> {
    if let Some(program) = std::env::var_os(CHROMIUM_ENV).filter(|value| !value.is_empty()) {
        let program = PathBuf::from(program);
        if program.is_file() || on_path(&program.to_string_lossy()).is_some() {
            return Ok(program);
        }
        bail!(
            "${CHROMIUM_ENV} names {}, which does not exist",
            program.display()
        );
    }
    let debian = Path::new("/usr/bin/chromium");
    if debian.is_file() {
        return Ok(debian.to_path_buf());
    }
    CHROMIUM_NAMES
        .iter()
        .find_map(|name| on_path(name))
        .with_context(|| {
            format!(
                "no Chromium found (tried /usr/bin/chromium and {} on PATH; \
             set ${CHROMIUM_ENV} to use another); install it with:\n  {CHROMIUM_INSTALL}",
                CHROMIUM_NAMES.join(", ")
            )
        })
}

/// The file `name` would run as from `PATH`, if any.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The chapters linked from `SUMMARY.md`, in order: every `[title](file.md)`
/// becomes `file.html`. Draft chapters (`[title]()`) have no page and are
/// skipped; so are links to anything but a `.md` file.
pub fn parse_summary(summary: &str) -> Vec<Chapter> {
    let mut chapters = Vec::new();
    for line in summary.lines() {
        let mut rest = line;
        while let Some(open) = rest.find('[') {
            let Some(close) = rest[open..].find("](").map(|at| open + at) else {
                break;
            };
            let Some(end) = rest[close + 2..].find(')').map(|at| close + 2 + at) else {
                break;
            };
            let title = rest[open + 1..close].trim();
            let target = rest[close + 2..end].trim();
            if let Some(stem) = target.strip_suffix(".md").filter(|stem| !stem.is_empty()) {
                chapters.push(Chapter {
                    title: title.to_string(),
                    page: format!("{}.html", stem.trim_start_matches("./")),
                });
            }
            rest = &rest[end + 1..];
        }
    }
    chapters
}

/// `step1-baseline.html` → `step1-baseline.png`; nested pages get `_` for `/`.
fn screenshot_name(page: &str) -> String {
    let stem = page.strip_suffix(".html").unwrap_or(page);
    format!("{}.png", stem.replace('/', "_"))
}

/// Headless Chromium with the flags this machine needs.
struct Browser {
    program: PathBuf,
    /// Where each visit gets its own fresh profile.
    profiles: PathBuf,
}

impl Browser {
    /// Opens `url`, writes a 1280×6000 screenshot to `shot` (tall enough to
    /// show a chapter's code, not only its opening), and returns the DOM as it
    /// stands once scripts have run.
    fn visit(&self, url: &str, shot: &Path) -> Result<String, String> {
        // A fresh profile per visit: no cache, no lock left by a killed run.
        let profile = self.profiles.join(format!("profile-{}", unique_suffix()));
        let mut command = Command::new(&self.program);
        command
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
            .arg("--window-size=1280,6000")
            .arg(format!("--screenshot={}", shot.display()))
            .arg("--dump-dom")
            .arg(url);
        let run = run_with_limit(&mut command, PAGE_LIMIT).map_err(|error| format!("{error:#}"))?;
        match run.completion {
            Completion::Exited(status) if status.success() => Ok(run.stdout),
            Completion::Exited(status) => Err(format!(
                "chromium exited with {status} on {url}\n{}",
                last_lines(&run.stderr, 10)
            )),
            Completion::TimedOut => Err(format!(
                "chromium did not finish {url} within {} s; it was killed",
                PAGE_LIMIT.as_secs()
            )),
        }
    }
}

/// The checks on one chapter's DOM; every problem found, one per line.
///
/// # Errors
/// Lists what is wrong with the page.
pub fn check_page(dom: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    if is_not_found_page(dom) {
        problems.push("the page is a 404 (not found)".to_string());
    }
    match main_heading(dom) {
        Some(heading) if !heading.is_empty() => {}
        Some(_) => problems.push("the page's <h1> is empty".to_string()),
        None => problems.push("the page did not render: no <main> with an <h1>".to_string()),
    }
    for raw in ["{{#include", "{{#rustdoc_include"] {
        if dom.contains(raw) {
            problems.push(format!("raw `{raw}` text: an include was not expanded"));
        }
    }
    let empty = empty_code_blocks(dom);
    if empty > 0 {
        problems.push(format!(
            "{empty} empty code block(s): an include or anchor resolved to nothing"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// mdBook's own 404 page, or this server's plain 404 answer.
fn is_not_found_page(dom: &str) -> bool {
    // A bare "404" is not enough: the chapters discuss HTTP status codes.
    dom.contains("<title>Page not found")
        || dom.contains("id=\"document-not-found-404\"")
        || text_of(dom).trim() == "404 Not Found"
}

/// The text of the first `<h1>` inside `<main>`, if the page has both.
fn main_heading(dom: &str) -> Option<String> {
    let main = dom.find("<main")?;
    let inside = &dom[main..];
    let h1 = inside.find("<h1")?;
    let end = inside[h1..].find("</h1>")? + h1;
    Some(text_of(&inside[h1..end]).trim().to_string())
}

/// How many `<pre>` blocks hold a `<code>` with no text in it.
pub fn empty_code_blocks(dom: &str) -> usize {
    let mut count = 0;
    let mut rest = dom;
    while let Some(start) = find_tag(rest, "pre") {
        let Some(end) = rest[start..].find("</pre>").map(|at| start + at) else {
            break;
        };
        let block = &rest[start..end];
        if let Some(code) = find_tag(block, "code") {
            let body_end = block[code..]
                .find("</code>")
                .map_or(block.len(), |at| code + at);
            // Skip the `<code ...>` tag itself; what is left is its content.
            let body = &block[code..body_end];
            let content = body.find('>').map_or("", |gt| &body[gt + 1..]);
            if text_of(content).trim().is_empty() {
                count += 1;
            }
        }
        rest = &rest[end + "</pre>".len()..];
    }
    count
}

/// The index of the next `<name>` or `<name ...>` tag (not `<names>`).
fn find_tag(html: &str, name: &str) -> Option<usize> {
    let open = format!("<{name}");
    let mut from = 0;
    while let Some(at) = html[from..].find(&open).map(|at| from + at) {
        let after = html[at + open.len()..].chars().next();
        if matches!(after, Some('>' | ' ' | '\t' | '\n' | '\r' | '/')) {
            return Some(at);
        }
        from = at + open.len();
    }
    None
}

/// `html` with its tags removed (entities are left as they are).
fn text_of(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for character in html.chars() {
        match character {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => text.push(character),
            _ => {}
        }
    }
    text
}

/// The search results list must link to `expected_page`.
///
/// # Errors
/// Says what the search showed instead.
pub fn check_search(dom: &str, expected_page: &str) -> Result<(), String> {
    // mdBook 0.5 prefixes its ids with `mdbook-`; 0.4 did not.
    let list = ["id=\"mdbook-searchresults\"", "id=\"searchresults\""]
        .iter()
        .find_map(|id| dom.find(id))
        .ok_or("no search results list on the page: did searcher.js load?")?;
    let end = dom[list..].find("</ul>").map_or(dom.len(), |at| list + at);
    let results = &dom[list..end];
    if results.contains(&format!("href=\"{expected_page}")) {
        return Ok(());
    }
    let header = [
        "id=\"mdbook-searchresults-header\"",
        "id=\"searchresults-header\"",
    ]
    .iter()
    .find_map(|id| dom.find(id))
    .map(|at| {
        let tail = &dom[at..];
        let start = tail.find('>').map_or(0, |gt| gt + 1);
        let stop = tail.find("</").unwrap_or(tail.len());
        text_of(tail.get(start..stop).unwrap_or_default())
    })
    .unwrap_or_default();
    Err(format!(
        "no result links to {expected_page}; the search said: {:?}",
        header.trim()
    ))
}

/// The screenshot exists and is not empty.
fn check_screenshot(shot: &Path) -> Result<(), String> {
    match std::fs::metadata(shot) {
        Ok(metadata) if metadata.len() > 0 => Ok(()),
        _ => Err(format!("no screenshot written to {}", shot.display())),
    }
}

/// The last `count` lines of `text`, for a short failure message.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// A suffix no other visit of this run, nor another run, will use.
fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// A temporary folder removed on drop (xtask has `tempfile` only for tests).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("xtask-browser-{}", unique_suffix()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover profile in /tmp harms nothing.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page shaped like mdBook's, with `body` inside `<main>`.
    fn page(body: &str) -> String {
        format!(
            "<html><head><title>Step 1 - Book</title></head><body>\
             <h1 class=\"menu-title\">The book</h1><main>{body}</main></body></html>"
        )
    }

    const GOOD_BODY: &str = "<h1 id=\"step-1\"><a class=\"header\" href=\"#step-1\">Step 1</a></h1>\
        <p>Status 404 is discussed here.</p>\
        <pre class=\"playground\"><code class=\"language-rust hljs\">\
        <span class=\"boring\">use x;</span>fn main() {}</code></pre>";

    #[test]
    fn a_good_page_passes() {
        assert_eq!(check_page(&page(GOOD_BODY)), Ok(()));
    }

    #[test]
    fn raw_include_text_fails() {
        let body = format!("{GOOD_BODY}<p>{{{{#include ../../solutions/x.rs:anchor}}}}</p>");

        let problems = check_page(&page(&body)).unwrap_err();

        assert!(problems.contains("{{#include"), "{problems}");
    }

    #[test]
    fn an_empty_code_block_fails() {
        let body = format!(
            "{GOOD_BODY}<pre class=\"playground\"><div class=\"buttons\"><button></button></div>\
             <code class=\"language-rust\">\n</code></pre>"
        );

        let problems = check_page(&page(&body)).unwrap_err();

        assert!(problems.contains("1 empty code block"), "{problems}");
        assert_eq!(empty_code_blocks(&page(GOOD_BODY)), 0);
    }

    #[test]
    fn a_page_without_main_or_a_404_page_fails() {
        let unrendered = check_page("<html><body><p>loading</p></body></html>").unwrap_err();
        let not_found = check_page(&page(
            "<h1 id=\"document-not-found-404\">Document not found (404)</h1>",
        ))
        .unwrap_err();
        let plain = check_page("<html><body><pre>404 Not Found\n</pre></body></html>").unwrap_err();

        assert!(unrendered.contains("did not render"), "{unrendered}");
        assert!(not_found.contains("404"), "{not_found}");
        assert!(plain.contains("404"), "{plain}");
    }

    #[test]
    fn search_results_must_link_the_expected_chapter() {
        let found = "<div id=\"mdbook-searchresults-header\">2 search results for 'hedging':</div>\
            <ul id=\"mdbook-searchresults\"><li><a href=\"step6-resilience.html?highlight=hedging#x\">\
            Step 6</a></li></ul>";
        let none = "<div id=\"mdbook-searchresults-header\">No search results for 'hedging'.</div>\
            <ul id=\"mdbook-searchresults\"></ul>";

        assert_eq!(check_search(found, "step6-resilience.html"), Ok(()));
        let error = check_search(none, "step6-resilience.html").unwrap_err();
        assert!(error.contains("No search results"), "{error}");
        assert!(check_search("<main></main>", "step6-resilience.html").is_err());
    }

    #[test]
    fn the_summary_parser_finds_every_chapter_in_order() {
        let summary = "# Summary\n\n[Introduction](introduction.md)\n\n# Part\n\n\
            - [Step 1 — The cost](step1-baseline.md)\n  - [Nested](./deep/page.md)\n\
            - [Draft]()\n- [Site](https://example.com)\n\n---\n\n[References](references.md)\n";

        let chapters = parse_summary(summary);

        let pages: Vec<&str> = chapters.iter().map(|c| c.page.as_str()).collect();
        assert_eq!(
            pages,
            [
                "introduction.html",
                "step1-baseline.html",
                "deep/page.html",
                "references.html"
            ]
        );
        assert_eq!(chapters[1].title, "Step 1 — The cost");
        assert_eq!(screenshot_name("deep/page.html"), "deep_page.png");
    }
}
