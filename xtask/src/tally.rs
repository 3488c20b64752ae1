//! Counting checks and printing one line for each: `check`'s log format.
//!
//! Every check prints `✓ name` or `✗ name` with its details indented below,
//! and the log ends with `<command>: N passed, M failed`, a line CI reads.

use std::process::ExitCode;

use anstream::println;

use crate::term;

/// Counts checks and prints one line for each.
#[derive(Debug, Default)]
pub struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    /// A ✓ line.
    pub fn pass(&mut self, name: &str) {
        self.passed += 1;
        println!("{} {name}", term::pass_mark());
    }

    /// A ✗ line with `details` indented below it.
    pub fn fail(&mut self, name: &str, details: &str) {
        self.failed += 1;
        println!("{} {name}", term::fail_mark());
        for line in details.trim_end().lines() {
            println!("    {line}");
        }
    }

    /// One ✓ line, or a ✗ line with the details indented below it.
    pub fn record(&mut self, name: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.pass(name),
            Err(details) => self.fail(name, &details),
        }
    }

    /// Prints `<command>: N passed, M failed` and gives the exit code: 1 if
    /// anything failed.
    pub fn finish(&self, command: &str) -> ExitCode {
        println!();
        println!("{command}: {} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Joins a list of problems into a check's outcome: `Ok` when there are none.
pub fn outcome(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_failure_makes_the_exit_code_1() {
        let mut tally = Tally::default();
        tally.record("fine", Ok(()));
        assert_eq!(tally.finish("t"), ExitCode::SUCCESS);
        tally.record("broken", outcome(vec!["a".into(), "b".into()]));
        assert_eq!((tally.passed, tally.failed), (1, 1));
        assert_eq!(tally.finish("t"), ExitCode::FAILURE);
        assert_eq!(outcome(vec!["a".into(), "b".into()]), Err("a\nb".into()));
    }
}
