//! Running a tests step's tests against each of its mutants.
//!
//! In a `kind = "tests"` step the code is given and the learner writes the
//! tests. Passing on the correct code is not enough: a test suite earns its
//! keep by failing on broken code. So the same test binaries run once more
//! per mutant listed in `steps/info.toml`, with `WORKBOOK_MUTANT=<name>` set;
//! the step's code reads it and plants that bug. A mutant is *caught* when
//! at least one test does not pass (fails, hangs past the limit, or crashes).

use std::time::Duration;

use anyhow::Result;

use crate::step_run::{self, Suite, TestStatus};
use crate::steps::{MUTANT_ENV, MutantInfo, Step};
use crate::text::plural;

/// What one mutant run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutantOutcome {
    /// The mutant's name.
    pub name: String,
    /// What kind of test catches it.
    pub hint: String,
    /// The tests that did not pass on it (`binary: test`); empty means it
    /// slipped through.
    pub caught_by: Vec<String>,
    /// Trouble not tied to one test (a crashed binary), which also counts as caught.
    pub problems: Vec<String>,
}

impl MutantOutcome {
    /// At least one test noticed the bug.
    pub fn caught(&self) -> bool {
        !self.caught_by.is_empty() || !self.problems.is_empty()
    }
}

/// Runs `suites` once per mutant of `step`, each under `limit`.
///
/// # Errors
/// Fails only if a test binary cannot be started.
pub fn run_mutants(step: &Step, suites: &[Suite], limit: Duration) -> Result<Vec<MutantOutcome>> {
    step.mutants
        .iter()
        .map(|mutant| run_one(mutant, suites, limit))
        .collect()
}

fn run_one(mutant: &MutantInfo, suites: &[Suite], limit: Duration) -> Result<MutantOutcome> {
    let env = [
        (MUTANT_ENV, mutant.name.as_str()),
        // A snapshot that differs on a mutant is the point; insta must not
        // write `.snap.new` files into the learner's tests for it.
        ("INSTA_UPDATE", "no"),
    ];
    let run = step_run::run_suites_with_env(suites, limit, &env)?;
    let caught_by = run
        .tests
        .iter()
        .filter(|test| test.status != TestStatus::Passed)
        .map(|test| format!("{}: {}", test.binary, test.name))
        .collect();
    let mut problems = run.problems;
    if let Some(stopped) = run.stopped_after {
        problems.push(format!("stopped after {} s", stopped.as_secs()));
    }
    Ok(MutantOutcome {
        name: mutant.name.clone(),
        hint: mutant.hint.clone(),
        caught_by,
        problems,
    })
}

/// `caught k of n mutants`.
pub fn summary(outcomes: &[MutantOutcome]) -> String {
    let caught = outcomes.iter().filter(|outcome| outcome.caught()).count();
    format!(
        "caught {caught} of {} mutant{}",
        outcomes.len(),
        plural(outcomes.len())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &str, caught_by: &[&str]) -> MutantOutcome {
        MutantOutcome {
            name: name.into(),
            hint: "a hint".into(),
            caught_by: caught_by.iter().map(|s| s.to_string()).collect(),
            problems: Vec::new(),
        }
    }

    #[test]
    fn a_mutant_is_caught_when_a_test_did_not_pass_and_the_summary_counts_them() {
        let outcomes = [
            outcome("a", &["unit: finds_a"]),
            outcome("b", &[]),
            MutantOutcome {
                problems: vec!["the binary crashed".into()],
                ..outcome("c", &[])
            },
        ];
        assert!(outcomes[0].caught());
        assert!(!outcomes[1].caught());
        assert!(outcomes[2].caught());
        assert_eq!(summary(&outcomes), "caught 2 of 3 mutants");
        assert_eq!(summary(&outcomes[..1]), "caught 1 of 1 mutant");
    }
}
