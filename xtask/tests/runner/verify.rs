//! `verify`, end to end on real (tiny) crates: per-test ✓/✗ with purposes in
//! the test file's order, parts, grouped failures, `todo!()` worded for a
//! learner, which hint is next, progress, and the time limit.

use std::time::{Duration, Instant};

use crate::fixture::{Fixture, Steps};

#[test]
fn a_red_stub_lists_tests_in_file_order_by_part_with_shared_failures_grouped() {
    let fixture = Fixture::new(Steps::DemoOnly);

    let run = fixture.xtask(&["verify", "step1"]);

    assert_eq!(run.code, Some(1), "{run:?}");
    let lines = [
        "✗ the_answer_is_42 — The answer is forty-two.",
        "✓ nothing_is_asserted — Asserts nothing",
        "Parity (parity: 0 of 1 pass)",
        "✗ parity::the_answer_is_even — The answer is even.",
        "✗ 2 tests stop at steps/step1_demo/src/lib.rs:",
        "1 of 3 tests pass",
        // The first failing test in the file's order is the_answer_is_42.
        "stuck? answer — hint 1 of 3: cargo xtask hint step1",
    ];
    let mut rest = run.stdout.as_str();
    for line in lines {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} missing or out of order\n{run:?}"));
        rest = &rest[at + line.len()..];
    }
    assert!(
        run.stdout
            .contains("— not implemented yet: return the answer"),
        "{run:?}"
    );
    // Shown once, for both tests.
    assert_eq!(
        run.stdout.matches("return the answer").count(),
        1,
        "{run:?}"
    );
    let progress = fixture.read(".workbook/progress.toml");
    assert!(progress.contains("state = \"started\""), "{progress}");
    assert!(
        progress.contains("first_failing = \"the_answer_is_42\""),
        "{progress}"
    );
}

#[test]
fn three_verify_runs_of_an_unchanged_stub_print_no_hint_text_and_hint_does() {
    let fixture = Fixture::new(Steps::DemoOnly);
    let hint_text = [
        "parity idea",
        "parity api",
        "parity code",
        "first hint",
        "second hint",
        "third hint",
    ];

    for _ in 0..3 {
        let run = fixture.xtask(&["verify", "step1"]);
        for text in hint_text {
            assert!(!run.stdout.contains(text), "{text:?} shown\n{run:?}");
        }
        assert!(
            run.stdout.contains("stuck? answer — hint 1 of 3"),
            "{run:?}"
        );
    }
    let hint = fixture.xtask(&["hint"]);
    assert!(
        hint.stdout.contains("answer — hint 1 of 3: the idea"),
        "{hint:?}"
    );
    assert!(hint.stdout.contains("first hint"), "{hint:?}");
    assert!(!hint.stdout.contains("second hint"), "{hint:?}");
    let after = fixture.xtask(&["verify", "step1"]);
    assert!(
        after.stdout.contains("stuck? answer — hint 2 of 3"),
        "{after:?}"
    );
    assert!(!after.stdout.contains("first hint"), "{after:?}");
    let progress = fixture.read(".workbook/progress.toml");
    assert!(progress.contains("hints_before_done = 1"), "{progress}");
}

#[test]
fn verify_without_a_step_runs_the_current_step() {
    let fixture = Fixture::new(Steps::DemoAndHang);
    fixture.write(
        ".workbook/progress.toml",
        "[step1_demo]\nstate = \"done\"\n",
    );

    let run = fixture.xtask(&["verify", "--time-limit", "2"]);

    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains("step2 The hanging step"), "{run:?}");
}

#[test]
fn verify_never_writes_to_the_learners_files() {
    let fixture = Fixture::new(Steps::DemoOnly);
    let before = snapshot(&fixture.path("steps"));

    fixture.xtask(&["verify", "step1"]);

    assert_eq!(snapshot(&fixture.path("steps")), before);
}

