//! How the orchestrator reaches an upstream: a small trait, two implementations.
//!
//! The orchestrator only needs "get me this upstream's JSON for this id".
//! Behind a trait, that call can be real HTTP ([`HttpClient`], used in
//! production and by the wiremock integration tests) or an in-process fake
//! ([`FakeUpstreams`](crate::fake::FakeUpstreams), used by the unit tests).
//! The fake is what makes *paused time* safe: no socket, no other thread,
//! so tokio's clock can jump straight to the next timer and timing
//! assertions become exact instead of flaky.

use std::future::Future;

use serde_json::Value;

use crate::error::FetchError;
use crate::upstream::{Upstream, UpstreamUrls};

/// Something that answers one upstream's `GET /{upstream}/{id}`.
///
/// `Send + Sync + 'static` because the orchestrator shares one client
/// between all in-flight requests (behind an `Arc`).
pub trait UpstreamClient: Send + Sync + 'static {
    /// The upstream's JSON body for `product_id`, or why there is none.
    fn get(
        &self,
        upstream: Upstream,
        product_id: u64,
    ) -> impl Future<Output = Result<Value, FetchError>> + Send;
}

/// The real thing: HTTP with reqwest.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    urls: UpstreamUrls,
}

impl HttpClient {
    /// A client for the upstreams at `urls`.
    pub fn new(client: reqwest::Client, urls: UpstreamUrls) -> Self {
        Self { client, urls }
    }
}

impl UpstreamClient for HttpClient {
    fn get(
        &self,
        upstream: Upstream,
        product_id: u64,
    ) -> impl Future<Output = Result<Value, FetchError>> + Send {
        let request = self.client.get(self.urls.url(upstream, product_id));
        async move {
            let response = request
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
            // Read the bytes first so that a body cut off mid-way is a
            // transport problem and bytes that are not JSON a decode problem.
            let body = response
                .bytes()
                .await
                .map_err(|source| FetchError::Transport { upstream, source })?;
            serde_json::from_slice(&body).map_err(|source| FetchError::Decode { upstream, source })
        }
    }
}
