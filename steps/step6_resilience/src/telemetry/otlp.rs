//! Spans to an OpenTelemetry collector over OTLP/HTTP: the exporter behind
//! `product-page --otlp-endpoint URL`, compiled only with the cargo feature
//! `otlp`.
//!
//! The spans are the ones `tracing` already makes: a `request` span per
//! request, an `upstream_call` span per section call and an
//! `upstream_attempt` span per HTTP request inside it ([`observe`]), which
//! the JSON log layer leaves out. [`OtlpExport::layer`] hands them to a
//! second consumer,
//! `tracing-opentelemetry`'s layer, which turns each closed span into an
//! OpenTelemetry span. The SDK's batch processor queues it, and a thread of
//! the SDK's own posts the queue to `<endpoint>/v1/traces` as protobuf. So a
//! request never waits for the collector: when the queue is full, spans are
//! dropped (the SDK logs a warning), and nothing blocks.
//!
//! Without the feature nothing of OpenTelemetry is compiled, and
//! [`OtlpExport::start`] fails with [`OtlpError::NotBuiltIn`], whose message
//! says how to rebuild. With it, the binary starts an exporter only when it
//! is given an endpoint; without one, nothing is exported.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! [`observe`]: super::observe

/// The instrumentation scope the spans are reported under.
#[cfg(feature = "otlp")]
const SCOPE: &str = "step6_resilience";

/// Why the exporter did not start, or did not flush.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// This build has no exporter: it was compiled without the feature `otlp`.
    #[error(
        "this build has no OTLP exporter: rebuild with the cargo feature `otlp` \
         (for example `cargo run -p step6_resilience --features otlp --bin product-page -- --otlp-endpoint {endpoint}`), \
         or leave out --otlp-endpoint and OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    NotBuiltIn {
        /// The endpoint that was asked for.
        endpoint: String,
    },
    /// The endpoint is not a plain-HTTP URL. The exporter sends with the
    /// workspace's reqwest, which is built without TLS.
    #[error(
        "the OTLP endpoint {endpoint:?} is not an http:// URL: this build sends without TLS; \
         give the base URL of a collector's OTLP/HTTP receiver, such as http://127.0.0.1:4318"
    )]
    NotPlainHttp {
        /// The endpoint that was asked for.
        endpoint: String,
    },
    /// The exporter could not be built.
    #[cfg(feature = "otlp")]
    #[error("building the OTLP exporter")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The spans still queued could not all be sent at shutdown.
    #[cfg(feature = "otlp")]
    #[error("sending the spans still queued to the collector")]
    Shutdown(#[from] opentelemetry_sdk::error::OTelSdkError),
}

/// A running exporter. Give [`OtlpExport::layer`] to the subscriber, and
/// call [`OtlpExport::shutdown`] before the process ends, or the spans
/// still queued are lost.
#[derive(Debug)]
pub struct OtlpExport {
    #[cfg(feature = "otlp")]
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
    /// Without the feature there is no exporter, so no value of this type.
    #[cfg(not(feature = "otlp"))]
    never: std::convert::Infallible,
}

#[cfg(feature = "otlp")]
impl OtlpExport {
    /// Starts an exporter that sends spans to the collector whose OTLP/HTTP
    /// receiver has the base URL `endpoint` (as `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// means it: spans go to `<endpoint>/v1/traces`), as the service
    /// `service_name`. The SDK's other `OTEL_*` variables (headers, timeout,
    /// batch sizes) still apply.
    ///
    /// Nothing is sent yet: the first batch leaves once spans close.
    ///
    /// # Errors
    ///
    /// [`OtlpError::NotPlainHttp`] for an endpoint that is not `http://`;
    /// [`OtlpError::Build`] if the SDK refuses the configuration.
    pub fn start(endpoint: &str, service_name: &'static str) -> Result<OtlpExport, OtlpError> {
        use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _};
        use opentelemetry_sdk::Resource;
        use opentelemetry_sdk::trace::SdkTracerProvider;

        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url(endpoint)?)
            .build()?;
        // A batch processor, not a simple one: the simple processor exports
        // each span as it ends, on the thread that ended it, which would put
        // a collector's round trip inside every request.
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service_name).build())
            .build();
        Ok(OtlpExport { provider })
    }

    /// The layer that feeds this exporter: add it to the subscriber beside
    /// the log layer. Every span it sees is exported when it closes.
    pub fn layer<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        use opentelemetry::trace::TracerProvider as _;

        tracing_opentelemetry::layer().with_tracer(self.provider.tracer(SCOPE))
    }

    /// Sends the spans still queued and stops the exporter.
    ///
    /// # Errors
    ///
    /// [`OtlpError::Shutdown`] if the collector did not take them all within
    /// the SDK's shutdown timeout (5 s).
    pub async fn shutdown(self) -> Result<(), OtlpError> {
        // The SDK's shutdown blocks its caller until the export thread has
        // sent what is queued. On the blocking pool, that wait stalls no
        // runtime worker (one of which may be serving the collector).
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match flushed {
            Ok(result) => Ok(result?),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // The runtime is shutting down: nothing is left to wait for.
            Err(_) => Ok(()),
        }
    }
}

#[cfg(not(feature = "otlp"))]
impl OtlpExport {
    /// Fails: this build has no exporter (see [`OtlpError::NotBuiltIn`]).
    ///
    /// # Errors
    ///
    /// Always [`OtlpError::NotBuiltIn`].
    pub fn start(endpoint: &str, _service_name: &'static str) -> Result<OtlpExport, OtlpError> {
        Err(OtlpError::NotBuiltIn {
            endpoint: endpoint.to_owned(),
        })
    }

    /// Never called: no `OtlpExport` exists without the feature.
    pub fn layer(&self) -> tracing_subscriber::layer::Identity {
        match self.never {}
    }

    /// Never called: no `OtlpExport` exists without the feature.
    ///
    /// # Errors
    ///
    /// None: there is nothing to flush.
    pub async fn shutdown(self) -> Result<(), OtlpError> {
        match self.never {}
    }
}

/// Where spans are posted: `endpoint` is a collector's OTLP/HTTP base URL,
/// to which the traces path is appended (as the OpenTelemetry specification
/// says for `OTEL_EXPORTER_OTLP_ENDPOINT`).
#[cfg(feature = "otlp")]
fn traces_url(endpoint: &str) -> Result<String, OtlpError> {
    if !endpoint.starts_with("http://") {
        return Err(OtlpError::NotPlainHttp {
            endpoint: endpoint.to_owned(),
        });
    }
    Ok(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
}
