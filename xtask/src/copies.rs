//! Given code that exists in more than one place stays identical to its original.
//!
//! Some given code is copied on purpose: from a step's exercise into its
//! solution, so each crate stands alone (whole files, or the `regions` marked
//! in a learner's file), and from step to step (the product and upstream
//! types). `check` (and `cargo test`, see `tidy`) fails once two copies differ.
//!
//! A copy names its original (a path from the workbook root) in a header
//! line, ``//! Given code: a copy of `steps/step1_baseline/src/product.rs`.``
//! Header lines of that form (with the blank `//!` line before them, if any)
//! are left out of the comparison, so an original may itself be a copy.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::files;

/// How a copy's header line starts; the original's path follows, in backticks.
pub const MARKER: &str = "//! Given code: a copy of `";

/// Folders searched for copies that declare themselves.
const DIRS: [&str; 3] = ["steps", "solutions", "support"];

/// One declared copy: paths relative to the workbook root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The copy.
    pub copy: PathBuf,
    /// The file it must equal.
    pub original: PathBuf,
}

/// Every copy declared below `root` by a header line.
///
/// # Errors
/// Fails if a file cannot be read.
pub fn declared(root: &Path) -> Result<Vec<Copy>> {
    let mut found = Vec::new();
    for dir in DIRS {
        for path in files::rust_files(&root.join(dir))? {
            let text = files::read_text(&path)?;
            if let Some(original) = text.lines().find_map(original_named_by) {
                let copy = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                found.push(Copy {
                    copy,
                    original: original.into(),
                });
            }
        }
    }
    Ok(found)
}

/// `//! Given code: a copy of `path`.` → `path`.
fn original_named_by(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix(MARKER)?;
    rest.split_once('`').map(|(path, _)| path)
}

/// `// ANCHOR: name` and `// ANCHOR_END: name` mark what the book includes.
/// The solution's copy of given code carries them and the exercise's does
/// not, so they are not part of the comparison.
fn is_book_marker(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("// ANCHOR:") || line.starts_with("// ANCHOR_END:")
}

/// What is wrong with one copy, if anything: missing files, or the first
/// line where it differs from its original.
pub fn drift(root: &Path, copy: &Copy) -> Option<String> {
    let read = |path: &Path| std::fs::read_to_string(root.join(path)).ok();
    let (Some(copied), Some(original)) = (read(&copy.copy), read(&copy.original)) else {
        return Some(format!(
            "{} or its original {} cannot be read",
            copy.copy.display(),
            copy.original.display()
        ));
    };
    let body = |text: &str| -> Vec<String> {
        let mut kept: Vec<String> = Vec::new();
        for line in text.lines().filter(|line| !is_book_marker(line)) {
            if original_named_by(line).is_some() {
                // The header line is a paragraph of its own: its blank `//!`
                // line goes with it.
                if kept.last().is_some_and(|last| last.trim() == "//!") {
                    kept.pop();
                }
                continue;
            }
            kept.push(line.to_string());
        }
        kept
    };
    let (copied, original) = (body(&copied), body(&original));
    if copied == original {
        return None;
    }
    let line = copied
        .iter()
        .zip(&original)
        .position(|(a, b)| a != b)
        .unwrap_or(copied.len().min(original.len()));
    Some(format!(
        "{} differs from its original {} (first at line {} of the copy, not counting its header line)",
        copy.copy.display(),
        copy.original.display(),
        line + 1
    ))
}

#[cfg(test)]
pub mod regions {
    //! Given code *inside* a learner's file: the types and helpers around the
    //! functions the learner writes. The exercise and the solution both mark
    //! each such region, with the same name:
    //!
    //! ```text
    //! // GIVEN: poll_stats (given code, the same as in the reference solution)
    //! ...
    //! // GIVEN_END: poll_stats
    //! ```
    //!
    //! The markers must pair up in each file, both files must mark the same
    //! regions in the same order, and each region must hold the same lines in
    //! both (the opening line included; the book's `ANCHOR` lines left out).
    //! Only a test checks this (`tidy`'s, run by `cargo test` and so by
    //! `check`): the runner a learner builds carries none of it.

    use std::collections::BTreeSet;
    use std::path::Path;

    use anyhow::Result;

    use crate::files;

    /// How a region's first line starts: its name follows, then any words.
    pub const OPEN: &str = "// GIVEN: ";
    /// How a region's last line starts: its name follows.
    pub const CLOSE: &str = "// GIVEN_END: ";

    /// One marked region of a file.
    #[derive(Debug)]
    pub struct Region {
        /// The name both markers carry.
        pub name: String,
        /// Its lines, from the opening marker on, each with its line number.
        pub lines: Vec<(usize, String)>,
    }

