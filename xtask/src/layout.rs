//! Where the workbook's files live, found once and passed around.
//!
//! Every command works on paths below one root: the workspace that holds
//! `steps/`, `solutions/`, `book/` and the runner's own state in `.workbook/`.
//! The root can be overridden with `WORKBOOK_ROOT` so the runner's tests can
//! point it at a small copy of the layout in a temporary directory.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the workbook root.
pub const ROOT_ENV: &str = "WORKBOOK_ROOT";

/// Paths of a workbook checkout.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The workbook to work on: the one named by `WORKBOOK_ROOT`, else the
    /// checkout that contains the current directory, else the one this
    /// runner was built from.
    ///
    /// Why not just the build path: a shared cargo target folder (a global
    /// `build.target-dir`, or `CARGO_TARGET_DIR`) lets one compiled runner
    /// serve two clones, and the path baked in at compile time would then
    /// point at the wrong one, so `verify` or `reset` would act on someone
    /// else's files.
    pub fn discover() -> Self {
        if let Some(dir) = std::env::var_os(ROOT_ENV).filter(|value| !value.is_empty()) {
            return Self::at(PathBuf::from(dir));
        }
        if let Some(root) = std::env::current_dir()
            .ok()
            .and_then(|dir| Self::enclosing_root(&dir))
        {
            return Self::at(root);
        }
        // xtask/ sits directly below the workspace root.
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir.parent().unwrap_or(manifest_dir);
        Self::at(root.to_path_buf())
    }

    /// The nearest folder at or above `dir` that looks like a workbook
    /// checkout: it has `steps/info.toml` and `xtask/Cargo.toml`.
    pub fn enclosing_root(dir: &Path) -> Option<PathBuf> {
        dir.ancestors()
            .find(|candidate| {
                candidate.join("steps").join("info.toml").is_file()
                    && candidate.join("xtask").join("Cargo.toml").is_file()
            })
            .map(Path::to_path_buf)
    }

    /// A workbook rooted at `root`.
    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `steps/info.toml`: the catalogue of steps.
    pub fn info_toml(&self) -> PathBuf {
        self.root.join("steps").join("info.toml")
    }

    /// `steps/hints/<short>.toml`: a step's hint ladders (spoilers) and mutants.
    pub fn hints_file(&self, short: &str) -> PathBuf {
        self.root
            .join("steps")
            .join("hints")
            .join(format!("{short}.toml"))
    }

    /// `steps/<name>/`: the learner's exercise crate.
    pub fn step_dir(&self, name: &str) -> PathBuf {
        self.root.join("steps").join(name)
    }

    /// `solutions/<name>/`: the reference solution crate.
    pub fn solution_dir(&self, name: &str) -> PathBuf {
        self.root.join("solutions").join(name)
    }

    /// `book/`: the mdBook.
    pub fn book_dir(&self) -> PathBuf {
        self.root.join("book")
    }

    /// `.workbook/`: the runner's gitignored state (progress, backups).
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".workbook")
    }

    /// `.workbook/progress.toml`.
    pub fn progress_file(&self) -> PathBuf {
        self.state_dir().join("progress.toml")
    }

    /// `.workbook/backups/`.
    pub fn backups_dir(&self) -> PathBuf {
        self.state_dir().join("backups")
    }

    /// `lab-results/`: where labs write their tables, plots and reports.
    pub fn lab_results_dir(&self) -> PathBuf {
        self.root.join("lab-results")
    }

    /// `path` relative to the root when it is below it, for friendlier messages.
    pub fn display(&self, path: &Path) -> String {
        let shown = path.strip_prefix(&self.root).unwrap_or(path);
        shown.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_found_from_any_folder_inside_a_checkout() {
        let checkout = tempfile::tempdir().expect("a temp dir");
        let root = checkout.path();
        for file in ["steps/info.toml", "xtask/Cargo.toml"] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        }
        let deep = root.join("steps/step1_baseline/src");
        std::fs::create_dir_all(&deep).unwrap();

        assert_eq!(Layout::enclosing_root(&deep).as_deref(), Some(root));
        assert_eq!(Layout::enclosing_root(root).as_deref(), Some(root));
    }

    #[test]
    fn a_folder_outside_any_checkout_has_no_root() {
        let elsewhere = tempfile::tempdir().expect("a temp dir");

        assert_eq!(Layout::enclosing_root(elsewhere.path()), None);
    }
}
