//! A waterfall of the slowest sampled requests, drawn from the run's spans.
//!
//! [`WaterfallLayer`] is a `tracing` layer. While the lab tells it which
//! scenario is being measured ([`Waterfall::record_as`]), it samples one
//! request in [`SAMPLE_EVERY`] at the edge (the `request` span the edge's
//! `TraceLayer` opens, which carries the request id) and, for those, times
//! every span below it that is an upstream call (`upstream_call`, one
//! section through breaker and hedge) or one HTTP attempt inside a call
//! (`upstream_attempt`: a retry or a hedge's backup), with the `outcome` each
//! span records when it ends. A call or attempt whose future is dropped ends
//! with outcome `cancelled`: the hedge's loser, or a section the page no
//! longer needed. When a sampled request's span closes, the request is kept
//! if it is among the [`KEEP`] slowest of its scenario so far.
//!
//! [`render_svg`] draws the kept requests one under another on a shared time
//! axis (milliseconds from each request's start): the request as a grey bar,
//! each upstream call as a row, its attempts as thinner rows beneath it, all
//! coloured by outcome. Hovering a bar shows its numbers.
//!
//! A call's span is a child of its request's only if the section runs
//! inside the request's span. Sections run in tasks of their own, and a
//! spawned task does not inherit the span it was spawned from unless it is
//! instrumented with it. A call span with no request span above it is
//! therefore sampled as a trace of its own: the waterfall then shows the
//! slowest section calls, each with its attempts, instead of the slowest
//! requests, and says so (a request traced without any call below it is
//! counted, not drawn).
//!
//! Given: this whole file (lab code; there is nothing to write in it).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use step6_resilience::telemetry::{UPSTREAM_ATTEMPT_SPAN, UPSTREAM_SPAN};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

/// The edge's request span (`edge::routes::request_span`).
pub const REQUEST_SPAN: &str = "request";
/// One request in this many is traced: enough to catch the rare stalled
/// page, cheap enough not to move the numbers it is drawn beside.
pub const SAMPLE_EVERY: u64 = 4;
/// Requests kept per scenario, the slowest.
pub const KEEP: usize = 8;

/// The recorder the lab steers, and the layer it installs.
#[derive(Clone)]
pub struct Waterfall {
    shared: Arc<Shared>,
}

/// Not recording.
const OFF: usize = usize::MAX;

struct Shared {
    /// Index into `scenarios` of the one being measured, or [`OFF`].
    recording: AtomicUsize,
    /// Turns for requests and for calls traced on their own, kept apart: one
    /// shared count would sample the same kind of span at every turn when
    /// a page opens exactly [`SAMPLE_EVERY`] of them.
    request_turns: AtomicU64,
    call_turns: AtomicU64,
    scenarios: Mutex<Vec<Scenario>>,
}

/// The slowest sampled requests of one scenario.
pub struct Scenario {
    /// What was measured, e.g. `1% 1s stalls, resilience on, c=50`.
    pub label: String,
    /// The kept requests, slowest first once [`Waterfall::scenarios`] returns.
    pub requests: Vec<TracedRequest>,
    /// Sampled traces with at least one upstream span (kept or not).
    pub sampled: u64,
    /// Sampled requests with no upstream span below their request span
    /// (not drawn).
    pub without_calls: u64,
}

/// One sampled request (or a section call with no request span above it),
/// as its spans told it.
#[derive(Debug, Clone)]
pub struct TracedRequest {
    /// `request <id>`, or `<upstream> call` for a call traced on its own.
    pub label: String,
    /// From the request span's opening to the last time it was left.
    pub took: Duration,
    /// Its upstream calls and attempts, offsets from the request's start.
    pub bars: Vec<Bar>,
}

/// One upstream call or attempt.
#[derive(Debug, Clone)]
pub struct Bar {
    /// A call, or an attempt inside the call `parent`.
    pub kind: BarKind,
    /// The span's id, so attempts can be drawn under their call.
    pub span: u64,
    /// For an attempt, its call's span id.
    pub parent: Option<u64>,
    pub upstream: String,
    /// The attempt number, if the span recorded one.
    pub attempt: Option<u64>,
    /// Why the attempt was sent (`first`, `retry`, `hedge`), if recorded.
    pub attempt_kind: Option<String>,
    pub outcome: String,
    pub start: Duration,
    pub end: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    Call,
    Attempt,
}

