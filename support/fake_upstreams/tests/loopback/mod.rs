//! What the fakes' own tests need beyond `fake_upstreams::testing`: waiting
//! until a dropped fake refuses connections.
//!
//! `testing::wait_until` checks a plain condition; whether a server still
//! accepts connections is known only by trying one, which is async, so this
//! wait is written out here.

use std::time::Duration;

use fake_upstreams::testing::{PATIENCE, loopback_client};

/// Waits until a request to `url` is refused, failing the test if it is not
/// within [`PATIENCE`].
///
/// A dropped fake stops listening *soon*, not at once: its server task ends
/// on its runtime's next turn. Each try uses a fresh client, so no pooled
/// connection to the old server can answer in its place.
pub async fn wait_until_refused(url: &str) {
    let refused = async {
        while !matches!(loopback_client().get(url).send().await, Err(error) if error.is_connect()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(PATIENCE, refused)
        .await
        .unwrap_or_else(|_| panic!("{url} still accepted connections after {PATIENCE:?}"));
}
