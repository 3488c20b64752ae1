//! What every handler of the edge shares.
//!
//! Given: this whole file; there is nothing to write in it.

use tokio_util::sync::CancellationToken;

use crate::edge::admission::Admission;
use crate::edge::config::{EdgeConfig, EdgeConfigError};
use crate::edge::series::EdgeMetrics;
use crate::service::ProductService;

/// The page's service, the edge's settings, its admission and metrics, and
/// the token that ends every page still running when the server gives up
/// draining.
#[derive(Debug)]
pub struct EdgeState {
    /// The resilient client the page calls its upstreams through.
    pub service: ProductService,
    /// The edge's settings, validated.
    pub config: EdgeConfig,
    /// The in-flight limit of the page route.
    pub admission: Admission,
    /// The edge's metric handles.
    pub metrics: EdgeMetrics,
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
        // Every section call the page makes through this service is timed
        // into the edge's own recorder.
        let service = service.recording_calls(metrics.upstream_calls());
        Ok(EdgeState {
            admission: Admission::new(config.max_in_flight),
            metrics,
            service,
            config,
            shutdown: CancellationToken::new(),
        })
    }
}
