//! The floors, judged on the run's numbers: PASS or MISS, with the numbers.
//!
//! Labs report; they never fail a build. Each line says what was measured,
//! the floor, and whether this run met it, so a reader sees both. A
//! comparison with a cell that answered no page has no numbers to judge,
//! and says so instead of giving a verdict.
//!
//! * **Tail at Scale** (per closed-loop concurrency): with rare stalls,
//!   resilience on cuts the p99 at least 5× for at most 10 % more upstream
//!   calls per page.
//! * **Dead upstream** (per closed-loop concurrency): with reviews dead,
//!   at least 90 % fewer calls to it per page, and a p99 of at most 200 ms.
//! * **Past the knee**: at 1.5× the rate where the p99 first exceeds 200 ms
//!   with resilience off, resilience on keeps its goodput at 90 % of its
//!   peak or more and its answered pages' p99 at 200 ms or less (the
//!   generator's: what a client waited, on a generator whose own lag is
//!   printed), and sheds the rest with a 503 decided in 5 ms or less at the
//!   p99 (the edge's `/metrics`, see [`shed_floor`]).
//! * **Against the minimal fan-out**: everything on, healthy upstreams,
//!   closed loop at 500: at least 0.9× the minimal fan-out's throughput and
//!   at most 1.2× its p99, measured in the same run.
//!
//! Given: this whole file (lab code; there is nothing to write in it).

use load_lab::{Load, Measurement};

use crate::cell::{Cell, Part, Server, millis};
use crate::cpu::CoresUsed;
use crate::matrix::{Mode, Profile};
use crate::scrape::bound_ms;

const TAIL_CUT_FLOOR: f64 = 5.0;
const EXTRA_CALLS_CEILING: f64 = 0.10;
const DEAD_DROP_FLOOR: f64 = 0.90;
/// The module's latency goal, and the dead-upstream and knee p99 ceiling.
pub const P99_GOAL_MS: f64 = 200.0;
/// How far past the knee the overload floor is judged.
pub const PAST_KNEE: f64 = 1.5;
const GOODPUT_FLOOR: f64 = 0.90;
const SHED_P99_CEILING_MS: f64 = 5.0;
/// The concurrency of the comparison with the minimal fan-out.
pub const FLOOR_CONCURRENCY: usize = 500;
const THROUGHPUT_FLOOR: f64 = 0.9;
const P99_RATIO_CEILING: f64 = 1.2;

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

/// The rate where the p99 with resilience off first exceeds the goal (a
/// rate that answered nothing counts as exceeding it), from the sweep.
pub fn knee_rate(cells: &[Cell]) -> Option<f64> {
    let mut off: Vec<(f64, &Cell)> = cells
        .iter()
        .filter(|cell| cell.part == Part::Sweep && cell.server == Server::Edge(Mode::Off))
        .filter_map(|cell| rate_of(cell.load()).map(|rate| (rate, cell)))
        .collect();
    off.sort_by(|a, b| a.0.total_cmp(&b.0));
    off.into_iter()
        .find(|(_, cell)| cell.answered() == 0 || cell.p99_ms() > P99_GOAL_MS)
        .map(|(rate, _)| rate)
}

pub fn rate_of(load: Load) -> Option<f64> {
    match load {
        Load::Open { rate_per_sec, .. } => Some(rate_per_sec),
        Load::Closed { .. } => None,
    }
}

/// Every floor's line, in the order of the module documentation.
pub fn floors(cells: &[Cell], knee: Option<f64>, sweep_ran: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut levels: Vec<usize> = cells
        .iter()
        .filter(|cell| cell.part == Part::Matrix)
        .filter_map(|cell| match cell.load() {
            Load::Closed { concurrency } => Some(concurrency),
            Load::Open { .. } => None,
        })
        .collect();
    levels.dedup();
    let matrix = |profile: Profile, mode: Mode, concurrency: usize| {
        cells.iter().find(|cell| {
            cell.part == Part::Matrix
                && cell.profile == profile
                && cell.server == Server::Edge(mode)
                && cell.load() == Load::Closed { concurrency }
        })
    };
    for &concurrency in &levels {
        if let (Some(off), Some(on)) = (
            matrix(Profile::Stalls, Mode::Off, concurrency),
            matrix(Profile::Stalls, Mode::On, concurrency),
        ) {
            lines.push(tail_at_scale(concurrency, off, on));
        }
    }
    for &concurrency in &levels {
        if let (Some(off), Some(on)) = (
            matrix(Profile::ReviewsDead, Mode::Off, concurrency),
            matrix(Profile::ReviewsDead, Mode::On, concurrency),
        ) {
            lines.push(dead_upstream(concurrency, off, on));
        }
    }
    lines.push(past_the_knee(cells, knee, sweep_ran));
    lines.push(against_minimal(cells));
    lines
}

