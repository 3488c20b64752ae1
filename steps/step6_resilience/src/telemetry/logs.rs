//! The JSON log layer the binary installs (and the lab measures).
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step4_service/src/telemetry/logs.rs`.

use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;

/// The `target` of the spans kept out of the log: the module that makes
/// them, this crate's `telemetry::observe` (a span's target is the module
/// path of the code that opened it, and cargo names the crate being built
/// in `CARGO_CRATE_NAME`).
const PER_CALL_SPANS_TARGET: &str = concat!(env!("CARGO_CRATE_NAME"), "::telemetry::observe");

/// One JSON line per event, with the spans it happened in, except the
/// spans of upstream calls.
///
/// Those are the spans `telemetry::observe` opens: one per upstream call
/// (`upstream_call`) and, in step 6, one per HTTP request inside a call
/// (`upstream_attempt`: the first, each retry, each hedge's backup). They
/// are told apart by the module that makes them rather than by name, so
/// this file is the same in both steps, and a span that module adds later
/// is left out too. Events are kept wherever they are written, those
/// inside a call included; they show the spans around them that are kept.
///
/// Why a log has no place for them. A log is read by request: an operator
/// has a request id, or an error, and wants the lines about it. The
/// request's span carries the id onto every line written inside it, and
/// the line written when an upstream call fails carries its upstream,
/// outcome and error in its own fields. What the per-call spans add is
/// *where the time went*: which calls overlapped, which attempt was
/// retried, which backup won. That is a trace, and lines of text are a
/// poor way to draw one: the spans go whole to whoever draws traces (step
/// 6's OTLP exporter, the tests' capturing layers), and the latency of
/// every call, by upstream and outcome, is in the metrics. Nor are they
/// free here: the JSON formatter keeps each span's fields as a JSON string
/// and, each time a field is recorded, parses that string and writes it
/// again (`JsonFields::add_fields` in tracing-subscriber), for spans that
/// at the `info` level hold no line at all in a healthy request. A request
/// makes three calls, and in step 6 each call one HTTP request or more,
/// each with a span of its own.
///
/// The filter looks only at a span's metadata, so `tracing` decides it
/// once per call site and caches the answer: a span left out costs this
/// layer nothing afterwards.
pub fn json_logs<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        // The span list holds the current span too; both would repeat it.
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(writer)
        .with_filter(filter_fn(|metadata| !is_per_call_span(metadata)))
}

/// Whether `metadata` is a span of one upstream call or of one request
/// inside it (see [`json_logs`]).
fn is_per_call_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target() == PER_CALL_SPANS_TARGET
}
