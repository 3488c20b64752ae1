//! `cargo xtask check`: everything CI checks, one line per check.
//!
//! Per step: the layout keeps tests single-sourced, every test is red on the
//! untouched exercise (a test that passes there asserts nothing about the
//! learner's work) and green on the reference solution. Then, workspace-wide:
//! fmt, clippy `-D warnings`, the workspace's own tests (without the stubs),
//! benches run once, book includes and chapters, `mdbook build`, `//!`
//! headers, and no `#[ignore]`/`#[should_panic]`.
//!
//! A `kind = "tests"` step inverts the roles (the code is given, the
//! learner writes the tests): its solution shares the exercise's `src/` and
//! has tests of its own with the same names, and every mutant listed in
//! `steps/info.toml` must be caught by the reference tests.
//!
//! The expected-red stub runs are captured and shown only if a check about
//! them fails, so the log ends with `check: N passed, M failed` and never on
//! an expected red run. Each test's red and green count as one check each.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::book_includes;
use crate::cargo::{self, Build, Diagnostics, cargo_command};
use crate::commands::book::{MDBOOK_INSTALL, mdbook_version};
use crate::layout::Layout;
use crate::mutants;
use crate::step_run::{self, TestRun, TestStatus};
use crate::steps::{Catalogue, Flavor, Step, StepKind};
use crate::term;
use crate::tidy;

/// Folders whose `.rs` files must open with a `//!` header.
const HEADER_DIRS: [&str; 4] = ["steps", "solutions", "support", "xtask"];
/// Folders where tests live, so where `#[ignore]`/`#[should_panic]` are banned.
const TEST_DIRS: [&str; 2] = ["steps", "solutions"];

/// Counts checks and prints one line for each (shared with `browser`).
#[derive(Debug, Default)]
pub struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn pass(&mut self, name: &str) {
        self.passed += 1;
        println!("{} {name}", term::pass_mark());
    }

    fn fail(&mut self, name: &str, details: &str) {
        self.failed += 1;
        println!("{} {name}", term::fail_mark());
        for line in details.trim_end().lines() {
            println!("    {line}");
        }
    }

    /// One ✓ line, or a ✗ line with the details indented below it.
    pub fn record(&mut self, name: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.pass(name),
            Err(details) => self.fail(name, &details),
        }
    }

    /// Prints `<command>: N passed, M failed` and gives the exit code: 1 if
    /// anything failed.
    pub fn finish(&self, command: &str) -> ExitCode {
        println!();
        println!("{command}: {} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Entry point of `check`.
pub fn run(layout: &Layout) -> Result<ExitCode> {
    let mut tally = Tally::default();
    let catalogue = match Catalogue::load(layout) {
        Ok(catalogue) => Some(catalogue),
        Err(error) => {
            tally.fail("steps/info.toml is valid", &format!("{error:#}"));
            None
        }
    };
    let steps: &[Step] = catalogue.as_ref().map_or(&[], |c| c.steps());

    for step in steps {
        println!("{}", term::bold(&format!("{} — {}", step.name, step.title)));
        let prefix = step.short.as_str();
        match step.kind {
            StepKind::Code => tally.record(
                &format!("{prefix}: crates, single-source tests, lab and chapter in place"),
                check_step_layout(layout, step),
            ),
            StepKind::Tests => tally.record(
                &format!(
                    "{prefix}: crates, single-source code, same-named tests, lab and chapter in place"
                ),
                check_tests_step_layout(layout, step),
            ),
        }
        let stub = check_stub_is_red(layout, step, &mut tally)?;
        let solution = check_solution_is_green(layout, step, &mut tally)?;
        let solution_green = solution.as_ref().is_some_and(TestRun::all_passed);
        if let (Some(stub), Some(solution)) = (stub, solution) {
            tally.record(
                &format!("{prefix}: the exercise and the solution run the same tests"),
                same_tests(&stub, &solution),
            );
        }
        if step.kind == StepKind::Tests {
            check_mutants_are_caught(layout, step, solution_green, &mut tally)?;
        }
    }

    println!("{}", term::bold("workspace"));
    let stubs: Vec<String> = steps.iter().map(|s| s.package(Flavor::Exercise)).collect();
    let mut excludes = vec!["--workspace".to_string()];
    for stub in &stubs {
        excludes.push("--exclude".to_string());
        excludes.push(stub.clone());
    }

    tally.record(
        "cargo fmt --all --check",
        // rustfmt colours its diff even into a pipe unless told not to.
        run_quietly(
            layout,
            cargo_command().args(["fmt", "--all", "--check", "--", "--color=never"]),
        ),
    );
    tally.record(
        "cargo clippy --workspace --all-targets -- -D warnings",
        run_quietly(
            layout,
            cargo_command().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--quiet",
                "--",
                "-D",
                "warnings",
            ]),
        ),
    );
    tally.record(
        "cargo test --workspace, without the exercise stubs (solutions, support, runner, doc tests)",
        run_quietly(
            layout,
            cargo_command().args(["test", "--quiet"]).args(&excludes),
        ),
    );
    // Running benches in test mode runs each criterion benchmark once: it
    // proves they compile *and* run, for seconds rather than minutes.
    tally.record(
        "benches compile and run once (cargo test --benches)",
        run_quietly(
            layout,
            cargo_command()
                .args(["test", "--quiet", "--benches"])
                .args(&excludes),
        ),
    );
    tally.record(
        "every {{#include}} in book/src resolves to non-empty code",
        check_includes(layout),
    );
    tally.record(
        "every step's chapter is in book/src/SUMMARY.md",
        check_summary(layout, steps),
    );
    tally.record("mdbook build book", check_mdbook_build(layout));
    tally.record(
        "every .rs file in steps/ solutions/ support/ xtask/ opens with a //! header",
        check_headers(layout),
    );
    tally.record(
        "no #[ignore] or #[should_panic] in steps/ or solutions/",
        check_no_skipped_tests(layout),
    );

    Ok(tally.finish("check"))
}

