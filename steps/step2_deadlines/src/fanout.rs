//! The product page: three upstreams, one deadline.
//!
//! Yours to write: the body of [`fetch_product`]. Its signature and doc
//! comment are given: they are the contract the tests check.

use crate::deadline::Deadline;
use crate::error::FetchError;
use crate::fetch::fetch_with_retry;
use crate::policy::RetryPolicy;
use crate::product::Product;
use crate::upstream::{Upstream, UpstreamUrls};

/// Fetches the product page: all three upstreams at once, each retried as
/// `policy` allows, all inside the one `deadline`.
///
/// Create the deadline at the edge, where the request arrives
/// (`Deadline::after(policy.budget())`), and pass it in: the three calls and
/// all their retries spend from that same budget. The page uses the deadline
/// it is given as it is: it makes no deadline of its own from the policy, and
/// does not shorten it (each attempt keeps the margin back already). With a
/// deadline already passed, nothing is sent.
///
/// The three upstreams are asked at the same time, each once when healthy.
///
/// # Errors
///
/// The first [`FetchError`] to come out of any of the three, returned at
/// once without waiting for the others; the other two calls are then
/// cancelled.
///
/// # Cancel safety
///
/// Dropping the returned future cancels every call and retry in flight.
///
/// # Send
///
/// The future is `Send`: the lab spawns it on a multi-thread runtime, as a
/// server would.
pub async fn fetch_product(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    policy: &RetryPolicy,
    deadline: Deadline,
    product_id: u64,
) -> Result<Product, FetchError> {
    todo!("fetch_product: three retried calls at once, all under the one deadline passed in")
}