    /// The regions of `text`, or why its markers do not pair up.
    pub fn parse(text: &str) -> Result<Vec<Region>, String> {
        let mut found: Vec<Region> = Vec::new();
        let mut open: Option<Region> = None;
        for (number, line) in (1..).zip(text.lines()) {
            let marker = line.trim_start();
            if let Some(rest) = marker.strip_prefix(OPEN) {
                let name = rest.split_whitespace().next().unwrap_or_default();
                if let Some(outer) = &open {
                    return Err(format!(
                        "line {number}: `{name}` opens inside `{}`",
                        outer.name
                    ));
                }
                if name.is_empty() || found.iter().any(|region| region.name == name) {
                    return Err(format!("line {number}: a region needs a name of its own"));
                }
                open = Some(Region {
                    name: name.to_string(),
                    lines: vec![(number, line.to_string())],
                });
            } else if let Some(name) = marker.strip_prefix(CLOSE) {
                match open.take() {
                    Some(region) if region.name == name.trim() => found.push(region),
                    _ => {
                        return Err(format!(
                            "line {number}: `{}` closes no open region of that name",
                            name.trim()
                        ));
                    }
                }
            } else if let Some(region) = open.as_mut().filter(|_| !super::is_book_marker(line)) {
                region.lines.push((number, line.to_string()));
            }
        }
        match open {
            Some(region) => Err(format!(
                "`{}` is never closed ({CLOSE}{})",
                region.name, region.name
            )),
            None => Ok(found),
        }
    }

    /// Every problem with the given regions below `root`: a file of
    /// `steps/<crate>/` or `solutions/<crate>/` that marks a region is
    /// compared with the file at the same place in the other.
    ///
    /// # Errors
    /// Fails if a folder cannot be listed or a file read.
    pub fn drift(root: &Path) -> Result<Vec<String>> {
        let mut marked = BTreeSet::new();
        for side in ["steps", "solutions"] {
            for path in files::rust_files(&root.join(side))? {
                if files::read_text(&path)?.contains(OPEN.trim_end()) {
                    marked.insert(path.strip_prefix(root.join(side))?.to_path_buf());
                }
            }
        }
        let mut problems = Vec::new();
        for relative in marked {
            let exercise = Path::new("steps").join(&relative);
            let solution = Path::new("solutions").join(&relative);
            if let Err(problem) = compare(root, &exercise, &solution) {
                problems.push(problem);
            }
        }
        Ok(problems)
    }

    /// The regions of one file, or what is wrong with them, naming the file.
    fn regions_of(root: &Path, path: &Path) -> Result<Vec<Region>, String> {
        let text = files::read_text(&root.join(path)).map_err(|error| format!("{error:#}"))?;
        parse(&text).map_err(|problem| format!("{}: {problem}", path.display()))
    }

