//! The product page: three upstreams, one deadline.

use serde::de::DeserializeOwned;

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
    let page = Page {
        client,
        urls,
        policy,
        deadline,
        product_id,
    };
    let (inventory, price, reviews) = tokio::try_join!(
        page.fetch(Upstream::Inventory),
        page.fetch(Upstream::Pricing),
        page.fetch(Upstream::Reviews),
    )?;

    Ok(Product {
        id: product_id,
        inventory,
        price,
        reviews,
    })
}

/// What the three calls of one page share: everything but the upstream.
struct Page<'a> {
    client: &'a reqwest::Client,
    urls: &'a UpstreamUrls,
    policy: &'a RetryPolicy,
    deadline: Deadline,
    product_id: u64,
}

impl Page<'_> {
    /// `upstream`'s part of the page, retried as the policy allows.
    async fn fetch<T: DeserializeOwned>(&self, upstream: Upstream) -> Result<T, FetchError> {
        fetch_with_retry(
            self.client,
            self.urls,
            upstream,
            self.product_id,
            self.policy,
            self.deadline,
        )
        .await
    }
}
// ANCHOR_END: fetch_product
