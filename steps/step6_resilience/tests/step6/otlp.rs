//! Part "otlp", only with the cargo feature `otlp`: the spans of your page
//! reach an OpenTelemetry collector.
//!
//! ```text
//! cargo test -p step6_resilience --features otlp --test step6 otlp
//! ```
//!
//! The exporter (`src/telemetry/otlp.rs`) is given; what this checks is the
//! promise the binary makes with `--otlp-endpoint`: every upstream call of a
//! page, fetched by your `fetch_product_page`, arrives at the collector as an
//! `upstream_call` span, and shutting the exporter down sends what is still
//! queued. A fake collector stands in for a real one: an axum route on
//! loopback that takes OTLP/HTTP's `POST /v1/traces` and decodes each
//! protobuf body with the OTLP message types.
//!
//! The exporter's layer is installed for this test only (`set_default`, on
//! this thread), not as the process's subscriber. So the test runs on the
//! current-thread runtime: the tasks your page spawns run on this thread and
//! their spans reach the layer. Real sockets, so real time; nothing waits a
//! fixed time, because the exporter's shutdown returns only once the
//! collector has answered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use fake_upstreams::testing::within_time_limit;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use step6_resilience::telemetry::{OtlpExport, UPSTREAM_SPAN};
use step6_resilience::{Deadline, Resilience, Upstream, fetch_product_page};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::common::{Fakes, PRODUCT_ID, healthy};

/// What the fake collector has received.
#[derive(Debug, Default)]
struct Received {
    /// Every span of every export request, in arrival order.
    spans: Vec<Span>,
    /// Requests it could not take, and why (a wrong content type, a body
    /// that is not an OTLP trace export).
    refused: Vec<String>,
}

/// A fake OpenTelemetry collector: OTLP/HTTP's trace route on loopback,
/// served by this test's runtime until the test ends.
struct FakeCollector {
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeCollector {
    async fn start() -> FakeCollector {
        let received = Arc::new(Mutex::new(Received::default()));
        let router = axum::Router::new()
            .route("/v1/traces", post(take_export))
            .with_state(Arc::clone(&received));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeCollector {
            addr,
            received,
            server,
        }
    }

    /// The base URL, as `--otlp-endpoint` takes it.
    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `upstream_call` spans received so far, by the `upstream` attribute.
    fn upstream_calls(&self, upstream: Upstream) -> Vec<Span> {
        let received = self.received.lock().unwrap();
        received
            .spans
            .iter()
            .filter(|span| span.name == UPSTREAM_SPAN)
            .filter(|span| string_attribute(span, "upstream") == Some(upstream.name()))
            .cloned()
            .collect()
    }
}

impl Drop for FakeCollector {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The collector's handler: decodes one export request and keeps its spans.
/// It answers as a collector does when it took everything: `200` with an
/// empty `ExportTraceServiceResponse`, which encodes to no bytes at all.
async fn take_export(
    State(received): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let protobuf = [(header::CONTENT_TYPE, "application/x-protobuf")];
    let content_type = headers.get(header::CONTENT_TYPE);
    let mut received = received.lock().unwrap();
    if content_type.is_none_or(|value| value != "application/x-protobuf") {
        received
            .refused
            .push(format!("content type {content_type:?}"));
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, protobuf, Vec::new());
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(export) => {
            let spans = export
                .resource_spans
                .into_iter()
                .flat_map(|resource| resource.scope_spans)
                .flat_map(|scope| scope.spans);
            received.spans.extend(spans);
            (StatusCode::OK, protobuf, Vec::new())
        }
        Err(error) => {
            received.refused.push(format!("undecodable body: {error}"));
            (StatusCode::BAD_REQUEST, protobuf, Vec::new())
        }
    }
}

/// The string value of the span's attribute `key`, if it has one.
fn string_attribute<'span>(span: &'span Span, key: &str) -> Option<&'span str> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
        .and_then(|value| match value {
            Value::StringValue(text) => Some(text.as_str()),
            _ => None,
        })
}

/// Every upstream call of a page reaches the collector as an `upstream_call` span, sent at the exporter's shutdown.
#[tokio::test]
async fn every_upstream_call_of_a_page_reaches_the_collector_as_a_span() {
    within_time_limit(async {
        let collector = FakeCollector::start().await;
        let fakes = Fakes::start(healthy(), healthy(), healthy()).await;
        let service = fakes.service(Resilience::off());
        let export = OtlpExport::start(&collector.endpoint(), "step6-test")
            .expect("the exporter starts for an http:// endpoint");

        // The layer sees the spans made on this thread while the guard lives:
        // the page's, and those of the tasks it spawns.
        let subscriber = tracing_subscriber::registry().with(export.layer());
        let guard = tracing::subscriber::set_default(subscriber);
        let page = fetch_product_page(
            &service,
            PRODUCT_ID,
            Deadline::after(Duration::from_secs(5)),
            &CancellationToken::new(),
        )
        .await;
        drop(guard);
        // The batch processor sends every few seconds; shutting down sends
        // what is still queued, and returns once the collector has answered.
        export
            .shutdown()
            .await
            .expect("the collector takes every span at shutdown");

        let page = page.expect("every upstream answers");
        assert!(page.degraded.is_empty(), "nothing failed, got {page:?}");
        let refused = collector.received.lock().unwrap().refused.clone();
        assert!(
            refused.is_empty(),
            "the collector refused what it was sent: {refused:?}"
        );
        for upstream in [Upstream::Inventory, Upstream::Pricing, Upstream::Reviews] {
            let calls = collector.upstream_calls(upstream);
            assert!(
                !calls.is_empty(),
                "the collector got no `{UPSTREAM_SPAN}` span for {}: is every section fetched through `ProductService::fetch`, and did the page finish before it returned?",
                upstream.name()
            );
            assert!(
                calls
                    .iter()
                    .any(|span| string_attribute(span, "outcome") == Some("ok")),
                "the {} call answered, so one of its spans has outcome `ok`: {calls:?}",
                upstream.name()
            );
        }
    })
    .await;
}
