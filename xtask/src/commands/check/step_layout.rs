//! Each step's two crates are what the runner and the book expect, read from
//! `cargo metadata` (so cargo's own reading of the manifests, target
//! auto-discovery included, is what is checked).
//!
//! Both kinds of step: the exercise is package `<name>` in `steps/<name>/`,
//! the solution is `<name>_solution` in `solutions/<name>/` with its library
//! named `<name>` (so one test file compiles against either), both run the
//! same lab file, the chapter exists, the step has hints, and mutants exactly
//! when it is a tests step. Then:
//!
//! - a code step (the learner writes the code): the solution runs exactly the
//!   exercise's test files and has no `tests/` of its own;
//! - a tests step (the learner writes the tests): the code exists once (the
//!   solution's library *is* the exercise's `src/lib.rs`, and the solution has
//!   no `src/`), and the solution's own tests have the exercise's test names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cargo_metadata::{Metadata, Package, Target};

use crate::layout::Layout;
use crate::steps::{Flavor, Step, StepKind};
use crate::tally;

/// The check's line in `check`'s log, after the step's short name.
pub fn title(step: &Step) -> &'static str {
    match step.kind {
        StepKind::Code => "crates, single-source tests, lab and chapter in place",
        StepKind::Tests => "crates, single-source code, same-named tests, lab and chapter in place",
    }
}

/// Every problem with `step`'s crates, chapter and hints, one per line.
pub fn check(layout: &Layout, metadata: &Metadata, step: &Step) -> Result<(), String> {
    let mut problems = Vec::new();
    let exercise = package(layout, metadata, step, Flavor::Exercise, &mut problems);
    let solution = package(layout, metadata, step, Flavor::Solution, &mut problems);
    if let (Some(exercise), Some(solution)) = (exercise, solution) {
        compare(layout, step, exercise, solution, &mut problems);
    }
    if !layout.book_dir().join("src").join(&step.chapter).is_file() {
        problems.push(format!(
            "the chapter {} does not exist",
            step.chapter_path()
        ));
    }
    let hints = format!("steps/hints/{}.toml", step.short);
    if step.hints.topic.is_empty() {
        problems.push(format!("{hints} gives this step no hint topics"));
    }
    if (step.kind == StepKind::Tests) == step.hints.mutant.is_empty() {
        problems.push(format!(
            "{hints} must list mutants exactly when the step is kind = \"tests\""
        ));
    }
    tally::outcome(problems)
}

/// The workspace package of `step`'s exercise or solution, if it is where it belongs.
fn package<'a>(
    layout: &Layout,
    metadata: &'a Metadata,
    step: &Step,
    flavor: Flavor,
    problems: &mut Vec<String>,
) -> Option<&'a Package> {
    let name = step.package(flavor);
    let dir = match flavor {
        Flavor::Exercise => layout.step_dir(&step.name),
        Flavor::Solution => layout.solution_dir(&step.name),
    };
    let found = metadata
        .workspace_packages()
        .into_iter()
        .find(|p| *p.name == name);
    let Some(package) = found else {
        let manifest = layout.display(&dir.join("Cargo.toml"));
        problems.push(format!(
            "no workspace package `{name}` ({manifest} must name it)"
        ));
        return None;
    };
    let actual = package.manifest_path.parent().map(|dir| dir.as_std_path());
    if actual.map(canonical) != Some(canonical(&dir)) {
        problems.push(format!(
            "the package `{name}` must live in {}/",
            layout.display(&dir)
        ));
    }
    Some(package)
}