/// Every file below `dir` with its contents.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_solution_is_green_and_leaves_progress_alone() {
    let fixture = Fixture::new(Steps::DemoOnly);

    let run = fixture.xtask(&["verify", "step1", "--solution"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("✓ the_answer_is_42"), "{run:?}");
    assert!(
        run.stdout.contains("Parity (parity: 1 of 1 pass)"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("reference solution passes all 3 tests"),
        "{run:?}"
    );
    assert!(!fixture.path(".workbook/progress.toml").exists());
}

#[test]
fn a_green_step_is_marked_done_and_points_to_the_lab_and_next_step() {
    let fixture = Fixture::new(Steps::DemoAndHang);
    fixture.xtask(&["solution", "step1", "--apply"]);

    let run = fixture.xtask(&["verify", "step1"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("step1 is done"), "{run:?}");
    assert!(run.stdout.contains("cargo xtask lab step1"), "{run:?}");
    assert!(run.stdout.contains("cargo xtask verify step2"), "{run:?}");
    let progress = fixture.read(".workbook/progress.toml");
    assert!(
        progress.contains("[step1_demo]\nstate = \"done\""),
        "{progress}"
    );
}

#[test]
fn code_that_does_not_compile_says_so_and_exits_1() {
    let fixture = Fixture::new(Steps::DemoOnly);
    fixture.write(
        "steps/step1_demo/src/lib.rs",
        "//! Broken.\n\npub fn answer() -> u32 {\n    \"not a number\"\n}\n",
    );

    let run = fixture.xtask(&["verify", "step1"]);

    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.contains("your code does not compile yet"),
        "{run:?}"
    );
    // The compiler's own message reaches the learner untouched.
    assert!(run.stderr.contains("error[E0308]"), "{run:?}");
}

#[test]
fn a_hung_test_is_stopped_at_the_time_limit_and_named() {
    let fixture = Fixture::new(Steps::DemoAndHang);
    // Build first so the limit measures the tests, not the compiler.
    let built = std::process::Command::new(env!("CARGO"))
        .args(["test", "--no-run", "--quiet", "--package", "step2_hang"])
        .current_dir(fixture.root())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let started = Instant::now();
    let run = fixture.xtask(&["verify", "step2", "--time-limit", "2"]);
    let elapsed = started.elapsed();

    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert!(run.stdout.contains("Stopped after 2 s"), "{run:?}");
    assert!(
        run.stdout.contains("✗ waiting_ends — Waiting ends."),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("did not finish before the time limit"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("not implemented yet: say whether we are ready"),
        "{run:?}"
    );
    assert_no_process_runs_from(fixture.root());
}

/// No process is left running a binary from the fixture (Linux: read /proc).
fn assert_no_process_runs_from(root: &std::path::Path) {
    #[cfg(target_os = "linux")]
    {
        let root = root.to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(
                !cmdline.contains(&format!("{root}/target")),
                "left behind: {cmdline}"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = root;
}

#[test]
fn lab_arguments_pass_through_after_the_runners_own_flags() {
    let fixture = Fixture::new(Steps::DemoOnly);

    let run = fixture.xtask(&["lab", "step1", "--solution", "--concurrency", "5,50,500"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    let out = fixture.path("lab-results").display().to_string();
    assert!(
        run.stdout.contains(&format!(
            "lab args: [\"--out\", \"{out}\", \"--concurrency\", \"5,50,500\"]"
        )),
        "{run:?}"
    );
}

#[test]
fn lab_no_run_builds_the_lab_without_running_it() {
    let fixture = Fixture::new(Steps::DemoOnly);

    let run = fixture.xtask(&["lab", "step1", "--no-run"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stdout.contains("lab args"), "{run:?}");
    let built = format!("target/debug/step1_lab{}", std::env::consts::EXE_SUFFIX);
    assert!(fixture.path(&built).exists(), "{run:?}");
}
