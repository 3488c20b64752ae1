//! A miniature workbook in a temporary directory, for running the real
//! `xtask` binary against (through `WORKBOOK_ROOT`).
//!
//! `step1` (`step1_demo`) is a normal exercise: a `todo!()` stub, a solution,
//! two tests that fail on the stub and one that asserts nothing (so `check`
//! has something to catch). `step2` (`step2_hang`) has a stub that never
//! returns, to exercise the time limit. `step2` (`step2_mutants`) is instead a
//! `kind = "tests"` step: the code is given (with two mutants selected by
//! `WORKBOOK_MUTANT`) and the learner writes the tests. The crates have no dependencies, so
//! building them is quick and needs no network.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Which steps a fixture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// Only `step1_demo`.
    DemoOnly,
    /// `step1_demo` and `step2_hang`.
    DemoAndHang,
    /// `step1_demo` and `step2_mutants`, a tests step.
    WithTestsStep,
}

/// A workbook in a temporary directory, deleted on drop.
pub struct Fixture {
    dir: tempfile::TempDir,
}

pub const STUB_LIB: &str = "\
//! The demo exercise.

/// The answer to everything.
pub fn answer() -> u32 {
    // TODO: return the answer.
    todo!(\"return the answer\")
}
";

pub const SOLUTION_LIB: &str = "\
//! The demo solution.

// ANCHOR: answer
/// The answer to everything.
pub fn answer() -> u32 {
    42
}
// ANCHOR_END: answer
";

/// The demo's test target: `tests/demo/main.rs`, with a `parity` module
/// declared last, so the file's order differs from libtest's alphabetical one.
const DEMO_TESTS: &str = "\
//! The demo step's tests.

/// The answer is forty-two.
#[test]
fn the_answer_is_42() {
    assert_eq!(step1_demo::answer(), 42);
}

/// Asserts nothing, so it passes on the stub too.
#[test]
fn nothing_is_asserted() {}

mod parity;
";

const DEMO_PARITY_TESTS: &str = "\
//! The demo step's second part.

/// The answer is even.
#[test]
fn the_answer_is_even() {
    assert_eq!(step1_demo::answer() % 2, 0);
}
";

/// Two topics: `parity` first in teaching order, `answer` for the first
/// failing test in the test file's order.
pub const DEMO_HINTS: &str = r#"# SPOILER WARNING: the demo's hints.

[[topic]]
name = "parity"
file = "src/lib.rs"
tests = ["even"]
ladder = ["parity idea", "parity api", "parity code"]

[[topic]]
name = "answer"
file = "src/lib.rs"
tests = ["the_answer_is_42"]
ladder = ["first hint", "second hint", "third hint"]
"#;

const LAB: &str = "\
//! The demo lab: prints the arguments it was given.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!(\"lab args: {args:?}\");
}
";

const HANG_STUB: &str = "\
//! The hanging exercise.

