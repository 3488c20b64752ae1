//! What every test that talks to a fake over loopback needs: a client that
//! ignores system proxies, a time limit, and a way to wait for a condition.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Every test gets at most this long, so a future that never completes fails
/// with a message instead of freezing the run.
pub const TEST_TIME_LIMIT: Duration = Duration::from_secs(15);

/// How long [`eventually`] waits for its condition before failing the test.
const PATIENCE: Duration = Duration::from_secs(5);

/// A client for loopback tests. System proxies apply even to 127.0.0.1
/// unless told otherwise.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client builds")
}

/// Runs `test`, failing it with a clear message if it outlives the limit.
pub async fn within_time_limit<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIME_LIMIT, test)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the test did not finish within {TEST_TIME_LIMIT:?}: is a future waiting forever?"
            )
        })
}

/// Polls `condition` until it holds, failing the test (naming `what` it
/// waited for) if it still does not after a few seconds.
///
/// For effects that happen *soon after* an action, on another task or thread:
/// a server noticing a closed connection, a listener going away.
pub async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}, in vain"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