    /// The exercise's regions against the solution's: the first difference.
    fn compare(root: &Path, exercise: &Path, solution: &Path) -> Result<(), String> {
        let (ours, theirs) = (regions_of(root, exercise)?, regions_of(root, solution)?);
        let names = |regions: &[Region]| regions.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        if names(&ours) != names(&theirs) {
            return Err(format!(
                "{} marks the given regions {:?}, but {} marks {:?}",
                exercise.display(),
                names(&ours),
                solution.display(),
                names(&theirs)
            ));
        }
        for (a, b) in ours.iter().zip(&theirs) {
            let same = a
                .lines
                .iter()
                .zip(&b.lines)
                .take_while(|(x, y)| x.1 == y.1)
                .count();
            if same == a.lines.len() && same == b.lines.len() {
                continue;
            }
            let at = |path: &Path, region: &Region| match region.lines.get(same) {
                Some((number, line)) => format!("{}:{number}: {line}", path.display()),
                None => {
                    let last = region.lines.last().map_or(0, |(number, _)| *number);
                    format!("{}: the region ends after line {last}", path.display())
                }
            };
            return Err(format!(
                "given region `{}` differs between the exercise and the solution; first difference:\n  {}\n  {}",
                a.name,
                at(exercise, a),
                at(solution, b)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn book_anchor_lines_are_not_part_of_the_comparison() {
        let root = tempfile::tempdir().expect("a temp dir");
        write(
            root.path(),
            "steps/a/src/retry.rs",
            "//! Retry.\npub fn r() {}\n",
        );
        write(
            root.path(),
            "solutions/a/src/retry.rs",
            "//! Retry.\n// ANCHOR: r\npub fn r() {}\n// ANCHOR_END: r\n",
        );
        let copy = Copy {
            copy: PathBuf::from("solutions/a/src/retry.rs"),
            original: PathBuf::from("steps/a/src/retry.rs"),
        };
        assert_eq!(drift(root.path(), &copy), None);

        write(
            root.path(),
            "solutions/a/src/retry.rs",
            "//! Retry.\n// ANCHOR: r\npub fn r() { todo!() }\n// ANCHOR_END: r\n",
        );
        assert!(
            drift(root.path(), &copy).is_some(),
            "a changed line is still drift"
        );
    }

    #[test]
    fn copies_declared_by_header_are_compared_without_their_header() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(
            root,
            "steps/a/src/product.rs",
            "//! Products.\npub struct P;\n",
        );
        write(
            root,
            "solutions/a/src/product.rs",
            "//! Products.\n//!\n//! Given code: a copy of `steps/a/src/product.rs`.\npub struct P;\n",
        );
        write(
            root,
            "steps/b/src/product.rs",
            "//! Products.\n//! Given code: a copy of `steps/a/src/product.rs`.\npub struct Q;\n",
        );

        let copies = declared(root).unwrap();

        assert_eq!(
            copies,
            [
                Copy {
                    copy: "steps/b/src/product.rs".into(),
                    original: "steps/a/src/product.rs".into()
                },
                Copy {
                    copy: "solutions/a/src/product.rs".into(),
                    original: "steps/a/src/product.rs".into()
                },
            ]
        );
        assert_eq!(drift(root, &copies[1]), None);
        let drifted = drift(root, &copies[0]).unwrap();
        assert!(drifted.contains("first at line 2"), "{drifted}");
        let missing = Copy {
            copy: "steps/c/src/x.rs".into(),
            original: "steps/a/src/product.rs".into(),
        };
        assert!(drift(root, &missing).unwrap().contains("cannot be read"));
    }

    #[test]
    fn given_region_markers_must_pair_up() {
        let names = |text: &str| -> Result<Vec<String>, String> {
            let regions = regions::parse(text)?;
            Ok(regions.into_iter().map(|region| region.name).collect())
        };
        let text = "// GIVEN: a (given)\nx\n// GIVEN_END: a\n  // GIVEN: b\n  // GIVEN_END: b\n";
        assert_eq!(names(text), Ok(vec!["a".to_string(), "b".to_string()]));
        let broken = [
            ("// GIVEN: a\nx\n", "never closed"),
            ("x\n// GIVEN_END: a\n", "line 2: `a` closes no open region"),
            (
                "// GIVEN: a\n// GIVEN_END: b\n",
                "`b` closes no open region",
            ),
            ("// GIVEN: a\n// GIVEN: b\n", "line 2: `b` opens inside `a`"),
            (
                "// GIVEN: a\n// GIVEN_END: a\n// GIVEN: a\n",
                "line 3: a region needs a name",
            ),
        ];
        for (text, problem) in broken {
            let found = names(text).unwrap_err();
            assert!(found.contains(problem), "{text:?}: {found}");
        }
    }

    #[test]
    fn given_regions_are_compared_line_by_line_without_book_anchors() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let exercise = "//! X.\n// GIVEN: types (given)\npub struct A;\npub struct B;\n// GIVEN_END: types\n\
                        pub fn f() { todo!() }\n";
        let solution = "//! X.\n// GIVEN: types (given)\n// ANCHOR: a\npub struct A;\n// ANCHOR_END: a\n\
                        pub struct B;\n// GIVEN_END: types\npub fn f() {}\n";
        write(root, "steps/s/src/x.rs", exercise);
        write(root, "solutions/s/src/x.rs", solution);
        assert_eq!(regions::drift(root).unwrap(), Vec::<String>::new());

        write(
            root,
            "solutions/s/src/x.rs",
            &solution.replace("struct B", "struct C"),
        );
        let drifted = regions::drift(root).unwrap().join("\n");
        assert!(
            drifted.contains("given region `types` differs"),
            "{drifted}"
        );
        assert!(
            drifted.contains("steps/s/src/x.rs:4: pub struct B;"),
            "{drifted}"
        );
        assert!(
            drifted.contains("solutions/s/src/x.rs:6: pub struct C;"),
            "{drifted}"
        );

        write(
            root,
            "solutions/s/src/x.rs",
            &solution.replace("pub struct B;\n", ""),
        );
        let shorter = regions::drift(root).unwrap().join("\n");
        assert!(
            shorter.contains("steps/s/src/x.rs:4: pub struct B;"),
            "{shorter}"
        );
        assert!(
            shorter.contains("x.rs: the region ends after line 4"),
            "{shorter}"
        );

        write(root, "solutions/s/src/x.rs", "//! X.\npub struct A;\n");
        let unmarked = regions::drift(root).unwrap().join("\n");
        assert!(
            unmarked.contains(r#"marks the given regions ["types"], but"#),
            "{unmarked}"
        );
        std::fs::remove_file(root.join("solutions/s/src/x.rs")).unwrap();
        let missing = regions::drift(root).unwrap().join("\n");
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
