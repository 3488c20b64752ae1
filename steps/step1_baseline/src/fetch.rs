//! One upstream call: GET, check the status, decode the JSON.
//!
//! Both the async and the blocking fan-out go through here, so every failure
//! is classified the same way, in one place.
//!
//! Yours to write: the bodies of [`fetch_json`] and [`fetch_json_blocking`].
//! Their signatures and doc comments are given: they are the contract the
//! tests check.

use serde::de::DeserializeOwned;

use crate::error::FetchError;
use crate::upstream::{Upstream, UpstreamUrls};

/// Fetches `upstream`'s answer for `product_id` and decodes it as `T`.
///
/// It sends exactly one GET, to [`UpstreamUrls::url`] of `upstream` and
/// `product_id`: a failure is returned as it is, not retried (retries come in
/// step 2), and no deadline is set: a slow answer is waited for, not turned
/// into an error (deadlines come in step 2 too). Any 2xx status with a body that is a `T` is a success. It never
/// panics on what an upstream sends: every failure is an `Err`.
///
/// The request goes through `client`, never through a client built for the
/// call: the caller's settings (a test checks its `User-Agent`) and its
/// connection pool must apply.
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
    todo!("fetch_json: one GET, every failure classified into its FetchError variant")
}

/// The blocking twin of [`fetch_json`], for code running on plain threads.
///
/// Like [`fetch_json`], it sends exactly one request, through `client`, and it
/// classifies every outcome the same way: the tests give both the same broken
/// upstreams. It
/// parks the calling thread until the answer is in, however long that takes
/// (no deadline of its own); never call it from async code.
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
    todo!("fetch_json_blocking: fetch_json's contract, on a blocking client")
}