/// A line for a comparison where a cell answered no page.
fn no_pages(finding: &str, cells: &[(&Cell, &str)]) -> Option<String> {
    let empty: Vec<&str> = cells
        .iter()
        .filter(|(cell, _)| cell.answered() == 0)
        .map(|(_, label)| *label)
        .collect();
    (!empty.is_empty()).then(|| {
        format!(
            "**{finding}:** no verdict: the {} cell answered no page inside its window \
             (make the window longer than the page deadline).",
            empty.join(" and ")
        )
    })
}

fn tail_at_scale(concurrency: usize, off: &Cell, on: &Cell) -> String {
    let finding = format!("Tail at Scale, c={concurrency}");
    if let Some(line) = no_pages(&finding, &[(off, "resilience off"), (on, "resilience on")]) {
        return line;
    }
    let (p99_off, p99_on) = (off.p99_ms(), on.p99_ms());
    let cut = p99_off / p99_on.max(0.001);
    let calls_off = off.tally.per_page(off.tally.upstream_requests);
    let calls_on = on.tally.per_page(on.tally.upstream_requests);
    let extra = calls_on / calls_off.max(f64::MIN_POSITIVE) - 1.0;
    let met = cut >= TAIL_CUT_FLOOR && extra <= EXTRA_CALLS_CEILING;
    format!(
        "**{finding}:** p99 {p99_off:.1} ms → {p99_on:.1} ms ({cut:.1}× lower) for {:+.1}% \
         upstream calls per admitted page ({calls_off:.2} → {calls_on:.2}; hedges {:.1}% of \
         the rest). \
         Floor ≥ {TAIL_CUT_FLOOR}× for ≤ {:.0}%: {}.",
        100.0 * extra,
        100.0 * on.tally.hedge_share(),
        100.0 * EXTRA_CALLS_CEILING,
        verdict(met)
    )
}

fn dead_upstream(concurrency: usize, off: &Cell, on: &Cell) -> String {
    let finding = format!("Dead upstream, c={concurrency}");
    if let Some(line) = no_pages(&finding, &[(off, "resilience off"), (on, "resilience on")]) {
        return line;
    }
    let calls_off = off.tally.per_page(off.tally.reviews_requests);
    let calls_on = on.tally.per_page(on.tally.reviews_requests);
    let drop = 1.0 - calls_on / calls_off.max(f64::MIN_POSITIVE);
    let p99_on = on.p99_ms();
    let met = drop >= DEAD_DROP_FLOOR && p99_on <= P99_GOAL_MS;
    format!(
        "**{finding}:** calls to the dead reviews per admitted page {calls_off:.3} → \
         {calls_on:.4} ({:.1}% fewer, warm-up included); p99 {:.1} ms → {p99_on:.1} ms; {:.1}% \
         of admitted pages served partial. Floor ≥ {:.0}% fewer calls and p99 ≤ {P99_GOAL_MS} ms: {}.",
        100.0 * drop,
        off.p99_ms(),
        100.0 * on.tally.per_page(on.tally.degraded),
        100.0 * DEAD_DROP_FLOOR,
        verdict(met)
    )
}

