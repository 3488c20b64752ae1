//! Bad input exits with code 2 and says what would have been right.

use std::process::Command;

use crate::fixture::{Fixture, Steps};

#[test]
fn verify_of_an_unknown_step_exits_2_and_lists_the_steps() {
    let fixture = Fixture::new(Steps::DemoAndHang);

    let run = fixture.xtask(&["verify", "step9"]);

    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("step9"), "{run:?}");
    assert!(run.stderr.contains("step1  The demo step"), "{run:?}");
    assert!(run.stderr.contains("step2  The hanging step"), "{run:?}");
}

#[test]
fn every_command_taking_a_step_rejects_an_unknown_one_with_exit_2() {
    let fixture = Fixture::new(Steps::DemoOnly);
    for command in [
        &["hint", "step9"][..],
        &["solution", "9"][..],
        &["reset", "nope"][..],
        &["lab", "step9"][..],
        &["watch", "step9"][..],
    ] {
        let run = fixture.xtask(command);
        assert_eq!(run.code, Some(2), "{command:?}: {run:?}");
        assert!(
            run.stderr.contains("step1  The demo step"),
            "{command:?}: {run:?}"
        );
    }
}

#[test]
fn the_real_workbook_lists_step1_for_an_unknown_step() {
    // No WORKBOOK_ROOT: the runner finds the workspace it was built in.
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["verify", "step9"])
        .env_remove("WORKBOOK_ROOT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("step1"), "{stderr}");
}

#[test]
fn an_unknown_flag_is_a_usage_error_with_exit_2() {
    let fixture = Fixture::new(Steps::DemoOnly);
    let run = fixture.xtask(&["verify", "step1", "--no-such-flag"]);
    assert_eq!(run.code, Some(2), "{run:?}");
}

#[test]
fn hints_climb_the_ladder_of_one_topic_and_status_counts_those_opened_before_green() {
    let fixture = Fixture::new(Steps::DemoOnly);

    // No verify yet: the first topic with a rung left.
    let first = fixture.xtask(&["hint", "1"]);
    let second = fixture.xtask(&["hint", "step1_demo"]);

    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(
        first.stdout.contains("parity — hint 1 of 3: the idea"),
        "{first:?}"
    );
    assert!(first.stdout.contains("parity idea"), "{first:?}");
    assert!(!first.stdout.contains("parity api"), "{first:?}");
    assert!(
        second.stdout.contains("parity — hint 2 of 3: which API"),
        "{second:?}"
    );
    assert!(second.stdout.contains("parity api"), "{second:?}");
    assert!(second.stdout.contains("1 more for parity"), "{second:?}");
    let progress = fixture.read(".workbook/progress.toml");
    assert!(progress.contains("parity = 2"), "{progress}");

    fixture.xtask(&["solution", "step1", "--apply"]);
    fixture.xtask(&["verify", "step1"]);
    // A green step opens no rung by itself (the next one may be the code)...
    let after_green = fixture.xtask(&["hint", "step1"]);
    assert!(after_green.stdout.contains("is green"), "{after_green:?}");
    assert!(!after_green.stdout.contains("parity"), "{after_green:?}");
    // ...but `--all` still shows a whole ladder, on request.
    let all = fixture.xtask(&["hint", "step1", "--all"]);
    assert!(all.stdout.contains("parity code"), "{all:?}");

    let status = fixture.xtask(&["status"]);
    assert!(status.stdout.contains("done"), "{status:?}");
    assert!(status.stdout.contains("hints 2 of 6"), "{status:?}");
}

#[test]
fn a_step_that_was_green_and_is_red_again_gets_its_next_rung() {
    let fixture = Fixture::new(Steps::DemoOnly);
    // Done once, then a refactoring broke a test: the state `verify` leaves.
    fixture.write(
        ".workbook/progress.toml",
        "[step1_demo]\nstate = \"done\"\nfirst_failing = \"parity_of_two\"\n",
    );

    let run = fixture.xtask(&["hint", "step1"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stdout.contains("is green"), "{run:?}");
    assert!(run.stdout.contains("hint 1 of 3: the idea"), "{run:?}");
}

#[test]
fn the_bare_command_says_where_the_learner_is() {
    let fixture = Fixture::new(Steps::DemoAndHang);
    fixture.write(
        ".workbook/progress.toml",
        "[step1_demo]\nstate = \"done\"\n",
    );

    let run = fixture.xtask(&[]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("You are on step2 — The hanging step"),
        "{run:?}"
    );
    assert!(run.stdout.contains("book/src/step2-hang.md"), "{run:?}");
    assert!(run.stdout.contains("cargo xtask verify step2"), "{run:?}");
}

#[test]
fn output_into_a_pipe_has_no_colour_codes_even_without_no_color() {
    let fixture = Fixture::new(Steps::DemoOnly);
    fixture.write(
        ".workbook/progress.toml",
        "[step1_demo]\nstate = \"started\"\n",
    );
    for args in [&["status"][..], &["verify", "step9"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .env("WORKBOOK_ROOT", fixture.root())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .output()
            .unwrap();
        let (stdout, stderr) = (&output.stdout, &output.stderr);
        assert!(!stdout.is_empty() || !stderr.is_empty(), "{args:?}");
        assert!(!stdout.contains(&0x1b), "{args:?}: {output:?}");
        assert!(!stderr.contains(&0x1b), "{args:?}: {output:?}");
    }
}
