//! Running other programs: their exit codes as ours, quiet runs whose output
//! becomes a check's details, and finding mdBook.

use std::process::{Command, ExitCode, ExitStatus, Stdio};

/// The line that installs the mdBook version the book is written for.
pub const MDBOOK_INSTALL: &str = "cargo install mdbook --locked --version ^0.5";

/// The child's exit code as ours (1 when it has none, e.g. killed by a signal).
pub fn exit_code_of(status: ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

/// Runs `command` with its output captured: `Ok` if it succeeded, else its
/// output and exit status, to show under a failed check.
pub fn run_quietly(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run {:?}: {error}", command.get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}{}\n(exit status: {})",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        output.status
    ))
}

/// `mdbook --version`'s output (e.g. `mdbook v0.5.4`), or `None` if absent.
pub fn mdbook_version() -> Option<String> {
    first_line_of(Command::new("mdbook").arg("--version"))
}

/// The first line of a command's standard output, if it ran successfully.
pub fn first_line_of(command: &mut Command) -> Option<String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = stdout.lines().next().map(|line| line.trim().to_string());
    first.filter(|_| output.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_quiet_run_keeps_its_output_for_the_details() {
        let mut failing = Command::new(std::env::current_exe().unwrap());
        failing.arg("--no-such-libtest-flag");

        let details = run_quietly(&mut failing).unwrap_err();

        assert!(details.contains("no-such-libtest-flag"), "{details}");
        assert!(details.contains("exit status"), "{details}");
    }
}
