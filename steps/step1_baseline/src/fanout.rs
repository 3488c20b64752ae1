//! The async fan-out, twice: one call after another, then all at once.
//!
//! Async alone does not make anything faster. A sequential version that
//! awaits each call before starting the next still takes the sum of the three
//! latencies; what it gains is that the *thread* is free while it waits. To
//! take only as long as the slowest call, the three calls must be in flight
//! together.

use crate::error::FetchError;
use crate::fetch::fetch_json;
use crate::product::Product;
use crate::upstream::{Upstream, UpstreamUrls};

/// Fetches the product page with async calls, one upstream after another.
///
/// # Errors
///
/// The first [`FetchError`] met; later upstreams are then not called.
pub async fn fetch_product_sequential(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    product_id: u64,
) -> Result<Product, FetchError> {
    // TODO: like `fetch_product_blocking`, with `fetch_json(..).await?` for
    // each upstream in turn.
    todo!("fetch_product_sequential: three awaited calls, one after another")
}

/// Fetches the product page with all three upstream calls in flight at once.
///
/// # Errors
///
/// The first [`FetchError`] to arrive, returned at once, without waiting for
/// the other calls; those are then cancelled, not left running.
///
/// # Cancel safety
///
/// Dropping the returned future cancels all three requests.
pub async fn fetch_product_concurrent(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    product_id: u64,
) -> Result<Product, FetchError> {
    // TODO: create the three `fetch_json(..)` futures *without* awaiting them
    // one by one, and wait for all of them together with `tokio::try_join!`,
    // which also stops at the first error.
    todo!("fetch_product_concurrent: three calls in flight at once")
}
