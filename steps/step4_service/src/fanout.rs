//! The fan-out behind `GET /products/{id}`: three observed calls at once,
//! all spending from one deadline.
//!
//! This is steps 1–3 in one function: `try_join!` overlaps the calls (step
//! 1), every call gives up at the request's deadline (step 2), and every call
//! first takes a permit from its upstream's bulkhead (step 3). New here: each
//! call runs inside [`observe_upstream_call`], which gives it a span and
//! records its metrics.

use tokio::time::Instant;

use crate::error::FetchError;
use crate::fetch::fetch_upstream;
use crate::product::Product;
use crate::state::AppState;
use crate::telemetry::observe_upstream_call;
use crate::upstream::Upstream;

/// This step makes one attempt per upstream. The span still records the
/// attempt number, so adding step 2's retries later changes no dashboard.
pub const FIRST_ATTEMPT: u32 = 1;

/// Fetches the product page, all three upstream calls in flight at once.
///
/// # Errors
///
/// The first [`FetchError`] to arrive; the other calls are then dropped
/// (cancelled), and their spans say so.
///
/// # Cancel safety
///
/// Dropping the future cancels all three calls.
pub async fn fetch_product(
    state: &AppState,
    product_id: u64,
    deadline: Instant,
) -> Result<Product, FetchError> {
    let (inventory, price, reviews) = tokio::try_join!(
        observe_upstream_call(
            state.upstream_metrics.of(Upstream::Inventory),
            Upstream::Inventory,
            FIRST_ATTEMPT,
            fetch_upstream(state, Upstream::Inventory, product_id, deadline),
        ),
        observe_upstream_call(
            state.upstream_metrics.of(Upstream::Pricing),
            Upstream::Pricing,
            FIRST_ATTEMPT,
            fetch_upstream(state, Upstream::Pricing, product_id, deadline),
        ),
        observe_upstream_call(
            state.upstream_metrics.of(Upstream::Reviews),
            Upstream::Reviews,
            FIRST_ATTEMPT,
            fetch_upstream(state, Upstream::Reviews, product_id, deadline),
        ),
    )?;

    Ok(Product {
        id: product_id,
        inventory,
        price,
        reviews,
    })
}
