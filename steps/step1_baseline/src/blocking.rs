//! The baseline: one OS thread per request, one upstream call after another.
//!
//! This is how a classic thread-pool server works. While a call waits on the
//! network, its thread can do nothing else: it is parked, holding its stack.
//! Thirty-two threads can therefore wait on at most thirty-two requests,
//! however idle the CPU is.
//!
//! Yours to write: the body of [`fetch_product_blocking`]. Its signature and
//! doc comment are given: they are the contract the tests check.

use crate::error::FetchError;
use crate::fetch::fetch_json_blocking;
use crate::product::Product;
use crate::upstream::{Upstream, UpstreamUrls};

/// Fetches the product page with blocking calls, one upstream after another.
///
/// Asks inventory, pricing and reviews once each (in any order), each call
/// sent only after the previous one answered, and merges the three answers
/// into a [`Product`] for `product_id`. It takes the sum of the three
/// latencies: that is the baseline the lab measures.
///
/// Call this from a plain thread, never from async code: it parks the calling
/// thread for the whole time, and `reqwest::blocking` panics if used inside a
/// tokio runtime.
///
/// # Errors
///
/// The first [`FetchError`] met, as [`fetch_json_blocking`] classified it;
/// later upstreams are then not called (the tests count the requests).
pub fn fetch_product_blocking(
    client: &reqwest::blocking::Client,
    urls: &UpstreamUrls,
    product_id: u64,
) -> Result<Product, FetchError> {
    todo!("fetch_product_blocking: the three answers, one blocking call after another")
}
