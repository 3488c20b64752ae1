//! Integration tests over real HTTP: yours to write.
//!
//! The orchestrator's real [`HttpClient`] against wiremock upstreams on
//! loopback ([`MockUpstreams`]). Real sockets mean **real time**: never pause
//! the clock here. Use wide margins instead: a slow upstream at least 3× the
//! budget, and loose bounds on the elapsed time.
//!
//! Replace each `todo!()` with a test.

// The helpers and imports below are there for the tests you write; until
// you use them, the compiler would warn about each one.
#![allow(dead_code, unused_imports)]

use std::future::Future;
use std::time::{Duration, Instant};

use fake_upstreams::Service;
use fake_upstreams::mock::MockUpstreams;
use step5_tests::{Config, FetchError, HttpClient, Orchestrator, Upstream, UpstreamUrls};

/// Every test gets at most this long, so a hang fails with a message.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(15);

/// Runs `test`, failing it with a clear message if it outlives the limit.
async fn within_time_limit<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIME_LIMIT, test)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the test did not finish within {TEST_TIME_LIMIT:?}: is a future waiting forever?"
            )
        })
}

/// An orchestrator that talks HTTP to `mocks`.
fn http_orchestrator(mocks: &MockUpstreams, config: Config) -> Orchestrator<HttpClient> {
    let urls = UpstreamUrls {
        inventory: mocks.base_url(Service::Inventory),
        pricing: mocks.base_url(Service::Pricing),
        reviews: mocks.base_url(Service::Reviews),
    };
    // System proxies apply even to 127.0.0.1: loopback tests skip them.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client builds");
    Orchestrator::new(HttpClient::new(client, urls), config).expect("a valid configuration")
}

/// A budget and an attempt timeout wide enough that nothing times out by
/// accident on a busy machine: a timed-out attempt would be retried, and
/// the upstream would see one request more than the test expects.
fn roomy_config() -> Config {
    Config {
        budget: Duration::from_secs(3),
        attempt_timeout: Duration::from_secs(3),
        ..Config::default()
    }
}

/// Healthy HTTP upstreams give the complete product, decoded from their JSON.
#[tokio::test]
async fn healthy_http_upstreams_give_the_complete_product() {
    // Arrange: MockUpstreams::healthy() and an HTTP orchestrator (http_orchestrator).
    // Act: get_product(42).
    // Assert: the fields match Service::Pricing.body(42) etc.; nothing degraded.
    todo!("write this test: healthy http upstreams give the complete product")
}

/// A slow HTTP upstream is cut off at the budget (real time, wide margins).
#[tokio::test]
async fn a_slow_http_upstream_is_cut_off_at_the_budget() {
    // Arrange: serve_slow on inventory, ≥ 3× the budget (real time!), and an
    // attempt_timeout above the slow delay, so only the deadline can cut it off.
    // Act: time get_product with std::time::Instant.
    // Assert: Timeout naming inventory; budget <= elapsed < budget + a wide margin.
    todo!("write this test: a slow http upstream is cut off at the budget")
}

/// A flaky HTTP upstream (two 503s) is retried until it answers.
#[tokio::test]
async fn a_flaky_http_upstream_is_retried_until_it_answers() {
    // Arrange: serve_flaky(Service::Pricing, 2, 503).
    // Act: get_product.
    // Assert: Ok, and mocks.received(Service::Pricing) == 3.
    todo!("write this test: a flaky http upstream is retried until it answers")
}

/// A 404 over HTTP reaches the caller after exactly one request.
#[tokio::test]
async fn a_missing_product_over_http_is_asked_for_once() {
    // Arrange: serve_status(Service::Inventory, 404).
    // Act: get_product.
    // Assert: Err(Status 404 from inventory), received == 1.
    todo!("write this test: a missing product over http is asked for once")
}
