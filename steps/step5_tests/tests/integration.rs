//! Integration tests over real HTTP: yours to write.
//!
//! Given: the imports, `within_time_limit`, `http_orchestrator` and
//! `roomy_config` below. Yours: the body of every test, in place of its
//! `todo!()`.
//!
//! The orchestrator's real [`HttpClient`] against wiremock upstreams on
//! loopback ([`MockUpstreams`]). Real sockets mean **real time**: never pause
//! the clock here, and bound elapsed times loosely, with wide margins.

// The helpers and imports below are there for the tests you write; until
// you use them, the compiler would warn about each one.
#![allow(dead_code, unused_imports)]

use std::future::Future;
use std::time::{Duration, Instant};

use fake_upstreams::Service;
use fake_upstreams::mock::MockUpstreams;
use step5_tests::{Config, FetchError, HttpClient, Orchestrator, Upstream, UpstreamUrls};

// GIVEN: test_helpers (given code, the same as in the reference solution)
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
// GIVEN_END: test_helpers

/// Healthy HTTP upstreams give the complete product, decoded from their JSON.
#[tokio::test]
async fn healthy_http_upstreams_give_the_complete_product() {
    todo!("write this test: healthy HTTP upstreams give the complete product")
}

/// A slow HTTP upstream is cut off at the budget.
#[tokio::test]
async fn a_slow_http_upstream_is_cut_off_at_the_budget() {
    todo!("write this test: a slow HTTP upstream is cut off at the budget")
}

/// A flaky HTTP upstream is retried until it answers.
#[tokio::test]
async fn a_flaky_http_upstream_is_retried_until_it_answers() {
    todo!("write this test: a flaky HTTP upstream is retried until it answers")
}

/// A 404 over HTTP reaches the caller after exactly one request.
#[tokio::test]
async fn a_missing_product_over_http_is_asked_for_once() {
    todo!("write this test: a missing product over HTTP is asked for once")
}