fn compare(
    layout: &Layout,
    step: &Step,
    exercise: &Package,
    solution: &Package,
    problems: &mut Vec<String>,
) {
    let name = &step.name;
    let manifest = |package: &Package| layout.display(package.manifest_path.as_std_path());
    let solution_lib = solution.targets.iter().find(|target| target.is_lib());
    if solution_lib.is_none_or(|lib| lib.name != *name) {
        problems.push(format!(
            "{} needs [lib] name = \"{name}\" so the same tests compile against it",
            manifest(solution)
        ));
    }
    let mut lab = |package: &Package| {
        let lab = package
            .targets
            .iter()
            .find(|t| t.is_bin() && t.name == step.lab);
        if lab.is_none() {
            problems.push(format!(
                "{} has no [[bin]] named `{}` (the lab)",
                manifest(package),
                step.lab
            ));
        }
        lab.map(source)
    };
    if let (Some(mine), Some(theirs)) = (lab(exercise), lab(solution))
        && mine != theirs
    {
        problems.push(format!(
            "the solution's lab is {}, not the exercise's {}: labs exist once",
            layout.display(&theirs),
            layout.display(&mine)
        ));
    }
    let (mine, theirs) = (tests_of(exercise), tests_of(solution));
    let solution_dir = layout.solution_dir(name);
    match step.kind {
        StepKind::Code => {
            if mine.is_empty() {
                problems.push(format!("{} has no tests", manifest(exercise)));
            }
            if mine != theirs {
                problems.push(format!(
                    "the solution must run exactly the exercise's test files (one [[test]] \
                     per file in steps/{name}/tests/, with its path): the exercise runs \
                     {mine:?}, the solution {theirs:?}"
                ));
            }
            if solution_dir.join("tests").exists() {
                problems.push(format!(
                    "solutions/{name}/tests/ exists: tests live once, in steps/{name}/tests/"
                ));
            }
        }
        StepKind::Tests => {
            let exercise_lib = exercise.targets.iter().find(|target| target.is_lib());
            if exercise_lib.map(source) != solution_lib.map(source) {
                problems.push(format!(
                    "{} needs [lib] path = \"../../steps/{name}/src/lib.rs\": in a tests step \
                     the code exists once",
                    manifest(solution)
                ));
            }
            if !mine.keys().eq(theirs.keys()) {
                problems.push(format!(
                    "the solution's tests must have the exercise's names: the exercise has \
                     {:?}, the solution {:?}",
                    mine.keys(),
                    theirs.keys()
                ));
            }
            let own = canonical(&solution_dir.join("tests"));
            if theirs.values().any(|path| !path.starts_with(&own)) {
                problems.push(format!(
                    "the solution's tests must live in solutions/{name}/tests/"
                ));
            }
            if solution_dir.join("src").exists() {
                problems.push(format!(
                    "solutions/{name}/src/ exists: in a tests step the code lives once, in \
                     steps/{name}/src/"
                ));
            }
        }
    }
}

/// A package's test targets: name → source file.
fn tests_of(package: &Package) -> BTreeMap<String, PathBuf> {
    let tests = package.targets.iter().filter(|target| target.is_test());
    tests
        .map(|test| (test.name.clone(), source(test)))
        .collect()
}

fn source(target: &Target) -> PathBuf {
    canonical(target.src_path.as_std_path())
}

/// `path` with links and `..` resolved, so two spellings of one file compare equal.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::Catalogue;

    /// The real workbook's steps pass, and a step whose solution runs tests
    /// of its own does not.
    #[test]
    fn the_workbooks_steps_are_laid_out_as_the_runner_expects() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let layout = Layout::at(root.to_path_buf());
        let catalogue = Catalogue::load(&layout).unwrap();
        let metadata = cargo_metadata::MetadataCommand::new()
            .current_dir(root)
            .no_deps()
            .exec()
            .unwrap();
        for step in catalogue.steps() {
            assert_eq!(check(&layout, &metadata, step), Ok(()), "{}", step.name);
        }

        let code_step = catalogue.steps().iter().find(|s| s.kind == StepKind::Code);
        let mut as_tests_step = code_step.unwrap().clone();
        as_tests_step.kind = StepKind::Tests;
        let problems = check(&layout, &metadata, &as_tests_step).unwrap_err();
        assert!(problems.contains("the code exists once"), "{problems}");
    }
}
