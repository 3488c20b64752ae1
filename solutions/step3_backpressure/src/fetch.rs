//! One upstream call: GET, check the status, decode the JSON.
//!
//! Given code, step 1's solution unchanged: every failure is classified here,
//! in one place. This step puts a bulkhead *around* it (see `guarded`).
//!
//! Given code: a copy of `steps/step3_backpressure/src/fetch.rs`.

use serde::de::DeserializeOwned;

use crate::error::FetchError;
use crate::upstream::{Upstream, UpstreamUrls};

/// Fetches `upstream`'s answer for `product_id` and decodes it as `T`.
///
/// # Errors
///
/// [`FetchError::Transport`] if no response arrived, [`FetchError::Status`]
/// for a non-2xx status, [`FetchError::Decode`] if the body is not a `T`.
///
/// # Cancel safety
///
/// Dropping the future abandons the request; nothing is left half-done.
pub async fn fetch_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    upstream: Upstream,
    product_id: u64,
) -> Result<T, FetchError> {
    let response = client
        .get(urls.url(upstream, product_id))
        .send()
        .await
        .map_err(|source| FetchError::Transport { upstream, source })?;

    // A 500 is still `Ok(response)` to reqwest: the HTTP exchange worked.
    // Whether the *status* is acceptable is our decision, so check it.
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            upstream,
            status: status.as_u16(),
        });
    }

    response
        .json::<T>()
        .await
        .map_err(|source| FetchError::Decode { upstream, source })
}
