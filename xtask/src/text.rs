//! Small text helpers shared by several commands: plurals, tails, wrapping.

/// `"s"` unless there is exactly one.
pub fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// The last `count` lines of `text`, for a short failure message.
pub fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// The width text is wrapped to: `COLUMNS` when the shell exports it, else
/// 88, kept between 40 and 100 so hints stay readable.
pub fn text_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|columns| columns.parse::<usize>().ok())
        .unwrap_or(88)
        .clamp(40, 100)
}

/// Word-wraps `text` to `width` columns, each line prefixed by `indent`.
/// Existing line breaks are kept; words longer than a line stay whole; code
/// (indented lines, and lines inside ``` fences) is kept as it is.
pub fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let room = width.saturating_sub(indent.chars().count()).max(20);
    let mut lines = Vec::new();
    let mut fenced = false;
    for paragraph in text.lines() {
        let fence = paragraph.trim_start().starts_with("```");
        fenced ^= fence;
        if fenced || fence || paragraph.starts_with([' ', '\t']) {
            lines.push(format!("{indent}{paragraph}"));
            continue;
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let needed = if line.is_empty() { 0 } else { 1 } + word.chars().count();
            if !line.is_empty() && line.chars().count() + needed > room {
                lines.push(format!("{indent}{line}"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(format!("{indent}{line}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_between_words_and_keeps_the_indent() {
        let lines = wrap("one two three four five six seven eight nine ten", 26, "  ");
        assert_eq!(
            lines,
            ["  one two three four five", "  six seven eight nine ten"]
        );
        for line in &lines {
            assert!(line.chars().count() <= 26, "{line:?}");
        }
    }

    #[test]
    fn wrapping_keeps_line_breaks_and_long_words() {
        let long = "x".repeat(50);
        let lines = wrap(&format!("first\n{long} end"), 30, "");
        assert_eq!(lines, ["first".to_string(), long, "end".to_string()]);
    }

    #[test]
    fn code_keeps_its_lines_and_indentation() {
        let text = "Like this:\n```rust\nlet a  =  1;\n```\n    indented  code";
        let lines = wrap(text, 40, "> ");
        assert_eq!(
            lines,
            [
                "> Like this:",
                "> ```rust",
                "> let a  =  1;",
                "> ```",
                ">     indented  code"
            ]
        );
    }

    #[test]
    fn plurals_and_tails() {
        assert_eq!(
            format!("1 test{}, 2 test{}", plural(1), plural(2)),
            "1 test, 2 tests"
        );
        assert_eq!(plural(0), "s");
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("only", 5), "only");
        assert_eq!(last_lines("", 3), "");
    }
}
