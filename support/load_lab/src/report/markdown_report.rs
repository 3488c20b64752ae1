//! A markdown report of a lab run: what was measured, on which machine, and how.
//!
//! Besides the machine, the report says how the lab was run (its arguments, so a `--quick`
//! run is never mistaken for a full one) and the load average before and after the run. A
//! machine that was busy before the run is also said on the terminal, where the learner is
//! looking. Only the load *before* is judged: the load after counts the lab's own threads.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::machine::{Machine, load_average};

/// Writes a markdown report to `path`: a `# title` heading, a line naming the machine, how
/// the lab was run and how busy the machine was, then each section as `## heading` followed
/// by its body (e.g. a [`markdown_table`] and a link to the plot). When the machine was busy
/// before the run (a load average above its core count), a warning also goes to standard
/// error.
///
/// The machine line is not optional: numbers without their hardware invite the wrong
/// comparison.
///
/// [`markdown_table`]: super::markdown_table
///
/// # Errors
///
/// If the file cannot be written.
pub fn write_markdown_report(
    path: &Path,
    title: &str,
    machine: &Machine,
    sections: &[(String, String)],
) -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let load_after = load_average();
    let mut report = String::new();
    // Writing into a String cannot fail; `writeln!` only returns a Result because other
    // writers can.
    let _ = writeln!(report, "# {title}\n");
    let _ = writeln!(report, "Machine: {machine}\n");
    let _ = writeln!(report, "Run: {}\n", run_line(&arguments));
    let _ = writeln!(report, "Load: {}", load_line(machine, load_after));
    for (heading, body) in sections {
        let _ = writeln!(report, "\n## {heading}\n");
        let _ = writeln!(report, "{}", body.trim_end());
    }
    if let Some(warning) = busy_warning(machine) {
        eprintln!("\nwarning: {warning}");
    }
    std::fs::write(path, report).with_context(|| format!("writing report {}", path.display()))
}

/// The lab's arguments, without the output folder, and whether it was a `--quick` run.
fn run_line(arguments: &[String]) -> String {
    let mut shown = Vec::new();
    let mut words = arguments.iter();
    while let Some(word) = words.next() {
        // Where the results went says nothing about how they were measured.
        if word == "--out" {
            words.next();
        } else if !word.starts_with("--out=") {
            shown.push(word.as_str());
        }
    }
    let quick = shown.contains(&"--quick");
    let arguments = if shown.is_empty() {
        "the defaults".to_owned()
    } else {
        format!("`{}`", shown.join(" "))
    };
    if quick {
        format!(
            "{arguments}: a --quick run, with shorter windows: a first look, not a result to quote"
        )
    } else {
        format!("{arguments}: full windows")
    }
}

/// The load average before and after, and whether that made the machine busy.
fn load_line(machine: &Machine, load_after: Option<f64>) -> String {
    let show = |load: Option<f64>| load.map_or("unknown".to_owned(), |load| format!("{load:.2}"));
    let mut line = format!(
        "load average {} before the run, {} after it (counting the lab's own threads), on {} \
         cores",
        show(machine.load_at_start),
        show(load_after),
        machine.cores
    );
    if busy_warning(machine).is_some() {
        line.push_str(
            ": busy before the run, so these numbers are lower than a quiet machine gives",
        );
    }
    line
}

/// A warning when the load average before the run was above the core count.
fn busy_warning(machine: &Machine) -> Option<String> {
    let load = machine
        .load_at_start
        .filter(|load| machine.is_busy(*load))?;
    Some(format!(
        "the machine was busy when this lab started (load average {load:.1} on {} cores): \
         other programs took CPU time from it, so these numbers are lower than a quiet \
         machine gives. Close what you can (a build that just finished still counts for \
         about a minute) and run it again before comparing.",
        machine.cores
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(load_at_start: Option<f64>) -> Machine {
        Machine {
            cpu: "AMD EPYC 7B13".to_owned(),
            cores: 2,
            memory_gib: Some(23.4),
            os: "linux x86_64".to_owned(),
            load_at_start,
        }
    }

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn a_quick_run_says_so_and_the_output_folder_is_left_out() {
        let quick = run_line(&words("--out /tmp/lab-results --quick --concurrency 5"));
        let full = run_line(&words("--out=/tmp/x"));

        assert!(
            quick.starts_with("`--quick --concurrency 5`: a --quick run"),
            "{quick}"
        );
        assert_eq!(full, "the defaults: full windows");
    }

    #[test]
    fn a_load_above_the_core_count_before_the_run_is_busy() {
        assert_eq!(busy_warning(&machine(Some(1.9))), None);
        assert_eq!(busy_warning(&machine(None)), None);
        let busy = busy_warning(&machine(Some(3.3))).unwrap();
        assert!(busy.contains("load average 3.3 on 2 cores"), "{busy}");

        let quiet = load_line(&machine(Some(0.5)), Some(2.5));
        assert!(
            quiet.starts_with("load average 0.50 before the run, 2.50 after"),
            "{quiet}"
        );
        assert!(!quiet.contains("busy"), "{quiet}");
        let busy = load_line(&machine(Some(3.0)), None);
        assert!(busy.contains("unknown after"), "{busy}");
        assert!(
            busy.ends_with(
                "busy before the run, so these numbers are lower than a quiet machine gives"
            ),
            "{busy}"
        );
    }
}
