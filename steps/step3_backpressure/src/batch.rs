//! Bounded fan-out for a batch: many products, a fixed number at a time.
//!
//! A page that lists 200 products must not start 200 × 3 upstream calls at
//! once. `fetch_many` keeps at most `concurrency` products in flight, and
//! the bulkhead below it still caps each upstream: two limits for two
//! questions ("how much of *this batch* runs at once" and "how much does
//! *any one upstream* get from this whole process").
//!
//! Yours to write: [`fetch_many`].

use std::num::NonZeroUsize;

use crate::bulkhead::Bulkhead;
use crate::error::FetchError;
use crate::guarded::fetch_product;
use crate::product::Product;
use crate::upstream::UpstreamUrls;

/// Fetches every product in `product_ids`, at most `concurrency` at a time,
/// and returns one result per id, in the order of `product_ids`.
///
/// The next product starts no later than when the oldest product in flight
/// is done: the batch is a window sliding along the ids, not a series of
/// groups that each wait for their slowest member.
///
/// One product failing does not fail the batch: its slot holds its error,
/// and the caller decides (show the rest, retry that one, give up).
/// `concurrency` is a [`NonZeroUsize`] because a batch with room for zero
/// products in flight would never finish: the type rules it out.
///
/// # Cancel safety
///
/// Dropping the returned future cancels every product still in flight and
/// returns their permits; products not started yet are never started.
pub async fn fetch_many(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    bulkhead: &Bulkhead,
    product_ids: &[u64],
    concurrency: NonZeroUsize,
) -> Vec<Result<Product, FetchError>> {
    todo!("fetch_many: every product, at most `concurrency` at a time, results in input order")
}
