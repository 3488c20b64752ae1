//! Behaviour tests for the load lab, compiled into one test binary (one link, not five).
//!
//! - `driver`: what `run` counts and how it times it, on a paused clock with sleep-based fakes.
//! - `coordinated_omission`: the open loop measures from the intended send time (real time).
//! - `http_get`: status and failure mapping against a real axum server on 127.0.0.1.
//! - `report`: tables, the SVG plot, the results folder and the markdown report.
//! - `machine`: machine description and process memory.

mod coordinated_omission;
mod driver;
mod http_get;
mod machine;
mod report;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Fails the test, instead of hanging it, if `future` takes longer than `limit`.
///
/// Under a paused clock the limit is in paused time too: a future stuck forever still ends the
/// test at once, because tokio jumps the clock to the limit when nothing else can run.
pub async fn within<F: Future>(limit: Duration, future: F) -> F::Output {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("the test took longer than its limit of {limit:?}"))
}

/// A folder of its own for one test under the system temp folder, removed when dropped.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// A new, empty folder named after the test (and this process, so parallel runs of the
    /// suite cannot collide).
    pub fn new(test_name: &str) -> ScratchDir {
        let path =
            std::env::temp_dir().join(format!("load_lab-{}-{test_name}", std::process::id()));
        // Left over from a crashed run of the same process id: start clean.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        ScratchDir { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover temp folder must not fail a test.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
