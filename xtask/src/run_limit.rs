//! Runs a child process with a time limit, capturing its output.
//!
//! A learner's hung future must end with a clear message, not a frozen
//! terminal. The runner therefore runs test binaries directly (not through
//! `cargo test`, whose child would outlive a killed cargo) and, when the limit
//! passes, kills the child and waits for it so no process is left behind.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How often the child is polled. Short enough that the limit is kept to
/// within a blink; long enough to cost nothing.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long to wait for the output pipes to close once the child is gone.
/// A grandchild that inherited them could hold them open forever.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The child exited on its own.
    Exited(ExitStatus),
    /// The limit passed; the child was killed and reaped.
    TimedOut,
}

/// The result of [`run_with_limit`].
#[derive(Debug)]
pub struct LimitedRun {
    /// How the child ended.
    pub completion: Completion,
    /// Everything it wrote to standard output (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to standard error (lossy UTF-8).
    pub stderr: String,
    /// Wall-clock time from spawn to reaping.
    pub elapsed: Duration,
    /// The child's process id, so tests can check it is gone.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the time-limit tests"))]
    pub pid: u32,
}

/// Runs `command` with standard input closed and output captured, killing it
/// if it runs longer than `limit`.
///
/// # Errors
/// Fails only if the child cannot be spawned or waited for.
pub fn run_with_limit(command: &mut Command, limit: Duration) -> Result<LimitedRun> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {:?}", command.get_program()))?;
    let pid = child.id();
    // Each pipe is drained on its own thread: a child that fills one pipe
    // while we read the other would otherwise block forever.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());

    let completion = wait_until(&mut child, started + limit)?;
    let elapsed = started.elapsed();
    Ok(LimitedRun {
        completion,
        stdout: collect(stdout),
        stderr: collect(stderr),
        elapsed,
        pid,
    })
}

fn wait_until(child: &mut Child, deadline: Instant) -> Result<Completion> {
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for a test process")? {
            return Ok(Completion::Exited(status));
        }
        let now = Instant::now();
        if now >= deadline {
            // kill() fails if the child exited in the meantime; wait() below
            // then reaps it either way.
            let _ = child.kill();
            child.wait().context("cannot reap a killed test process")?;
            return Ok(Completion::TimedOut);
        }
        thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            // A read error just ends the capture early; what was read is kept.
            let _ = pipe.read_to_end(&mut bytes);
            let _ = sender.send(bytes);
        });
    }
    receiver
}

fn collect(receiver: mpsc::Receiver<Vec<u8>>) -> String {
    let bytes = receiver.recv_timeout(DRAIN_GRACE).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the child copy of this test binary to choose its behaviour.
    const CHILD_ENV: &str = "XTASK_TEST_CHILD";

    /// Re-runs this very test binary, running only `test_name`, as the child.
    fn this_test_as_child(test_name: &str, role: &str) -> Command {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, role);
        command
    }

    #[test]
    fn a_child_that_never_exits_is_killed_at_the_limit() {
        if std::env::var(CHILD_ENV).as_deref() == Ok("hang") {
            println!("child: hanging on purpose");
            loop {
                thread::sleep(Duration::from_secs(3600));
            }
        }
        let mut child = this_test_as_child(
            "run_limit::tests::a_child_that_never_exits_is_killed_at_the_limit",
            "hang",
        );

        let run = run_with_limit(&mut child, Duration::from_secs(1)).unwrap();

        assert_eq!(run.completion, Completion::TimedOut);
        assert!(run.elapsed >= Duration::from_secs(1), "{:?}", run.elapsed);
        assert!(run.elapsed < Duration::from_secs(15), "{:?}", run.elapsed);
        assert!(
            run.stdout.contains("child: hanging on purpose"),
            "{}",
            run.stdout
        );
        assert_process_is_gone(run.pid);
    }

    #[test]
    fn a_child_that_finishes_reports_its_status_and_output() {
        if std::env::var(CHILD_ENV).as_deref() == Ok("speak") {
            println!("child: to stdout");
            eprintln!("child: to stderr");
            return;
        }
        let mut child = this_test_as_child(
            "run_limit::tests::a_child_that_finishes_reports_its_status_and_output",
            "speak",
        );

        let run = run_with_limit(&mut child, Duration::from_secs(30)).unwrap();

        match run.completion {
            Completion::Exited(status) => assert!(status.success()),
            Completion::TimedOut => panic!("a quick child timed out"),
        }
        assert!(run.stdout.contains("child: to stdout"), "{}", run.stdout);
        assert!(run.stderr.contains("child: to stderr"), "{}", run.stderr);
    }

    /// After `run_with_limit` returns, the child has been killed *and* reaped:
    /// no process, not even a zombie, has its id.
    fn assert_process_is_gone(pid: u32) {
        #[cfg(target_os = "linux")]
        {
            let proc_entry = std::path::Path::new("/proc").join(pid.to_string());
            assert!(!proc_entry.exists(), "process {pid} is still there");
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        {
            let alive = Command::new("kill")
                .args(["-0", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            assert!(!alive, "process {pid} is still there");
        }
        #[cfg(windows)]
        {
            let listing = Command::new("tasklist")
                .args(["/FI", &format!("PID eq {pid}"), "/NH"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&listing.stdout);
            assert!(
                !text.contains(&pid.to_string()),
                "process {pid} is still there"
            );
        }
    }
}
