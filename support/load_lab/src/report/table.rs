//! Results as a table: aligned text for the terminal, or GitHub markdown for a report.
//!
//! Both come from one table model, so the terminal and the report never disagree. The columns
//! are: scenario, load, req/s, p50, p95, p99, max (milliseconds, one decimal), errors (the
//! total), then each row's extra columns. Errors by kind are listed under the table, where a
//! long kind such as `dropped: too many outstanding` cannot widen every row.

use std::time::Duration;

use super::Row;

/// Columns that hold words and read best left-aligned; the rest are numbers, right-aligned.
const LEFT_ALIGNED_COLUMNS: usize = 2;

/// Renders rows as an aligned text table, with errors by kind listed underneath.
///
/// ```text
/// scenario  load   req/s  p50 ms  p95 ms  p99 ms  max ms  errors
/// --------  -----  -----  ------  ------  ------  ------  ------
/// async     c=5      100    50.2    50.9    51.3    52.0       0
/// ```
pub fn text_table(rows: &[Row]) -> String {
    let table = Table::from_rows(rows);
    let widths = table.column_widths();
    let mut out = String::new();

    push_aligned_line(&mut out, &table.headers, &widths);
    let rules: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    push_aligned_line(&mut out, &rules, &widths);
    for cells in &table.cells {
        push_aligned_line(&mut out, cells, &widths);
    }

    let errors = error_lines(rows);
    if !errors.is_empty() {
        out.push_str("\nerrors by kind:\n");
        for line in errors {
            out.push_str("  ");
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Renders rows as a GitHub markdown table, with errors by kind as a list underneath.
pub fn markdown_table(rows: &[Row]) -> String {
    let table = Table::from_rows(rows);
    let mut out = String::new();

    push_markdown_line(&mut out, &table.headers);
    let alignments: Vec<String> = (0..table.headers.len())
        .map(|column| {
            if column < LEFT_ALIGNED_COLUMNS {
                ":---"
            } else {
                "---:"
            }
            .to_owned()
        })
        .collect();
    push_markdown_line(&mut out, &alignments);
    for cells in &table.cells {
        push_markdown_line(&mut out, cells);
    }

    let errors = error_lines(rows);
    if !errors.is_empty() {
        out.push_str("\nErrors by kind:\n\n");
        for line in errors {
            out.push_str("- ");
            out.push_str(&escape_markdown(&line));
            out.push('\n');
        }
    }
    out
}

/// The table as strings: what both renderers share.
struct Table {
    headers: Vec<String>,
    cells: Vec<Vec<String>>,
}

impl Table {
    fn from_rows(rows: &[Row]) -> Table {
        // Extra columns in the order they first appear, so a lab controls their order.
        let mut extra_headers: Vec<&str> = Vec::new();
        for row in rows {
            for (header, _) in &row.extra {
                if !extra_headers.contains(&header.as_str()) {
                    extra_headers.push(header);
                }
            }
        }

        let mut headers: Vec<String> = [
            "scenario", "load", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors",
        ]
        .map(str::to_owned)
        .into();
        headers.extend(extra_headers.iter().map(|header| (*header).to_owned()));

        let cells = rows
            .iter()
            .map(|row| {
                let measurement = &row.measurement;
                let mut cells = vec![
                    row.scenario.clone(),
                    measurement.load.to_string(),
                    format!("{:.0}", measurement.throughput()),
                    millis(measurement.percentile(50.0)),
                    millis(measurement.percentile(95.0)),
                    millis(measurement.percentile(99.0)),
                    millis(measurement.max()),
                    measurement.error_count().to_string(),
                ];
                for header in &extra_headers {
                    let value = row.extra.iter().find(|(name, _)| name == header);
                    cells.push(value.map(|(_, value)| value.clone()).unwrap_or_default());
                }
                cells
            })
            .collect();

        Table { headers, cells }
    }

    fn column_widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|header| width(header)).collect();
        for cells in &self.cells {
            for (column, cell) in cells.iter().enumerate() {
                widths[column] = widths[column].max(width(cell));
            }
        }
        widths
    }
}

/// Milliseconds with one decimal: enough to see a 0.5 ms change, not so much that noise looks
/// like signal.
fn millis(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

/// Display width, counted in characters so that `µ` or `é` do not throw the columns off.
fn width(text: &str) -> usize {
    text.chars().count()
}

fn push_aligned_line(out: &mut String, cells: &[String], widths: &[usize]) {
    let mut line = String::new();
    for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if column > 0 {
            line.push_str("  ");
        }
        if column < LEFT_ALIGNED_COLUMNS {
            line.push_str(&format!("{cell:<width$}"));
        } else {
            line.push_str(&format!("{cell:>width$}"));
        }
    }
    // Left-aligned last cells would leave trailing spaces; editors and diffs dislike them.
    out.push_str(line.trim_end());
    out.push('\n');
}

fn push_markdown_line(out: &mut String, cells: &[String]) {
    out.push('|');
    for cell in cells {
        out.push(' ');
        out.push_str(&escape_markdown(cell));
        out.push_str(" |");
    }
    out.push('\n');
}

/// A `|` inside a cell would end the cell early.
fn escape_markdown(text: &str) -> String {
    text.replace('|', "\\|")
}

/// One line per row that had errors: `scenario, load: kind count, kind count`.
fn error_lines(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|row| row.measurement.error_count() > 0)
        .map(|row| {
            let kinds: Vec<String> = row
                .measurement
                .errors
                .iter()
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect();
            format!(
                "{}, {}: {}",
                row.scenario,
                row.measurement.load,
                kinds.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{ErrorKind, Measurement};
    use crate::plan::Load;

    fn row(scenario: &str, concurrency: usize, latency_ms: u64) -> Row {
        let mut measurement =
            Measurement::new(Load::Closed { concurrency }, Duration::from_secs(1));
        for _ in 0..100 {
            measurement.record_ok(Duration::from_millis(latency_ms));
        }
        Row {
            scenario: scenario.to_owned(),
            measurement,
            extra: Vec::new(),
        }
    }

    #[test]
    fn every_line_of_the_text_table_puts_its_columns_at_the_same_place() {
        let rows = [row("async", 5, 50), row("blocking, 32 threads", 500, 2_400)];

        let table = text_table(&rows);

        // The load column starts at the same offset on every line.
        let offsets: Vec<usize> = table
            .lines()
            .filter(|line| !line.starts_with('-'))
            .map(|line| line.find("c=").or_else(|| line.find("load")).unwrap())
            .collect();
        assert_eq!(offsets.len(), 3, "{table}");
        assert!(offsets.windows(2).all(|pair| pair[0] == pair[1]), "{table}");
    }

    #[test]
    fn latencies_are_shown_in_milliseconds_with_one_decimal() {
        let mut measurement =
            Measurement::new(Load::Closed { concurrency: 5 }, Duration::from_secs(1));
        // 1,500 µs is stored exactly (HdrHistogram is exact below 2,048 at 3 digits).
        measurement.record_ok(Duration::from_micros(1_500));
        let rows = [Row {
            scenario: "async".to_owned(),
            measurement,
            extra: Vec::new(),
        }];

        let table = text_table(&rows);

        let data_line: Vec<&str> = table.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(
            data_line,
            ["async", "c=5", "1", "1.5", "1.5", "1.5", "1.5", "0"],
            "{table}"
        );
    }

    #[test]
    fn error_kinds_are_listed_under_the_table() {
        let mut rows = [row("async", 500, 50)];
        rows[0].measurement.record_error(ErrorKind::new("timeout"));
        rows[0].measurement.record_error(ErrorKind::new("timeout"));

        let table = text_table(&rows);

        assert!(table.contains("async, c=500: timeout 2"), "{table}");
    }

    #[test]
    fn a_row_without_an_extra_column_gets_an_empty_cell() {
        let mut rows = [row("capped", 50, 50), row("uncapped", 50, 50)];
        rows[0]
            .extra
            .push(("peak in-flight".to_owned(), "64".to_owned()));

        let markdown = markdown_table(&rows);

        let uncapped = markdown
            .lines()
            .find(|line| line.contains("uncapped"))
            .unwrap();
        assert!(uncapped.ends_with("|  |"), "{markdown}");
    }

    #[test]
    fn a_pipe_in_a_markdown_cell_is_escaped() {
        let rows = [row("a|b", 5, 50)];

        let markdown = markdown_table(&rows);

        assert!(markdown.contains("a\\|b"), "{markdown}");
    }
}
