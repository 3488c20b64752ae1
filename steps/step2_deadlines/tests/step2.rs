//! Step 2's tests: what "done" means for deadlines and jittered retries.
//!
//! The same file runs against your exercise (`cargo xtask verify step2`) and
//! against the reference solution (`cargo xtask verify step2 --solution`).
//!
//! Two kinds of test live here, with two clocks:
//!
//! * **HTTP tests** talk to wiremock servers on loopback. wiremock runs on its
//!   own threads in real time, so these use real time with wide margins: a
//!   paused clock would jump ahead while a request waits on a socket, and
//!   every timeout would fire at once.
//! * **Retry-loop tests** drive `retry` with an in-process fake operation (a
//!   closure, no sockets) on tokio's *paused* clock. Time then moves only
//!   when every task is waiting on a timer, straight to the next one, so the
//!   instant of each attempt is exact and the tests take no real time.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::mock::MockUpstreams;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use step2_deadlines::{
    ConfigError, Deadline, FetchError, Inventory, Price, Product, RetryConfig, RetryPolicy,
    ReviewStats, Upstream, UpstreamUrls, fetch_json, fetch_product, retry,
};
use tokio::time::Instant;

/// Every test gets at most this long, so a future that never completes fails
/// with a message instead of freezing the run.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(15);

/// The product every test asks for.
const PRODUCT_ID: u64 = 42;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The policy the HTTP tests start from: a generous budget, short backoffs.
fn http_config() -> RetryConfig {
    RetryConfig {
        budget: ms(2_000),
        attempt_timeout: ms(500),
        margin: ms(10),
        min_attempt: ms(10),
        max_attempts: 3,
        base_delay: ms(10),
        max_delay: ms(40),
    }
}

fn policy(config: RetryConfig) -> RetryPolicy {
    RetryPolicy::new(config).expect("the test's retry configuration is valid")
}

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

