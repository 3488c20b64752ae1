//! One cell of the matrix: a fresh service, one load, and what the upstreams saw.
//!
//! The lab calls the resilient fan-out directly from the load generator, with
//! no HTTP server in front. On a 2-core machine that also runs the three fake
//! upstreams and the load generator, a server hop would cost a fair share of
//! the CPU and blur what this lab is about: how the *upstream* calls behave.
//! Step 4's lab measures the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fake_upstreams::fast::FastUpstream;
use load_lab::report::Row;
use load_lab::{ErrorKind, Plan};
use step6_resilience::{
    Deadline, FetchError, ProductService, Resilience, Upstream, UpstreamUrls, fetch_product_page,
};
use tokio_util::sync::CancellationToken;

/// The product every request asks for.
const PRODUCT_ID: u64 = 42;

/// What the upstreams and the service did during one cell (warm-up included).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Pages asked for.
    pub pages: u64,
    /// Pages served with a section missing.
    pub degraded: u64,
    /// Requests the three upstreams received, hedges included.
    pub upstream_requests: u64,
    /// Requests reviews received.
    pub reviews_requests: u64,
    /// Backups sent by the hedges.
    pub hedges: u64,
}

impl Tally {
    pub fn per_page(&self, count: u64) -> f64 {
        count as f64 / self.pages.max(1) as f64
    }

    /// Hedges as a share of the first attempts (the extra load they cost).
    pub fn hedge_share(&self) -> f64 {
        self.hedges as f64 / self.upstream_requests.saturating_sub(self.hedges).max(1) as f64
    }
}

/// The three fakes the lab runs against.
pub struct Upstreams {
    pub fakes: [FastUpstream; 3],
}

impl Upstreams {
    pub fn urls(&self) -> UpstreamUrls {
        UpstreamUrls {
            inventory: self.fakes[0].base_url(),
            pricing: self.fakes[1].base_url(),
            reviews: self.fakes[2].base_url(),
        }
    }
}

/// Runs one cell: a fresh service (so no breaker or latency state leaks
/// from one cell to the next), the counters reset, the plan run.
pub async fn run_cell(
    upstreams: &Upstreams,
    client: &reqwest::Client,
    resilience: Resilience,
    deadline_budget: Duration,
    plan: &Plan,
    progress: &indicatif::ProgressBar,
    scenario: String,
) -> anyhow::Result<(Row, Tally)> {
    let service = ProductService::new(client.clone(), upstreams.urls(), resilience)?;
    for fake in &upstreams.fakes {
        fake.reset_counters();
    }
    let pages = Arc::new(AtomicU64::new(0));
    let degraded = Arc::new(AtomicU64::new(0));

    let send = {
        let service = service.clone();
        let (pages, degraded) = (Arc::clone(&pages), Arc::clone(&degraded));
        move || {
            let service = service.clone();
            let (pages, degraded) = (Arc::clone(&pages), Arc::clone(&degraded));
            async move {
                pages.fetch_add(1, Ordering::Relaxed);
                let deadline = Deadline::after(deadline_budget);
                // Each page gets its own token; the load generator never
                // cancels it, but dropping the future (at the drain limit)
                // still aborts every spawned call.
                let cancel = CancellationToken::new();
                match fetch_product_page(&service, PRODUCT_ID, deadline, &cancel).await {
                    Ok(page) => {
                        if page.is_degraded() {
                            degraded.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(())
                    }
                    Err(error) => Err(error_kind(&error)),
                }
            }
        }
    };
    let measurement = load_lab::run(plan, progress, send).await;

    let counters = upstreams.fakes.each_ref().map(FastUpstream::counters);
    let tally = Tally {
        pages: pages.load(Ordering::Relaxed),
        degraded: degraded.load(Ordering::Relaxed),
        upstream_requests: counters.iter().map(|c| c.requests).sum(),
        reviews_requests: counters[2].requests,
        hedges: Upstream::ALL
            .iter()
            .filter_map(|&upstream| service.hedge(upstream))
            .map(|hedge| hedge.hedges_sent())
            .sum(),
    };
    let extra = vec![
        (
            "upstream calls/page".to_owned(),
            format!("{:.2}", tally.per_page(tally.upstream_requests)),
        ),
        (
            "reviews calls/page".to_owned(),
            format!("{:.3}", tally.per_page(tally.reviews_requests)),
        ),
        (
            "hedges".to_owned(),
            format!("{:.1}%", 100.0 * tally.hedge_share()),
        ),
        (
            "degraded".to_owned(),
            format!("{:.1}%", 100.0 * tally.per_page(tally.degraded)),
        ),
    ];
    Ok((
        Row {
            scenario,
            measurement,
            extra,
        },
        tally,
    ))
}

/// A short error kind for the table: the status our endpoint would answer,
/// the upstream, and what happened to it, e.g. `502 pricing: status 503`.
fn error_kind(error: &FetchError) -> ErrorKind {
    let cause = match error {
        FetchError::Timeout { .. } => "timeout".to_owned(),
        FetchError::Status { status, .. } => format!("status {status}"),
        FetchError::Transport { .. } => "transport".to_owned(),
        FetchError::Decode { .. } => "decode".to_owned(),
        FetchError::CircuitOpen { .. } => "circuit open".to_owned(),
        FetchError::Cancelled { .. } => "cancelled".to_owned(),
    };
    ErrorKind::new(format!(
        "{} {}: {cause}",
        error.http_status(),
        error.upstream()
    ))
}