fn past_the_knee(cells: &[Cell], knee: Option<f64>, sweep_ran: bool) -> String {
    let finding = "Past the knee";
    if !sweep_ran {
        return format!("**{finding}:** no verdict: this run had no open-loop sweep.");
    }
    let Some(knee) = knee else {
        return format!(
            "**{finding}:** no verdict: with resilience off the p99 stayed ≤ {P99_GOAL_MS} ms at \
             every swept rate, so the sweep never reached the knee (add higher `--rates`)."
        );
    };
    let past = |mode: Mode| {
        cells
            .iter()
            .find(|cell| cell.part == Part::PastKnee && cell.server == Server::Edge(mode))
    };
    let (Some(off), Some(on)) = (past(Mode::Off), past(Mode::On)) else {
        return format!("**{finding}:** no verdict: the cells past the knee did not run.");
    };
    let rate = rate_of(on.load()).unwrap_or_default();
    let at_peak = cells
        .iter()
        .filter(|cell| {
            matches!(cell.part, Part::Sweep | Part::PastKnee)
                && cell.server == Server::Edge(Mode::On)
        })
        .max_by(|a, b| a.goodput().total_cmp(&b.goodput()));
    let peak = at_peak.map_or(0.0, Cell::goodput);
    let cores = match (at_peak.and_then(|cell| cell.cores), on.cores) {
        (Some(then), Some(now)) => format!(
            " Where the cores went, resilience on (edge / fakes / the lab's own threads, the \
             generator's among them): {then} at its peak, {now} here."
        ),
        _ => String::new(),
    };
    let goodput = on.goodput();
    let share = goodput / peak.max(f64::MIN_POSITIVE);
    let p99 = on.p99_ms();
    let metrics_p99 = on.edge.and_then(|edge| edge.p99).map_or_else(
        || "none".to_owned(),
        |p99| format!("{:.1}", p99.interpolated * 1e3),
    );
    let (shed_text, shed_met) = shed_floor(on);
    let served_met = on.answered() > 0 && share >= GOODPUT_FLOOR && p99 <= P99_GOAL_MS;
    let judged = match shed_met {
        Some(shed_met) => verdict(served_met && shed_met),
        // A miss elsewhere is a miss whatever the sheds took.
        None if !served_met => verdict(false),
        None => "no verdict (see the shed p99)",
    };
    let note = file_limit_note(&[off, on]);
    format!(
        "**{finding}:** the p99 with resilience off first exceeds {P99_GOAL_MS} ms at {knee} \
         pages/s; at {PAST_KNEE}× that, {rate} pages/s: resilience off answered {:.0} pages/s, \
         p99 {:.1} ms; resilience on answered {goodput:.0} pages/s ({:.0}% of its peak \
         {peak:.0}), p99 {p99:.1} ms at the generator ({metrics_p99} ms in `/metrics`), \
         {shed_text}{cores} Floor: goodput ≥ {:.0}% of peak, answered p99 ≤ {P99_GOAL_MS} ms, \
         shed p99 ≤ {SHED_P99_CEILING_MS} ms: {judged}.{note}",
        off.goodput(),
        off.p99_ms(),
        100.0 * share,
        100.0 * GOODPUT_FLOOR,
    )
}

