//! Turning measurements into something to read: tables, an SVG plot, a report on disk.
//!
//! - [`table`]: the same numbers as an aligned text table (terminal) or a markdown table.
//! - [`plot`]: latency against load, as an SVG line plot.
//! - [`results_dir`]: a fresh, timestamped folder per lab run.
//! - [`markdown_report`]: a markdown file that says which machine produced the numbers.
//!
//! Labs report; they never pass or fail on absolute times.

pub mod markdown_report;
pub mod plot;
pub mod results_dir;
pub mod table;

pub use markdown_report::write_markdown_report;
pub use plot::{Series, latency_series, plot_svg};
pub use results_dir::ResultsDir;
pub use table::{markdown_table, text_table};

use crate::measure::Measurement;

/// One line of a results table: a scenario measured at one load.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured, e.g. `"blocking, 32 threads"` or `"async"`; rows of one scenario at
    /// several loads share it (that is how [`latency_series`] groups them).
    pub scenario: String,
    /// The numbers.
    pub measurement: Measurement,
    /// Scenario-specific columns as `(header, value)`, e.g. `("upstream calls/req", "3.02")`.
    /// Rows need not have the same extras; a missing one shows as an empty cell.
    pub extra: Vec<(String, String)>,
}
