//! The fan-out behind `GET /products/{id}`: admit the page, then three
//! upstream calls at once, all spending from one deadline.
//!
//! This is steps 1–3 in one function: `try_join!` overlaps the calls and
//! fails fast (step 1); every call retries with jitter inside the request's
//! deadline, each attempt getting `min(attempt_timeout, remaining -
//! margin)` (step 2); and the page is admitted whole or shed whole by the
//! per-upstream bulkheads before anything is sent (step 3, without the
//! wait). New here: every attempt runs inside
//! [`observe_upstream_call`](crate::observe_upstream_call), which gives it a
//! span and records its metrics.
//!
//! Given: this whole file; there is nothing to write in it.

use serde::de::DeserializeOwned;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::error::FetchError;
use crate::product::Product;
use crate::retry::call_with_retries;
use crate::state::AppState;
use crate::telemetry::Outcome;
use crate::upstream::Upstream;

/// Fetches the product page, all three upstream calls in flight at once.
///
/// # Errors
///
/// [`FetchError::Overloaded`] if any upstream's bulkhead is full (then no
/// call was sent); otherwise the first [`FetchError`] to arrive, after
/// which the other calls are dropped (cancelled), and their spans say so.
///
/// # Cancel safety
///
/// Dropping the future cancels all three calls and returns their permits.
pub async fn fetch_product(
    state: &AppState,
    product_id: u64,
    deadline: Instant,
) -> Result<Product, FetchError> {
    let permits = state.bulkheads.try_admit_page().inspect_err(|shed| {
        // Counted against the upstream that was full; the page's other
        // calls were never made, so they are not counted at all.
        let upstream = shed.upstream();
        state.upstream_metrics[upstream]
            .calls(Outcome::of_error(shed))
            .increment(1);
        tracing::warn!(upstream = upstream.name(), "bulkhead full: request shed");
    })?;

    let page = Page {
        state,
        product_id,
        deadline,
    };
    let (inventory, price, reviews) = tokio::try_join!(
        page.section(Upstream::Inventory, permits.inventory),
        page.section(Upstream::Pricing, permits.pricing),
        page.section(Upstream::Reviews, permits.reviews),
    )?;

    Ok(Product {
        id: product_id,
        inventory,
        price,
        reviews,
    })
}

/// What the three calls of one page share: the service, the product and the
/// deadline. Only the upstream and its permit differ from call to call.
struct Page<'a> {
    state: &'a AppState,
    product_id: u64,
    deadline: Instant,
}

impl Page<'_> {
    /// One section of the page: `upstream`'s retried calls, run while
    /// holding `permit`. The permit comes back when this ends, or is
    /// dropped, so a quick upstream's permit is free again while a slow
    /// sibling is still running.
    async fn section<T: DeserializeOwned>(
        &self,
        upstream: Upstream,
        permit: OwnedSemaphorePermit,
    ) -> Result<T, FetchError> {
        let _permit = permit;
        call_with_retries(self.state, upstream, self.product_id, self.deadline).await
    }
}
