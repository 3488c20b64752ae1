//! One upstream call: GET, check the status, decode the JSON.
//!
//! Both the async and the blocking fan-out go through here, so every failure
//! is classified the same way, in one place.

use serde::de::DeserializeOwned;

use crate::error::FetchError;
use crate::upstream::{Upstream, UpstreamUrls};

// ANCHOR: fetch_json
/// Fetches `upstream`'s answer for `product_id` and decodes it as `T`.
///
/// It sends exactly one request: a failure is returned as it is, not retried
/// (retries come in step 2).
///
/// # Errors
///
/// [`FetchError::Transport`] if no response arrived (the connection was
/// refused, or broke before the response headers came), [`FetchError::Status`]
/// for any status outside 2xx (a 404 as much as a 500), [`FetchError::Decode`]
/// if the body could not be read to its end or is not a `T`: reqwest reports a
/// connection that breaks while the body is read with the same error as a body
/// that is not JSON.
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
// ANCHOR_END: fetch_json

/// The blocking twin of [`fetch_json`], for code running on plain threads.
///
/// Like [`fetch_json`], it sends exactly one request.
///
/// # Errors
///
/// The same as [`fetch_json`].
pub fn fetch_json_blocking<T: DeserializeOwned>(
    client: &reqwest::blocking::Client,
    urls: &UpstreamUrls,
    upstream: Upstream,
    product_id: u64,
) -> Result<T, FetchError> {
    let response = client
        .get(urls.url(upstream, product_id))
        .send()
        .map_err(|source| FetchError::Transport { upstream, source })?;

    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            upstream,
            status: status.as_u16(),
        });
    }

    response
        .json::<T>()
        .map_err(|source| FetchError::Decode { upstream, source })
}
