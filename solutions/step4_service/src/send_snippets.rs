//! A maintainers' check, not part of the service: the Send snippets fail and
//! compile where the step says they do. A plain `cargo test` at the root and
//! `cargo xtask check` run it; `cargo xtask verify` does not.
//!
//! The exercise's snippets, in `steps/step4_service/send/`, must fail to
//! compile, each with exactly the compiler's message recorded beside it in a
//! `.stderr` file (the message the chapter quotes). The reference's fixed
//! snippets, in `solutions/step4_service/send/`, must compile and run (the
//! step's own tests check that too, in both crates).
//!
//! If you fixed the exercise's snippets yourself, the first half fails, by
//! design: it checks the untouched exercise, as `check` does. When a new
//! Rust release words a message differently, record it again with
//! `TRYBUILD=overwrite cargo test -p step4_service_solution --lib send_snippets`,
//! read the diff, and update the chapter's quotes.

/// The snippets, in teaching order.
const SNIPPETS: [&str; 3] = [
    "task_with_rc.rs",
    "handler_with_mutex_guard.rs",
    "handler_with_thread_rng.rs",
];

#[test]
fn the_exercise_snippets_fail_with_the_recorded_errors_and_the_fixed_ones_run() {
    // One `TestCases` for both directions: trybuild then builds every case
    // in one mode (`cargo build`), sharing the dependencies it built for the
    // step's own tests instead of checking them all again.
    let cases = trybuild::TestCases::new();
    for snippet in SNIPPETS {
        cases.compile_fail(format!(
            "{}/../../steps/step4_service/send/{snippet}",
            env!("CARGO_MANIFEST_DIR")
        ));
        cases.pass(format!("{}/send/{snippet}", env!("CARGO_MANIFEST_DIR")));
    }
}
