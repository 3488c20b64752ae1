//! What every handler of the edge shares.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step6_resilience/src/edge/state.rs`.

use tokio_util::sync::CancellationToken;

use crate::edge::admission::{Admission, LatencyLimit};
use crate::edge::config::{EdgeConfig, EdgeConfigError};
use crate::edge::series::EdgeMetrics;
use crate::service::ProductService;
use crate::telemetry::RuntimeLag;

/// The page's service, the edge's settings, its admission and metrics, and
/// the token that ends every page still running when the server gives up
/// draining.
#[derive(Debug)]
pub struct EdgeState {
    /// The resilient client the page calls its upstreams through.
    pub service: ProductService,
    /// The edge's settings, validated.
    pub config: EdgeConfig,
    /// The page route's admission: the lag rule and the in-flight limit.
    pub admission: Admission,
    /// The edge's metric handles.
    pub metrics: EdgeMetrics,
    /// How far behind its schedule the serving runtime runs: written by the
    /// heartbeat that [`serve`](crate::edge::serve()) runs, read by
    /// admission and by the service's breakers.
    pub runtime_lag: RuntimeLag,
    /// Handed to every page; cancelled once, when shutdown stops waiting.
    pub shutdown: CancellationToken,
}

impl EdgeState {
    /// The edge for `service` with `config`.
    ///
    /// # Errors
    ///
    /// An [`EdgeConfigError`] if a setting cannot work.
    pub fn new(service: ProductService, config: EdgeConfig) -> Result<Self, EdgeConfigError> {
        let config = config.validate()?;
        let metrics = EdgeMetrics::register(&service);
        let runtime_lag = RuntimeLag::new();
        // Every section call the page makes through this service is timed
        // into the edge's own recorder, and its breakers judge timeouts
        // knowing whether our own runtime was keeping up.
        let service = service
            .recording_calls(metrics.upstream_calls())
            .watching_runtime(runtime_lag.clone());
        Ok(EdgeState {
            admission: Admission::new(
                config.max_in_flight,
                config.latency_target.map(|target| {
                    LatencyLimit::new(target, config.min_in_flight, config.max_in_flight)
                }),
                runtime_lag.clone(),
                config.max_runtime_lag,
            ),
            metrics,
            runtime_lag,
            service,
            config,
            shutdown: CancellationToken::new(),
        })
    }
}
