//! One upstream call: GET, check the status, decode the JSON.
//!
//! Both the async and the blocking fan-out go through here, so every failure
//! is classified the same way, in one place.

use serde::de::DeserializeOwned;

use crate::error::FetchError;
use crate::upstream::{Upstream, UpstreamUrls};

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
    // TODO: GET `urls.url(upstream, product_id)` with `client.get(..).send().await`,
    // then turn each way it can fail into the matching `FetchError` variant:
    // - `send()` failed: no response at all (`FetchError::Transport`);
    // - a response with a non-success `status()`: careful, reqwest returns
    //   `Ok(response)` for a 500 too (`FetchError::Status`);
    // - `response.json::<T>().await` failed (`FetchError::Decode`).
    // `Result::map_err` and `?` keep this short.
    todo!("fetch_json: GET the URL, check the status, decode the JSON")
}

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
    // TODO: the same as `fetch_json`, with `reqwest::blocking`: the calls are
    // the same, without `.await`.
    todo!("fetch_json_blocking: the blocking twin of fetch_json")
}
