//! A small `tracing` layer that remembers every span once it has closed:
//! its name, its fields' last values, and which span it was opened inside.
//!
//! Step 4's tests have a capturing layer too (`tests/support/capture.rs`);
//! this one keeps what step 6's tests ask that one does not: each span's
//! parent. tracing's own span ids cannot say it once spans have closed: the
//! registry's ids are unique only among the spans open at one time, and it
//! does reuse a closed span's id (its documentation, `Registry`'s "Span
//! IDs"). So each span gets a number of its own here,
//! [`ClosedSpan::number`], and remembers its parent's.
//!
//! Installed per test with `tracing::subscriber::set_default`, which makes
//! it the subscriber of the current thread only: parallel tests do not mix
//! their spans, and a test that uses it runs on tokio's current-thread
//! runtime, so the tasks it spawns run on that thread too.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// A span that has closed, as it was when it closed.
#[derive(Debug, Clone)]
pub struct ClosedSpan {
    /// The span's name, e.g. `upstream_call`.
    pub name: &'static str,
    /// This span's number, unique within its capture.
    pub number: u64,
    /// The number of the span it was opened inside, if any.
    pub parent: Option<u64>,
    /// Field name → last recorded value, as text (`"reviews"`, `"2"`).
    pub fields: BTreeMap<String, String>,
}

impl ClosedSpan {
    /// The field's value as text, if it was recorded.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// What one test captured; cheap to clone (shared inside).
#[derive(Debug, Clone, Default)]
pub struct SpanCapture {
    closed: Arc<Mutex<Vec<ClosedSpan>>>,
    numbers: Arc<AtomicU64>,
}

impl SpanCapture {
    /// A subscriber that records into this capture.
    pub fn subscriber(&self) -> impl Subscriber + Send + Sync + 'static {
        tracing_subscriber::registry().with(CaptureLayer {
            capture: self.clone(),
        })
    }

    /// Every span closed so far, in the order they closed.
    pub fn closed(&self) -> Vec<ClosedSpan> {
        self.closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The spans named `name` closed so far.
    pub fn named(&self, name: &str) -> Vec<ClosedSpan> {
        self.closed()
            .into_iter()
            .filter(|span| span.name == name)
            .collect()
    }
}

/// A live span's number, parent and fields, kept in its extensions.
#[derive(Debug)]
struct Live {
    number: u64,
    parent: Option<u64>,
    fields: Fields,
}

/// Fields as text. Numbers come through `record_debug`, whose default the
/// other `record_*` methods fall back to, so `2` reads `"2"`.
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
    capture: SpanCapture,
}

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|parent| parent.extensions().get::<Live>().map(|live| live.number));
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(Live {
            number: self.capture.numbers.fetch_add(1, Ordering::Relaxed),
            parent,
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(live) = span.extensions_mut().get_mut::<Live>()
        {
            values.record(&mut live.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(live) = extensions.get::<Live>() else {
            return;
        };
        let closed = ClosedSpan {
            name: span.name(),
            number: live.number,
            parent: live.parent,
            fields: live.fields.0.clone(),
        };
        self.capture
            .closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(closed);
    }
}