/// The shed floor's sentence, and whether it is met (`None`: the buckets
/// cannot tell).
///
/// Judged on the edge's own `/metrics`, not on the generator's clock: the
/// floor is about how fast the *edge* refuses (issue 12: "decided in
/// microseconds", before any upstream is called). On a saturated machine
/// the generator's number also holds queues that are not the decision: the
/// generator's own (a shed answer waits for a generator worker to read it
/// like any other) and the edge runtime's, before and after the timed part
/// (a request waits for an edge worker to be accepted and read, and its
/// answer to be written). The generator's number is printed beside it,
/// with how far behind each of those runtimes ran, so the reader sees
/// which queue the difference is.
///
/// The edge's `5xx` buckets also hold pages that failed, so they bound the
/// shed answers' p99 rather than give it ([`quantile_of_part`](crate::scrape::quantile_of_part)):
/// met if even the highest bound is within the ceiling, missed if even the
/// lowest is above it, and no verdict in between.
fn shed_floor(on: &Cell) -> (String, Option<bool>) {
    let ceiling = SHED_P99_CEILING_MS / 1e3;
    let generator = on
        .tally
        .shed_p99_ms
        .map_or_else(|| "none seen".to_owned(), |ms| format!("{ms:.2} ms"));
    let Some(edge) = on.edge else {
        return ("no `/metrics` to judge the sheds by.".to_owned(), None);
    };
    let Some(shed_p99) = edge.shed_p99 else {
        return ("none shed.".to_owned(), Some(true));
    };
    let met = if shed_p99.highest.upper <= ceiling {
        Some(true)
    } else if shed_p99.lowest.lower >= ceiling {
        Some(false)
    } else {
        None
    };
    let mixed = if shed_p99.others > 0.0 {
        format!(
            " (its `5xx` buckets also hold {:.0} failed pages, which the bounds allow for)",
            shed_p99.others
        )
    } else {
        String::new()
    };
    let edge_lag = edge.lag_p99.map_or_else(
        || "an unknown time".to_owned(),
        |lag| format!("({}, {}] ms", bound_ms(lag.lower), bound_ms(lag.upper)),
    );
    (
        format!(
            "{:.0} shed, their 503 p99 in {} by the edge's `/metrics`{mixed}, {generator} by the \
             generator. The floor uses the edge's number: how fast admission decided. The \
             generator's is the client's whole wait, which adds the loopback, the edge's runtime \
             queue before and after the part its histogram times (accepting, reading, writing; \
             the edge's runtime ran {edge_lag} behind at its p99) and the generator's own \
             ({:.1} ms behind at its p99).",
            edge.shed,
            shed_p99.buckets_ms(),
            on.lags.generator.p99_ms,
        ),
        met,
    )
}

/// A warning for a finding whose cells came near the process's file limit
/// (empty if none did).
fn file_limit_note(cells: &[&Cell]) -> String {
    match cells.iter().find(|cell| cell.near_file_limit()) {
        Some(cell) => format!(
            " Careful: the {} cell held {} of the {} file descriptors this process may open, \
             so some of its connections may have failed for the lab's reasons (see \
             `lab/files.rs`; raise `ulimit -n`).",
            cell.row.scenario,
            cell.open_files_peak,
            cell.open_files_limit.unwrap_or_default()
        ),
        None => String::new(),
    }
}

/// Both sides' floor windows added up (they ran one after another).
fn summed<'a>(cells: impl Iterator<Item = &'a Cell>) -> Option<Measurement> {
    let mut total: Option<Measurement> = None;
    for cell in cells {
        let measurement = &cell.row.measurement;
        match &mut total {
            Some(sum) => {
                sum.merge(measurement);
                sum.window += measurement.window;
            }
            None => total = Some(measurement.clone()),
        }
    }
    total
}

/// The throughput ratio of each round of the floor, everything on over the
/// minimal fan-out, in the order they ran. A round is the cells from one
/// minimal cell that follows another (or the first cell) to the next such:
/// minimal, on, off, off, on, minimal; or minimal, on, off with `--quick`.
/// The cells with resilience off are not part of this ratio. It relies on
/// the mirrored order `schedule` builds, and on every floor cell having
/// run (a cell that fails ends the lab).
///
/// The verdict pools every round; these say how far one round's answer
/// strays from another's on this machine, which is what to read a verdict
/// near its floor with.
fn round_ratios(cells: &[Cell]) -> Vec<f64> {
    let mut rounds: Vec<[f64; 2]> = Vec::new();
    let mut previous = None;
    for cell in cells.iter().filter(|cell| cell.part == Part::Floor) {
        let starts_round = rounds.is_empty()
            || (cell.server == Server::Minimal && previous == Some(Server::Minimal));
        if starts_round {
            rounds.push([0.0; 2]);
        }
        previous = Some(cell.server);
        let side = match cell.server {
            Server::Minimal => 0,
            Server::Edge(Mode::On) => 1,
            Server::Edge(Mode::Off) => continue,
        };
        if let Some(round) = rounds.last_mut() {
            round[side] += cell.goodput();
        }
    }
    rounds
        .into_iter()
        .filter(|[minimal, service]| *minimal > 0.0 && *service > 0.0)
        .map(|[minimal, service]| service / minimal)
        .collect()
}

