//! Integration tests over real HTTP: the reference solution.
//!
//! These run the orchestrator with its real [`HttpClient`] against wiremock
//! upstreams on loopback ([`MockUpstreams`]). wiremock serves from its own
//! threads and real sockets, so these tests run in **real time**: never
//! pause the clock here. Timing assertions get wide margins instead: the
//! slow upstream is far slower than the budget (≥ 3×), and the elapsed time
//! is only bounded loosely, because other work on the machine may delay us.

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
    within_time_limit(async {
        let mocks = MockUpstreams::healthy().await;
        let orchestrator = http_orchestrator(&mocks, roomy_config());

        let response = orchestrator
            .get_product(42)
            .await
            .expect("healthy upstreams must give a product");

        let expected_price = Service::Pricing.body(42)["amount_cents"].as_u64();
        assert_eq!(Some(response.price.amount_cents), expected_price);
        assert!(response.reviews.is_some(), "reviews were healthy too");
        assert!(response.degraded.is_empty());
    })
    .await;
}

// ANCHOR: slow_http
/// A slow HTTP upstream is cut off at the budget.
#[tokio::test]
async fn a_slow_http_upstream_is_cut_off_at_the_budget() {
    within_time_limit(async {
        let mocks = MockUpstreams::healthy().await;
        // 5× the budget: no scheduling hiccup can make it look fast.
        mocks
            .serve_slow(Service::Inventory, Duration::from_millis(1500))
            .await;
        let budget = Duration::from_millis(300);
        // An attempt timeout far above the budget: only the request's
        // deadline can cut this call off, and nothing is retried after it.
        let orchestrator = http_orchestrator(
            &mocks,
            Config {
                budget,
                attempt_timeout: Duration::from_secs(10),
                ..Config::default()
            },
        );

        let started = Instant::now();
        let outcome = orchestrator.get_product(42).await;
        let elapsed = started.elapsed();

        assert!(
            matches!(
                outcome,
                Err(FetchError::Timeout {
                    upstream: Upstream::Inventory
                })
            ),
            "a 1.5 s inventory with a 300 ms budget must time out, got {outcome:?}"
        );
        assert!(elapsed >= budget, "gave up before the budget: {elapsed:?}");
        assert!(
            elapsed < budget + Duration::from_millis(1000),
            "gave up long after the budget: {elapsed:?}"
        );
    })
    .await;
}
// ANCHOR_END: slow_http

/// A flaky HTTP upstream is retried until it answers.
#[tokio::test]
async fn a_flaky_http_upstream_is_retried_until_it_answers() {
    within_time_limit(async {
        let mocks = MockUpstreams::healthy().await;
        mocks.serve_flaky(Service::Pricing, 2, 503).await;
        let orchestrator = http_orchestrator(&mocks, roomy_config());

        let outcome = orchestrator.get_product(42).await;

        assert!(
            outcome.is_ok(),
            "two 503s then a 200 must succeed: {outcome:?}"
        );
        assert_eq!(mocks.received(Service::Pricing).await, 3);
    })
    .await;
}

/// A 404 over HTTP reaches the caller after exactly one request.
#[tokio::test]
async fn a_missing_product_over_http_is_asked_for_once() {
    within_time_limit(async {
        let mocks = MockUpstreams::healthy().await;
        mocks.serve_status(Service::Inventory, 404).await;
        let orchestrator = http_orchestrator(&mocks, roomy_config());

        let outcome = orchestrator.get_product(42).await;

        assert!(
            matches!(
                outcome,
                Err(FetchError::Status {
                    upstream: Upstream::Inventory,
                    status: 404
                })
            ),
            "got {outcome:?}"
        );
        assert_eq!(
            mocks.received(Service::Inventory).await,
            1,
            "a 404 must not be retried"
        );
    })
    .await;
}