/// A 503 from pricing: what the in-process fakes fail with.
fn pricing_503() -> FetchError {
    FetchError::Status {
        upstream: Upstream::Pricing,
        status: 503,
    }
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

// ---------------------------------------------------------------------------
// Deciding: what to retry, what configuration can work, how long to wait.
// ---------------------------------------------------------------------------

/// Timeouts, 5xx and 429 are retryable; a 4xx such as 404 never is.
#[test]
fn retryability_is_decided_by_the_kind_of_failure() {
    let status = |status| FetchError::Status {
        upstream: Upstream::Pricing,
        status,
    };

    for code in [500, 502, 503, 504, 429] {
        assert!(
            status(code).is_retryable(),
            "a {code} should be retried: the upstream may answer next time"
        );
    }
    for code in [400, 401, 403, 404, 409, 422] {
        assert!(
            !status(code).is_retryable(),
            "a {code} must not be retried: the request itself is wrong, and will be again"
        );
    }
    assert!(
        FetchError::Timeout {
            upstream: Upstream::Reviews
        }
        .is_retryable(),
        "a timeout should be retried: the next attempt may be quick"
    );
}

/// Zero attempts, a margin not shorter than the budget, and other impossible settings are refused by name.
#[test]
fn configuration_that_cannot_work_is_rejected_with_a_clear_error() {
    let valid = http_config();
    assert!(
        RetryPolicy::new(valid).is_ok(),
        "the test's base configuration is valid and must be accepted"
    );

    let cases = [
        (
            RetryConfig {
                max_attempts: 0,
                ..valid
            },
            "max_attempts",
        ),
        (
            RetryConfig {
                margin: ms(2_000),
                ..valid
            },
            "margin",
        ),
        (
            RetryConfig {
                margin: ms(3_000),
                ..valid
            },
            "margin",
        ),
        (
            RetryConfig {
                attempt_timeout: Duration::ZERO,
                ..valid
            },
            "attempt_timeout",
        ),
        (
            RetryConfig {
                min_attempt: ms(600),
                ..valid
            },
            "min_attempt",
        ),
        (
            RetryConfig {
                base_delay: ms(50),
                max_delay: ms(40),
                ..valid
            },
            "base_delay",
        ),
    ];
    for (config, field) in cases {
        let error = RetryPolicy::new(config).expect_err(&format!(
            "a configuration with a bad {field} must be rejected"
        ));
        let message = error.to_string();
        assert!(
            message.contains(field),
            "the error for a bad {field} should name it, got: {message:?}"
        );
    }

    assert_eq!(
        RetryPolicy::new(RetryConfig {
            max_attempts: 0,
            ..valid
        }),
        Err(ConfigError::NoAttempts)
    );
    assert_eq!(
        RetryPolicy::new(RetryConfig {
            margin: ms(2_000),
            ..valid
        }),
        Err(ConfigError::MarginNotBelowBudget {
            margin: ms(2_000),
            budget: ms(2_000)
        })
    );
}

/// An attempt gets the smaller of its own limit and what is left minus the margin, and none below min_attempt.
#[test]
fn an_attempt_gets_the_smaller_of_its_limit_and_the_remaining_budget() {
    let policy = policy(RetryConfig {
        budget: ms(200),
        attempt_timeout: ms(70),
        margin: ms(10),
        min_attempt: ms(20),
        ..http_config()
    });

    let cases = [
        (ms(200), Some(ms(70))),
        (ms(80), Some(ms(70))),
        (ms(79), Some(ms(69))),
        (ms(50), Some(ms(40))),
        (ms(30), Some(ms(20))),
        (ms(29), None),
        (ms(10), None),
        (Duration::ZERO, None),
    ];
    for (remaining, expected) in cases {
        assert_eq!(
            policy.timeout_for_attempt(remaining),
            expected,
            "with {remaining:?} left (attempt_timeout 70 ms, margin 10 ms, min_attempt 20 ms)"
        );
    }
}

/// Backoff delays stay within [0, min(cap, base·2^n)], saturate at the cap, and are not constant.
#[test]
fn backoff_delays_stay_under_the_exponential_ceiling_and_vary() {
    let policy = policy(RetryConfig {
        base_delay: ms(10),
        max_delay: ms(1_000),
        ..http_config()
    });
    let mut rng = StdRng::seed_from_u64(2015);

    for retry in 0..12_u32 {
        let ceiling = ms((10 * 2_u64.pow(retry)).min(1_000));
        assert_eq!(
            policy.backoff_ceiling(retry),
            ceiling,
            "the ceiling before retry {retry} is min(cap, base × 2^{retry})"
        );
        let delays: Vec<Duration> = (0..200)
            .map(|_| policy.backoff_delay(retry, &mut rng))
            .collect();
        assert!(
            delays.iter().all(|delay| *delay <= ceiling),
            "every delay before retry {retry} must be at most {ceiling:?}, got {delays:?}"
        );
        assert!(
            delays.iter().any(|delay| *delay != delays[0]),
            "the delays before retry {retry} are all {:?}: full jitter draws each one at random",
            delays[0]
        );
        assert!(
            delays.iter().any(|delay| *delay < ceiling / 2),
            "full jitter draws from the whole range 0..=ceiling, not only its top half"
        );
    }
    assert_eq!(
        policy.backoff_ceiling(u32::MAX),
        ms(1_000),
        "a huge retry number saturates at the cap instead of overflowing"
    );
}

// ---------------------------------------------------------------------------
// The retry loop, on tokio's paused clock, with in-process fakes.
// ---------------------------------------------------------------------------

/// Under paused time, each retry starts exactly one seeded full-jitter draw after the previous attempt.
#[tokio::test(start_paused = true)]
async fn the_backoff_schedule_is_exact_under_paused_time() {
    within_time_limit(async {
        // Arrange: an upstream that always answers 503 at once, six attempts,
        // and a budget far too large to matter.
        const SEED: u64 = 7;
        let policy = policy(RetryConfig {
            budget: ms(60_000),
            attempt_timeout: ms(1_000),
            margin: ms(10),
            min_attempt: ms(10),
            max_attempts: 6,
            base_delay: ms(100),
            max_delay: ms(1_000),
        });
        let started = Instant::now();
        let attempts = RefCell::new(Vec::new());

        // Act
        let result: Result<(), FetchError> = retry(
            &policy,
            Deadline::after(policy.budget()),
            Upstream::Pricing,
            &mut StdRng::seed_from_u64(SEED),
            || {
                attempts.borrow_mut().push(started.elapsed());
                async { Err(pricing_503()) }
            },
        )
        .await;

        // Assert: the same seed, drawn the documented way, predicts every
        // pause: retry n sleeps random_range(0..=min(1000, 100 × 2^n)) ms.
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut expected = vec![Duration::ZERO];
        for retry in 0..5_u32 {
            let ceiling_ms = (100 * 2_u64.pow(retry)).min(1_000);
            let pause = ms(rng.random_range(0..=ceiling_ms));
            expected.push(expected[retry as usize] + pause);
        }
        assert_eq!(
            *attempts.borrow(),
            expected,
            "attempts started at these offsets; expected each retry one full-jitter draw after the last attempt"
        );
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                })
            ),
            "after the last attempt, its error comes back; got {result:?}"
        );
    })
    .await;
}

