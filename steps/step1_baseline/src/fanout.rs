//! The async fan-out, twice: one call after another, then all at once.
//!
//! Async alone does not make anything faster. A sequential version that
//! awaits each call before starting the next still takes the sum of the three
//! latencies; what it gains is that the *thread* is free while it waits. To
//! take only as long as the slowest call, the three calls must be in flight
//! together.
//!
//! Yours to write: the bodies of [`fetch_product_sequential`] and
//! [`fetch_product_concurrent`]. Their signatures and doc comments are given:
//! they are the contract the tests check.

use crate::error::FetchError;
use crate::fetch::fetch_json;
use crate::product::Product;
use crate::upstream::{Upstream, UpstreamUrls};

/// Fetches the product page with async calls, one upstream after another.
///
/// Asks inventory, pricing and reviews once each (in any order), each call
/// sent only after the previous one answered, and merges the answers into a
/// [`Product`] for `product_id`. It takes the *sum* of the three latencies,
/// like the blocking version (a test checks that); what it gains is a free
/// thread while it waits.
///
/// # Errors
///
/// The first [`FetchError`] met, as [`fetch_json`] classified it; later
/// upstreams are then not called (the tests count the requests).
///
/// # Cancel safety
///
/// Dropping the returned future cancels the call in flight, and no later
/// call is made (a test drops it while its first call waits).
///
/// # Send
///
/// The future is `Send`: a test runs it as a spawned task, as the lab's
/// memory experiment does.
pub async fn fetch_product_sequential(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    product_id: u64,
) -> Result<Product, FetchError> {
    todo!("fetch_product_sequential: the three answers, one awaited call after another")
}

/// Fetches the product page with all three upstream calls in flight at once.
///
/// Asks inventory, pricing and reviews once each and merges the answers into
/// a [`Product`] for `product_id`. All three requests are on the wire
/// together, so the whole call takes about as long as the slowest upstream,
/// not the sum (a test tells the slowest call, 500 ms, from the 900 ms of any
/// order that waits for one call before the others, with wide margins).
///
/// # Errors
///
/// The first [`FetchError`] to arrive, returned at once, without waiting for
/// the other calls (in one test they never answer); those are then
/// cancelled, not left running.
///
/// # Cancel safety
///
/// Dropping the returned future, at any point, cancels all three requests:
/// nothing it started may keep running after it is gone.
///
/// # Send
///
/// The future is `Send`: a test runs it as a spawned task on a multi-thread
/// runtime, as the lab's server does.
pub async fn fetch_product_concurrent(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    product_id: u64,
) -> Result<Product, FetchError> {
    todo!("fetch_product_concurrent: three calls in flight at once; the first error ends all")
}
