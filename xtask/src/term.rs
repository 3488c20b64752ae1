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
