//! The catalogue of steps, read from `steps/info.toml`.
//!
//! Adding a step is a new `[[step]]` entry plus its crates: nothing in the
//! runner names a step. Learners may type a step as `step1`, `1` or
//! `step1_baseline`; an unknown name is an [`UnknownStep`] error, which the
//! runner turns into exit code 2 and a list of the steps.

use std::collections::HashSet;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::hints::Hints;
use crate::layout::Layout;

/// One step of the workbook, as declared in `steps/info.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The exercise crate's directory and package name, e.g. `step1_baseline`.
    pub name: String,
    /// What learners type, e.g. `step1`.
    pub short: String,
    /// Shown in the runner and the book.
    pub title: String,
    /// The chapter's page, relative to `book/src/`.
    pub chapter: String,
    /// The whole test run is stopped after this many seconds.
    pub time_limit_secs: u64,
    /// The binary (feature `lab`) that runs this step's lab.
    pub lab: String,
    /// What the learner writes: the code (the usual) or the tests.
    #[serde(default)]
    pub kind: StepKind,
    /// The parts of a big step: the top-level modules of its test target.
    #[serde(default)]
    pub parts: Vec<Part>,
    /// Its hint ladders and mutants, from `steps/hints/<short>.toml`.
    #[serde(skip)]
    pub hints: Hints,
}

/// One part of a step: a top-level module of its test target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// The module, as libtest names it (`breaker` in `breaker::opens`).
    pub name: String,
    /// Shown above the part's tests.
    pub title: String,
}

/// What a step asks the learner to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// The tests are given; the learner writes the code (`kind = "code"`).
    #[default]
    Code,
    /// The code is given; the learner writes the tests, and `verify` also
    /// runs them against each mutant (`kind = "tests"`).
    Tests,
}

/// The environment variable a tests step reads to plant a mutant.
pub const MUTANT_ENV: &str = "WORKBOOK_MUTANT";

/// Which of a step's two crates a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The learner's crate in `steps/<name>/`.
    Exercise,
    /// The reference solution in `solutions/<name>/`.
    Solution,
}

impl Step {
    /// The cargo package of the exercise or of its solution.
    pub fn package(&self, flavor: Flavor) -> String {
        match flavor {
            Flavor::Exercise => self.name.clone(),
            Flavor::Solution => format!("{}_solution", self.name),
        }
    }

