//! The async fan-out, twice: one call after another, then all at once.
//!
//! Async alone does not make anything faster. `fetch_product_sequential`
//! awaits each call before starting the next, so it still takes the sum of
//! the three latencies; what it gains is that the *thread* is free while it
//! waits. `fetch_product_concurrent` starts all three calls and waits for them
//! together, so it takes about as long as the slowest one.

use crate::error::FetchError;
use crate::fetch::fetch_json;
use crate::product::Product;
use crate::upstream::{Upstream, UpstreamUrls};

// ANCHOR: sequential
/// Fetches the product page with async calls, one upstream after another.
///
/// # Errors
///
/// The first [`FetchError`] met; later upstreams are then not called.
///
/// # Cancel safety
///
/// Dropping the returned future cancels the call in flight, and no later
/// call is made.
pub async fn fetch_product_sequential(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    product_id: u64,
) -> Result<Product, FetchError> {
    let inventory = fetch_json(client, urls, Upstream::Inventory, product_id).await?;
    let price = fetch_json(client, urls, Upstream::Pricing, product_id).await?;
    let reviews = fetch_json(client, urls, Upstream::Reviews, product_id).await?;

    Ok(Product {
        id: product_id,
        inventory,
        price,
        reviews,
    })
}
// ANCHOR_END: sequential

// ANCHOR: concurrent
/// Fetches the product page with all three upstream calls in flight at once.
///
/// # Errors
///
/// The first [`FetchError`] to arrive, returned at once. `try_join!` then
/// drops the other two futures, which cancels their requests: nobody waits
/// for answers that can no longer be used.
///
/// # Cancel safety
///
/// Dropping the returned future cancels all three requests.
pub async fn fetch_product_concurrent(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    product_id: u64,
) -> Result<Product, FetchError> {
    // Creating a future does not start it. `try_join!` polls all three in the
    // same task, so their requests overlap, and returns when all have
    // succeeded or as soon as one fails. The task has one waker: whichever
    // socket becomes ready, the task is woken and `try_join!` polls every
    // branch that has not finished yet. Cheap for three; for thousands of
    // futures, `FuturesUnordered` polls only the ones that were woken.
    let (inventory, price, reviews) = tokio::try_join!(
        fetch_json(client, urls, Upstream::Inventory, product_id),
        fetch_json(client, urls, Upstream::Pricing, product_id),
        fetch_json(client, urls, Upstream::Reviews, product_id),
    )?;

    Ok(Product {
        id: product_id,
        inventory,
        price,
        reviews,
    })
}
// ANCHOR_END: concurrent
