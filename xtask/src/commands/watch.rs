//! `cargo xtask watch [step] [--poll]`: verify, then verify again on every save.
//!
//! Uses the OS's file notifications (notify's recommended watcher) and falls
//! back to polling when they cannot start; `--poll` forces polling, which is
//! what works on WSL's Windows drives and network file systems. Ctrl-C ends
//! it: the default signal handling stops the runner and any test it is running.

use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anstream::{eprintln, println};
use anyhow::{Context, Result, bail};
use clap::Args;
use notify::{EventKind, PollWatcher, RecursiveMode, Watcher};

use crate::commands::verify;
use crate::debounce;
use crate::layout::Layout;
use crate::progress::Progress;
use crate::steps::{Catalogue, Flavor};
use crate::term;

/// How long the files must stay unchanged before a re-run.
const QUIET_PERIOD: Duration = Duration::from_millis(300);
/// How often the polling watcher looks (notify's default is 30 s).
const POLL_INTERVAL: Duration = Duration::from_millis(500);

type Event = notify::Result<notify::Event>;

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The step (default: your current step).
    pub step: Option<String>,
    /// Poll for changes instead of OS notifications (WSL, network drives).
    #[arg(long)]
    pub poll: bool,
    /// Stop each test run after this many seconds (default: the step's limit).
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<u64>,
}

/// Entry point of `watch`.
pub fn run(layout: &Layout, args: &WatchArgs) -> Result<ExitCode> {
    let catalogue = Catalogue::load(layout)?;
    let step = Progress::load(layout)?.step_or_current(&catalogue, args.step.as_deref())?;
    let dir = layout.step_dir(&step.name);
    let (sender, events) = mpsc::channel::<Event>();
    // Kept alive for the whole loop: dropping a watcher stops it.
    let _watcher = start_watcher(&dir, sender, args.poll)?;

    loop {
        verify::verify_and_record(layout, &catalogue, step, Flavor::Exercise, args.time_limit)?;
        println!();
        println!(
            "{}",
            term::dim(&format!(
                "watching {}/ — save a file to run again, Ctrl-C to stop",
                layout.display(&dir)
            ))
        );
        if debounce::next_burst(&events, QUIET_PERIOD, is_relevant).is_none() {
            bail!("the file watcher stopped unexpectedly");
        }
        println!("{}", term::dim(&"─".repeat(60)));
    }
}

/// The recommended (OS) watcher, or the polling one if asked for or if the
/// recommended one cannot start.
fn start_watcher(
    dir: &Path,
    sender: mpsc::Sender<Event>,
    force_poll: bool,
) -> Result<Box<dyn Watcher>> {
    if !force_poll {
        let watching = notify::recommended_watcher(sender.clone()).and_then(|mut watcher| {
            watcher
                .watch(dir, RecursiveMode::Recursive)
                .map(|()| watcher)
        });
        match watching {
            Ok(watcher) => return Ok(Box::new(watcher)),
            Err(error) => {
                let warning = format!("file notifications unavailable ({error}); polling instead");
                eprintln!("{}", term::yellow(&warning));
            }
        }
    }
    let config = notify::Config::default().with_poll_interval(POLL_INTERVAL);
    let mut watcher =
        PollWatcher::new(sender, config).context("cannot start the polling watcher")?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    Ok(Box::new(watcher))
}

/// Changes to source files count; reads, editor swap files and snapshot
/// files written by the tests themselves do not (they would loop).
fn is_relevant(event: &Event) -> bool {
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            eprintln!("{}", term::yellow(&format!("file watcher: {error}")));
            return false;
        }
    };
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    event.paths.iter().any(|path| !is_noise(path))
}

fn is_noise(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".snap.new")
        || name.ends_with(".pending-snap")
        || path.components().any(|part| part.as_os_str() == "target")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn event(kind: EventKind, path: &str) -> Event {
        Ok(notify::Event::new(kind).add_path(PathBuf::from(path)))
    }

    #[test]
    fn source_changes_count_and_noise_does_not() {
        use notify::event::{AccessKind, CreateKind, ModifyKind};
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(is_relevant(&event(modify, "/w/steps/s/src/lib.rs")));
        assert!(is_relevant(&event(
            EventKind::Create(CreateKind::File),
            "/w/steps/s/src/new.rs"
        )));
        assert!(!is_relevant(&event(
            EventKind::Access(AccessKind::Any),
            "/w/steps/s/src/lib.rs"
        )));
        assert!(!is_relevant(&event(modify, "/w/steps/s/src/.lib.rs.swp")));
        assert!(!is_relevant(&event(modify, "/w/steps/s/src/lib.rs~")));
        assert!(!is_relevant(&event(
            modify,
            "/w/steps/s/tests/snapshots/a.snap.new"
        )));
    }
}