/// The floor's cells with resilience off (the same edge, metrics, logs and
/// page as everything on, without the mechanisms, and with an admission
/// that admits everything), beside the minimal fan-out's (`minimal`, all
/// its floor windows together) and what each side used (`None` if not
/// known). Where the service stands without the mechanisms splits the gap
/// to the minimal fan-out in two: what the edge, its observability and the
/// page's own structure cost, and what the mechanisms and shedding add on
/// top. Empty if those cells did not run or answered nothing.
fn without_mechanisms(
    cells: &[Cell],
    minimal: &Measurement,
    minimal_usage: Option<FloorUsage>,
    on_usage: Option<FloorUsage>,
) -> String {
    let off_cells = cells
        .iter()
        .filter(|cell| cell.part == Part::Floor && cell.server == Server::Edge(Mode::Off));
    let Some(off) = summed(off_cells) else {
        return String::new();
    };
    if off.ok == 0 || minimal.ok == 0 {
        return String::new();
    }
    let cpu = match (minimal_usage, floor_usage(cells, Server::Edge(Mode::Off))) {
        (Some(minimal_usage), Some(off_usage)) => {
            let minimal_us = minimal_usage.edge_us_per_page();
            let off_us = off_usage.edge_us_per_page();
            // The share of everything on's extra CPU per page that is there
            // without the mechanisms, when everything on spent more.
            let share = on_usage
                .map(FloorUsage::edge_us_per_page)
                .filter(|on_us| *on_us > minimal_us)
                .map(|on_us| {
                    format!(
                        ": {:.0}% of everything on's extra CPU per page is there without the \
                         mechanisms",
                        100.0 * (off_us - minimal_us) / (on_us - minimal_us)
                    )
                })
                .unwrap_or_default();
            format!(
                "; its edge's runtime spent {off_us:.0} µs of CPU per answered page ({:.2}× \
                 the minimal fan-out's){share}; {:.2} cores in all",
                off_us / minimal_us.max(f64::MIN_POSITIVE),
                off_usage.cores.total(),
            )
        }
        _ => String::new(),
    };
    let p99 = millis(off.percentile(99.0));
    format!(
        " Resilience off in the same rounds, to split the gap (the same edge, metrics, logs and \
         page; no mechanism, nothing shed; not judged): {:.0} pages/s = {:.2}× the minimal \
         fan-out's, p99 {p99:.1} ms = {:.2}× its{cpu}. The step from the minimal fan-out to \
         there is what the edge, its observability and the page's own structure cost; the \
         step from there to everything on, what the mechanisms and shedding add.",
        off.throughput(),
        off.throughput() / minimal.throughput().max(f64::MIN_POSITIVE),
        p99 / millis(minimal.percentile(99.0)).max(0.001),
    )
}

/// What one side of the floor used, over all its windows together.
#[derive(Debug, Clone, Copy)]
struct FloorUsage {
    /// The cores each runtime used on average.
    cores: CoresUsed,
    /// Pages answered per second.
    pages_per_second: f64,
}

impl FloorUsage {
    /// The CPU the edge's runtime spent per answered page, in microseconds.
    fn edge_us_per_page(self) -> f64 {
        self.cores.edge * 1e6 / self.pages_per_second
    }
}

/// What `server`'s floor cells used, over all their windows together
/// (`None` if any cell's cores are not known, or none ran).
fn floor_usage(cells: &[Cell], server: Server) -> Option<FloorUsage> {
    let mut core_seconds = CoresUsed::default();
    let mut pages = 0.0;
    let mut seconds = 0.0;
    for cell in cells
        .iter()
        .filter(|cell| cell.part == Part::Floor && cell.server == server)
    {
        let window = cell.row.measurement.window.as_secs_f64();
        let cores = cell.cores?;
        core_seconds.edge += cores.edge * window;
        core_seconds.fakes += cores.fakes * window;
        core_seconds.lab += cores.lab * window;
        pages += cell.goodput() * window;
        seconds += window;
    }
    (seconds > 0.0 && pages > 0.0).then(|| {
        let cores = CoresUsed {
            edge: core_seconds.edge / seconds,
            fakes: core_seconds.fakes / seconds,
            lab: core_seconds.lab / seconds,
        };
        FloorUsage {
            cores,
            pages_per_second: pages / seconds,
        }
    })
}

