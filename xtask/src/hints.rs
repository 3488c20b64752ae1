//! A step's hints and mutants, read from `steps/hints/<short>.toml`.
//!
//! Hints live apart from the catalogue, behind a spoiler warning, because the
//! last rung of each ladder is the answer's code. A *topic* is one function
//! (or decision) the learner writes, with a *ladder* of rungs that go from
//! concept to API to code; `hint` opens one rung at a time, for the topic of
//! the first failing test. A tests step also lists its mutants here, so their
//! names and hints stay out of sight until a mutant slips through.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// One step's hint file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hints {
    /// The topics, in teaching order.
    #[serde(default)]
    pub topic: Vec<Topic>,
    /// For a tests step: the broken variants its tests must catch.
    #[serde(default)]
    pub mutant: Vec<MutantInfo>,
}

/// One function (or decision) the learner writes, and its hint ladder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// The function as the learner sees it, e.g. `fetch_json`.
    pub name: String,
    /// Where it lives in the stub, e.g. `src/fetch.rs`.
    pub file: String,
    /// A failing test whose full libtest name contains one of these points here.
    pub tests: Vec<String>,
    /// Concept, then API or pattern, then code: only the last rung shows code.
    pub ladder: Vec<String>,
}

/// One deliberately broken variant of a tests step's code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutantInfo {
    /// The value of `WORKBOOK_MUTANT` that selects it.
    pub name: String,
    /// What kind of test catches it, shown only when it slips through.
    pub hint: String,
}

impl Hints {
    /// Reads the hint file at `path`; a step without one has no hints.
    ///
    /// # Errors
    /// Fails if the file exists but cannot be read or is not valid.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    /// Every rung of every topic.
    pub fn rung_count(&self) -> usize {
        self.topic.iter().map(|topic| topic.ladder.len()).sum()
    }

    /// The topic a hint is for: the function whose `todo!` stopped the first
    /// failing test (`test@function`), else that test's topic, else the first
    /// topic with a rung not yet opened.
    pub fn topic_for(&self, clue: Option<&str>, opened: impl Fn(&str) -> usize) -> Option<&Topic> {
        let (test, stopped_at) =
            clue.map_or(("", ""), |clue| clue.split_once('@').unwrap_or((clue, "")));
        let failing = |topic: &&Topic| topic.tests.iter().any(|part| test.contains(part.as_str()));
        let unfinished = |topic: &&Topic| opened(&topic.name) < topic.ladder.len();
        let mut topics = self.topic.iter();
        (topics.clone().find(|topic| topic.name == stopped_at))
            .or_else(|| topics.clone().find(failing))
            .or_else(|| topics.find(unfinished))
            .or(self.topic.first())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# SPOILER WARNING

[[topic]]
name = "fetch_json"
file = "src/fetch.rs"
tests = ["fetch_json", "transport"]
ladder = ["concept", "api", "code"]

[[topic]]
name = "fan_out"
file = "src/fan.rs"
tests = ["concurrent"]
ladder = ["c", "a", "k"]

[[mutant]]
name = "sequential"
hint = "time it"
"#;

    fn sample() -> Hints {
        toml::from_str(SAMPLE).unwrap()
    }

    #[test]
    fn the_first_failing_test_picks_its_topic() {
        let hints = sample();
        let none = |_: &str| 0;
        let topic = hints.topic_for(Some("part::concurrent_is_fast"), none);
        assert_eq!(topic.unwrap().name, "fan_out");
        let stuck = hints.topic_for(Some("part::concurrent_is_fast@fetch_json"), none);
        assert_eq!(
            stuck.unwrap().name,
            "fetch_json",
            "the unwritten function wins"
        );
        assert_eq!(hints.rung_count(), 6);
        assert_eq!(hints.mutant[0].name, "sequential");
    }

    #[test]
    fn without_a_failing_test_the_first_unfinished_topic_is_next() {
        let hints = sample();
        let opened = |name: &str| if name == "fetch_json" { 3 } else { 1 };
        assert_eq!(hints.topic_for(None, opened).unwrap().name, "fan_out");
        let unknown = hints.topic_for(Some("other_test"), |_| 0);
        assert_eq!(unknown.unwrap().name, "fetch_json");
        assert!(Hints::default().topic_for(None, |_| 0).is_none());
    }

    #[test]
    fn a_missing_file_is_no_hints_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step9.toml");
        assert!(Hints::load(&path).unwrap().topic.is_empty());
        std::fs::write(&path, "[[topic]]\nname = 1\n").unwrap();
        assert!(Hints::load(&path).is_err());
    }
}
