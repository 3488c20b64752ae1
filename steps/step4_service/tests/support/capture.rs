//! A small `tracing` layer that remembers spans and events, so tests can
//! assert on them.
//!
//! Installed per test with `tracing::subscriber::set_default`, which makes
//! it the subscriber of the current thread only: parallel tests do not mix
//! their spans. (`with_test_writer` would capture formatted text, and miss
//! other threads; asserting on structured fields is sturdier.)
//!
//! It keeps every span's fields in the span's extensions as they are
//! recorded, copies them out when the span closes, and for each event keeps
//! the names and fields of every span it happened inside.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// A span that has closed, with the last value of each of its fields.
#[derive(Debug, Clone)]
pub struct CapturedSpan {
    /// The span's name, e.g. `upstream_call`.
    pub name: &'static str,
    /// Field name → value as text (`"200"`, `"ok"`).
    pub fields: BTreeMap<String, String>,
}

impl CapturedSpan {
    /// The field's value as text, if it was recorded.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A log line: its level, target, message and own fields, and the fields of
/// the spans it was written in (innermost wins when two share a name).
#[derive(Debug, Clone)]
pub struct CapturedEvent {
    /// `INFO`, `WARN`, ...
    pub level: Level,
    /// The module that wrote it, e.g. `step4_service::telemetry`.
    pub target: String,
    /// The `message` field.
    pub message: String,
    /// The event's own fields, `message` excepted.
    pub fields: BTreeMap<String, String>,
    /// Fields of every enclosing span.
    pub scope: BTreeMap<String, String>,
    /// The names of the enclosing spans, outermost first.
    pub span_names: Vec<&'static str>,
}

impl CapturedEvent {
    /// The value of a field of an enclosing span.
    pub fn field_in_scope(&self, name: &str) -> Option<&str> {
        self.scope.get(name).map(String::as_str)
    }

    /// Whether the event was written inside a span named `name`.
    pub fn is_inside(&self, name: &str) -> bool {
        self.span_names.contains(&name)
    }

    /// The value of one of the event's own fields.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// What one test captured; cheap to clone (shared inside).
#[derive(Debug, Clone, Default)]
pub struct Captured {
    spans: Arc<Mutex<Vec<CapturedSpan>>>,
    events: Arc<Mutex<Vec<CapturedEvent>>>,
}

impl Captured {
    /// A subscriber that records into this capture.
    pub fn subscriber(&self) -> impl Subscriber + Send + Sync + 'static {
        tracing_subscriber::registry().with(CaptureLayer {
            captured: self.clone(),
        })
    }

    /// Every span closed so far.
    pub fn closed_spans(&self) -> Vec<CapturedSpan> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The fields of a live span, kept in its extensions.
#[derive(Debug, Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

struct CaptureLayer {
    captured: Captured,
}

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut scope = BTreeMap::new();
        let mut span_names = Vec::new();
        if let Some(spans) = ctx.event_scope(event) {
            // From the root inwards, so the innermost value wins.
            for span in spans.from_root() {
                span_names.push(span.name());
                if let Some(fields) = span.extensions().get::<Fields>() {
                    scope.extend(fields.0.clone());
                }
            }
        }
        let mut own = Fields::default();
        event.record(&mut own);
        let message = own.0.remove("message").unwrap_or_default();
        self.captured
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(CapturedEvent {
                level: *event.metadata().level(),
                target: event.metadata().target().to_owned(),
                message,
                fields: own.0,
                scope,
                span_names,
            });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            let fields = span
                .extensions()
                .get::<Fields>()
                .map(|fields| fields.0.clone())
                .unwrap_or_default();
            self.captured
                .spans
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(CapturedSpan {
                    name: span.name(),
                    fields,
                });
        }
    }
}
