//! Latency against load as an SVG line plot: where the curve bends upward is the knee.
//!
//! Both axes can be logarithmic because both span orders of magnitude: concurrency 5 to 500,
//! latency 50 ms to several seconds. On a linear y axis the fast scenarios would be a flat line
//! at the bottom and the lesson would be invisible.
//!
//! Only SVG is produced (plotters' `svg_backend`): it needs no system fonts or C libraries, it
//! renders in a browser and on GitHub, and it diffs as text.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::Row;

/// One line on a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name in the legend, e.g. the scenario.
    pub label: String,
    /// `(x, y)` points, drawn in the order given (sort by x for a line).
    pub points: Vec<(f64, f64)>,
}

/// Colours that stay distinguishable for colour-blind readers (Okabe and Ito), minus the
/// yellow that vanishes on white.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
];

/// The plot's size in pixels: readable on a projector, and in a book column when scaled down.
const SIZE: (u32, u32) = (960, 600);

/// Draws the series as a line plot into an SVG file at `path`.
///
/// The y axis is logarithmic, and so is the x axis if `log_x`. Points that a logarithmic axis
/// cannot show (zero or negative) are left out rather than failing the whole plot. Each
/// series gets a colour, dots on its points, and an entry in the legend.
///
/// # Errors
///
/// If the file cannot be written.
pub fn plot_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    series: &[Series],
) -> anyhow::Result<()> {
    let drawable: Vec<Series> = series
        .iter()
        .map(|one| Series {
            label: one.label.clone(),
            points: one
                .points
                .iter()
                .copied()
                .filter(|&(x, y)| y > 0.0 && y.is_finite() && x.is_finite() && (!log_x || x > 0.0))
                .collect(),
        })
        .collect();

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let labels = AxisLabels {
        title,
        x_label,
        y_label,
    };
    let (x_low, x_high) = padded_range(drawable.iter().flat_map(|s| &s.points).map(|p| p.0), log_x);
    let (y_low, y_high) = padded_range(drawable.iter().flat_map(|s| &s.points).map(|p| p.1), true);
    let y_range = (y_low..y_high).log_scale();

    // Log and linear x axes are different types in plotters, hence one generic function.
    if log_x {
        draw_chart(
            &root,
            &labels,
            (x_low..x_high).log_scale(),
            y_range,
            &drawable,
        )?;
    } else {
        draw_chart(&root, &labels, x_low..x_high, y_range, &drawable)?;
    }
    root.present()?;
    Ok(())
}

/// For each scenario (in order of first appearance), a series of points
/// `(load level, percentile in milliseconds)`, sorted by load level.
///
/// The load level is the concurrency of a closed loop or the rate of an open loop
/// ([`Load::level`](crate::Load::level)); `percentile` is e.g. `99.0` for p99.
pub fn latency_series(rows: &[Row], percentile: f64) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for row in rows {
        let point = (
            row.measurement.load.level(),
            row.measurement.percentile(percentile).as_secs_f64() * 1000.0,
        );
        match series.iter_mut().find(|one| one.label == row.scenario) {
            Some(one) => one.points.push(point),
            None => series.push(Series {
                label: row.scenario.clone(),
                points: vec![point],
            }),
        }
    }
    for one in &mut series {
        one.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    series
}

/// The words on a plot.
struct AxisLabels<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
}

fn draw_chart<X, Y>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    labels: &AxisLabels<'_>,
    x_range: X,
    y_range: Y,
    series: &[Series],
) -> anyhow::Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(labels.title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, y_range)?;

    chart
        .configure_mesh()
        .x_desc(labels.x_label)
        .y_desc(labels.y_label)
        .x_label_formatter(&tick_label)
        .y_label_formatter(&tick_label)
        .draw()?;

    for (index, one) in series.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                one.points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(one.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(
            one.points
                .iter()
                .map(|&point| Circle::new(point, 4, colour.filled())),
        )?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// An axis tick as a reader would write it: `500`, `2.5`, `0.25`; not `500.0`.
fn tick_label(value: &f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A range that shows every value with a little room around it.
///
/// On a log axis the room is a factor (values are multiplied and divided), on a linear axis it
/// is a fraction of the span. With no values at all, a placeholder range keeps the plot valid.
fn padded_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
        (low.min(value), high.max(value))
    });
    if low > high {
        return (1.0, 10.0);
    }
    if log {
        (low / 1.5, high * 1.5)
    } else {
        let room = if high > low {
            (high - low) * 0.05
        } else {
            high.abs().max(1.0) * 0.5
        };
        (low - room, high + room)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measure::Measurement;
    use crate::plan::Load;

    fn row(scenario: &str, concurrency: usize, latency_ms: u64) -> Row {
        let mut measurement =
            Measurement::new(Load::Closed { concurrency }, Duration::from_secs(1));
        measurement.record_ok(Duration::from_millis(latency_ms));
        Row {
            scenario: scenario.to_owned(),
            measurement,
            extra: Vec::new(),
        }
    }

    #[test]
    fn latency_series_groups_rows_by_scenario_and_sorts_them_by_load() {
        let rows = [
            row("async", 500, 1),
            row("blocking", 5, 1),
            row("async", 5, 1),
        ];

        let series = latency_series(&rows, 99.0);

        let labels: Vec<&str> = series.iter().map(|one| one.label.as_str()).collect();
        assert_eq!(labels, ["async", "blocking"]);
        let async_loads: Vec<f64> = series[0].points.iter().map(|point| point.0).collect();
        assert_eq!(async_loads, [5.0, 500.0]);
    }

    #[test]
    fn latency_series_reports_the_percentile_in_milliseconds() {
        let rows = [row("async", 5, 1)];

        let series = latency_series(&rows, 50.0);

        assert_eq!(series[0].points, [(5.0, 1.0)]);
    }

    #[test]
    fn tick_labels_drop_trailing_zeros() {
        assert_eq!(tick_label(&500.0), "500");
        assert_eq!(tick_label(&2.5), "2.5");
        assert_eq!(tick_label(&0.25), "0.25");
        assert_eq!(tick_label(&100.0), "100");
    }

    #[test]
    fn a_log_range_leaves_a_factor_of_room_around_the_values() {
        let (low, high) = padded_range([10.0, 1000.0].into_iter(), true);

        assert!(low < 10.0 && low > 0.0);
        assert!(high > 1000.0);
    }

    #[test]
    fn a_range_of_nothing_is_still_a_valid_range() {
        let (low, high) = padded_range(std::iter::empty(), true);

        assert!(0.0 < low && low < high);
    }
}