fn against_minimal(cells: &[Cell]) -> String {
    let finding = format!("Against the minimal fan-out, c={FLOOR_CONCURRENCY}");
    let side = |server: Server| {
        summed(
            cells
                .iter()
                .filter(move |cell| cell.part == Part::Floor && cell.server == server),
        )
    };
    let (Some(minimal), Some(service)) = (side(Server::Minimal), side(Server::Edge(Mode::On)))
    else {
        return format!("**{finding}:** no verdict: the floor's cells did not run.");
    };
    if minimal.ok == 0 || service.ok == 0 {
        return format!("**{finding}:** no verdict: a side answered no page.");
    }
    let throughput = service.throughput() / minimal.throughput();
    let (p99_service, p99_minimal) = (
        millis(service.percentile(99.0)),
        millis(minimal.percentile(99.0)),
    );
    let p99 = p99_service / p99_minimal.max(0.001);
    let on_cells = || {
        cells
            .iter()
            .filter(|cell| cell.part == Part::Floor && cell.server == Server::Edge(Mode::On))
    };
    let shed = on_cells().map(|cell| cell.tally.shed).sum::<u64>();
    let pages = on_cells()
        .map(|cell| cell.tally.admitted())
        .sum::<u64>()
        .max(1) as f64;
    let degraded = on_cells().map(|cell| cell.tally.degraded).sum::<u64>() as f64 / pages;
    let reviews = on_cells()
        .map(|cell| cell.tally.reviews_requests)
        .sum::<u64>() as f64
        / pages;
    let met = throughput >= THROUGHPUT_FLOOR && p99 <= P99_RATIO_CEILING;
    let rounds = match round_ratios(cells).as_slice() {
        [] | [_] => String::new(),
        ratios => format!(
            " Everything on, round by round: {} (one machine's spread between rounds, to read \
             the verdict with).",
            ratios
                .iter()
                .map(|ratio| format!("{ratio:.2}×"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // The edge's CPU per answered page on each side, and the cores each
    // side's runtimes used: when both keep the machine busy, the ratio of
    // pages is the inverse ratio of CPU per page, and the edge's share of
    // it says where to look.
    let minimal_usage = floor_usage(cells, Server::Minimal);
    let on_usage = floor_usage(cells, Server::Edge(Mode::On));
    let cpu = match (minimal_usage, on_usage) {
        (Some(minimal), Some(service)) => {
            let (minimal_cpu, service_cpu) =
                (minimal.edge_us_per_page(), service.edge_us_per_page());
            format!(
                " The edge's runtime spent {minimal_cpu:.0} µs of CPU per answered page for the \
                 minimal fan-out and {service_cpu:.0} µs with everything on ({:.2}×). Cores \
                 used on average over each side's windows (edge / fakes / the lab's own threads, \
                 the generator's among them): minimal fan-out {}, {:.2} in all; everything on \
                 {}, {:.2} in all.",
                service_cpu / minimal_cpu.max(f64::MIN_POSITIVE),
                minimal.cores,
                minimal.cores.total(),
                service.cores,
                service.cores.total(),
            )
        }
        _ => String::new(),
    };
    let split = without_mechanisms(cells, &minimal, minimal_usage, on_usage);
    format!(
        "**{finding}:** healthy upstreams, everything on (resilience, admission, metrics, JSON \
         logs into a discarding sink): {:.0} ÷ {:.0} pages/s = {throughput:.2}× (floor ≥ \
         {THROUGHPUT_FLOOR}×); p99 {p99_service:.1} ÷ {p99_minimal:.1} ms = {p99:.2}× (ceiling \
         ≤ {P99_RATIO_CEILING}×); {shed} requests shed; of the pages admitted, {:.1}% served \
         degraded ({reviews:.3} reviews calls per admitted page: a page served without reviews \
         did less work than the minimal fan-out's).{rounds}{cpu} {}.{split}",
        service.throughput(),
        minimal.throughput(),
        100.0 * degraded,
        verdict(met)
    )
}
