//! Tables, the SVG plot, the results folder and the markdown report.

use std::time::Duration;

use load_lab::report::{
    ResultsDir, Row, Series, latency_series, markdown_table, plot_svg, text_table,
    write_markdown_report,
};
use load_lab::{ErrorKind, Load, Machine, Measurement};

use crate::ScratchDir;

/// A row whose latencies are all `latency_ms`, with one timeout.
fn row(scenario: &str, concurrency: usize, latency_ms: u64) -> Row {
    let mut measurement = Measurement::new(Load::Closed { concurrency }, Duration::from_secs(10));
    for _ in 0..1_000 {
        measurement.record_ok(Duration::from_millis(latency_ms));
    }
    measurement.record_error(ErrorKind::new("timeout"));
    Row {
        scenario: scenario.to_owned(),
        measurement,
        extra: vec![("upstream calls/req".to_owned(), "3.00".to_owned())],
    }
}

fn rows() -> Vec<Row> {
    vec![
        row("blocking, 32 threads", 500, 2_400),
        row("async", 500, 120),
    ]
}

#[test]
fn the_text_table_names_every_scenario_and_has_a_p99_column() {
    let table = text_table(&rows());

    let header = table.lines().next().unwrap();
    assert!(header.contains("p99"), "{table}");
    assert!(header.contains("upstream calls/req"), "{table}");
    assert!(table.contains("blocking, 32 threads"), "{table}");
    assert!(table.contains("async"), "{table}");
    assert!(
        table.contains("timeout 1"),
        "errors by kind are listed: {table}"
    );
}

#[test]
fn the_markdown_table_is_a_github_table_with_the_same_columns() {
    let markdown = markdown_table(&rows());

    let lines: Vec<&str> = markdown.lines().collect();
    assert!(
        lines[0].starts_with("| scenario |") && lines[0].contains("p99"),
        "{markdown}"
    );
    assert!(lines[1].starts_with("| :--- |"), "{markdown}");
    assert!(lines[2].contains("blocking, 32 threads"), "{markdown}");
    assert!(lines[3].contains("async"), "{markdown}");
    // Every table line has as many cells as the header.
    let cells = |line: &str| line.matches(" |").count();
    assert!(
        lines[..4].iter().all(|line| cells(line) == cells(lines[0])),
        "{markdown}"
    );
}

#[test]
fn plot_svg_writes_an_svg_with_the_title_and_every_series_label() {
    let scratch = ScratchDir::new("plot");
    let path = scratch.path().join("p99.svg");
    let series = [
        Series {
            label: "blocking".to_owned(),
            points: vec![(5.0, 50.0), (500.0, 2_400.0)],
        },
        Series {
            label: "async".to_owned(),
            points: vec![(5.0, 50.0), (500.0, 120.0)],
        },
    ];

    plot_svg(
        &path,
        "p99 by concurrency",
        "concurrency",
        "p99 (ms)",
        true,
        &series,
    )
    .unwrap();

    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    for text in [
        "p99 by concurrency",
        "concurrency",
        "p99 (ms)",
        "blocking",
        "async",
    ] {
        assert!(svg.contains(text), "missing {text:?}");
    }
}

#[test]
fn plot_svg_draws_a_linear_x_axis_and_skips_points_a_log_axis_cannot_show() {
    let scratch = ScratchDir::new("plot-linear");
    let path = scratch.path().join("rate.svg");
    let series = [Series {
        label: "open loop".to_owned(),
        points: vec![(0.0, 0.0), (1_000.0, 12.0)],
    }];

    plot_svg(&path, "p99 by rate", "req/s", "p99 (ms)", false, &series).unwrap();

    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("open loop"));
}

#[test]
fn latency_series_from_rows_plot_one_line_per_scenario() {
    let rows = vec![
        row("async", 5, 50),
        row("async", 500, 120),
        row("blocking", 5, 50),
        row("blocking", 500, 2_400),
    ];

    let series = latency_series(&rows, 99.0);

    assert_eq!(series.len(), 2);
    assert_eq!(series[1].label, "blocking");
    let (load, p99_ms) = series[1].points[1];
    assert_eq!(load, 500.0);
    assert!((2_400.0..2_410.0).contains(&p99_ms), "{p99_ms}");
}

#[test]
fn a_results_dir_is_a_new_folder_named_after_the_lab() {
    let scratch = ScratchDir::new("results");

    let results = ResultsDir::create(&scratch.path().join("results"), "step1").unwrap();

    assert!(results.path.is_dir());
    let name = results.path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("step1-"), "{name}");
}

#[test]
fn two_results_dirs_created_in_the_same_second_are_different_folders() {
    let scratch = ScratchDir::new("results-twice");

    let first = ResultsDir::create(scratch.path(), "step1").unwrap();
    let second = ResultsDir::create(scratch.path(), "step1").unwrap();

    assert_ne!(first.path, second.path);
    assert!(first.path.is_dir() && second.path.is_dir());
}

#[test]
fn the_markdown_report_has_the_title_the_machine_and_every_section() {
    let scratch = ScratchDir::new("report");
    let path = scratch.path().join("report.md");
    let machine = Machine {
        cpu: "AMD EPYC 7B13".to_owned(),
        cores: 2,
        memory_gib: Some(23.4),
        os: "linux x86_64".to_owned(),
        load_at_start: Some(0.25),
    };
    let sections = [
        ("Closed loop".to_owned(), markdown_table(&rows())),
        ("Plot".to_owned(), "![p99](p99.svg)".to_owned()),
    ];

    write_markdown_report(&path, "Step 1: the cost of blocking", &machine, &sections).unwrap();

    let report = std::fs::read_to_string(&path).unwrap();
    assert!(
        report.starts_with("# Step 1: the cost of blocking\n"),
        "{report}"
    );
    assert!(
        report.contains("AMD EPYC 7B13, 2 cores, 23.4 GiB, linux x86_64"),
        "{report}"
    );
    assert!(report.contains("## Closed loop\n"), "{report}");
    assert!(report.contains("| blocking, 32 threads |"), "{report}");
    assert!(report.contains("## Plot\n\n![p99](p99.svg)"), "{report}");
}
