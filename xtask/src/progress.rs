//! The learner's progress: `.workbook/progress.toml`, one table per step.
//!
//! ```toml
//! [step1_baseline]
//! state = "started"
//! hints_before_done = 2
//! first_failing = "concurrent_fetch_takes_the_slowest_latency"
//! opened = { fetch_json = 2 }
//! ```
//!
//! Plain TOML so a learner (or instructor) can read and edit it. A file that
//! no longer parses is reported and treated as empty, never a lock-out.

use std::collections::BTreeMap;
use std::fs;

use anstream::eprintln;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::steps::{Catalogue, Step, UnknownStep};

/// How far a learner got with one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Never verified, no hint asked for.
    #[default]
    NotStarted,
    /// Verified red at least once, or a hint was shown.
    Started,
    /// Verified green at least once.
    Done,
}

/// One step's table in the progress file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepProgress {
    /// Done, started or not started.
    pub state: StepState,
    /// Hints opened while the step was not yet done (what `status` counts).
    pub hints_before_done: usize,
    /// The first failing test of the last red run, in the test file's order:
    /// `hint` opens the next rung of its topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failing: Option<String>,
    /// How many rungs of each topic's ladder have been opened.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub opened: BTreeMap<String, usize>,
}

impl StepProgress {
    /// How many rungs of `topic` have been opened.
    pub fn opened(&self, topic: &str) -> usize {
        self.opened.get(topic).copied().unwrap_or(0)
    }
}

/// The whole progress file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Progress {
    steps: BTreeMap<String, StepProgress>,
}

const HEADER: &str = "\
# Your progress in the workbook, kept by `cargo xtask`.
# Plain text: safe to read, edit or delete (deleting starts over).
";

impl Progress {
    /// Reads the progress file; a missing file is an empty progress.
    pub fn load(layout: &Layout) -> Result<Self> {
        let path = layout.progress_file();
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Parses the file's text; text that does not parse is empty progress.
    pub fn parse(text: &str) -> Self {
        toml::from_str(text).unwrap_or_else(|error| {
            eprintln!(
                "warning: .workbook/progress.toml is not valid TOML, so it is ignored ({error})"
            );
            Self::default()
        })
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!("{HEADER}\n{body}")
    }

    /// Writes the file (through a temporary file, so a crash never leaves half a file).
    pub fn save(&self, layout: &Layout) -> Result<()> {
        let path = layout.progress_file();
        let dir = layout.state_dir();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let temporary = dir.join("progress.toml.tmp");
        fs::write(&temporary, self.render())
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        fs::rename(&temporary, &path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// One step's progress (not started when absent).
    pub fn get(&self, name: &str) -> StepProgress {
        self.steps.get(name).cloned().unwrap_or_default()
    }

    fn entry(&mut self, name: &str) -> &mut StepProgress {
        self.steps.entry(name.to_string()).or_default()
    }

    /// Records a run of the learner's code: green is done (a done step stays
    /// done), and a red run remembers its first failing test for `hint`.
    pub fn record_run(&mut self, name: &str, first_failing: Option<String>, green: bool) {
        let entry = self.entry(name);
        if green {
            entry.state = StepState::Done;
        } else if entry.state == StepState::NotStarted {
            entry.state = StepState::Started;
        }
        entry.first_failing = first_failing;
    }

    /// Forgets a step, as if it had never been started (`reset`).
    pub fn forget(&mut self, name: &str) {
        self.steps.remove(name);
    }

    /// Records that rung `rung` (1-based) of `topic` has been opened; only
    /// a rung opened before the step is done counts as a hint used.
    pub fn record_rung(&mut self, name: &str, topic: &str, rung: usize) {
        let entry = self.entry(name);
        let opened = entry.opened.entry(topic.to_string()).or_default();
        if rung <= *opened {
            return;
        }
        *opened = rung;
        if entry.state != StepState::Done {
            entry.state = StepState::Started;
            entry.hints_before_done += 1;
        }
    }

    /// The first step that is not done: where the learner is.
    pub fn current_step<'a>(&self, catalogue: &'a Catalogue) -> Option<&'a Step> {
        catalogue
            .steps()
            .iter()
            .find(|step| self.get(&step.name).state != StepState::Done)
    }

    /// The step named by `query`, else the current step (the last one when
    /// every step is done): what `verify`, `watch` and `hint` work on.
    pub fn step_or_current<'a>(
        &self,
        catalogue: &'a Catalogue,
        query: Option<&str>,
    ) -> Result<&'a Step, UnknownStep> {
        match query {
            Some(query) => catalogue.resolve(query),
            None => Ok(self
                .current_step(catalogue)
                .unwrap_or(&catalogue.steps()[catalogue.steps().len() - 1])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_survives_a_round_trip_through_its_file() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::at(root.path().to_path_buf());
        let mut progress = Progress::default();
        progress.record_rung("step1_baseline", "fetch_json", 1);
        progress.record_rung("step1_baseline", "fetch_json", 2);
        progress.record_run("step1_baseline", None, true);
        progress.record_run("step2_deadlines", Some("a::b".into()), false);
        progress.save(&layout).unwrap();

        let loaded = Progress::load(&layout).unwrap();
        assert_eq!(loaded, progress);
        let step1 = loaded.get("step1_baseline");
        assert_eq!(step1.state, StepState::Done);
        assert_eq!(
            (step1.hints_before_done, step1.opened("fetch_json")),
            (2, 2)
        );
        let step2 = loaded.get("step2_deadlines");
        assert_eq!(step2.state, StepState::Started);
        assert_eq!(step2.first_failing.as_deref(), Some("a::b"));
        assert_eq!(loaded.get("step3_backpressure"), StepProgress::default());
        assert!(
            progress
                .render()
                .contains("[step1_baseline]\nstate = \"done\"")
        );
    }

    #[test]
    fn a_missing_or_broken_file_is_empty_progress() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::at(root.path().to_path_buf());
        assert_eq!(Progress::load(&layout).unwrap(), Progress::default());
        assert_eq!(Progress::parse("garbage ="), Progress::default());
        let partial = Progress::parse("[a]\nstate = \"done\"\n");
        assert_eq!(partial.get("a").state, StepState::Done);
    }

    #[test]
    fn a_done_step_stays_done_and_a_reset_forgets_it() {
        let mut progress = Progress::default();
        progress.record_run("a", Some("t".into()), false);
        assert_eq!(progress.get("a").state, StepState::Started);
        progress.record_run("a", None, true);
        progress.record_run("a", Some("t".into()), false);
        assert_eq!(progress.get("a").state, StepState::Done);
        progress.forget("a");
        assert_eq!(progress.get("a"), StepProgress::default());
    }

    #[test]
    fn only_new_rungs_opened_before_green_count_as_hints_used() {
        let mut progress = Progress::default();
        progress.record_rung("a", "t", 1);
        progress.record_rung("a", "t", 1);
        progress.record_run("a", None, true);
        progress.record_rung("a", "t", 2);
        let entry = progress.get("a");
        assert_eq!((entry.hints_before_done, entry.opened("t")), (1, 2));
        assert_eq!(entry.state, StepState::Done);
    }
}