/// (a) Both crates exist, the solution borrows the exercise's test files (and
/// has none of its own), the lab example and the chapter exist, hints exist.
fn check_step_layout(layout: &Layout, step: &Step) -> Result<(), String> {
    let mut problems = Vec::new();
    let step_dir = layout.step_dir(&step.name);
    let solution_dir = layout.solution_dir(&step.name);

    let stub_manifest = read_manifest(&step_dir.join("Cargo.toml"));
    let solution_manifest = read_manifest(&solution_dir.join("Cargo.toml"));
    match &stub_manifest {
        Err(problem) => problems.push(problem.clone()),
        Ok(manifest) => {
            if package_name(manifest) != Some(step.name.as_str()) {
                problems.push(format!(
                    "steps/{0}/Cargo.toml must name the package `{0}`",
                    step.name
                ));
            }
            if !declares_example(manifest, &step.lab) {
                problems.push(format!(
                    "steps/{}/Cargo.toml has no [[example]] named `{}` (the lab)",
                    step.name, step.lab
                ));
            }
        }
    }
    match &solution_manifest {
        Err(problem) => problems.push(problem.clone()),
        Ok(manifest) => {
            let expected = step.package(Flavor::Solution);
            if package_name(manifest) != Some(expected.as_str()) {
                problems.push(format!(
                    "solutions/{}/Cargo.toml must name the package `{expected}`",
                    step.name
                ));
            }
            let lib_name = manifest
                .get("lib")
                .and_then(|lib| lib.get("name"))
                .and_then(|name| name.as_str());
            if lib_name != Some(step.name.as_str()) {
                problems.push(format!(
                    "solutions/{0}/Cargo.toml needs [lib] name = \"{0}\" so the same tests compile against it",
                    step.name
                ));
            }
            if !declares_example(manifest, &step.lab) {
                problems.push(format!(
                    "solutions/{}/Cargo.toml has no [[example]] named `{}` (the lab)",
                    step.name, step.lab
                ));
            }
            problems.extend(solution_test_paths_problems(layout, step, manifest));
        }
    }
    if solution_dir.join("tests").exists() {
        problems.push(format!(
            "solutions/{}/tests/ exists: tests live once, in steps/{}/tests/",
            step.name, step.name
        ));
    }
    let chapter = layout.book_dir().join("src").join(&step.chapter);
    if !chapter.is_file() {
        problems.push(format!(
            "the chapter {} does not exist",
            step.chapter_path()
        ));
    }
    if step.hints.is_empty() {
        problems.push("steps/info.toml gives this step no hints".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// (a') The layout of a `kind = "tests"` step: the code exists once (the
/// solution's `[lib]` is the exercise's `src/lib.rs`), the solution has its
/// own test files, with the same file names as the exercise's stubs.
fn check_tests_step_layout(layout: &Layout, step: &Step) -> Result<(), String> {
    let mut problems = Vec::new();
    let step_dir = layout.step_dir(&step.name);
    let solution_dir = layout.solution_dir(&step.name);
    match read_manifest(&step_dir.join("Cargo.toml")) {
        Err(problem) => problems.push(problem),
        Ok(manifest) => {
            if package_name(&manifest) != Some(step.name.as_str()) {
                problems.push(format!(
                    "steps/{0}/Cargo.toml must name the package `{0}`",
                    step.name
                ));
            }
            if !declares_example(&manifest, &step.lab) {
                problems.push(format!(
                    "steps/{}/Cargo.toml has no [[example]] named `{}` (the lab)",
                    step.name, step.lab
                ));
            }
        }
    }
    match read_manifest(&solution_dir.join("Cargo.toml")) {
        Err(problem) => problems.push(problem),
        Ok(manifest) => {
            let expected = step.package(Flavor::Solution);
            if package_name(&manifest) != Some(expected.as_str()) {
                problems.push(format!(
                    "solutions/{}/Cargo.toml must name the package `{expected}`",
                    step.name
                ));
            }
            let lib = manifest.get("lib");
            let lib_name = lib.and_then(|lib| lib.get("name")).and_then(|n| n.as_str());
            let lib_path = lib.and_then(|lib| lib.get("path")).and_then(|p| p.as_str());
            if lib_name != Some(step.name.as_str()) {
                problems.push(format!(
                    "solutions/{0}/Cargo.toml needs [lib] name = \"{0}\" so the tests compile against it",
                    step.name
                ));
            }
            let shared_lib = step_dir.join("src").join("lib.rs").canonicalize().ok();
            let points_at = lib_path.and_then(|path| solution_dir.join(path).canonicalize().ok());
            if shared_lib.is_none() || points_at != shared_lib {
                problems.push(format!(
                    "solutions/{0}/Cargo.toml needs [lib] path = \"../../steps/{0}/src/lib.rs\": \
                     in a tests step the code exists once",
                    step.name
                ));
            }
            if !declares_example(&manifest, &step.lab) {
                problems.push(format!(
                    "solutions/{}/Cargo.toml has no [[example]] named `{}` (the lab)",
                    step.name, step.lab
                ));
            }
        }
    }
    let stub_tests = test_file_names(&step_dir.join("tests"));
    let solution_tests = test_file_names(&solution_dir.join("tests"));
    if stub_tests.is_empty() {
        problems.push(format!("steps/{}/tests/ has no .rs test files", step.name));
    }
    if stub_tests != solution_tests {
        problems.push(format!(
            "the test files differ: steps/{0}/tests/ has {stub_tests:?}, solutions/{0}/tests/ has {solution_tests:?}",
            step.name
        ));
    }
    if solution_dir.join("src").exists() {
        problems.push(format!(
            "solutions/{}/src/ exists: in a tests step the code lives once, in steps/{}/src/",
            step.name, step.name
        ));
    }
    let chapter = layout.book_dir().join("src").join(&step.chapter);
    if !chapter.is_file() {
        problems.push(format!(
            "the chapter {} does not exist",
            step.chapter_path()
        ));
    }
    if step.hints.is_empty() {
        problems.push("steps/info.toml gives this step no hints".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The `.rs` file names directly in `dir`, sorted.
fn test_file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
                .filter_map(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// (d) For a tests step: the reference tests catch every mutant, one check
/// line per mutant. Skipped (as failures) when the reference tests are not
/// green on the correct code, since "caught" would then mean nothing.
fn check_mutants_are_caught(
    layout: &Layout,
    step: &Step,
    solution_green: bool,
    tally: &mut Tally,
) -> Result<()> {
    let prefix = &step.short;
    let name =
        |mutant: &str| format!("{prefix}: mutant `{mutant}` is caught by the reference tests");
    if !solution_green {
        for mutant in &step.mutants {
            tally.fail(
                &name(&mutant.name),
                "not run: the reference tests are not green on the correct code",
            );
        }
        return Ok(());
    }
    let package = step.package(Flavor::Solution);
    let executables = match cargo::build_tests(layout.root(), &package, Diagnostics::Capture)? {
        Build::Built(executables) => executables,
        Build::Failed { compiler_output } => {
            tally.fail(
                &format!("{prefix}: the solution's tests compile"),
                &compiler_output,
            );
            return Ok(());
        }
    };
    let suites = step_run::list_suites(&executables)?;
    let outcomes = mutants::run_mutants(step, &suites, Duration::from_secs(step.time_limit_secs))?;
    for outcome in &outcomes {
        tally.record(
            &name(&outcome.name),
            if outcome.caught() {
                Ok(())
            } else {
                Err(format!(
                    "every reference test passed with {}={}",
                    crate::steps::MUTANT_ENV,
                    outcome.name
                ))
            },
        );
    }
    Ok(())
}

fn read_manifest(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    toml::from_str(&text).map_err(|error| format!("{} is not valid TOML: {error}", path.display()))
}

fn package_name(manifest: &toml::Table) -> Option<&str> {
    manifest.get("package")?.get("name")?.as_str()
}

fn declares_example(manifest: &toml::Table, name: &str) -> bool {
    manifest
        .get("example")
        .and_then(|examples| examples.as_array())
        .is_some_and(|examples| {
            examples
                .iter()
                .any(|example| example.get("name").and_then(|n| n.as_str()) == Some(name))
        })
}

/// Every `[[test]]` of the solution must point into `steps/<name>/tests/`, and
/// every test file there must be run by the solution.
fn solution_test_paths_problems(
    layout: &Layout,
    step: &Step,
    manifest: &toml::Table,
) -> Vec<String> {
    let mut problems = Vec::new();
    let solution_dir = layout.solution_dir(&step.name);
    let tests_dir = layout.step_dir(&step.name).join("tests");
    let Ok(tests_dir) = tests_dir.canonicalize() else {
        return vec![format!("steps/{}/tests/ does not exist", step.name)];
    };
    let declared: Vec<&str> = manifest
        .get("test")
        .and_then(|tests| tests.as_array())
        .map(|tests| {
            tests
                .iter()
                .filter_map(|test| test.get("path").and_then(|path| path.as_str()))
                .collect()
        })
        .unwrap_or_default();
    if declared.is_empty() {
        problems.push(format!(
            "solutions/{}/Cargo.toml declares no [[test]] with a path into steps/{}/tests/",
            step.name, step.name
        ));
    }
    let mut borrowed = BTreeSet::new();
    for path in declared {
        match solution_dir.join(path).canonicalize() {
            Ok(resolved) if resolved.starts_with(&tests_dir) => {
                borrowed.insert(resolved);
            }
            Ok(_) => problems.push(format!(
                "the solution's [[test]] path `{path}` is not in steps/{}/tests/",
                step.name
            )),
            Err(_) => problems.push(format!(
                "the solution's [[test]] path `{path}` does not exist"
            )),
        }
    }
    let test_files: Vec<PathBuf> = std::fs::read_dir(&tests_dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
                .collect()
        })
        .unwrap_or_default();
    for file in test_files {
        let resolved = file.canonicalize().unwrap_or(file.clone());
        if !borrowed.contains(&resolved) {
            problems.push(format!(
                "{} is not run by the solution (add a [[test]] with its path)",
                layout.display(&file)
            ));
        }
    }
    problems
}

/// (b) Builds and runs the exercise's tests, expecting every one to fail.
/// Returns the run so the test lists can be compared, or `None` if it could
/// not run.
fn check_stub_is_red(layout: &Layout, step: &Step, tally: &mut Tally) -> Result<Option<TestRun>> {
    let prefix = &step.short;
    let run = match build_and_run(layout, step, Flavor::Exercise)? {
        Err(details) => {
            tally.fail(&format!("{prefix}: the exercise's tests compile"), &details);
            return Ok(None);
        }
        Ok(run) => run,
    };
    if run.tests.is_empty() {
        tally.fail(
            &format!("{prefix}: the exercise has tests"),
            &run.raw_output,
        );
        return Ok(Some(run));
    }
    // The runner prints each test's purpose next to ✓/✗; a test without one
    // leaves the learner guessing what it wants.
    let undocumented: Vec<&str> = run
        .tests
        .iter()
        .filter(|test| test.purpose.is_none())
        .map(|test| test.name.as_str())
        .collect();
    tally.record(
        &format!("{prefix}: every test has a one-line /// purpose"),
        if undocumented.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "no doc comment before: {}",
                undocumented.join(", ")
            ))
        },
    );
    let mut unexpected = false;
    for test in &run.tests {
        let name = format!("{prefix}: `{}` is red on the exercise", test.name);
        match test.status {
            TestStatus::Failed => tally.pass(&name),
            TestStatus::Passed => {
                tally.fail(
                    &name,
                    "it passes on the stub: it asserts nothing about the learner's work",
                );
            }
            TestStatus::Unfinished => {
                unexpected = true;
                tally.fail(
                    &name,
                    &format!(
                        "it did not finish within {} s on the stub: a learner would wait for the \
                         time limit; make the stub fail fast (todo!())",
                        step.time_limit_secs
                    ),
                );
            }
            TestStatus::Ignored => tally.fail(&name, "it is ignored"),
            TestStatus::NotRun => {
                unexpected = true;
                tally.fail(&name, "its test binary exited before running it");
            }
        }
    }
    if unexpected || !run.problems.is_empty() {
        tally.fail(
            &format!("{prefix}: the exercise's test binaries ran cleanly"),
            &format!("{}\n{}", run.problems.join("\n"), run.raw_output),
        );
    }
    Ok(Some(run))
}

/// (c) Builds and runs the solution's tests, expecting every one to pass.
fn check_solution_is_green(
    layout: &Layout,
    step: &Step,
    tally: &mut Tally,
) -> Result<Option<TestRun>> {
    let prefix = &step.short;
    let run = match build_and_run(layout, step, Flavor::Solution)? {
        Err(details) => {
            tally.fail(&format!("{prefix}: the solution's tests compile"), &details);
            return Ok(None);
        }
        Ok(run) => run,
    };
    let mut any_failed = false;
    for test in &run.tests {
        let name = format!("{prefix}: `{}` is green on the solution", test.name);
        if test.status == TestStatus::Passed {
            tally.pass(&name);
            continue;
        }
        any_failed = true;
        let mut details = match test.status {
            TestStatus::Unfinished => format!("did not finish within {} s", step.time_limit_secs),
            TestStatus::NotRun => "its test binary exited before running it".to_string(),
            TestStatus::Ignored => "it is ignored".to_string(),
            TestStatus::Failed | TestStatus::Passed => String::new(),
        };
        if let Some(failure) = &test.failure {
            details.push_str(&failure.lines.join("\n"));
            if let Some(location) = &failure.location {
                details.push_str(&format!("\nat {location}"));
            }
        }
        tally.fail(&name, &details);
    }
    if any_failed || !run.problems.is_empty() || run.tests.is_empty() {
        tally.fail(
            &format!("{prefix}: the solution's test binaries ran cleanly"),
            &format!("{}\n{}", run.problems.join("\n"), run.raw_output),
        );
    }
    Ok(Some(run))
}

/// Builds a crate's tests with captured diagnostics and runs them under the
/// step's limit. `Err(details)` when it does not compile or cannot be listed.
fn build_and_run(layout: &Layout, step: &Step, flavor: Flavor) -> Result<Result<TestRun, String>> {
    let package = step.package(flavor);
    let executables = match cargo::build_tests(layout.root(), &package, Diagnostics::Capture)? {
        Build::Built(executables) => executables,
        Build::Failed { compiler_output } => return Ok(Err(compiler_output)),
    };
    let suites = match step_run::list_suites(&executables) {
        Ok(suites) => suites,
        Err(error) => return Ok(Err(format!("{error:#}"))),
    };
    let run = step_run::run_suites(&suites, Duration::from_secs(step.time_limit_secs))
        .with_context(|| format!("cannot run the tests of {package}"))?;
    Ok(Ok(run))
}

fn same_tests(stub: &TestRun, solution: &TestRun) -> Result<(), String> {
    let names = |run: &TestRun| -> BTreeSet<String> {
        run.tests
            .iter()
            .map(|test| format!("{}: {}", test.binary, test.name))
            .collect()
    };
    let (mine, theirs) = (names(stub), names(solution));
    if mine == theirs {
        return Ok(());
    }
    let only_stub: Vec<_> = mine.difference(&theirs).cloned().collect();
    let only_solution: Vec<_> = theirs.difference(&mine).cloned().collect();
    Err(format!(
        "only in the exercise: {only_stub:?}\nonly in the solution: {only_solution:?}"
    ))
}

/// Runs a command at the root with its output captured; the output is the
/// failure's details.
fn run_quietly(layout: &Layout, command: &mut Command) -> Result<(), String> {
    let output = command
        .current_dir(layout.root())
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run {:?}: {error}", command.get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}{}\n(exit status: {})",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        output.status
    ))
}

fn check_includes(layout: &Layout) -> Result<(), String> {
    let src = layout.book_dir().join("src");
    if !src.is_dir() {
        return Err(format!("{} does not exist", src.display()));
    }
    let (_, problems) = book_includes::check_book(&src).map_err(|error| format!("{error:#}"))?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(problems
        .iter()
        .map(|problem| {
            format!(
                "{}:{}: {{{{#include {}}}}}: {}",
                layout.display(&problem.include.markdown),
                problem.include.line,
                problem.include.argument,
                problem.problem
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

fn check_summary(layout: &Layout, steps: &[Step]) -> Result<(), String> {
    let path = layout.book_dir().join("src").join("SUMMARY.md");
    let summary = std::fs::read_to_string(&path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let chapters: Vec<&str> = steps.iter().map(|step| step.chapter.as_str()).collect();
    let missing = book_includes::chapters_missing_from_summary(&summary, &chapters);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not linked from SUMMARY.md: {}",
            missing.join(", ")
        ))
    }
}

fn check_mdbook_build(layout: &Layout) -> Result<(), String> {
    if mdbook_version().is_none() {
        return Err(format!(
            "mdbook is not installed; install it with:\n{MDBOOK_INSTALL}"
        ));
    }
    run_quietly(layout, Command::new("mdbook").args(["build", "book"]))
}

fn check_headers(layout: &Layout) -> Result<(), String> {
    let missing = tidy::files_without_header(layout.root(), &HEADER_DIRS)
        .map_err(|error| format!("{error:#}"))?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(missing
        .iter()
        .map(|path| {
            format!(
                "{}: no //! header saying what the file is for",
                layout.display(path)
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

fn check_no_skipped_tests(layout: &Layout) -> Result<(), String> {
    let found = tidy::forbidden_test_attributes(layout.root(), &TEST_DIRS)
        .map_err(|error| format!("{error:#}"))?;
    if found.is_empty() {
        return Ok(());
    }
    Err(found
        .iter()
        .map(|(path, line, text)| format!("{}:{line}: {text}", layout.display(path)))
        .collect::<Vec<_>>()
        .join("\n"))
}
