//! One attempt at one upstream: GET before the attempt's deadline, check the
//! status, decode the JSON.
//!
//! Every failure is classified here, in one place, into a [`FetchError`]
//! that names the upstream. The status is handed back with the body so the
//! caller can put it on the attempt's span. Permits and retries are the
//! caller's business ([`crate::fanout`], [`crate::retry`]).
//!
//! It takes what one request needs, a client and the URLs, and not the
//! service's whole [`AppState`](crate::AppState): the lowest layer knows
//! nothing of the service built on top of it.
//!
//! Given: this whole file; there is nothing to write in it.

use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::error::FetchError;
use crate::upstream::{Upstream, UpstreamUrls};

/// A decoded answer and the HTTP status it came with.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched<T> {
    /// The decoded body.
    pub body: T,
    /// The HTTP status, e.g. 200.
    pub status: u16,
}

/// Fetches `upstream`'s answer for `product_id` once, from `urls` with
/// `client`, giving up at `deadline` (the attempt's, not the whole
/// request's).
///
/// # Errors
///
/// [`FetchError::Timeout`] if the deadline passes first,
/// [`FetchError::Transport`], [`FetchError::Status`] or
/// [`FetchError::Decode`] as in step 1.
///
/// # Cancel safety
///
/// Dropping the future abandons the request.
pub async fn fetch_upstream<T: DeserializeOwned>(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    upstream: Upstream,
    product_id: u64,
    deadline: Instant,
) -> Result<Fetched<T>, FetchError> {
    let call = async {
        let response = client
            .get(urls.url(upstream, product_id))
            .send()
            .await
            .map_err(|source| FetchError::Transport { upstream, source })?;

        // A 500 is still `Ok(response)` to reqwest: check the status ourselves.
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                upstream,
                status: status.as_u16(),
            });
        }
        let body = response
            .json::<T>()
            .await
            .map_err(|source| FetchError::Decode { upstream, source })?;
        Ok(Fetched {
            body,
            status: status.as_u16(),
        })
    };

    // The deadline covers the whole exchange, body included.
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or(Err(FetchError::Timeout { upstream }))
}
