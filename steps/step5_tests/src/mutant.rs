//! The deliberately broken orchestrators ("mutants") your tests must catch.
//!
//! A test suite is only as good as the bugs it notices. Each [`Mutant`] is
//! one realistic bug planted in the orchestrator, switched on at run time by
//! an environment variable, never by editing code:
//!
//! ```text
//! WORKBOOK_MUTANT=sequential_fan_out cargo test -p step5_tests --test unit
//! ```
//!
//! [`Orchestrator::new`](crate::Orchestrator::new) reads the variable; unset
//! or empty means the correct orchestrator. `cargo xtask verify step5` runs
//! your tests once per mutant and reports how many were *caught* (at least
//! one test failed). The runner takes the list from `steps/info.toml`; a test
//! below keeps that list and this enum in step.

/// The environment variable that selects a mutant.
pub const MUTANT_ENV: &str = "WORKBOOK_MUTANT";

/// One planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutant {
    /// Awaits the three upstream calls one after the other.
    SequentialFanOut,
    /// Retries a 4xx answer as if it were a 5xx.
    RetriesClientErrors,
    /// Lets one attempt use all the time left, with no `attempt_timeout`.
    NoAttemptTimeout,
    /// Gives every attempt its full `attempt_timeout`, even past the
    /// request's deadline.
    IgnoresDeadline,
    /// Sleeps the top of the backoff range every time: no jitter.
    BackoffWithoutJitter,
    /// Keeps the backoff range at `base_delay`: it never doubles.
    BackoffNeverGrows,
    /// Sleeps a backoff even when no attempt could start after it.
    SleepsPastDeadline,
    /// Never gives back the per-upstream permit after a call.
    LeaksPermit,
    /// Spawns the upstream calls as detached tasks, so dropping the request
    /// does not cancel them.
    SwallowsCancellation,
    /// Sends `pricing` where the contract says `price`.
    RenamesJsonField,
    /// Fails the whole request when the optional reviews upstream fails.
    FailsWholeRequest,
}

impl Mutant {
    /// Every mutant, in the order the runner reports them.
    pub const ALL: [Mutant; 11] = [
        Mutant::SequentialFanOut,
        Mutant::RetriesClientErrors,
        Mutant::NoAttemptTimeout,
        Mutant::IgnoresDeadline,
        Mutant::BackoffWithoutJitter,
        Mutant::BackoffNeverGrows,
        Mutant::SleepsPastDeadline,
        Mutant::LeaksPermit,
        Mutant::SwallowsCancellation,
        Mutant::RenamesJsonField,
        Mutant::FailsWholeRequest,
    ];

    /// The name `WORKBOOK_MUTANT` takes.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::SequentialFanOut => "sequential_fan_out",
            Mutant::RetriesClientErrors => "retries_client_errors",
            Mutant::NoAttemptTimeout => "no_attempt_timeout",
            Mutant::IgnoresDeadline => "ignores_deadline",
            Mutant::BackoffWithoutJitter => "backoff_without_jitter",
            Mutant::BackoffNeverGrows => "backoff_never_grows",
            Mutant::SleepsPastDeadline => "sleeps_past_deadline",
            Mutant::LeaksPermit => "leaks_permit",
            Mutant::SwallowsCancellation => "swallows_cancellation",
            Mutant::RenamesJsonField => "renames_json_field",
            Mutant::FailsWholeRequest => "fails_whole_request",
        }
    }

    /// What the bug is, in one line.
    pub fn description(self) -> &'static str {
        match self {
            Mutant::SequentialFanOut => "awaits inventory, then pricing, then reviews",
            Mutant::RetriesClientErrors => "retries a 404 as if it were a 503",
            Mutant::NoAttemptTimeout => {
                "waits for a stalled attempt until the deadline, leaving no time to retry"
            }
            Mutant::IgnoresDeadline => {
                "gives every attempt its full attempt_timeout, even past the deadline"
            }
            Mutant::BackoffWithoutJitter => {
                "sleeps the top of the backoff range every time, so retries arrive together"
            }
            Mutant::BackoffNeverGrows => "keeps the backoff range at base_delay for every retry",
            Mutant::SleepsPastDeadline => {
                "sleeps a backoff that leaves no time for another attempt, past the deadline"
            }
            Mutant::LeaksPermit => "never returns the per-upstream permit",
            Mutant::SwallowsCancellation => {
                "spawns upstream calls detached: dropping the request leaves them running"
            }
            Mutant::RenamesJsonField => "sends `pricing` instead of `price` in the response",
            Mutant::FailsWholeRequest => "fails the request when only reviews failed",
        }
    }

    /// All names, for messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|mutant| mutant.name()).collect()
    }

    /// Parses a name; `None` if no mutant has it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mutant| mutant.name() == name)
    }

    /// The mutant `WORKBOOK_MUTANT` selects: `Ok(None)` when it is unset or
    /// empty (the correct orchestrator).
    ///
    /// # Errors
    /// [`ConfigError::UnknownMutant`](crate::ConfigError::UnknownMutant) for
    /// a name that is not a mutant: a typo must not silently test the
    /// correct code.
    pub fn from_env() -> Result<Option<Self>, crate::ConfigError> {
        let Ok(value) = std::env::var(MUTANT_ENV) else {
            return Ok(None);
        };
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        Self::from_name(value)
            .map(Some)
            .ok_or_else(|| crate::ConfigError::UnknownMutant(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner enumerates mutants from `steps/info.toml`; every name there
    /// must be one this enum knows, and every mutant must be listed.
    #[test]
    fn the_catalogue_in_info_toml_lists_exactly_these_mutants() {
        // Both crates (steps/step5_tests and solutions/step5_tests) sit two
        // levels below the root.
        let info_path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../steps/info.toml");
        let info = std::fs::read_to_string(&info_path).expect("steps/info.toml is readable");
        let section = info
            .split("[[step]]")
            .find(|step| step.contains("name = \"step5_tests\""))
            .expect("steps/info.toml has the step5_tests entry");
        let listed: Vec<&str> = section
            .lines()
            .filter_map(|line| line.trim().strip_prefix("{ name = \""))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(listed, Mutant::names());
    }

    #[test]
    fn every_name_parses_back() {
        for mutant in Mutant::ALL {
            assert_eq!(Mutant::from_name(mutant.name()), Some(mutant));
        }
        assert_eq!(Mutant::from_name("no_such_mutant"), None);
    }
}
