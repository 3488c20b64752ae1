//! The catalogue of steps, read from `steps/info.toml`.
//!
//! Adding a step is a new `[[step]]` entry plus its crates: nothing in the
//! runner names a step. Learners may type a step as `step1`, `1` or
//! `step1_baseline`; an unknown name is an [`UnknownStep`] error, which the
//! runner turns into exit code 2 and a list of the steps.

use std::collections::HashSet;
use std::fmt;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

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
    /// The example that runs this step's lab.
    pub lab: String,
    /// Progressive hints, shown one at a time.
    #[serde(default)]
    pub hints: Vec<String>,
    /// What the learner writes: the code (the usual) or the tests.
    #[serde(default)]
    pub kind: StepKind,
    /// For a [`StepKind::Tests`] step: the broken variants the learner's
    /// tests must catch, selected with `WORKBOOK_MUTANT=<name>`.
    #[serde(default)]
    pub mutants: Vec<MutantInfo>,
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

/// One deliberately broken variant of a tests step's code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutantInfo {
    /// The value of `WORKBOOK_MUTANT` that selects it.
    pub name: String,
    /// What kind of test catches it, shown when it slips through.
    pub hint: String,
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
    /// Reads `steps/info.toml`.
    pub fn load(layout: &Layout) -> Result<Self> {
        let path = layout.info_toml();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the step catalogue {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses the text of `steps/info.toml` and checks that names are unique.
    pub fn parse(text: &str) -> Result<Self> {
        let info: InfoFile = toml::from_str(text).context("steps/info.toml is not valid")?;
        if info.step.is_empty() {
            bail!("steps/info.toml declares no [[step]]");
        }
        let mut seen = HashSet::new();
        for step in &info.step {
            if step.kind == StepKind::Tests && step.mutants.is_empty() {
                bail!(
                    "step `{}` has kind = \"tests\" but no mutants for its tests to catch",
                    step.name
                );
            }
            if step.kind == StepKind::Code && !step.mutants.is_empty() {
                bail!(
                    "step `{}` lists mutants but is not kind = \"tests\"",
                    step.name
                );
            }
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
#[derive(Debug, Clone)]
pub struct UnknownStep {
    /// What the user typed.
    pub query: String,
    /// The known steps, one per line.
    pub listing: String,
}

impl fmt::Display for UnknownStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "there is no step `{}`. The steps are:\n{}",
            self.query, self.listing
        )
    }
}

impl std::error::Error for UnknownStep {}

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
hints = ["first", "second"]

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
    fn a_step_is_code_unless_it_says_tests_and_then_lists_its_mutants() {
        let catalogue = Catalogue::parse(SAMPLE).unwrap();
        assert_eq!(catalogue.steps()[0].kind, StepKind::Code);
        assert!(catalogue.steps()[0].mutants.is_empty());

        let tests_step = format!(
            "{SAMPLE}\n[[step]]\nname = \"step3_tests\"\nshort = \"step3\"\ntitle = \"T\"\n\
             chapter = \"c.md\"\ntime_limit_secs = 5\nlab = \"l\"\nkind = \"tests\"\n\
             mutants = [{{ name = \"off_by_one\", hint = \"test the edge\" }}]\n"
        );
        let catalogue = Catalogue::parse(&tests_step).unwrap();
        let step = catalogue.resolve("step3").unwrap();
        assert_eq!(step.kind, StepKind::Tests);
        assert_eq!(
            step.mutants,
            [MutantInfo {
                name: "off_by_one".into(),
                hint: "test the edge".into()
            }]
        );

        let without_mutants = tests_step.replace(
            "mutants = [{ name = \"off_by_one\", hint = \"test the edge\" }]",
            "",
        );
        let error = Catalogue::parse(&without_mutants).unwrap_err().to_string();
        assert!(error.contains("no mutants"), "{error}");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let doubled = format!("{SAMPLE}\n{}", &SAMPLE[SAMPLE.find("[[step]]").unwrap()..]);
        assert!(Catalogue::parse(&doubled).is_err());
    }
}
