//! One upstream call, and one upstream call with retries inside a deadline.
//!
//! [`fetch_json`] is step 1's single GET, with one change: every failure is
//! now sorted more finely, because the retry decision depends on it. A body
//! that breaks off half-way is a transport failure (retry it), while a body
//! that arrives whole but is not our JSON is a decode failure (do not).
//!
//! Given: [`fetch_json`] and the classification below it. Yours to write: the
//! body of [`fetch_with_retry`], whose signature and doc comment are the
//! contract the tests check.

use serde::de::DeserializeOwned;

use crate::deadline::Deadline;
use crate::error::FetchError;
use crate::policy::RetryPolicy;
use crate::retry::retry;
use crate::upstream::{Upstream, UpstreamUrls};

// GIVEN: fetch_json (given code, the same as in the reference solution)
/// Fetches `upstream`'s answer for `product_id` once and decodes it as `T`.
///
/// It sets no timeout of its own: [`retry`] wraps each call in one.
///
/// # Errors
///
/// [`FetchError::Transport`] if no complete response arrived (the connection
/// was refused, reset, or closed before the body's last byte),
/// [`FetchError::Status`] for a non-2xx status, [`FetchError::Decode`] if the
/// whole body arrived but is not a `T`, and [`FetchError::Timeout`] if the
/// client was built with a timeout of its own and it ran out.
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
        .map_err(|source| classify(upstream, source))?;

    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            upstream,
            status: status.as_u16(),
        });
    }

    // Receiving the body and decoding it fail for different reasons, and
    // only one of them is worth a retry. reqwest's `response.json()` does
    // both and reports either failure as a decode error (`is_decode()`), so
    // a connection closed half-way through the body would look like bad JSON
    // and never be retried. Two steps put each failure in its variant where
    // it happens, rather than searching the error's source chain afterwards
    // for the step it came from.
    let body = response
        .bytes()
        .await
        .map_err(|source| classify(upstream, source))?;
    serde_json::from_slice(&body).map_err(|source| FetchError::Decode { upstream, source })
}

/// Sorts a reqwest error, from sending the request or from receiving the
/// body, into `Timeout` or `Transport`.
///
/// reqwest labels an error while receiving the body `is_decode()`, even when
/// the cause is the connection; that label is ignored on purpose. Only
/// `serde_json`, in [`fetch_json`], decides that a body is not ours.
fn classify(upstream: Upstream, source: reqwest::Error) -> FetchError {
    if source.is_timeout() {
        FetchError::Timeout { upstream }
    } else {
        FetchError::Transport { upstream, source }
    }
}
// GIVEN_END: fetch_json

/// Fetches `upstream`'s answer for `product_id`, retrying as `policy` allows
/// within `deadline` (the caller's: it makes none of its own).
///
/// Each attempt is one fresh [`fetch_json`] request. Each call draws its
/// backoff pauses from randomness of its own, so calls that fail together do
/// not retry together (a test starts 24 at once and checks that they finish
/// spread out).
///
/// # Errors
///
/// As [`retry`]: the first error not worth retrying, the last error once the
/// attempts or the time run out, or [`FetchError::Timeout`].
///
/// # Cancel safety
///
/// Dropping the future cancels the attempt in flight; nothing is retried.
///
/// # Send
///
/// The future is `Send`: the lab spawns it on a multi-thread runtime, and a
/// server would too.
pub async fn fetch_with_retry<T: DeserializeOwned>(
    client: &reqwest::Client,
    urls: &UpstreamUrls,
    upstream: Upstream,
    product_id: u64,
    policy: &RetryPolicy,
    deadline: Deadline,
) -> Result<T, FetchError> {
    todo!("fetch_with_retry: fetch_json under the retry loop, with randomness of its own")
}
