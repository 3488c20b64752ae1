//! Step 1's tests: what "done" means for the cost of blocking.
//!
//! The same file runs against your exercise (`cargo xtask verify step1`) and
//! against the reference solution (`cargo xtask verify step1 --solution`).
//!
//! The upstreams are wiremock servers on loopback, running on their own
//! threads in real time. So timing checks here use real time with wide
//! margins: they tell "overlapping" (about the slowest call) from "one after
//! another" (the sum), never a few milliseconds one way or the other.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::mock::MockUpstreams;
use step1_baseline::{
    FetchError, Inventory, Price, Product, ReviewStats, Upstream, UpstreamUrls,
    fetch_product_blocking, fetch_product_concurrent, fetch_product_sequential, score_reviews,
    score_reviews_off_runtime,
};
use tokio::time::Instant;

/// Every test gets at most this long, so a future that never completes fails
/// with a message instead of freezing the run.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(15);

/// The product every test asks for.
const PRODUCT_ID: u64 = 42;

/// The merged answer for product 42, as the fake upstreams serve it.
fn expected_product() -> Product {
    Product {
        id: PRODUCT_ID,
        inventory: Inventory {
            in_stock: 44,
            warehouse: "ams-1".to_owned(),
        },
        price: Price {
            amount_cents: 5199,
            currency: "EUR".to_owned(),
        },
        reviews: ReviewStats {
            average_stars: 4.0,
            count: 46,
        },
    }
}

/// The fixture's three base URLs, in the exercise's own type.
fn urls_of(upstreams: &MockUpstreams) -> UpstreamUrls {
    UpstreamUrls {
        inventory: upstreams.base_url(Service::Inventory),
        pricing: upstreams.base_url(Service::Pricing),
        reviews: upstreams.base_url(Service::Reviews),
    }
}

/// A client for loopback tests: system proxies apply even to 127.0.0.1.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client builds")
}

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

/// Concurrent fan-out takes about as long as the slowest upstream, not the sum of all three.
#[tokio::test]
async fn concurrent_fetch_takes_about_the_slowest_upstream_not_the_sum() {
    within_time_limit(async {
        // Arrange: 200 + 250 + 300 ms would be 750 ms one after another.
        let upstreams = MockUpstreams::start().await;
        upstreams
            .serve_slow(Service::Inventory, Duration::from_millis(200))
            .await;
        upstreams
            .serve_slow(Service::Pricing, Duration::from_millis(250))
            .await;
        upstreams
            .serve_slow(Service::Reviews, Duration::from_millis(300))
            .await;
        let client = client();

        // Act
        let started = Instant::now();
        let product = fetch_product_concurrent(&client, &urls_of(&upstreams), PRODUCT_ID).await;
        let elapsed = started.elapsed();

        // Assert: at least the slowest call, and well under the 750 ms sum.
        assert_eq!(product.expect("all three upstreams are healthy"), expected_product());
        assert!(
            elapsed >= Duration::from_millis(300),
            "finished in {elapsed:?}, before the slowest upstream (300 ms) could answer"
        );
        assert!(
            elapsed < Duration::from_millis(600),
            "took {elapsed:?}: the three calls ran one after another (their sum is 750 ms) instead of overlapping"
        );
    })
    .await;
}

/// Sequential async fan-out really is one call after another: it takes the sum of the latencies.
#[tokio::test]
async fn sequential_fetch_takes_the_sum_of_the_three_latencies() {
    within_time_limit(async {
        let upstreams = MockUpstreams::start().await;
        for service in Service::ALL {
            upstreams
                .serve_slow(service, Duration::from_millis(150))
                .await;
        }
        let client = client();

        let started = Instant::now();
        let product = fetch_product_sequential(&client, &urls_of(&upstreams), PRODUCT_ID).await;
        let elapsed = started.elapsed();

        assert_eq!(product.expect("all three upstreams are healthy"), expected_product());
        assert!(
            elapsed >= Duration::from_millis(450),
            "took {elapsed:?}: the sequential version must await each call before starting the next (3 × 150 ms)"
        );
    })
    .await;
}

/// The concurrent fan-out merges inventory, pricing and reviews into one product.
#[tokio::test]
async fn concurrent_fetch_merges_the_three_answers_into_one_product() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;

        let product = fetch_product_concurrent(&client(), &urls_of(&upstreams), PRODUCT_ID).await;

        assert_eq!(
            product.expect("all three upstreams are healthy"),
            expected_product()
        );
        for service in Service::ALL {
            assert_eq!(
                upstreams.received(service).await,
                1,
                "{} should be called exactly once",
                service.name()
            );
        }
    })
    .await;
}