/// Waits for something that never happens.
pub fn wait() {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Whether we are ready.
pub fn ready() -> bool {
    todo!(\"say whether we are ready\")
}
";

const HANG_SOLUTION: &str = "\
//! The hanging exercise, solved.

/// Returns at once.
pub fn wait() {}

/// Always ready.
pub fn ready() -> bool {
    true
}
";

const HANG_TESTS: &str = "\
//! The hanging step's tests.

/// Waiting ends.
#[test]
fn waiting_ends() {
    step2_hang::wait();
}

/// We are ready.
#[test]
fn we_are_ready() {
    assert!(step2_hang::ready());
}
";

const DEMO_INFO: &str = r#"
[[step]]
name = "step1_demo"
short = "step1"
title = "The demo step"
chapter = "step1-demo.md"
time_limit_secs = 60
lab = "step1_lab"
parts = [{ name = "parity", title = "Parity" }]
"#;

const HANG_INFO: &str = r#"
[[step]]
name = "step2_hang"
short = "step2"
title = "The hanging step"
chapter = "step2-hang.md"
time_limit_secs = 60
lab = "step2_lab"
"#;

const MUTANTS_LIB: &str = "\
//! The given code of the tests step, with two planted bugs.

/// Adds two numbers, unless `WORKBOOK_MUTANT` plants a bug.
pub fn add(a: u32, b: u32) -> u32 {
    match std::env::var(\"WORKBOOK_MUTANT\").as_deref() {
        Ok(\"off_by_one\") => a + b + 1,
        Ok(\"ignores_b\") => a,
        _ => a + b,
    }
}
";

pub const MUTANTS_STUB_TESTS: &str = "\
//! The tests step's tests: the learner writes them.

/// Two and two make four.
#[test]
fn two_and_two_make_four() {
    todo!(\"write this test: two and two make four\")
}

/// Adding zero changes nothing.
#[test]
fn adding_zero_changes_nothing() {
    todo!(\"write this test: adding zero changes nothing\")
}
";

const MUTANTS_REFERENCE_TESTS: &str = "\
//! The tests step's reference tests.

/// Two and two make four.
#[test]
fn two_and_two_make_four() {
    assert_eq!(step2_mutants::add(2, 2), 4);
}

/// Adding zero changes nothing.
#[test]
fn adding_zero_changes_nothing() {
    assert_eq!(step2_mutants::add(5, 0), 5);
}
";

const MUTANTS_INFO: &str = r#"
[[step]]
name = "step2_mutants"
short = "step2"
title = "The tests step"
chapter = "step2-mutants.md"
time_limit_secs = 60
lab = "step2_lab"
kind = "tests"
"#;

const MUTANTS_HINTS: &str = r#"# SPOILER WARNING: the tests step's hints.

[[topic]]
name = "sums"
file = "tests/sums.rs"
tests = ["two"]
ladder = ["idea", "api", "code"]

[[mutant]]
name = "off_by_one"
hint = "check one exact sum"

[[mutant]]
name = "ignores_b"
hint = "add something other than zero"
"#;

impl Fixture {
    /// Writes the workbook's files (no git repository yet).
    pub fn new(steps: Steps) -> Self {
        let fixture = Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        let mut members = vec!["steps/step1_demo", "solutions/step1_demo"];
        let mut info = String::from("# The fixture's steps.\n");
        info.push_str(DEMO_INFO);
        let mut summary = String::from("# Summary\n\n- [Demo](step1-demo.md)\n");
        fixture.write_step(
            "step1_demo",
            "demo",
            "step1_lab",
            STUB_LIB,
            SOLUTION_LIB,
            DEMO_TESTS,
        );
        fixture.write("steps/step1_demo/tests/demo/parity.rs", DEMO_PARITY_TESTS);
        fixture.write("steps/hints/step1.toml", DEMO_HINTS);
        if steps == Steps::DemoAndHang {
            members.extend(["steps/step2_hang", "solutions/step2_hang"]);
            info.push_str(HANG_INFO);
            summary.push_str("- [Hang](step2-hang.md)\n");
            fixture.write_step(
                "step2_hang",
                "hang",
                "step2_lab",
                HANG_STUB,
                HANG_SOLUTION,
                HANG_TESTS,
            );
            fixture.write("book/src/step2-hang.md", "# Hang\n");
            let hang_hints = "[[topic]]\nname = \"ready\"\nfile = \"src/lib.rs\"\n\
                              tests = [\"ready\"]\nladder = [\"a\", \"b\", \"c\"]\n";
            fixture.write("steps/hints/step2.toml", hang_hints);
        }
        if steps == Steps::WithTestsStep {
            members.extend(["steps/step2_mutants", "solutions/step2_mutants"]);
            info.push_str(MUTANTS_INFO);
            summary.push_str("- [Mutants](step2-mutants.md)\n");
            fixture.write_tests_step();
            fixture.write("book/src/step2-mutants.md", "# Mutants\n");
            fixture.write("steps/hints/step2.toml", MUTANTS_HINTS);
        }
        let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
        fixture.write(
            "Cargo.toml",
            &format!(
                "[workspace]\nresolver = \"3\"\nmembers = [{}]\n",
                members.join(", ")
            ),
        );
        fixture.write(".cargo/lab.toml", "[profile.dev]\nopt-level = 3\n");
        fixture.write("steps/info.toml", &info);
        fixture.write(
            ".gitignore",
            "/target\n/.workbook/\n/lab-results/\n/book/book/\n",
        );
        fixture.write("book/book.toml", "[book]\ntitle = \"Demo\"\n");
        fixture.write("book/src/SUMMARY.md", &summary);
        fixture.write(
            "book/src/step1-demo.md",
            "# Demo\n\n```rust\n{{#include ../../solutions/step1_demo/src/lib.rs:answer}}\n```\n",
        );
        fixture
    }

    fn write_step(
        &self,
        name: &str,
        test: &str,
        lab: &str,
        stub: &str,
        solution: &str,
        tests: &str,
    ) {
        let package = |package: &str, extra: &str| {
            format!(
                "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n{extra}"
            )
        };
        self.write(
            &format!("steps/{name}/Cargo.toml"),
            &package(
                name,
                &format!(
                    "\n[[test]]\nname = \"{test}\"\npath = \"tests/{test}/main.rs\"\n\n\
                     [features]\nlab = []\n\n[[bin]]\nname = \"{lab}\"\npath = \"lab/main.rs\"\nrequired-features = [\"lab\"]\n"
                ),
            ),
        );
        self.write(&format!("steps/{name}/src/lib.rs"), stub);
        self.write(&format!("steps/{name}/tests/{test}/main.rs"), tests);
        self.write(&format!("steps/{name}/lab/main.rs"), LAB);
        self.write(
            &format!("solutions/{name}/Cargo.toml"),
            &package(
                &format!("{name}_solution"),
                &format!(
                    "\n[lib]\nname = \"{name}\"\npath = \"src/lib.rs\"\ndoc = false\n\n\
                     [[test]]\nname = \"{test}\"\npath = \"../../steps/{name}/tests/{test}/main.rs\"\n\n\
                     [features]\nlab = []\n\n[[bin]]\nname = \"{lab}\"\npath = \"../../steps/{name}/lab/main.rs\"\nrequired-features = [\"lab\"]\n"
                ),
            ),
        );
        self.write(&format!("solutions/{name}/src/lib.rs"), solution);
    }

    /// A `kind = "tests"` step: the solution shares the exercise's `src/`
    /// and has its own tests, with the same names.
    fn write_tests_step(&self) {
        let name = "step2_mutants";
        let package = |package: &str, extra: &str| {
            format!(
                "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n{extra}"
            )
        };
        self.write(
            &format!("steps/{name}/Cargo.toml"),
            &package(
                name,
                "\n[[test]]\nname = \"sums\"\npath = \"tests/sums.rs\"\n\n\
                 [features]\nlab = []\n\n[[bin]]\nname = \"step2_lab\"\npath = \"lab/main.rs\"\nrequired-features = [\"lab\"]\n",
            ),
        );
        self.write(&format!("steps/{name}/src/lib.rs"), MUTANTS_LIB);
        self.write(&format!("steps/{name}/tests/sums.rs"), MUTANTS_STUB_TESTS);
        self.write(&format!("steps/{name}/lab/main.rs"), LAB);
        self.write(
            &format!("solutions/{name}/Cargo.toml"),
            &package(
                &format!("{name}_solution"),
                &format!(
                    "\n[lib]\nname = \"{name}\"\npath = \"../../steps/{name}/src/lib.rs\"\ndoc = false\n\n\
                     [[test]]\nname = \"sums\"\npath = \"tests/sums.rs\"\n\n\
                     [features]\nlab = []\n\n[[bin]]\nname = \"step2_lab\"\npath = \"../../steps/{name}/lab/main.rs\"\nrequired-features = [\"lab\"]\n"
                ),
            ),
        );
        self.write(
            &format!("solutions/{name}/tests/sums.rs"),
            MUTANTS_REFERENCE_TESTS,
        );
    }

    /// The workbook root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `root/relative`.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// Writes a file, creating its directories.
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Reads a file.
    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative))
            .unwrap_or_else(|error| panic!("cannot read {relative}: {error}"))
    }

    /// Makes the fixture a git repository with everything committed.
    pub fn commit_everything(&self) {
        for args in [
            &["init", "-q"][..],
            &["add", "-A"][..],
            &[
                "-c",
                "user.email=t@t",
                "-c",
                "user.name=t",
                "-c",
                "commit.gpgsign=false",
                "commit",
                "-q",
                "-m",
                "fixture",
            ][..],
        ] {
            let status = Command::new("git")
                .args(args)
                .current_dir(self.root())
                .status()
                .expect("git runs");
            assert!(status.success(), "git {args:?} failed");
        }
    }

    /// Runs the real runner against this workbook.
    pub fn xtask(&self, args: &[&str]) -> Run {
        self.xtask_with_env(args, &[])
    }

    /// Runs the real runner with extra environment variables, as if the
    /// learner's shell had them set.
    pub fn xtask_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .envs(env.iter().copied())
            .env("WORKBOOK_ROOT", self.root())
            .env("NO_COLOR", "1")
            // The fixture builds into its own target/, never the workspace's.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .output()
            .expect("the xtask binary runs");
        Run::from(output)
    }
}

/// What a run of the runner printed, and how it exited.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
