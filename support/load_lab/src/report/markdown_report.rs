//! A markdown report of a lab run: what was measured, on which machine.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::machine::Machine;

/// Writes a markdown report to `path`: a `# title` heading, a line naming the machine, then
/// each section as `## heading` followed by its body (e.g. a [`markdown_table`]
/// and a link to the plot).
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
    let mut report = String::new();
    // Writing into a String cannot fail; `writeln!` only returns a Result because other
    // writers can.
    let _ = writeln!(report, "# {title}\n");
    let _ = writeln!(report, "Machine: {machine}");
    for (heading, body) in sections {
        let _ = writeln!(report, "\n## {heading}\n");
        let _ = writeln!(report, "{}", body.trim_end());
    }
    std::fs::write(path, report).with_context(|| format!("writing report {}", path.display()))
}
