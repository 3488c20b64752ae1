//! Building a package's test binaries with cargo and finding them.
//!
//! `cargo test --no-run --message-format=json-render-diagnostics` compiles the
//! tests, prints compiler messages to standard error exactly as rustc renders
//! them, and prints one JSON line per artifact on standard output. The runner
//! reads the test executables from those lines and runs them itself (see
//! `run_limit`), which is what makes the time limit clean.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use cargo_metadata::{Message, TargetKind};

/// A `cargo` command: the cargo that runs us when there is one (`cargo xtask`
/// sets `CARGO`), so a rustup toolchain override applies to the children too.
pub fn cargo_command() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    Command::new(program)
}

/// Where the compiler's messages go while building.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnostics {
    /// Straight to the terminal, exactly as the compiler prints them.
    Show,
    /// Captured; returned only if the build fails (used by `check`).
    Capture,
}

/// One integration-test binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestExecutable {
    /// The `[[test]]` target name, e.g. `step1`.
    pub target: String,
    /// The binary to run.
    pub path: PathBuf,
    /// The test's source file (which may live in another crate's directory).
    pub src_path: PathBuf,
    /// The directory of the package's Cargo.toml: cargo runs tests from there.
    pub package_dir: PathBuf,
}

/// The result of building a package's tests.
#[derive(Debug)]
pub enum Build {
    /// It compiled: these are its integration-test binaries.
    Built(Vec<TestExecutable>),
    /// It did not compile. With [`Diagnostics::Capture`] this holds the
    /// compiler's messages; with [`Diagnostics::Show`] they are already on screen.
    Failed {
        /// The captured compiler output (empty when it was shown).
        compiler_output: String,
    },
}

/// Builds the integration tests of `package` in the workspace at `root`.
///
/// Only integration tests (`--test '*'`) are built: the workbook's tests live
/// in `tests/`, and leaving out the lab (feature `lab`) keeps the loop short.
///
/// # Errors
/// Fails if cargo cannot be started; a compile error is [`Build::Failed`].
pub fn build_tests(root: &Path, package: &str, diagnostics: Diagnostics) -> Result<Build> {
    let mut command = cargo_command();
    command
        .current_dir(root)
        .args(["test", "--no-run", "--package", package, "--test", "*"])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(match diagnostics {
            Diagnostics::Show => Stdio::inherit(),
            Diagnostics::Capture => Stdio::piped(),
        });
    let output = command
        .output()
        .context("cannot run cargo (is it installed and on PATH?)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Ok(Build::Failed {
            compiler_output: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(Build::Built(parse_test_artifacts(&stdout)))
}

/// Picks the integration-test executables out of cargo's JSON messages.
pub fn parse_test_artifacts(json_lines: &str) -> Vec<TestExecutable> {
    let artifacts =
        Message::parse_stream(json_lines.as_bytes()).filter_map(|message| match message.ok()? {
            Message::CompilerArtifact(artifact)
                if artifact.profile.test && artifact.target.is_kind(TargetKind::Test) =>
            {
                Some(artifact)
            }
            _ => None,
        });
    artifacts
        .filter_map(|artifact| {
            Some(TestExecutable {
                path: artifact.executable?.into_std_path_buf(),
                target: artifact.target.name,
                src_path: artifact.target.src_path.into_std_path_buf(),
                package_dir: artifact.manifest_path.parent()?.as_std_path().to_path_buf(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_integration_test_executables_are_picked() {
        let artifact = |manifest: &str,
                        kind: &str,
                        name: &str,
                        src: &str,
                        test: bool,
                        exe: &str| {
            format!(
                r#"{{"reason":"compiler-artifact","package_id":"p","manifest_path":"{manifest}","target":{{"kind":["{kind}"],"name":"{name}","src_path":"{src}"}},"profile":{{"opt_level":"0","debug_assertions":true,"overflow_checks":true,"test":{test}}},"features":[],"filenames":[],"executable":{exe},"fresh":false}}"#
            )
        };
        let lines = [
            artifact(
                "/w/solutions/s/Cargo.toml",
                "test",
                "step1",
                "/w/steps/s/tests/step1.rs",
                true,
                "\"/w/target/debug/deps/step1-abc\"",
            ),
            artifact(
                "/w/solutions/s/Cargo.toml",
                "lib",
                "s",
                "/w/solutions/s/src/lib.rs",
                true,
                "\"/w/target/debug/deps/s-def\"",
            ),
            artifact(
                "/w/x/Cargo.toml",
                "lib",
                "dep",
                "/w/x/src/lib.rs",
                false,
                "null",
            ),
            r#"{"reason":"build-finished","success":true}"#.to_string(),
            "not json at all".to_string(),
        ]
        .join("\n");

        let found = parse_test_artifacts(&lines);

        assert_eq!(
            found,
            [TestExecutable {
                target: "step1".into(),
                path: "/w/target/debug/deps/step1-abc".into(),
                src_path: "/w/steps/s/tests/step1.rs".into(),
                package_dir: "/w/solutions/s".into(),
            }]
        );
    }
}
