//! The product page: three upstreams, one deadline.

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
    // TODO: as step 1's concurrent fan-out, with `tokio::try_join!` over
    // three `fetch_with_retry(..)` calls, one per `Upstream`. Give all three
    // the same `policy` and the same `deadline` (it is `Copy`): one budget
    // for the whole request, not one each.
    todo!("fetch_product: three retried calls at once, one shared deadline")
}
