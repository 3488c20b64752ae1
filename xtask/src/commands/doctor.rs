//! `cargo xtask doctor`: is this machine ready for the workbook?
//!
//! Each check prints ✓ with what it found or ✗ with the fix. Meant for the
//! morning of a workshop, and for instructors preparing laptops offline.

use std::net::TcpListener;
use std::process::{Command, ExitCode, Stdio};

use anstream::println;
use anyhow::Result;

use crate::cargo::cargo_command;
use crate::child::{MDBOOK_INSTALL, first_line_of, mdbook_version};
use crate::commands::book::BOOK_PORT;
use crate::layout::Layout;
use crate::term;
use crate::text::plural;

/// The 500-concurrency labs hold about two sockets per request and more for
/// the fake upstreams' side; 4096 leaves room.
const MIN_OPEN_FILES: u64 = 4096;

/// What a check found.
type Finding = Result<String, Problem>;

/// What is wrong and how to fix it.
struct Problem {
    found: String,
    fix: String,
}

fn problem(found: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        found: found.into(),
        fix: fix.into(),
    }
}

/// Entry point of `doctor`.
pub fn run(layout: &Layout) -> Result<ExitCode> {
    let checks: Vec<(&str, Finding)> = vec![
        ("rust toolchain", check_rustc(layout)),
        ("cargo", check_cargo()),
        ("mdbook 0.5", check_mdbook()),
        ("cargo insta", check_insta()),
        ("git", check_git()),
        ("open-file limit", check_open_files()),
        ("dependencies available offline", check_offline(layout)),
        ("loopback networking", check_loopback()),
        (
            "port 3000 (step 4's service)",
            check_port_free(3000, "the step 4 service"),
        ),
        (
            "port 3300 (cargo xtask book)",
            check_port_free(BOOK_PORT, "cargo xtask book"),
        ),
    ];
    let mut failed = 0;
    for (name, finding) in checks {
        match finding {
            Ok(found) => println!("{} {name}: {}", term::pass_mark(), term::dim(&found)),
            Err(problem) => {
                failed += 1;
                println!("{} {name}: {}", term::fail_mark(), problem.found);
                println!("    fix: {}", term::cyan(&problem.fix));
            }
        }
    }
    println!();
    if failed == 0 {
        println!("This machine is ready.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} problem{} to fix.", plural(failed));
        Ok(ExitCode::FAILURE)
    }
}

/// The workspace's `rust-version`, read from the root Cargo.toml.
fn required_rust_version(layout: &Layout) -> Option<String> {
    let text = std::fs::read_to_string(layout.root().join("Cargo.toml")).ok()?;
    let manifest: toml::Table = toml::from_str(&text).ok()?;
    let workspace_package = manifest.get("workspace")?.get("package")?;
    Some(workspace_package.get("rust-version")?.as_str()?.to_string())
}

fn check_rustc(layout: &Layout) -> Finding {
    let Some(found) = first_line_of(Command::new("rustc").arg("--version")) else {
        return Err(problem(
            "rustc not found",
            "install Rust from https://rustup.rs (stable)",
        ));
    };
    let Some(required) = required_rust_version(layout) else {
        return Ok(found);
    };
    match version_matches(&found, &format!(">={required}")) {
        Some(false) => Err(problem(
            format!("{found}, but the workbook needs {required} or newer"),
            "rustup update stable",
        )),
        _ => Ok(format!("{found} (needs {required}+)")),
    }
}

/// Whether the first version in `found` (`rustc 1.95.0 (…)`, `mdbook v0.5.4`)
/// meets `requirement`; a pre-release counts as its release.
fn version_matches(found: &str, requirement: &str) -> Option<bool> {
    let mut words = found
        .split_whitespace()
        .map(|word| word.trim_start_matches('v'));
    let mut version = words.find_map(|word| semver::Version::parse(word).ok())?;
    version.pre = semver::Prerelease::EMPTY;
    Some(
        semver::VersionReq::parse(requirement)
            .ok()?
            .matches(&version),
    )
}

fn check_cargo() -> Finding {
    first_line_of(cargo_command().arg("--version"))
        .ok_or_else(|| problem("cargo not found", "install Rust from https://rustup.rs"))
}

fn check_mdbook() -> Finding {
    let version = mdbook_version().ok_or_else(|| problem("mdbook not found", MDBOOK_INSTALL))?;
    match version_matches(&version, "~0.5") {
        Some(true) => Ok(version),
        _ => Err(problem(
            format!("{version}, but the book is written for mdBook 0.5"),
            format!("{MDBOOK_INSTALL} --force"),
        )),
    }
}

