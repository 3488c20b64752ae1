//! `check` on a miniature workbook: one line per check, a test that passes
//! on the stub is caught, and the log ends with the summary line.

use crate::fixture::{Fixture, Steps};

#[test]
fn check_reports_each_check_and_catches_a_test_that_asserts_nothing() {
    let fixture = Fixture::new(Steps::DemoOnly);

    let run = fixture.xtask(&["check"]);

    assert_eq!(run.code, Some(1), "{run:?}");
    for expected in [
        "✓ step1: crates, single-source tests, lab and chapter in place",
        "✓ step1: every test has a one-line /// purpose",
        "✓ step1: `the_answer_is_42` is red on the exercise",
        "✓ step1: `parity::the_answer_is_even` is red on the exercise",
        "✗ step1: `nothing_is_asserted` is red on the exercise",
        "asserts nothing about the learner's work",
        "✓ step1: `nothing_is_asserted` is green on the solution",
        "✓ step1: the exercise and the solution run the same tests",
        "✓ cargo fmt --all --check",
        "✓ cargo clippy --workspace --all-targets --all-features -- -D warnings",
        "✓ every {{#include}} in book/src resolves to non-empty code",
        "✓ every step's chapter is in book/src/SUMMARY.md",
        "✓ no #[ignore] or #[should_panic] in steps/ or solutions/",
    ] {
        assert!(
            run.stdout.contains(expected),
            "missing {expected:?}\n{run:?}"
        );
    }
    // The expected-red stub output (its panics) is not dumped.
    assert!(!run.stdout.contains("panicked at"), "{run:?}");
    let last = run.stdout.trim_end().lines().last().unwrap();
    let counts: Vec<usize> = last
        .strip_prefix("check: ")
        .and_then(|rest| rest.strip_suffix(" failed"))
        .map(|rest| {
            rest.split(" passed, ")
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .unwrap_or_else(|| panic!("last line is not the summary: {last:?}"));
    assert!(counts[0] >= 12, "{last}");
    assert!(counts[1] >= 1, "{last}");
}

#[test]
fn check_flags_a_broken_include_a_missing_header_an_ignored_test_and_a_second_copy_of_the_tests() {
    let fixture = Fixture::new(Steps::DemoOnly);
    let manifest = fixture.read("solutions/step1_demo/Cargo.toml");
    fixture.write(
        "solutions/step1_demo/Cargo.toml",
        &manifest.replace("../../steps/step1_demo/tests/demo/main.rs", "tests/own.rs"),
    );
    fixture.write(
        "solutions/step1_demo/tests/own.rs",
        "//! A copy of the tests.\n\n/// Works.\n#[test]\nfn works() {}\n",
    );
    fixture.write(
        "book/src/step1-demo.md",
        "# Demo\n\n{{#include ../../solutions/step1_demo/src/lib.rs:no_such_anchor}}\n",
    );
    fixture.write("solutions/step1_demo/src/extra.rs", "fn unused() {}\n");
    let tests = fixture.read("steps/step1_demo/tests/demo/main.rs");
    fixture.write(
        "steps/step1_demo/tests/demo/main.rs",
        &tests.replace("#[test]\nfn nothing", "#[test]\n#[ignore]\nfn nothing"),
    );

    let run = fixture.xtask(&["check"]);

    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout
            .contains("✗ every {{#include}} in book/src resolves"),
        "{run:?}"
    );
    assert!(run.stdout.contains("`no_such_anchor`"), "{run:?}");
    assert!(
        run.stdout
            .contains("solutions/step1_demo/src/extra.rs: no //! header"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("✗ no #[ignore] or #[should_panic]"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("steps/step1_demo/tests/demo/main.rs:11: #[ignore]"),
        "{run:?}"
    );
    for expected in [
        "✗ step1: crates, single-source tests, lab and chapter in place",
        "the solution must run exactly the exercise's test files",
        "solutions/step1_demo/tests/ exists: tests live once",
    ] {
        assert!(
            run.stdout.contains(expected),
            "missing {expected:?}\n{run:?}"
        );
    }
}