/// With attempts left, the loop stops as soon as the next pause would not leave room for an attempt.
#[tokio::test(start_paused = true)]
async fn the_retry_loop_stops_before_the_deadline_even_with_attempts_left() {
    within_time_limit(async {
        // Arrange: long backoffs against a 1 s budget and ten allowed attempts.
        let policy = policy(RetryConfig {
            budget: ms(1_000),
            attempt_timeout: ms(500),
            margin: ms(50),
            min_attempt: ms(50),
            max_attempts: 10,
            base_delay: ms(300),
            max_delay: ms(5_000),
        });
        let deadline = Deadline::after(policy.budget());
        let started = Instant::now();
        let attempts = RefCell::new(Vec::new());

        // Act
        let result: Result<(), FetchError> = retry(
            &policy,
            deadline,
            Upstream::Pricing,
            &mut StdRng::seed_from_u64(1),
            || {
                attempts.borrow_mut().push(started.elapsed());
                async { Err(pricing_503()) }
            },
        )
        .await;
        let returned = started.elapsed();

        // Assert
        let attempts = attempts.into_inner();
        assert!(
            attempts.len() >= 2,
            "a 503 is retryable and the first pause fits: expected a retry, got {attempts:?}"
        );
        assert!(
            attempts.len() < 10,
            "the pauses cannot all fit in 1 s: the loop must stop early, yet made {} attempts",
            attempts.len()
        );
        let last = *attempts.last().expect("at least one attempt");
        assert!(
            last <= ms(1_000 - 50 - 50),
            "the last attempt started at {last:?}, leaving less than margin + min_attempt (100 ms)"
        );
        assert_eq!(
            returned, last,
            "giving up must be immediate: no sleep after the last attempt (it returned at {returned:?})"
        );
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                })
            ),
            "stopping early returns the last real error, got {result:?}"
        );
    })
    .await;
}

/// An operation that never answers is cut off per attempt and ends as a Timeout before the deadline.
#[tokio::test(start_paused = true)]
async fn a_hung_operation_is_retried_and_times_out_before_the_deadline() {
    within_time_limit(async {
        let policy = policy(RetryConfig {
            budget: ms(250),
            attempt_timeout: ms(100),
            margin: ms(10),
            min_attempt: ms(20),
            max_attempts: 10,
            base_delay: ms(10),
            max_delay: ms(20),
        });
        let deadline = Deadline::after(policy.budget());
        let started = Instant::now();
        let calls = Cell::new(0_u32);

        let result: Result<(), FetchError> = retry(
            &policy,
            deadline,
            Upstream::Inventory,
            &mut StdRng::seed_from_u64(3),
            || {
                calls.set(calls.get() + 1);
                std::future::pending()
            },
        )
        .await;
        let returned = started.elapsed();

        assert!(
            matches!(
                result,
                Err(FetchError::Timeout {
                    upstream: Upstream::Inventory
                })
            ),
            "a call that never answers must end as a Timeout naming inventory, got {result:?}"
        );
        assert!(
            calls.get() >= 2,
            "a timeout is retryable: expected a second attempt, got {}",
            calls.get()
        );
        assert!(
            returned >= ms(200),
            "two attempts of 100 ms each must have run out, but it returned after {returned:?}"
        );
        assert!(
            returned <= ms(240),
            "returned after {returned:?}: no attempt may run into the last 10 ms (the margin) of the 250 ms budget"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Over HTTP, against wiremock, in real time.
// ---------------------------------------------------------------------------

/// With healthy upstreams the product comes back, and each upstream is asked exactly once.
#[tokio::test]
async fn a_healthy_fan_out_asks_each_upstream_once() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        let policy = policy(http_config());

        let product = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;

        assert_eq!(
            product.expect("all three upstreams are healthy"),
            expected_product()
        );
        for service in Service::ALL {
            assert_eq!(
                upstreams.received(service).await,
                1,
                "{service} is healthy: one request, no retries"
            );
        }
    })
    .await;
}

/// Pricing answering 503, 503, then 200 is retried into a success, with exactly three requests.
#[tokio::test]
async fn a_503_is_retried_until_it_succeeds() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_flaky(Service::Pricing, 2, 503).await;
        let policy = policy(http_config());

        let product = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;

        assert_eq!(
            product.expect("pricing recovers on the third attempt"),
            expected_product()
        );
        assert_eq!(
            upstreams.received(Service::Pricing).await,
            3,
            "pricing should get exactly 3 requests: two 503s, then the 200"
        );
    })
    .await;
}

