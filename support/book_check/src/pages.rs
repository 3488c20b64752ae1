//! The built pages, read from disk: what a reader would see wrong without
//! running any script.
//!
//! mdBook renders an include whose anchor is missing as an empty code block,
//! without a warning, and leaves a mistyped directive as raw `{{#include`
//! text; a chapter that failed to build is not there, and a reader who follows
//! its link gets the 404 page.

use std::path::Path;

use scraper::{Html, Selector};

/// Directives that must never reach a page unexpanded.
const RAW_DIRECTIVES: [&str; 2] = ["{{#include", "{{#rustdoc_include"];

/// The problems with the built page `page` below `built`, one per line.
pub fn check_built_page(built: &Path, page: &str) -> Result<(), String> {
    let path = built.join(page);
    let html = std::fs::read_to_string(&path).map_err(|error| {
        format!(
            "{} cannot be read ({error}): a reader following the link gets the 404 page",
            path.display()
        )
    })?;
    check_page(&html)
}

/// The checks on one page's HTML; every problem found, one per line.
pub fn check_page(html: &str) -> Result<(), String> {
    let document = Html::parse_document(html);
    let mut problems = Vec::new();
    if !select(
        &document,
        "#mdbook-document-not-found-404, #document-not-found-404",
    )
    .is_empty()
    {
        problems.push("the page is mdBook's 404 page".to_string());
    }
    match select(&document, "main h1").first() {
        Some(heading) if !heading.trim().is_empty() => {}
        Some(_) => problems.push("the page's <h1> is empty".to_string()),
        None => problems.push("the page has no <main> with an <h1>".to_string()),
    }
    let text = select(&document, "body").concat();
    for raw in RAW_DIRECTIVES {
        if text.contains(raw) {
            problems.push(format!("raw `{raw}` text: an include was not expanded"));
        }
    }
    let empty = select(&document, "pre > code")
        .iter()
        .filter(|code| code.trim().is_empty())
        .count();
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

/// The text of every element matching `selector`, in document order.
pub fn select(document: &Html, selector: &str) -> Vec<String> {
    // The selectors are this crate's constants; one that does not parse is a bug here.
    let selector = Selector::parse(selector).expect("a valid CSS selector");
    document
        .select(&selector)
        .map(|element| element.text().collect())
        .collect()
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
        let body = format!("{GOOD_BODY}<pre><code class=\"language-rust\">\n</code></pre>");

        let problems = check_page(&page(&body)).unwrap_err();

        assert!(problems.contains("1 empty code block"), "{problems}");
    }

    #[test]
    fn a_page_without_a_heading_or_the_404_page_fails() {
        let unrendered = check_page("<html><body><p>loading</p></body></html>").unwrap_err();
        let not_found = check_page(&page(
            "<h1 id=\"mdbook-document-not-found-404\">Document not found (404)</h1>",
        ))
        .unwrap_err();

        assert!(unrendered.contains("no <main>"), "{unrendered}");
        assert!(not_found.contains("404 page"), "{not_found}");
    }

    #[test]
    fn a_missing_page_is_reported_as_the_404_a_reader_would_get() {
        let built = tempfile::tempdir().unwrap();

        let problem = check_built_page(built.path(), "step9.html").unwrap_err();

        assert!(problem.contains("404"), "{problem}");
    }
}