/// `cargo insta review` accepts a snapshot; without it, renaming the
/// `.snap.new` file that insta writes to `.snap` does the same (step 5's chapter).
fn check_insta() -> Finding {
    first_line_of(cargo_command().args(["insta", "--version"])).ok_or_else(|| {
        problem(
            "cargo insta not found (steps 4-6 review snapshots with it)",
            "cargo install cargo-insta --locked   (or, without it, accept a snapshot by renaming \
             its tests/snapshots/*.snap.new file to .snap, as step 5's chapter says)",
        )
    })
}

fn check_git() -> Finding {
    first_line_of(Command::new("git").arg("--version")).ok_or_else(|| {
        problem(
            "git not found (reset needs it)",
            "install git from https://git-scm.com",
        )
    })
}

#[cfg(unix)]
fn check_open_files() -> Finding {
    let Some(limit) = first_line_of(Command::new("sh").args(["-c", "ulimit -n"])) else {
        return Err(problem(
            "could not read `ulimit -n`",
            format!("ulimit -n {MIN_OPEN_FILES}"),
        ));
    };
    if limit == "unlimited" {
        return Ok(limit);
    }
    match limit.parse::<u64>() {
        Ok(value) if value >= MIN_OPEN_FILES => Ok(value.to_string()),
        _ => Err(problem(
            format!("{limit} open files; the 500-concurrency labs need {MIN_OPEN_FILES}"),
            format!(
                "run `ulimit -n {MIN_OPEN_FILES}` in the shell you run labs from (add it to \
                 your shell profile to keep it); if that is refused, raise the hard limit \
                 (Linux: /etc/security/limits.conf; macOS: `sudo launchctl limit maxfiles 65536 200000`)"
            ),
        )),
    }
}

#[cfg(not(unix))]
fn check_open_files() -> Finding {
    // Windows has no per-process descriptor limit in the Unix sense.
    Ok("not limited on this platform".to_string())
}

fn check_offline(layout: &Layout) -> Finding {
    let ok = cargo_command()
        .current_dir(layout.root())
        .args(["fetch", "--offline", "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if ok {
        Ok("every dependency is in the local cargo cache".to_string())
    } else {
        Err(problem(
            "some dependencies are not downloaded yet",
            "cargo fetch   (while online; then build once: cargo test --no-run --workspace)",
        ))
    }
}

fn check_loopback() -> Finding {
    match TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => Ok(format!(
            "bound {}",
            listener
                .local_addr()
                .map(|addr| addr.to_string())
                .unwrap_or_default()
        )),
        Err(error) => Err(problem(
            format!("cannot listen on 127.0.0.1: {error}"),
            "allow local connections (firewall or sandbox settings)",
        )),
    }
}

/// Whether `port` on 127.0.0.1 is free for `user`. The labs and tests use
/// port 0 (any free port); only the step 4 service and the book have fixed
/// ports a learner types into a browser or `curl`.
fn check_port_free(port: u16, user: &str) -> Finding {
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(format!("127.0.0.1:{port} is free")),
        Err(error) => Err(problem(
            format!("cannot listen on 127.0.0.1:{port} for {user}: {error}"),
            format!(
                "stop what listens there (`lsof -i :{port}` or `ss -ltnp` shows it), \
                 or give {user} another port"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_already_taken_is_reported_with_a_fix() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = taken.local_addr().expect("its address").port();

        let finding = check_port_free(port, "a test");

        let problem = finding.expect_err("the port is taken");
        assert!(
            problem.found.contains(&port.to_string()),
            "{}",
            problem.found
        );
        assert!(problem.fix.contains("another port"), "{}", problem.fix);
        drop(taken);
        assert!(
            check_port_free(port, "a test").is_ok(),
            "the port is free again"
        );
    }

    #[test]
    fn versions_compare_numerically() {
        let matches = |found, requirement| version_matches(found, requirement);
        assert_eq!(
            matches("rustc 1.95.0 (abc 2026-01-01)", ">=1.88"),
            Some(true)
        );
        assert_eq!(matches("rustc 1.90.0-nightly (x)", ">=1.88"), Some(true));
        assert_eq!(matches("rustc 1.9.0", ">=1.88"), Some(false));
        assert_eq!(matches("mdbook v0.5.4", "~0.5"), Some(true));
        assert_eq!(matches("mdbook v0.4.40", "~0.5"), Some(false));
        assert_eq!(matches("no version", "~0.5"), None);
    }
}
