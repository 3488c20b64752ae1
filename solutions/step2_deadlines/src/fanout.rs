//! The product page: three upstreams, one deadline.

use crate::deadline::Deadline;
use crate::error::FetchError;
use crate::fetch::fetch_with_retry;
use crate::policy::RetryPolicy;
use crate::product::Product;
use crate::upstream::{Upstream, UpstreamUrls};

// ANCHOR: fetch_product
/// Fetches the product page: all three upstreams at once, each retried as
/// `policy` allows, all inside the one `deadline`.
///
/// Create the deadline at the edge, where the request arrives
/// (`Deadline::after(policy.budget())`), and pass it in: the three calls and
/// all their retries spend from that same budget.
///
/// # Errors
///
/// The first [`FetchError`] to come out of any of the three; the other two
/// calls are then cancelled.
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
    // `Deadline` is `Copy`: each call gets the same instant, not a fresh
    // timeout of its own.
    let (inventory, price, reviews) = tokio::try_join!(
        fetch_with_retry(
            client,
            urls,
            Upstream::Inventory,
            product_id,
            policy,
            deadline
        ),
        fetch_with_retry(
            client,
            urls,
            Upstream::Pricing,
            product_id,
            policy,
            deadline
        ),
        fetch_with_retry(
            client,
            urls,
            Upstream::Reviews,
            product_id,
            policy,
            deadline
        ),
    )?;

    Ok(Product {
        id: product_id,
        inventory,
        price,
        reviews,
    })
}
// ANCHOR_END: fetch_product
