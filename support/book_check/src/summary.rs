//! The chapters `SUMMARY.md` links, read with pulldown-cmark, the Markdown
//! parser mdBook itself uses.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// A chapter linked from `SUMMARY.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chapter {
    /// The link text.
    pub title: String,
    /// The built page, relative to the book's output: `step1-baseline.html`.
    pub page: String,
}

/// Every chapter linked from `summary`, in order. Draft chapters (`[title]()`)
/// and links to anything but a `.md` file have no page of their own.
pub fn chapters(summary: &str) -> Vec<Chapter> {
    let mut chapters = Vec::new();
    let mut open: Option<(String, String)> = None;
    for event in Parser::new(summary) {
        match event {
            Event::Start(Tag::Link { dest_url, .. }) => {
                open = Some((dest_url.to_string(), String::new()));
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some((_, title)) = open.as_mut() {
                    title.push_str(&text);
                }
            }
            Event::End(TagEnd::Link) => {
                let Some((target, title)) = open.take() else {
                    continue;
                };
                let stem = target.trim_start_matches("./").strip_suffix(".md");
                if let Some(stem) = stem.filter(|stem| !stem.is_empty()) {
                    let page = format!("{stem}.html");
                    chapters.push(Chapter { title, page });
                }
            }
            _ => {}
        }
    }
    chapters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linked_chapter_is_found_in_order_and_drafts_are_skipped() {
        let summary = "# Summary\n\n[Introduction](introduction.md)\n\n# Part\n\n\
            - [Step 1 — The *cost*](step1-baseline.md)\n  - [Nested](./deep/page.md)\n\
            - [Draft]()\n- [Site](https://example.com)\n\n---\n\n[References](references.md)\n";

        let chapters = chapters(summary);

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
    }
}
