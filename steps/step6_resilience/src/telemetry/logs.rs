//! The JSON log layer the binary installs (and the lab measures).
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step4_service/src/telemetry/logs.rs`.

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;

use super::observe::UPSTREAM_SPAN;

/// One JSON line per event, with every span it happened in.
///
/// Upstream call spans are kept out of this layer on purpose. The JSON
/// formatter stores a span's fields as a JSON string and, each time a field
/// is recorded, parses that string and writes it again: three recordings
/// per call, three calls per request, for spans that at the `info` level
/// contain no log line at all. Spans are for traces (an OpenTelemetry layer
/// would still see them, as the tests' capturing layer does); the log lines
/// written about an upstream call carry its fields themselves.
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
        .with_filter(filter_fn(|metadata| metadata.name() != UPSTREAM_SPAN))
}
