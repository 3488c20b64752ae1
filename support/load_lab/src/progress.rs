//! A progress bar for a lab run, so a 30-second measurement does not look like a hang.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// A progress bar for a run of length `total`, with `message` (e.g. the scenario) in front.
///
/// Its unit is milliseconds: [`run`](crate::run) sets the position to the elapsed
/// milliseconds of the run. Change the message between scenarios with
/// [`ProgressBar::set_message`]. The bar draws on stderr and hides itself when stderr is not a
/// terminal (CI logs, pipes), so it never litters captured output.
pub fn progress_bar(total: Duration, message: &str) -> ProgressBar {
    let length = u64::try_from(total.as_millis()).unwrap_or(u64::MAX);
    let style = ProgressStyle::with_template("{msg:<28!} [{bar:30}] {done_s}/{total_s}")
        .expect("the template is fixed and valid")
        .with_key(
            "done_s",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                // Formatting into indicatif's buffer cannot fail; there is nothing to handle.
                let _ = write!(out, "{:.1}s", state.pos() as f64 / 1000.0);
            },
        )
        .with_key(
            "total_s",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.1}s", state.len().unwrap_or(0) as f64 / 1000.0);
            },
        )
        .progress_chars("=> ");
    ProgressBar::new(length)
        .with_style(style)
        .with_message(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_counts_the_run_in_milliseconds_and_shows_the_message() {
        let bar = progress_bar(Duration::from_secs(12), "async, c=500");

        assert_eq!(bar.length(), Some(12_000));
        assert_eq!(bar.message(), "async, c=500");
        assert_eq!(bar.position(), 0);
    }
}