    /// The folder of the exercise the learner edits: `src` for a code step,
    /// `tests` for a tests step. `reset` restores it and backs it up first.
    pub fn learner_dir(&self) -> &'static str {
        match self.kind {
            StepKind::Code => "src",
            StepKind::Tests => "tests",
        }
    }

    /// The chapter as a path from the workspace root, for messages.
    pub fn chapter_path(&self) -> String {
        format!("book/src/{}", self.chapter)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InfoFile {
    #[serde(default)]
    step: Vec<Step>,
}

/// All steps, in order.
#[derive(Debug, Clone)]
pub struct Catalogue {
    steps: Vec<Step>,
}

impl Catalogue {
    /// Reads `steps/info.toml` and each step's hint file.
    pub fn load(layout: &Layout) -> Result<Self> {
        let path = layout.info_toml();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the step catalogue {}", path.display()))?;
        let mut catalogue = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
        for step in &mut catalogue.steps {
            step.hints = Hints::load(&layout.hints_file(&step.short))?;
        }
        Ok(catalogue)
    }

    /// Parses the text of `steps/info.toml` and checks that names are unique.
    pub fn parse(text: &str) -> Result<Self> {
        let info: InfoFile = toml::from_str(text).context("steps/info.toml is not valid")?;
        if info.step.is_empty() {
            bail!("steps/info.toml declares no [[step]]");
        }
        let mut seen = HashSet::new();
        for step in &info.step {
            for key in [&step.name, &step.short] {
                if !seen.insert(key.to_lowercase()) {
                    bail!("step name `{key}` appears twice in steps/info.toml");
                }
            }
        }
        Ok(Self { steps: info.step })
    }

    /// The steps in workbook order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Finds a step by `step1`, `1` or `step1_baseline` (case does not matter).
    pub fn resolve(&self, query: &str) -> Result<&Step, UnknownStep> {
        let wanted = query.trim().to_lowercase();
        let by_number = wanted
            .parse::<u32>()
            .ok()
            .map(|number| format!("step{number}"));
        self.steps
            .iter()
            .find(|step| {
                step.name.to_lowercase() == wanted
                    || step.short.to_lowercase() == wanted
                    || by_number.as_deref() == Some(step.short.to_lowercase().as_str())
            })
            .ok_or_else(|| UnknownStep {
                query: query.to_string(),
                listing: self.listing(),
            })
    }

    /// The step after `step`, if any.
    pub fn next_after(&self, step: &Step) -> Option<&Step> {
        let index = self.steps.iter().position(|s| s.name == step.name)?;
        self.steps.get(index + 1)
    }

    /// One line per step, `short  title`, for messages.
    pub fn listing(&self) -> String {
        let width = self.steps.iter().map(|s| s.short.len()).max().unwrap_or(0);
        self.steps
            .iter()
            .map(|s| format!("  {:width$}  {}", s.short, s.title))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A step name that is not in the catalogue: bad input, exit code 2.
#[derive(Debug, Clone, thiserror::Error)]
#[error("there is no step `{query}`. The steps are:\n{listing}")]
pub struct UnknownStep {
    /// What the user typed.
    pub query: String,
    /// The known steps, one per line.
    pub listing: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[step]]
name = "step1_baseline"
short = "step1"
title = "The cost of blocking"
chapter = "step1-baseline.md"
time_limit_secs = 60
lab = "step1_lab"
parts = [{ name = "one", title = "Part one" }]

[[step]]
name = "step2_deadlines"
short = "step2"
title = "Deadlines"
chapter = "step2-deadlines.md"
time_limit_secs = 30
lab = "step2_lab"
"#;

    #[test]
    fn a_step_resolves_by_short_name_number_and_full_name() {
        let catalogue = Catalogue::parse(SAMPLE).unwrap();
        for query in ["step1", "1", "step1_baseline", " STEP1 "] {
            assert_eq!(catalogue.resolve(query).unwrap().name, "step1_baseline");
        }
        assert_eq!(catalogue.resolve("2").unwrap().name, "step2_deadlines");
    }

    #[test]
    fn an_unknown_step_lists_every_step() {
        let catalogue = Catalogue::parse(SAMPLE).unwrap();
        let error = catalogue.resolve("step9").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("step9"), "{message}");
        assert!(message.contains("step1  The cost of blocking"), "{message}");
        assert!(message.contains("step2  Deadlines"), "{message}");
    }

    #[test]
    fn the_solution_package_adds_a_suffix() {
        let catalogue = Catalogue::parse(SAMPLE).unwrap();
        let step = catalogue.resolve("1").unwrap();
        assert_eq!(step.package(Flavor::Exercise), "step1_baseline");
        assert_eq!(step.package(Flavor::Solution), "step1_baseline_solution");
        let next = catalogue.next_after(step).unwrap();
        assert_eq!(next.short, "step2");
        assert!(catalogue.next_after(next).is_none());
    }

    #[test]
    fn a_step_is_code_unless_it_says_tests_and_may_have_parts() {
        let catalogue = Catalogue::parse(SAMPLE).unwrap();
        assert_eq!(catalogue.steps()[0].kind, StepKind::Code);
        assert_eq!(catalogue.steps()[0].parts[0].title, "Part one");
        assert!(catalogue.steps()[1].parts.is_empty());
        let tests_step = SAMPLE.replace("lab = \"step2_lab\"", "lab = \"l\"\nkind = \"tests\"");
        let catalogue = Catalogue::parse(&tests_step).unwrap();
        assert_eq!(catalogue.steps()[1].kind, StepKind::Tests);
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let doubled = format!("{SAMPLE}\n{}", &SAMPLE[SAMPLE.find("[[step]]").unwrap()..]);
        assert!(Catalogue::parse(&doubled).is_err());
    }
}
