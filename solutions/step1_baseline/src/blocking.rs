//! The baseline: one OS thread per request, one upstream call after another.
//!
//! This is how a classic thread-pool server works. While a call waits on the
//! network, its thread can do nothing else: it is parked, holding its stack.
//! Thirty-two threads can therefore wait on at most thirty-two requests,
//! however idle the CPU is.

use crate::error::FetchError;
use crate::fetch::fetch_json_blocking;
use crate::product::Product;
use crate::upstream::{Upstream, UpstreamUrls};

// ANCHOR: blocking
/// Fetches the product page with blocking calls, one upstream after another.
///
/// Call this from a plain thread, never from async code: it parks the calling
/// thread for the whole time, and `reqwest::blocking` panics if used inside a
/// tokio runtime.
///
/// # Errors
///
/// The first [`FetchError`] met; later upstreams are then not called.
pub fn fetch_product_blocking(
    client: &reqwest::blocking::Client,
    urls: &UpstreamUrls,
    product_id: u64,
) -> Result<Product, FetchError> {
    // Each line parks this thread until that upstream answers: the total
    // time is the *sum* of the three latencies.
    let inventory = fetch_json_blocking(client, urls, Upstream::Inventory, product_id)?;
    let price = fetch_json_blocking(client, urls, Upstream::Pricing, product_id)?;
    let reviews = fetch_json_blocking(client, urls, Upstream::Reviews, product_id)?;

    Ok(Product {
        id: product_id,
        inventory,
        price,
        reviews,
    })
}
// ANCHOR_END: blocking
