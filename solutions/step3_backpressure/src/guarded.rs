//! Upstream calls behind the bulkhead: one call, then the whole product page.
//!
//! The rule is simple and easy to get subtly wrong: take the permit *before*
//! the request starts and hold it until the response is fully read. Released
//! early, the cap limits nothing; never released, the upstream slowly closes
//! to us for good.

use serde::de::DeserializeOwned;
use tokio::sync::OwnedSemaphorePermit;

use crate::bulkhead::Bulkhead;
use crate::error::FetchError;
use crate::fetch::fetch_json;
use crate::product::Product;
use crate::upstream::{Upstream, UpstreamUrls};

// ANCHOR: guarded
/// [`fetch_json`], but only with a permit from `bulkhead`'s compartment for
/// `upstream`, held for the whole call.
///
/// # Errors
///
/// [`FetchError::Overloaded`] if the bulkhead shed the call (it was never
/// sent); otherwise whatever [`fetch_json`] returns.
///
/// # Cancel safety
///
/// Dropping the future at any point cancels the request and returns the
/// permit.
pub async fn fetch_json_guarded<T: DeserializeOwned>(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    bulkhead: &Bulkhead,
    upstream: Upstream,
    product_id: u64,
) -> Result<T, FetchError> {
    // Shed before spending anything: no connection, no bytes on the wire.
    //
    // The name matters. `_permit` lives to the end of this function, so the
    // permit is held across the whole request. `let _ = ...` would drop it on
    // the spot, and the cap would limit nothing at all.
    let _permit = bulkhead.acquire(upstream).await?;

    // Whatever happens next (an answer, an error, a panic, or this future
    // being dropped half-way), `_permit` goes out of scope and its `Drop`
    // gives the permit back. No `release()` call to forget on some path.
    fetch_json(client, urls, upstream, product_id).await
}
// ANCHOR_END: guarded

// ANCHOR: product
/// Fetches the product page with all three calls in flight at once, each
/// holding a permit from its upstream's compartment of `bulkhead`.
///
/// The page is admitted or shed *as a whole, before any call starts*: it
/// first takes all three permits ([`Bulkhead::admit_page`]), and only then
/// sends the three requests. A page that would be shed half-way would have
/// cancelled calls already sent, and a cancelled call still costs the
/// upstream until it notices.
///
/// Each call's permit goes back as soon as *that* call ends: a quick
/// inventory answer frees inventory's permit while pricing is still slow.
///
/// # Errors
///
/// [`FetchError::Overloaded`] if the page could not get every permit within
/// the bulkhead's wait (then nothing was sent); otherwise the first
/// [`FetchError`] to arrive, returned at once: the other calls are then
/// cancelled and their permits returned.
///
/// # Cancel safety
///
/// Dropping the returned future cancels all three calls and returns every
/// permit they held.
pub async fn fetch_product(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    bulkhead: &Bulkhead,
    product_id: u64,
) -> Result<Product, FetchError> {
    // Admission: all three permits, taken in the bulkhead's one fixed order,
    // or none (see `admit_page` for why the order rules out a deadlock).
    let permits = bulkhead.admit_page().await?;

    // The fan-out. Each permit is *moved* into its own call (an owned permit
    // can be), so it comes back when that call ends: a quick inventory
    // answer frees inventory's permit even while pricing is still slow.
    // `try_join!`, not `join!`: the first error ends the page at once, and
    // dropping the other two calls cancels them and returns their permits.
    let (inventory, price, reviews) = tokio::try_join!(
        holding(
            permits.inventory,
            fetch_json(client, urls, Upstream::Inventory, product_id)
        ),
        holding(
            permits.pricing,
            fetch_json(client, urls, Upstream::Pricing, product_id)
        ),
        holding(
            permits.reviews,
            fetch_json(client, urls, Upstream::Reviews, product_id)
        ),
    )?;

    Ok(Product {
        id: product_id,
        inventory,
        price,
        reviews,
    })
}

/// Runs `call` while holding `permit`, and returns the permit when the call
/// ends (or is dropped).
pub async fn holding<T>(permit: OwnedSemaphorePermit, call: impl Future<Output = T>) -> T {
    let _permit = permit;
    call.await
}
// ANCHOR_END: product