/// What a sampled request's span carries while it is open.
struct RequestTrace {
    scenario: usize,
    label: String,
    opened: Instant,
    last_left: Mutex<Instant>,
    bars: Mutex<Vec<Bar>>,
}

/// What an upstream call's or attempt's span carries while it is open.
struct Timed {
    kind: BarKind,
    opened: Instant,
    fields: Fields,
}

/// The fields this layer reads, whichever span they are on.
#[derive(Default)]
struct Fields {
    request_id: Option<String>,
    upstream: Option<String>,
    attempt: Option<u64>,
    kind: Option<String>,
    outcome: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "attempt" {
            self.attempt = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "attempt" {
            self.attempt = u64::try_from(value).ok();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field, format!("{value:?}"));
    }
}

impl Fields {
    fn set(&mut self, field: &Field, value: String) {
        match field.name() {
            "request_id" => self.request_id = Some(value),
            "upstream" => self.upstream = Some(value),
            "outcome" => self.outcome = Some(value),
            "kind" => self.kind = Some(value),
            "attempt" => self.attempt = value.parse().ok(),
            _ => {}
        }
    }
}

impl Waterfall {
    /// A recorder that records nothing until [`record_as`](Self::record_as).
    pub fn new() -> Waterfall {
        Waterfall {
            shared: Arc::new(Shared {
                recording: AtomicUsize::new(OFF),
                request_turns: AtomicU64::new(0),
                call_turns: AtomicU64::new(0),
                scenarios: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The layer to install.
    pub fn layer(&self) -> WaterfallLayer {
        WaterfallLayer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The layer's own filter (see [`DrawnSpans`]).
    pub fn filter(&self) -> DrawnSpans {
        DrawnSpans {
            shared: Arc::clone(&self.shared),
        }
    }

    /// From now on, sampled requests are kept under `label` (a scenario
    /// seen before keeps adding to its own list).
    pub fn record_as(&self, label: &str) {
        let mut scenarios = self.shared.scenarios.lock().expect("not poisoned");
        let index = match scenarios.iter().position(|s| s.label == label) {
            Some(index) => index,
            None => {
                scenarios.push(Scenario {
                    label: label.to_owned(),
                    requests: Vec::new(),
                    sampled: 0,
                    without_calls: 0,
                });
                scenarios.len() - 1
            }
        };
        self.shared.recording.store(index, Ordering::Relaxed);
    }

    /// Stops sampling new requests (those already sampled still finish).
    pub fn pause(&self) {
        self.shared.recording.store(OFF, Ordering::Relaxed);
    }

    /// Every scenario recorded, its requests slowest first.
    pub fn scenarios(&self) -> Vec<Scenario> {
        let mut scenarios =
            std::mem::take(&mut *self.shared.scenarios.lock().expect("not poisoned"));
        for scenario in &mut scenarios {
            scenario
                .requests
                .sort_by_key(|request| std::cmp::Reverse(request.took));
        }
        scenarios
    }
}

/// See the module documentation.
pub struct WaterfallLayer {
    shared: Arc<Shared>,
}

impl WaterfallLayer {
    /// Keeps `request` if it is among the slowest of its scenario.
    fn offer(&self, scenario: usize, request: TracedRequest) {
        let mut scenarios = self.shared.scenarios.lock().expect("not poisoned");
        let Some(scenario) = scenarios.get_mut(scenario) else {
            return;
        };
        if request.bars.is_empty() {
            scenario.without_calls += 1;
            return;
        }
        scenario.sampled += 1;
        if scenario.requests.len() < KEEP {
            scenario.requests.push(request);
            return;
        }
        if let Some((fastest, kept)) = scenario
            .requests
            .iter()
            .enumerate()
            .min_by_key(|(_, kept)| kept.took)
            && request.took > kept.took
        {
            scenario.requests[fastest] = request;
        }
    }
}

impl WaterfallLayer {
    /// The scenario being recorded, if this is the one sampled span in
    /// [`SAMPLE_EVERY`] of its kind.
    fn sample(&self, turns: &AtomicU64) -> Option<usize> {
        let scenario = self.shared.recording.load(Ordering::Relaxed);
        let turn = turns.fetch_add(1, Ordering::Relaxed);
        (scenario != OFF && turn.is_multiple_of(SAMPLE_EVERY)).then_some(scenario)
    }
}

impl<S> tracing_subscriber::Layer<S> for WaterfallLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let name = attrs.metadata().name();
        let mut fields = Fields::default();
        let now = Instant::now();
        if name == REQUEST_SPAN {
            let Some(scenario) = self.sample(&self.shared.request_turns) else {
                return;
            };
            attrs.record(&mut fields);
            let request_id = fields.request_id.unwrap_or_else(|| "-".to_owned());
            span.extensions_mut().insert(RequestTrace::new(
                scenario,
                format!("request {request_id}"),
                now,
            ));
            return;
        }
        let traced = span
            .scope()
            .skip(1)
            .any(|ancestor| ancestor.extensions().get::<RequestTrace>().is_some());
        let kind = if name == UPSTREAM_ATTEMPT_SPAN {
            BarKind::Attempt
        } else {
            BarKind::Call
        };
        let root = !traced
            && kind == BarKind::Call
            && !span
                .scope()
                .skip(1)
                .any(|ancestor| ancestor.name() == REQUEST_SPAN);
        if !traced && !root {
            return;
        }
        attrs.record(&mut fields);
        let mut extensions = span.extensions_mut();
        if root {
            // A call with no request above it: a trace of its own.
            let Some(scenario) = self.sample(&self.shared.call_turns) else {
                return;
            };
            let upstream = fields.upstream.as_deref().unwrap_or("?");
            extensions.insert(RequestTrace::new(scenario, format!("{upstream} call"), now));
        }
        extensions.insert(Timed {
            kind,
            opened: now,
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(timed) = span.extensions_mut().get_mut::<Timed>() {
            values.record(&mut timed.fields);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(request) = span.extensions().get::<RequestTrace>() {
            *request.last_left.lock().expect("not poisoned") = Instant::now();
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let closed = Instant::now();
        let (own_trace, timed) = {
            let mut extensions = span.extensions_mut();
            (
                extensions.remove::<RequestTrace>(),
                extensions.remove::<Timed>(),
            )
        };
        if let Some(timed) = timed {
            let parent = (timed.kind == BarKind::Attempt)
                .then(|| {
                    span.scope()
                        .skip(1)
                        .find(|ancestor| ancestor.name() == UPSTREAM_SPAN)
                        .map(|call| call.id().into_u64())
                })
                .flatten();
            let bar = |opened: Instant| Bar {
                kind: timed.kind,
                span: id.into_u64(),
                parent,
                upstream: timed
                    .fields
                    .upstream
                    .clone()
                    .unwrap_or_else(|| "?".to_owned()),
                attempt: timed.fields.attempt,
                attempt_kind: timed.fields.kind.clone(),
                outcome: timed
                    .fields
                    .outcome
                    .clone()
                    .unwrap_or_else(|| "unknown".to_owned()),
                start: timed.opened.saturating_duration_since(opened),
                end: closed.saturating_duration_since(opened),
            };
            match &own_trace {
                Some(trace) => {
                    let bar = bar(trace.opened);
                    trace.bars.lock().expect("not poisoned").push(bar);
                }
                None => {
                    if let Some(ancestor) = span
                        .scope()
                        .skip(1)
                        .find(|ancestor| ancestor.extensions().get::<RequestTrace>().is_some())
                    {
                        let extensions = ancestor.extensions();
                        if let Some(trace) = extensions.get::<RequestTrace>() {
                            let bar = bar(trace.opened);
                            trace.bars.lock().expect("not poisoned").push(bar);
                        }
                    }
                }
            }
        }
        if let Some(trace) = own_trace {
            let last_left = *trace.last_left.lock().expect("not poisoned");
            let traced = TracedRequest {
                label: trace.label,
                took: last_left.saturating_duration_since(trace.opened),
                bars: trace.bars.into_inner().expect("not poisoned"),
            };
            self.offer(trace.scenario, traced);
        }
    }
}

impl RequestTrace {
    fn new(scenario: usize, label: String, opened: Instant) -> RequestTrace {
        RequestTrace {
            scenario,
            label,
            opened,
            last_left: Mutex::new(opened),
            bars: Mutex::new(Vec::new()),
        }
    }
}

/// The layer's own filter: the three kinds of span it draws, and only
/// while a scenario is being recorded. So it neither sees the log events
/// nor depends on `RUST_LOG`, and outside the recorded windows it enables
/// nothing the service's own logs would not: the floor's cells measure the
/// service, not this layer.
pub struct DrawnSpans {
    shared: Arc<Shared>,
}

fn is_drawn(metadata: &Metadata<'_>) -> bool {
    metadata.is_span()
        && [REQUEST_SPAN, UPSTREAM_SPAN, UPSTREAM_ATTEMPT_SPAN].contains(&metadata.name())
}

impl<S> Filter<S> for DrawnSpans {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        is_drawn(metadata) && self.shared.recording.load(Ordering::Relaxed) != OFF
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        // Asked again for every span of a drawn kind (recording comes and
        // goes); never for anything else.
        if is_drawn(metadata) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }
}

/// An outcome's colour, and the legend's order.
const COLOURS: [(&str, &str); 9] = [
    ("ok", "#2e7d32"),
    ("cancelled", "#9e9e9e"),
    ("timeout", "#ef6c00"),
    ("5xx", "#c62828"),
    ("4xx", "#ad1457"),
    ("transport", "#6d4c41"),
    ("decode", "#8d6e63"),
    ("circuit_open", "#6a1b9a"),
    ("other", "#546e7a"),
];

fn colour(outcome: &str) -> &'static str {
    COLOURS
        .iter()
        .find(|(name, _)| *name == outcome)
        .map_or(COLOURS[COLOURS.len() - 1].1, |(_, colour)| colour)
}

const WIDTH: f64 = 1100.0;
const LABEL_WIDTH: f64 = 250.0;
const RIGHT_MARGIN: f64 = 30.0;
const ROW: f64 = 18.0;
const GAP: f64 = 12.0;
const TOP: f64 = 92.0;

/// The waterfall of `scenario` as an SVG document.
pub fn render_svg(title: &str, scenario: &Scenario) -> String {
    let requests = &scenario.requests;
    let longest = requests
        .iter()
        .flat_map(|request| {
            std::iter::once(request.took).chain(request.bars.iter().map(|bar| bar.end))
        })
        .max()
        .unwrap_or(Duration::from_millis(1))
        .as_secs_f64()
        * 1e3;
    let step = tick_step(longest);
    let axis_end = (longest / step).ceil().max(1.0) * step;
    let plot = WIDTH - LABEL_WIDTH - RIGHT_MARGIN;
    let x = |ms: f64| LABEL_WIDTH + plot * ms / axis_end;

    let rows: usize = requests.iter().map(|request| 1 + request.bars.len()).sum();
    let height = TOP + rows as f64 * ROW + requests.len() as f64 * GAP + 40.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="10" y="42" fill="#555">{} slowest of {} sampled {} (1 in {SAMPLE_EVERY}); time from each one's start, ms</text>"##,
        requests.len(),
        scenario.sampled,
        if requests
            .iter()
            .all(|request| request.label.starts_with("request "))
        {
            "requests"
        } else {
            "traces (a section call with no request span above it is a trace of its own)"
        }
    );
    legend(&mut svg, 10.0, 62.0);

    // The axis and its grid.
    let bottom = height - 30.0;
    let mut tick = 0.0;
    while tick <= axis_end + step / 2.0 {
        let at = x(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{at:.1}" y1="{:.1}" x2="{at:.1}" y2="{bottom:.1}" stroke="#e0e0e0"/><text x="{at:.1}" y="{:.1}" text-anchor="middle" fill="#555">{tick}</text>"##,
            TOP - 8.0,
            TOP - 12.0,
        );
        tick += step;
    }

    let mut y = TOP;
    for request in requests {
        let took = request.took.as_secs_f64() * 1e3;
        let _ = writeln!(
            svg,
            r##"<text x="10" y="{:.1}" font-weight="bold">{} · {took:.1} ms</text><rect x="{:.1}" y="{:.1}" width="{:.1}" height="6" fill="#424242"><title>{}: {took:.1} ms</title></rect>"##,
            y + 12.0,
            escape(&short_label(&request.label)),
            x(0.0),
            y + 6.0,
            (x(took) - x(0.0)).max(1.0),
            escape(&request.label),
        );
        y += ROW;
        for bar in ordered(&request.bars) {
            let (label, indent, thickness) = match bar.kind {
                BarKind::Call => (format!("{} call", bar.upstream), 20.0, 12.0),
                BarKind::Attempt => (
                    match (bar.attempt, &bar.attempt_kind) {
                        (Some(number), Some(kind)) => format!("attempt {number} · {kind}"),
                        (Some(number), None) => format!("attempt {number}"),
                        (None, _) => "attempt".to_owned(),
                    },
                    40.0,
                    8.0,
                ),
            };
            let start = bar.start.as_secs_f64() * 1e3;
            let end = bar.end.as_secs_f64() * 1e3;
            let _ = writeln!(
                svg,
                r#"<text x="{indent}" y="{:.1}">{} <tspan fill="{}">{}</tspan></text><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{thickness}" fill="{}" rx="2"><title>{} {}: {}, {start:.1}–{end:.1} ms</title></rect>"#,
                y + 12.0,
                escape(&label),
                colour(&bar.outcome),
                escape(&bar.outcome),
                x(start),
                y + (ROW - thickness) / 2.0,
                (x(end) - x(start)).max(1.5),
                colour(&bar.outcome),
                escape(&bar.upstream),
                escape(&label),
                escape(&bar.outcome),
            );
            y += ROW;
        }
        y += GAP;
    }
    if requests.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{:.1}">no sampled request in this scenario</text>"#,
            TOP + 14.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// `request 1b4e28ba-2fa1-…` shortened to its first 8 id characters.
fn short_label(label: &str) -> String {
    match label.strip_prefix("request ") {
        Some(id) => format!("request {}", id.chars().take(8).collect::<String>()),
        None => label.to_owned(),
    }
}

/// Calls by start, each followed by its attempts by start; attempts whose
/// call was not seen come last.
fn ordered(bars: &[Bar]) -> Vec<&Bar> {
    let mut calls: Vec<&Bar> = bars
        .iter()
        .filter(|bar| bar.kind == BarKind::Call)
        .collect();
    calls.sort_by_key(|bar| bar.start);
    let mut attempts: Vec<&Bar> = bars
        .iter()
        .filter(|bar| bar.kind == BarKind::Attempt)
        .collect();
    attempts.sort_by_key(|bar| bar.start);
    let mut ordered = Vec::with_capacity(bars.len());
    for call in calls {
        ordered.push(call);
        ordered.extend(attempts.iter().filter(|a| a.parent == Some(call.span)));
    }
    let placed: Vec<u64> = ordered.iter().map(|bar| bar.span).collect();
    ordered.extend(attempts.into_iter().filter(|a| !placed.contains(&a.span)));
    ordered
}

fn legend(svg: &mut String, mut x: f64, y: f64) {
    for (name, colour) in COLOURS {
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{colour}" rx="2"/><text x="{:.1}" y="{y:.1}">{name}</text>"#,
            y - 10.0,
            x + 16.0,
        );
        x += 26.0 + 7.5 * name.len() as f64;
    }
}

/// A round step for about eight ticks over `span_ms`.
fn tick_step(span_ms: f64) -> f64 {
    let raw = (span_ms / 8.0).max(0.1);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
