//! One upstream call, bounded by the request's deadline.
//!
//! This is steps 1 and 2 condensed: GET, check the status, decode the JSON,
//! classify each failure; and give up (drop the request) when the deadline
//! passes. Dropping the future is what cancels the HTTP request: reqwest
//! closes the connection, and the upstream sees its client go away.
//!
//! Given: this whole file; there is nothing to write in it.

use serde::de::DeserializeOwned;

use crate::deadline::Deadline;
use crate::error::FetchError;
use crate::upstream::{Upstream, UpstreamUrls};

/// Fetches `upstream`'s answer for `product_id` as `T`, giving up at `deadline`.
///
/// # Errors
///
/// [`FetchError::Timeout`] once the deadline passes, [`FetchError::Transport`]
/// if no response arrived, [`FetchError::Status`] for a non-2xx status,
/// [`FetchError::Decode`] if the body is not a `T`.
///
/// # Cancel safety
///
/// Dropping the future abandons the request; nothing is left half-done.
pub async fn fetch_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    upstream: Upstream,
    product_id: u64,
    deadline: Deadline,
) -> Result<T, FetchError> {
    let call = async {
        let response = client
            .get(urls.url(upstream, product_id))
            .send()
            .await
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
            .await
            .map_err(|source| FetchError::Decode { upstream, source })
    };
    // `timeout_at` drops `call` when the deadline passes: that drop is the
    // cancellation the upstream sees.
    tokio::time::timeout_at(deadline.instant(), call)
        .await
        .unwrap_or(Err(FetchError::Timeout { upstream }))
}
