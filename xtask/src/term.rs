//! Colour and symbols for the runner's output.
//!
//! Colour is used only when standard output is a terminal and `NO_COLOR` is
//! unset or empty (<https://no-color.org>), so logs, pipes and CI stay plain.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// Marks a passing test or check.
pub const PASS: &str = "✓";
/// Marks a failing test or check.
pub const FAIL: &str = "✗";

/// Whether standard output gets ANSI colours.
pub fn colour_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        !no_color && std::io::stdout().is_terminal()
    })
}

fn paint(code: &str, text: &str) -> String {
    if colour_enabled() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Success.
pub fn green(text: &str) -> String {
    paint("32", text)
}

/// Failure.
pub fn red(text: &str) -> String {
    paint("31", text)
}

/// Hints and warnings.
pub fn yellow(text: &str) -> String {
    paint("33", text)
}

/// Commands the learner can type.
pub fn cyan(text: &str) -> String {
    paint("36", text)
}

/// Headings.
pub fn bold(text: &str) -> String {
    paint("1", text)
}

/// Secondary detail (purposes, failure lines).
pub fn dim(text: &str) -> String {
    paint("2", text)
}

/// `✓` in green.
pub fn pass_mark() -> String {
    green(PASS)
}

/// `✗` in red.
pub fn fail_mark() -> String {
    red(FAIL)
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
/// Existing line breaks are kept; words longer than a line stay whole.
pub fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let room = width.saturating_sub(indent.chars().count()).max(20);
    let mut lines = Vec::new();
    for paragraph in text.lines() {
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
}
