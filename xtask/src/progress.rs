//! The learner's progress: `.workbook/progress.txt`, plain text keyed by step.
//!
//! One line per step, e.g. `step1_baseline = done hints_shown=2`. Plain text
//! so a learner (or instructor) can read and edit it; unknown lines are
//! ignored rather than rejected so a hand edit never locks anyone out.

use std::collections::BTreeMap;
use std::fs;

use anyhow::{Context, Result};

use crate::layout::Layout;
use crate::steps::{Catalogue, Step, UnknownStep};

/// How far a learner got with one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepState {
    /// Never verified, no hint asked for.
    #[default]
    NotStarted,
    /// Verified red at least once, or a hint was shown.
    Started,
    /// Verified green at least once.
    Done,
}

impl StepState {
    fn word(self) -> &'static str {
        match self {
            StepState::NotStarted => "not_started",
            StepState::Started => "started",
            StepState::Done => "done",
        }
    }
}

/// One step's line in the progress file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepProgress {
    /// Done, started or not started.
    pub state: StepState,
    /// How many hints have been shown so far.
    pub hints_shown: usize,
}

/// The whole progress file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

    /// Parses the file's text, skipping comments and lines it does not understand.
    pub fn parse(text: &str) -> Self {
        let mut steps = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, rest)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let mut progress = StepProgress::default();
            for word in rest.split_whitespace() {
                match word {
                    "done" => progress.state = StepState::Done,
                    "started" => progress.state = StepState::Started,
                    "not_started" => progress.state = StepState::NotStarted,
                    _ => {
                        if let Some(count) = word.strip_prefix("hints_shown=") {
                            progress.hints_shown = count.parse().unwrap_or(0);
                        }
                    }
                }
            }
            steps.insert(name.to_string(), progress);
        }
        Self { steps }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut text = String::from(HEADER);
        for (name, progress) in &self.steps {
            text.push_str(&format!(
                "{name} = {} hints_shown={}\n",
                progress.state.word(),
                progress.hints_shown
            ));
        }
        text
    }

    /// Writes the file (through a temporary file, so a crash never leaves half a file).
    pub fn save(&self, layout: &Layout) -> Result<()> {
        let path = layout.progress_file();
        let dir = layout.state_dir();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let temporary = dir.join("progress.txt.tmp");
        fs::write(&temporary, self.render())
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        fs::rename(&temporary, &path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// One step's progress (not started when absent).
    pub fn get(&self, name: &str) -> StepProgress {
        self.steps.get(name).copied().unwrap_or_default()
    }

    /// Records a red run or a hint; a done step stays done.
    pub fn mark_started(&mut self, name: &str) {
        let entry = self.steps.entry(name.to_string()).or_default();
        if entry.state == StepState::NotStarted {
            entry.state = StepState::Started;
        }
    }

    /// Records a green run.
    pub fn mark_done(&mut self, name: &str) {
        self.steps.entry(name.to_string()).or_default().state = StepState::Done;
    }

    /// Records a run of the learner's code: green is done, anything else
    /// started (a done step stays done).
    pub fn record_run(&mut self, name: &str, green: bool) {
        if green {
            self.mark_done(name);
        } else {
            self.mark_started(name);
        }
    }

    /// Forgets a step, as if it had never been started (`reset`).
    pub fn forget(&mut self, name: &str) {
        self.steps.remove(name);
    }

    /// Records that `count` hints have now been shown (never fewer than before).
    pub fn record_hints_shown(&mut self, name: &str, count: usize) {
        self.mark_started(name);
        let entry = self.steps.entry(name.to_string()).or_default();
        entry.hints_shown = entry.hints_shown.max(count);
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
        progress.mark_done("step1_baseline");
        progress.record_hints_shown("step1_baseline", 2);
        progress.record_hints_shown("step2_deadlines", 1);
        progress.save(&layout).unwrap();

        let loaded = Progress::load(&layout).unwrap();
        assert_eq!(loaded, progress);
        let step1 = loaded.get("step1_baseline");
        assert_eq!(step1.state, StepState::Done);
        assert_eq!(step1.hints_shown, 2);
        assert_eq!(loaded.get("step2_deadlines").state, StepState::Started);
        assert_eq!(loaded.get("step3_backpressure"), StepProgress::default());
    }

    #[test]
    fn the_file_is_plain_text_keyed_by_step_name() {
        let mut progress = Progress::default();
        progress.mark_done("step1_baseline");
        progress.record_hints_shown("step1_baseline", 2);
        let text = progress.render();
        assert!(
            text.contains("step1_baseline = done hints_shown=2\n"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_file_is_empty_progress_and_junk_lines_are_ignored() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::at(root.path().to_path_buf());
        assert_eq!(Progress::load(&layout).unwrap(), Progress::default());

        let parsed = Progress::parse("garbage\n= done\nstep1_baseline = started hints_shown=x\n");
        assert_eq!(parsed.get("step1_baseline").state, StepState::Started);
        assert_eq!(parsed.get("step1_baseline").hints_shown, 0);
    }

    #[test]
    fn a_run_records_done_or_started_and_a_reset_forgets_the_step() {
        let mut progress = Progress::default();
        progress.record_run("a", false);
        assert_eq!(progress.get("a").state, StepState::Started);
        progress.record_run("a", true);
        progress.record_run("a", false);
        assert_eq!(progress.get("a").state, StepState::Done);
        progress.record_hints_shown("a", 2);

        progress.forget("a");

        assert_eq!(progress.get("a"), StepProgress::default());
    }

    #[test]
    fn a_done_step_stays_done_and_hint_counts_never_shrink() {
        let mut progress = Progress::default();
        progress.mark_done("a");
        progress.mark_started("a");
        progress.record_hints_shown("a", 3);
        progress.record_hints_shown("a", 1);
        assert_eq!(
            progress.get("a"),
            StepProgress {
                state: StepState::Done,
                hints_shown: 3
            }
        );
    }
}
