//! A `kind = "tests"` step end to end: `verify` runs the learner's tests on
//! the correct code and then once per mutant ("caught k of n"), and `check`
//! proves the reference tests catch every mutant.

use crate::fixture::{Fixture, MUTANTS_STUB_TESTS, Steps};

/// Tests that pass on the correct code and catch `off_by_one` but not
/// `ignores_b` (adding zero hides it).
const HALF_GOOD_TESTS: &str = "\
//! Tests that miss one mutant.

/// Two and two make four.
#[test]
fn two_and_two_make_four() {
    assert_eq!(step2_mutants::add(4, 0), 4);
}

/// Adding zero changes nothing.
#[test]
fn adding_zero_changes_nothing() {
    assert_eq!(step2_mutants::add(5, 0), 5);
}
";

#[test]
fn verify_reports_caught_k_of_n_and_the_hint_for_each_mutant_that_slipped() {
    let fixture = Fixture::new(Steps::WithTestsStep);

    // The untouched stub is red on the correct code; no mutant runs yet.
    let stub = fixture.xtask(&["verify", "step2"]);
    assert_eq!(stub.code, Some(1), "{stub:?}");
    assert!(stub.stdout.contains("0 of 2 tests pass"), "{stub:?}");
    assert!(!stub.stdout.contains("caught "), "{stub:?}");

    fixture.write("steps/step2_mutants/tests/sums.rs", HALF_GOOD_TESTS);
    let run = fixture.xtask(&["verify", "step2"]);

    assert_eq!(run.code, Some(1), "{run:?}");
    for expected in [
        "✓ two_and_two_make_four",
        "caught 1 of 2 mutants.",
        "✗ ignores_b slipped through",
        "add something other than zero",
    ] {
        assert!(
            run.stdout.contains(expected),
            "missing {expected:?}\n{run:?}"
        );
    }
    // A caught mutant stays unnamed, and so does its hint.
    assert!(!run.stdout.contains("off_by_one"), "{run:?}");
    assert!(!run.stdout.contains("check one exact sum"), "{run:?}");
    let progress = fixture.read(".workbook/progress.toml");
    assert!(
        progress.contains("[step2_mutants]\nstate = \"started\""),
        "{progress}"
    );
    // The mutant runs leave the learner's files alone.
    assert_eq!(
        fixture.read("steps/step2_mutants/tests/sums.rs"),
        HALF_GOOD_TESTS
    );
}

#[test]
fn the_reference_tests_catch_every_mutant_in_verify_and_check() {
    let fixture = Fixture::new(Steps::WithTestsStep);

    let verify = fixture.xtask(&["verify", "step2", "--solution"]);
    let check = fixture.xtask(&["check"]);

    assert_eq!(verify.code, Some(0), "{verify:?}");
    assert!(
        verify.stdout.contains("caught 2 of 2 mutants."),
        "{verify:?}"
    );
    for expected in [
        "✓ step2: crates, single-source code, same-named tests, lab and chapter in place",
        "✓ step2: `two_and_two_make_four` is red on the exercise",
        "✓ step2: `adding_zero_changes_nothing` is green on the solution",
        "✓ step2: the exercise and the solution run the same tests",
        "✓ step2: mutant `off_by_one` is caught by the reference tests",
        "✓ step2: mutant `ignores_b` is caught by the reference tests",
    ] {
        assert!(
            check.stdout.contains(expected),
            "missing {expected:?}\n{check:?}"
        );
    }
    assert_eq!(
        fixture.read("steps/step2_mutants/tests/sums.rs"),
        MUTANTS_STUB_TESTS
    );
}

#[test]
fn a_mutant_left_set_in_the_shell_does_not_replace_the_correct_code() {
    let fixture = Fixture::new(Steps::WithTestsStep);

    let run = fixture.xtask_with_env(
        &["verify", "step2", "--solution"],
        &[("WORKBOOK_MUTANT", "off_by_one")],
    );

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("caught 2 of 2 mutants."), "{run:?}");
}

#[test]
fn check_flags_a_mutant_the_reference_tests_miss() {
    let fixture = Fixture::new(Steps::WithTestsStep);
    fixture.write("solutions/step2_mutants/tests/sums.rs", HALF_GOOD_TESTS);

    let run = fixture.xtask(&["check"]);

    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout
            .contains("✗ step2: mutant `ignores_b` is caught by the reference tests"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("every reference test passed with WORKBOOK_MUTANT=ignores_b"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("check: ")
    );
}
