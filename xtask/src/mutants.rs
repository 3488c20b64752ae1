//! Running a tests step's tests against each of its mutants.
//!
//! In a `kind = "tests"` step the code is given and the learner writes the
//! tests. Passing on the correct code is not enough: a test suite earns its
//! keep by failing on broken code. So the same test binaries run once more
//! per mutant listed in the step's hint file, with `WORKBOOK_MUTANT=<name>` set;
//! the step's code reads it and plants that bug. A mutant is *caught* when
//! at least one test does not pass (fails, hangs past the limit, or crashes).

use std::time::Duration;

use anyhow::Result;

use crate::hints::MutantInfo;
use crate::step_run::{self, Suite};
use crate::steps::{MUTANT_ENV, Step};
use crate::text::plural;

/// What one mutant run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutantOutcome {
    /// The mutant's name.
    pub name: String,
    /// What kind of test catches it.
    pub hint: String,
    /// At least one test did not pass on it (failed, hung past the limit,
    /// or its binary crashed); otherwise it slipped through.
    pub caught: bool,
}

/// Runs `suites` once per mutant of `step`, each under `limit`.
///
/// # Errors
/// Fails only if a test binary cannot be started.
pub fn run_mutants(step: &Step, suites: &[Suite], limit: Duration) -> Result<Vec<MutantOutcome>> {
    step.hints
        .mutant
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
    let run = step_run::run_suites(suites, limit, &env)?;
    Ok(MutantOutcome {
        name: mutant.name.clone(),
        hint: mutant.hint.clone(),
        caught: !run.all_passed(),
    })
}

/// `caught k of n mutants`.
pub fn summary(outcomes: &[MutantOutcome]) -> String {
    let caught = outcomes.iter().filter(|outcome| outcome.caught).count();
    format!(
        "caught {caught} of {} mutant{}",
        outcomes.len(),
        plural(outcomes.len())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_the_caught_mutants() {
        let outcome = |name: &str, caught| MutantOutcome {
            name: name.into(),
            hint: "a hint".into(),
            caught,
        };
        let outcomes = [outcome("a", true), outcome("b", false), outcome("c", true)];
        assert_eq!(summary(&outcomes), "caught 2 of 3 mutants");
        assert_eq!(summary(&outcomes[..1]), "caught 1 of 1 mutant");
    }
}
