//! What every handler shares: one HTTP client, the configuration, the
//! bulkheads and the metrics (the handle that renders them, and the
//! handles the code records into).
//!
//! Built once at start-up and handed to axum as `State<Arc<AppState>>`.
//! The `reqwest::Client` is the important part: it owns the connection pool,
//! so building one per request would pay a TCP handshake on every call.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step4_service/src/state.rs`.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ConfigError, ServiceConfig};
use crate::error::FetchError;
use crate::per_upstream::PerUpstream;
use crate::telemetry::{ServiceMetrics, UpstreamMetrics};
use crate::upstream::Upstream;

/// The state every request handler sees.
#[derive(Debug)]
pub struct AppState {
    /// One client for the whole service: its pool keeps connections warm.
    pub client: reqwest::Client,
    /// The checked configuration.
    pub config: ServiceConfig,
    /// One cap per upstream (step 3's bulkhead and page admission, without
    /// the wait).
    pub bulkheads: Bulkheads,
    /// Renders the Prometheus text for `GET /metrics`.
    pub metrics: PrometheusHandle,
    /// Each upstream's metric handles, registered once:
    /// `upstream_metrics[upstream]`.
    pub upstream_metrics: PerUpstream<UpstreamMetrics>,
    /// The service-wide metric handles (request latency, bulkhead and
    /// runtime gauges, event-loop lag), registered once.
    pub service_metrics: ServiceMetrics,
}

impl AppState {
    /// Checks `config` and builds the shared state around it.
    ///
    /// `metrics` is the handle of whichever Prometheus recorder records this
    /// service's metrics: the global one in the binary, a test's own in tests.
    /// The series are registered here, with the recorder current now, so
    /// call this after installing it.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if the configuration cannot work.
    pub fn new(config: ServiceConfig, metrics: PrometheusHandle) -> Result<Arc<Self>, ConfigError> {
        config.validate()?;
        let client = reqwest::Client::builder()
            // System proxies apply even to 127.0.0.1; upstreams are called directly.
            .no_proxy()
            .build()
            .expect("a reqwest client without TLS or proxies always builds");
        Ok(Arc::new(Self {
            client,
            bulkheads: Bulkheads::new(config.max_in_flight_per_upstream),
            config,
            metrics,
            upstream_metrics: PerUpstream::from_fn(UpstreamMetrics::register),
            service_metrics: ServiceMetrics::register(),
        }))
    }

    /// Every metric, in Prometheus' text format, with the gauges that are
    /// sampled rather than kept up to date brought up to now first: each
    /// bulkhead's permits in use and size, and the runtime's health (of
    /// the runtime this is called on, if any).
    ///
    /// Sampling at scrape time costs the hot path nothing and cannot
    /// drift: the semaphores and the runtime already know these numbers.
    pub fn render_metrics(&self) -> String {
        let gauges = &self.service_metrics;
        for upstream in [Upstream::Inventory, Upstream::Pricing, Upstream::Reviews] {
            gauges.permits_in_use[upstream].set(self.bulkheads.permits_in_use(upstream) as f64);
            gauges.permits_max[upstream].set(self.bulkheads.size() as f64);
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            crate::telemetry::sample_runtime(&self.service_metrics, &runtime.metrics());
        }
        self.metrics.render()
    }
}

/// A semaphore per upstream: at most `cap` calls to each in flight.
///
/// Step 3's bulkhead, with its page admission, minus the wait: a service
/// with a 200 ms budget has no time to queue, so a page that cannot have
/// all three permits *now* is shed at once.
#[derive(Debug)]
pub struct Bulkheads {
    /// One semaphore per upstream, in an `Arc` so that a permit can be
    /// owned (and moved into the call it covers).
    semaphores: PerUpstream<Arc<Semaphore>>,
    /// Permits per upstream, in all.
    size: usize,
}

/// One permit per upstream, taken together for one product page.
///
/// Each is owned, so the fan-out can move it into its own call and give it
/// back as soon as that call ends.
#[derive(Debug)]
pub struct PagePermits {
    /// Held by the inventory call.
    pub inventory: OwnedSemaphorePermit,
    /// Held by the pricing call.
    pub pricing: OwnedSemaphorePermit,
    /// Held by the reviews call.
    pub reviews: OwnedSemaphorePermit,
}

impl Bulkheads {
    fn new(cap: usize) -> Self {
        Self {
            semaphores: PerUpstream::from_fn(|_| Arc::new(Semaphore::new(cap))),
            size: cap,
        }
    }

    /// How many permits each upstream's bulkhead has in all.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many of `upstream`'s permits are held right now.
    pub fn permits_in_use(&self, upstream: Upstream) -> usize {
        self.size
            .saturating_sub(self.semaphores[upstream].available_permits())
    }

    /// Takes a permit for one call to `upstream`, or refuses at once.
    ///
    /// # Errors
    ///
    /// [`FetchError::Overloaded`] if the upstream's cap is reached.
    pub fn try_acquire(&self, upstream: Upstream) -> Result<OwnedSemaphorePermit, FetchError> {
        Arc::clone(&self.semaphores[upstream])
            .try_acquire_owned()
            .map_err(|_| FetchError::Overloaded { upstream })
    }

    /// Admits a whole page (a permit from each upstream) or none of it.
    ///
    /// All or nothing *without waiting*: a permit already taken is never
    /// held while waiting for another (the hold-and-wait that can deadlock
    /// two pages in step 3), because nothing here waits at all. If one
    /// upstream is full, the permits taken so far are dropped, which returns
    /// them, and no call of the page is sent.
    ///
    /// # Errors
    ///
    /// [`FetchError::Overloaded`] naming the first full upstream.
    pub fn try_admit_page(&self) -> Result<PagePermits, FetchError> {
        Ok(PagePermits {
            inventory: self.try_acquire(Upstream::Inventory)?,
            pricing: self.try_acquire(Upstream::Pricing)?,
            reviews: self.try_acquire(Upstream::Reviews)?,
        })
    }
}