/// An upstream answering 500 becomes `FetchError::Status`, naming that upstream and the status.
#[tokio::test]
async fn a_server_error_is_a_status_error_naming_the_upstream() {
    within_time_limit(async {
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_healthy(Service::Inventory).await;
        upstreams.serve_status(Service::Pricing, 500).await;
        upstreams.serve_healthy(Service::Reviews).await;

        let result = fetch_product_concurrent(&client(), &urls_of(&upstreams), PRODUCT_ID).await;

        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 500
                })
            ),
            "expected a Status error for pricing with 500, got {result:?}"
        );
    })
    .await;
}

/// A 200 whose body is not the expected JSON becomes `FetchError::Decode`, naming the upstream.
#[tokio::test]
async fn a_body_that_is_not_json_is_a_decode_error_naming_the_upstream() {
    within_time_limit(async {
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_healthy(Service::Inventory).await;
        upstreams.serve_healthy(Service::Pricing).await;
        upstreams.serve_garbage(Service::Reviews).await;

        let result = fetch_product_concurrent(&client(), &urls_of(&upstreams), PRODUCT_ID).await;

        assert!(
            matches!(
                result,
                Err(FetchError::Decode {
                    upstream: Upstream::Reviews,
                    ..
                })
            ),
            "expected a Decode error for reviews, got {result:?}"
        );
    })
    .await;
}

/// An upstream that refuses the connection becomes `FetchError::Transport`, naming it.
#[tokio::test]
async fn a_refused_connection_is_a_transport_error_naming_the_upstream() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        // A port that was just free: nothing listens there any more.
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("binding loopback port 0 works")
            .port();
        let urls = UpstreamUrls {
            inventory: format!("http://127.0.0.1:{closed_port}"),
            ..urls_of(&upstreams)
        };

        let result = fetch_product_concurrent(&client(), &urls, PRODUCT_ID).await;

        assert!(
            matches!(
                result,
                Err(FetchError::Transport {
                    upstream: Upstream::Inventory,
                    ..
                })
            ),
            "expected a Transport error for inventory, got {result:?}"
        );
    })
    .await;
}

/// The blocking baseline, run on a plain OS thread, returns the same product as the async one.
#[tokio::test]
async fn the_blocking_fetch_on_a_plain_thread_returns_the_same_product() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        let urls = urls_of(&upstreams);

        // reqwest's blocking client must live and die outside the async
        // runtime (it panics when dropped inside one), so it gets a thread of
        // its own, as it would in a thread-pool server.
        let worker = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .no_proxy()
                .build()
                .expect("a blocking client builds");
            fetch_product_blocking(&client, &urls, PRODUCT_ID)
        });
        // Wait for the thread without blocking the runtime the test runs on.
        let result = tokio::task::spawn_blocking(move || worker.join())
            .await
            .expect("the waiting task finishes")
            .expect("the blocking fetch does not panic");

        assert_eq!(
            result.expect("all three upstreams are healthy"),
            expected_product()
        );
    })
    .await;
}

/// A heartbeat task stays on time while reviews are scored, because the CPU work runs off the runtime.
#[tokio::test(flavor = "current_thread")]
async fn a_heartbeat_stays_on_time_while_reviews_are_scored() {
    within_time_limit(async {
        // Arrange: this runtime has one thread. A heartbeat task on it ticks
        // every 10 ms and records how late each tick was.
        const TICK: Duration = Duration::from_millis(10);
        const SCORING_COST: Duration = Duration::from_millis(400);
        let stats = expected_product().reviews;
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let heartbeat = tokio::spawn({
            let stop = Arc::clone(&stop);
            async move {
                let mut worst_lag = Duration::ZERO;
                let mut started_tx = Some(started_tx);
                while !stop.load(Ordering::Relaxed) {
                    let due = Instant::now() + TICK;
                    tokio::time::sleep_until(due).await;
                    worst_lag = worst_lag.max(Instant::now() - due);
                    if let Some(tx) = started_tx.take() {
                        let _ = tx.send(());
                    }
                }
                worst_lag
            }
        });
        started_rx.await.expect("the heartbeat ticks once");

        // Act: 400 ms of CPU work. Run inline, it would hold the only thread
        // and every tick in that time would be ~400 ms late.
        let score = score_reviews_off_runtime(stats.clone(), SCORING_COST).await;
        stop.store(true, Ordering::Relaxed);
        let worst_lag = heartbeat.await.expect("the heartbeat task does not panic");

        // Assert
        assert_eq!(
            score,
            score_reviews(&stats, Duration::ZERO),
            "the score must be the one score_reviews computes"
        );
        assert!(
            worst_lag < Duration::from_millis(200),
            "a heartbeat tick was {worst_lag:?} late: the scoring blocked the runtime's thread instead of running on a blocking thread"
        );
    })
    .await;
}
