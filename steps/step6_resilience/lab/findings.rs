//! The two reproductions, read off the matrix: hedging against the tail,
//! and the breaker against a dead upstream.
//!
//! Labs report, they do not pass or fail: each line states the measured
//! numbers and whether they meet the workbook's floor, so a reader sees both.
//! A comparison with a cell that finished no page has no numbers to judge,
//! so it says so instead of giving a verdict.

use load_lab::Load;
use load_lab::report::Row;

use crate::cell::Tally;
use crate::matrix::{Mode, Profile};

/// The workbook's floors for the two reproductions.
const TAIL_CUT_FLOOR: f64 = 5.0;
const HEDGE_COST_CEILING: f64 = 0.10;
const BREAKER_DROP_FLOOR: f64 = 0.90;
const PARTIAL_P99_CEILING_MS: f64 = 200.0;

/// One line per closed-loop concurrency and reproduction.
pub fn findings(results: &[(Profile, Mode, Row, Tally)]) -> Vec<String> {
    let find = |profile: Profile, mode: Mode, concurrency: usize| {
        results.iter().find(|(p, m, row, _)| {
            *p == profile && *m == mode && row.measurement.load == Load::Closed { concurrency }
        })
    };
    let mut levels: Vec<usize> = results
        .iter()
        .filter_map(|(_, _, row, _)| match row.measurement.load {
            Load::Closed { concurrency } => Some(concurrency),
            Load::Open { .. } => None,
        })
        .collect();
    levels.dedup();

    let mut lines = Vec::new();
    for &concurrency in &levels {
        if let (Some(off), Some(on)) = (
            find(Profile::Stalls, Mode::Off, concurrency),
            find(Profile::Stalls, Mode::On, concurrency),
        ) {
            lines.push(tail_at_scale_line(
                &format!("c={concurrency}"),
                &off.2,
                &off.3,
                &on.2,
                &on.3,
            ));
        }
        if let (Some(off), Some(on)) = (
            find(Profile::ReviewsDead, Mode::Off, concurrency),
            find(Profile::ReviewsDead, Mode::On, concurrency),
        ) {
            if let Some(line) = no_pages(&format!("Breaker, c={concurrency}"), &off.2, &on.2) {
                lines.push(line);
                continue;
            }
            let calls_off = off.3.per_page(off.3.reviews_requests);
            let calls_on = on.3.per_page(on.3.reviews_requests);
            let drop = 1.0 - calls_on / calls_off.max(f64::MIN_POSITIVE);
            let p99_on = millis(&on.2, 99.0);
            let met = drop >= BREAKER_DROP_FLOOR && p99_on <= PARTIAL_P99_CEILING_MS;
            lines.push(format!(
                "**Breaker, c={concurrency}:** calls to the dead reviews per page {calls_off:.3} → \
                 {calls_on:.4} ({:.1}% fewer, warm-up included); p99 {:.1} ms → {p99_on:.1} ms; \
                 {:.1}% of pages served partial. Floor ≥ {:.0}% fewer calls and p99 ≤ \
                 {PARTIAL_P99_CEILING_MS} ms: {}.",
                100.0 * drop,
                millis(&off.2, 99.0),
                100.0 * on.3.per_page(on.3.degraded),
                100.0 * BREAKER_DROP_FLOOR,
                verdict(met)
            ));
        }
    }
    for (profile, mode, off, off_tally) in results {
        let Load::Open { rate_per_sec, .. } = off.measurement.load else {
            continue;
        };
        if *profile != Profile::Stalls || *mode != Mode::Off {
            continue;
        }
        let on = results.iter().find(|(p, m, row, _)| {
            *p == Profile::Stalls && *m == Mode::On && row.measurement.load == off.measurement.load
        });
        if let Some((_, _, on, on_tally)) = on {
            lines.push(tail_at_scale_line(
                &format!("{rate_per_sec} pages/s (open loop)"),
                off,
                off_tally,
                on,
                on_tally,
            ));
        }
    }
    lines
}

/// The line for a comparison where a cell finished no page at all (its
/// window was shorter than the page deadline, say): zeros there are not
/// measurements, so no verdict is given.
fn no_pages(finding: &str, off: &Row, on: &Row) -> Option<String> {
    let empty: Vec<&str> = [(off, "resilience off"), (on, "resilience on")]
        .into_iter()
        .filter(|(row, _)| row.measurement.ok == 0)
        .map(|(_, label)| label)
        .collect();
    (!empty.is_empty()).then(|| {
        format!(
            "**{finding}:** no verdict: the {} cell finished no page inside its window \
             (make the window longer than the page deadline).",
            empty.join(" and ")
        )
    })
}

/// One *Tail at Scale* finding: p99 with and without hedging, and the price.
fn tail_at_scale_line(
    load: &str,
    off: &Row,
    off_tally: &Tally,
    on: &Row,
    on_tally: &Tally,
) -> String {
    if let Some(line) = no_pages(&format!("Tail at Scale, {load}"), off, on) {
        return line;
    }
    let p99_off = millis(off, 99.0);
    let p99_on = millis(on, 99.0);
    let cut = p99_off / p99_on.max(0.001);
    // Extra load: upstream calls per page, on against off.
    let extra = on_tally.per_page(on_tally.upstream_requests)
        / off_tally
            .per_page(off_tally.upstream_requests)
            .max(f64::MIN_POSITIVE)
        - 1.0;
    let met = cut >= TAIL_CUT_FLOOR && extra <= HEDGE_COST_CEILING;
    format!(
        "**Tail at Scale, {load}:** p99 {p99_off:.1} ms → {p99_on:.1} ms ({cut:.1}× lower) for \
         {:+.1}% upstream calls per page (hedges: {:.1}% of first attempts). Floor ≥ \
         {TAIL_CUT_FLOOR}× for ≤ {:.0}%: {}.",
        100.0 * extra,
        100.0 * on_tally.hedge_share(),
        100.0 * HEDGE_COST_CEILING,
        verdict(met)
    )
}

fn millis(row: &Row, percentile: f64) -> f64 {
    row.measurement.percentile(percentile).as_secs_f64() * 1000.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