/// A 404 is not retried: one request, and a Status error naming the upstream.
#[tokio::test]
async fn a_404_is_not_retried_and_names_the_upstream() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_status(Service::Reviews, 404).await;
        let policy = policy(http_config());

        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;

        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Reviews,
                    status: 404
                })
            ),
            "expected a Status error for reviews with 404, got {result:?}"
        );
        assert_eq!(
            upstreams.received(Service::Reviews).await,
            1,
            "a 404 will be a 404 again: it must not be retried"
        );
    })
    .await;
}

/// A body that is not JSON is a Decode error naming the upstream, and is not retried.
#[tokio::test]
async fn a_body_that_is_not_json_is_a_decode_error_and_is_not_retried() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_garbage(Service::Inventory).await;
        let policy = policy(http_config());

        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;

        assert!(
            matches!(
                result,
                Err(FetchError::Decode {
                    upstream: Upstream::Inventory,
                    ..
                })
            ),
            "expected a Decode error for inventory, got {result:?}"
        );
        assert_eq!(
            upstreams.received(Service::Inventory).await,
            1,
            "an upstream that sends garbage will send it again: no retry"
        );
    })
    .await;
}

/// Two upstreams that never answer in time give a Timeout within the one shared budget.
#[tokio::test]
async fn a_hung_upstream_times_out_within_the_budget() {
    within_time_limit(async {
        // Arrange: inventory and reviews take 3 s, far past the 400 ms budget.
        // Ten attempts of 150 ms would take 1.5 s: only the shared deadline
        // can end this request within its budget.
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_slow(Service::Inventory, ms(3_000)).await;
        upstreams.serve_slow(Service::Reviews, ms(3_000)).await;
        let policy = policy(RetryConfig {
            budget: ms(400),
            attempt_timeout: ms(150),
            margin: ms(20),
            min_attempt: ms(20),
            max_attempts: 10,
            ..http_config()
        });

        // Act
        let started = Instant::now();
        let result = fetch_product(
            &client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;
        let elapsed = started.elapsed();

        // Assert: a Timeout (not a transport error), after at least one full
        // attempt timeout, and within the budget (plus a wide margin for a
        // busy machine): both slow calls spent from the same deadline.
        assert!(
            matches!(
                result,
                Err(FetchError::Timeout {
                    upstream: Upstream::Inventory | Upstream::Reviews
                })
            ),
            "expected a Timeout naming inventory or reviews, got {result:?}"
        );
        assert!(
            elapsed >= ms(150),
            "gave up after {elapsed:?}, before even one 150 ms attempt could time out"
        );
        assert!(
            elapsed < ms(400 + 150),
            "took {elapsed:?}: the whole request must end within its 400 ms budget"
        );
    })
    .await;
}

/// A refused connection is a Transport error naming the upstream, and it is retried.
#[tokio::test]
async fn a_refused_connection_is_retried_and_classified_as_transport() {
    within_time_limit(async {
        // A port that was just free: nothing listens there any more.
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("binding loopback port 0 works")
            .port();
        let down = format!("http://127.0.0.1:{closed_port}");
        let urls = UpstreamUrls {
            inventory: down.clone(),
            pricing: down.clone(),
            reviews: down,
        };
        let client = client();
        let policy = policy(http_config());
        let calls = Cell::new(0_u32);

        let result: Result<Inventory, FetchError> = retry(
            &policy,
            Deadline::after(policy.budget()),
            Upstream::Inventory,
            &mut StdRng::seed_from_u64(5),
            || {
                calls.set(calls.get() + 1);
                fetch_json(&client, &urls, Upstream::Inventory, PRODUCT_ID)
            },
        )
        .await;

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
        assert_eq!(
            calls.get(),
            3,
            "a refused connection may succeed next time: all 3 attempts should be used"
        );
    })
    .await;
}
