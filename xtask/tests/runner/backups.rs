//! `solution --apply` and `reset` never lose the learner's code: they back it
//! up first and say where.

use std::path::{Path, PathBuf};

use crate::fixture::{Fixture, SOLUTION_LIB, STUB_LIB, Steps};

const LEARNER_LIB: &str = "//! My attempt.\n\npub fn answer() -> u32 {\n    41\n}\n";

/// The only backup directory, after checking there is exactly one.
fn single_backup(fixture: &Fixture) -> PathBuf {
    let backups: Vec<PathBuf> = std::fs::read_dir(fixture.path(".workbook/backups"))
        .expect("a backups directory")
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    backups.into_iter().next().unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn solution_shows_a_diff_and_changes_nothing() {
    let fixture = Fixture::new(Steps::DemoOnly);
    fixture.write("steps/step1_demo/src/lib.rs", LEARNER_LIB);

    let run = fixture.xtask(&["solution", "step1"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("--- steps/step1_demo/src/lib.rs"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("+++ solutions/step1_demo/src/lib.rs"),
        "{run:?}"
    );
    assert!(run.stdout.contains("-    41"), "{run:?}");
    assert!(run.stdout.contains("+    42"), "{run:?}");
    assert_eq!(fixture.read("steps/step1_demo/src/lib.rs"), LEARNER_LIB);
    assert!(!fixture.path(".workbook/backups").exists());
}

#[test]
fn solution_apply_backs_up_the_learner_code_then_copies_the_solution() {
    let fixture = Fixture::new(Steps::DemoOnly);
    fixture.write("steps/step1_demo/src/lib.rs", LEARNER_LIB);
    fixture.write("steps/step1_demo/src/extra.rs", "//! Mine too.\n");

    let run = fixture.xtask(&["solution", "step1", "--apply"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(fixture.read("steps/step1_demo/src/lib.rs"), SOLUTION_LIB);
    assert!(!fixture.path("steps/step1_demo/src/extra.rs").exists());
    let backup = single_backup(&fixture);
    assert_eq!(read(&backup.join("src/lib.rs")), LEARNER_LIB);
    assert_eq!(read(&backup.join("src/extra.rs")), "//! Mine too.\n");
    let shown = backup
        .strip_prefix(fixture.root())
        .unwrap()
        .display()
        .to_string();
    assert!(
        run.stdout.contains(&shown),
        "the backup's path is printed: {run:?}"
    );
    // Only src/ is touched: the exercise keeps its own manifest.
    assert!(
        fixture
            .read("steps/step1_demo/Cargo.toml")
            .contains("name = \"step1_demo\"")
    );
}

#[test]
fn reset_backs_up_the_learner_code_then_restores_the_committed_files() {
    let fixture = Fixture::new(Steps::DemoOnly);
    fixture.commit_everything();
    fixture.write("steps/step1_demo/src/lib.rs", LEARNER_LIB);
    fixture.write("steps/step1_demo/src/extra.rs", "//! Mine too.\n");

    let run = fixture.xtask(&["reset", "step1"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(fixture.read("steps/step1_demo/src/lib.rs"), STUB_LIB);
    assert!(!fixture.path("steps/step1_demo/src/extra.rs").exists());
    let backup = single_backup(&fixture);
    assert_eq!(read(&backup.join("src/lib.rs")), LEARNER_LIB);
    assert_eq!(read(&backup.join("src/extra.rs")), "//! Mine too.\n");
    let shown = backup.strip_prefix(fixture.root()).unwrap().display();
    assert!(
        run.stdout
            .contains(&format!("cp -R {shown}/src/. steps/step1_demo/src/")),
        "how to restore it is printed: {run:?}"
    );
}

#[test]
fn reset_clears_the_steps_progress_so_status_no_longer_says_done() {
    let fixture = Fixture::new(Steps::DemoOnly);
    fixture.commit_everything();
    fixture.write(
        ".workbook/progress.toml",
        "[step1_demo]\nstate = \"done\"\nhints_before_done = 2\n",
    );

    let run = fixture.xtask(&["reset", "step1"]);
    let status = fixture.xtask(&["status"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(status.stdout.contains("not started"), "{status:?}");
    assert!(!status.stdout.contains(" done "), "{status:?}");
}

#[test]
fn reset_outside_git_fails_clearly_and_touches_nothing() {
    let fixture = Fixture::new(Steps::DemoOnly);
    fixture.write("steps/step1_demo/src/lib.rs", LEARNER_LIB);

    let run = fixture.xtask(&["reset", "step1"]);

    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("not tracked by git"), "{run:?}");
    assert_eq!(fixture.read("steps/step1_demo/src/lib.rs"), LEARNER_LIB);
    assert!(!fixture.path(".workbook/backups").exists());
}

#[test]
fn reset_from_an_unknown_revision_fails_clearly() {
    let fixture = Fixture::new(Steps::DemoOnly);
    fixture.commit_everything();
    fixture.write("steps/step1_demo/src/lib.rs", LEARNER_LIB);

    let run = fixture.xtask(&["reset", "step1", "--from", "no-such-rev"]);

    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("no-such-rev"), "{run:?}");
    assert_eq!(fixture.read("steps/step1_demo/src/lib.rs"), LEARNER_LIB);
}

#[test]
fn reset_of_a_tests_step_restores_the_learners_tests_not_the_given_code() {
    let fixture = Fixture::new(Steps::WithTestsStep);
    fixture.commit_everything();
    let committed_tests = fixture.read("steps/step2_mutants/tests/sums.rs");
    let given_code = fixture.read("steps/step2_mutants/src/lib.rs");
    let learner_tests = "//! My tests.\n\n#[test]\nfn mine() {\n    assert_eq!(1, 1);\n}\n";
    fixture.write("steps/step2_mutants/tests/sums.rs", learner_tests);

    let run = fixture.xtask(&["reset", "step2"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        fixture.read("steps/step2_mutants/tests/sums.rs"),
        committed_tests
    );
    assert_eq!(fixture.read("steps/step2_mutants/src/lib.rs"), given_code);
    let backup = single_backup(&fixture);
    assert_eq!(read(&backup.join("tests/sums.rs")), learner_tests);
}
