//! Styles and symbols for the runner's output.
//!
//! The functions here always return styled text; the runner prints it through
//! `anstream`'s `println!`/`eprintln!`, which strip the styles from each stream
//! on its own: kept when *that* stream is a terminal, dropped in a pipe, a log
//! or CI, and whenever `NO_COLOR` is set (<https://no-color.org>). So stderr is
//! never coloured just because stdout is a terminal.

use anstyle::{AnsiColor, Style};

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// Success.
pub fn green(text: &str) -> String {
    paint(AnsiColor::Green.on_default(), text)
}

/// Failure.
pub fn red(text: &str) -> String {
    paint(AnsiColor::Red.on_default(), text)
}

/// Hints and warnings.
pub fn yellow(text: &str) -> String {
    paint(AnsiColor::Yellow.on_default(), text)
}

/// Commands the learner can type.
pub fn cyan(text: &str) -> String {
    paint(AnsiColor::Cyan.on_default(), text)
}

/// Headings.
pub fn bold(text: &str) -> String {
    paint(Style::new().bold(), text)
}

/// Secondary detail (purposes, failure lines).
pub fn dim(text: &str) -> String {
    paint(Style::new().dimmed(), text)
}

/// `✓` in green.
pub fn pass_mark() -> String {
    green("✓")
}

/// `✗` in red.
pub fn fail_mark() -> String {
    red("✗")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_are_stripped_for_a_stream_that_is_not_a_terminal() {
        let styled = format!("{} {}", pass_mark(), cyan("cargo xtask verify"));
        assert!(styled.contains('\x1b'), "{styled:?}");

        let mut pipe = anstream::StripStream::new(Vec::new());
        std::io::Write::write_all(&mut pipe, styled.as_bytes()).unwrap();

        assert_eq!(pipe.into_inner(), "✓ cargo xtask verify".as_bytes());
    }
}
