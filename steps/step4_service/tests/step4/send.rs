//! Part "send": the three snippets in `send/` compile, and still do what
//! their doc comments say.
//!
//! Each snippet is a small program of its own that holds something that is
//! not `Send` (an `Rc`, a `std::sync::MutexGuard`, the thread's RNG) across
//! an `.await` in a spawned task or an axum handler, so it does not compile
//! until you fix it. A snippet cannot live in this test binary (one that
//! does not compile would stop every test of the step), so each test hands
//! its snippet to `trybuild`, which builds it as a crate of its own under
//! `target/tests/trybuild/` and then runs its `main`, whose assertions are
//! the behaviour to keep. The first build there compiles the snippets'
//! dependencies once, which takes minutes; later ones take seconds.
//!
//! The snippets are found beside the package's `Cargo.toml`: yours in
//! `steps/step4_service/send/`, the reference's fixed ones in
//! `solutions/step4_service/send/`. trybuild prints the compiler's messages
//! to standard error, so each test runs it in a child copy of this test
//! binary and, when it fails, quotes the key lines of the message first and
//! then the whole of it (`verify` shows the first lines;
//! `cargo test -p step4_service --test step4 send::` shows all of it).

use std::process::Command;

/// Set in the child copy of this binary: the snippet it should build and run.
const SNIPPET_ENV: &str = "STEP4_SEND_SNIPPET";

/// How many key lines of the compiler's message a failure quotes first
/// (`verify` shows the first six lines of a failure).
const QUOTED_LINES: usize = 4;

/// Builds `send/<file>` of this package with trybuild and runs it, failing
/// the test (named `test` in this module) with the compiler's key lines if
/// it does not compile, or with its panic if its `main` fails.
fn builds_and_runs(file: &str, test: &str) {
    if let Ok(snippet) = std::env::var(SNIPPET_ENV) {
        // The child: trybuild panics if the snippet fails.
        trybuild::TestCases::new().pass(snippet);
        return;
    }
    let snippet = format!("{}/send/{file}", env!("CARGO_MANIFEST_DIR"));
    let module = module_path!().split_once("::").map_or("send", |(_, m)| m);
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([&format!("{module}::{test}"), "--exact", "--test-threads=1"])
        .env(SNIPPET_ENV, &snippet)
        .env("NO_COLOR", "1")
        .output()
        .expect("the test binary runs a copy of itself");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("running 1 test"),
        "the child copy of the test binary did not run `{module}::{test}`:\n{stdout}"
    );
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        panic!(
            "send/{file} does not compile yet, or its `main` failed:\n{}\n\
             (`cargo test -p step4_service --test step4 send::` shows all of it)\n\n{stderr}",
            key_lines(&stderr)
        );
    }
}

/// The lines of trybuild's report that say what went wrong: the compiler's
/// errors and helps, or what the snippet's `main` wrote when it failed.
fn key_lines(report: &str) -> String {
    let mut key = Vec::new();
    let mut in_programs_stderr = false;
    for line in report.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('┈') || line.starts_with("note: run with") {
            continue;
        }
        match line {
            "Test case failed at runtime." => key.push(line),
            "STDERR:" => in_programs_stderr = true,
            "STDOUT:" => in_programs_stderr = false,
            _ if in_programs_stderr => key.push(line),
            _ if line.starts_with("error: could not compile") => {}
            _ if line.starts_with("error") || line.starts_with("= help") => key.push(line),
            _ => {}
        }
    }
    key.dedup();
    key.truncate(QUOTED_LINES);
    if key.is_empty() {
        report.to_owned()
    } else {
        key.join("\n")
    }
}

/// `send/task_with_rc.rs` compiles, so `tokio::spawn` takes its task (no `Rc` held across an `.await`), and its checks pass.
#[test]
fn the_task_with_an_rc_can_be_spawned_and_keeps_its_notes() {
    builds_and_runs(
        "task_with_rc.rs",
        "the_task_with_an_rc_can_be_spawned_and_keeps_its_notes",
    );
}

/// `send/handler_with_mutex_guard.rs` compiles, so axum takes its handler (no `MutexGuard` held across an `.await`), and its checks pass.
#[test]
fn the_handler_with_a_mutex_guard_is_served_and_still_counts_and_reports() {
    builds_and_runs(
        "handler_with_mutex_guard.rs",
        "the_handler_with_a_mutex_guard_is_served_and_still_counts_and_reports",
    );
}

/// `send/handler_with_thread_rng.rs` compiles, so axum takes its handler (no `ThreadRng` held across an `.await`), and its checks pass.
#[test]
fn the_handler_with_the_thread_rng_is_served_and_still_draws_at_random() {
    builds_and_runs(
        "handler_with_thread_rng.rs",
        "the_handler_with_the_thread_rng_is_served_and_still_draws_at_random",
    );
}
