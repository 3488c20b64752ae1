//! Part "over HTTP": `fetch_with_retry` (`src/fetch.rs`) and
//! `fetch_product` (`src/fanout.rs`), against wiremock servers on loopback
//! (and one raw TCP fake, for a body that breaks off half-way, which
//! wiremock cannot send).
//!
//! wiremock runs on its own threads in real time, so these tests use real
//! time with wide margins: a paused clock would jump ahead while a request
//! waits on a socket, and every timeout would fire at once.
//!
//! The last two tests spawn the retrying futures with `tokio::spawn` on a
//! multi-thread runtime, as the lab and a server do. That needs them to be
//! `Send`: a future that holds something thread-bound (the thread-local RNG,
//! an `Rc`) across an `.await` makes the whole test target fail to compile,
//! and the compiler's message names the culprit.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::mock::MockUpstreams;
use fake_upstreams::testing::{closed_port_url, loopback_client, within_time_limit};
use rand::SeedableRng;
use rand::rngs::StdRng;
use step2_deadlines::{
    Deadline, FetchError, Inventory, Price, RetryConfig, RetryPolicy, Upstream, UpstreamUrls,
    fetch_json, fetch_product, fetch_with_retry, retry,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::common::{PRODUCT_ID, SLACK, expected_product, http_config, ms, policy, urls_of};

/// With healthy upstreams the product comes back, and each upstream is asked exactly once.
#[tokio::test]
async fn a_healthy_fan_out_asks_each_upstream_once() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        let policy = policy(http_config());

        let product = fetch_product(
            &loopback_client(),
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

/// The three upstreams are asked at the same time: three slow answers take about as long as one.
#[tokio::test]
async fn the_three_upstreams_are_asked_at_the_same_time() {
    within_time_limit(async {
        // Arrange: every upstream answers after 500 ms. One after another
        // they would take 1.5 s; at the same time, 500 ms.
        let upstreams = MockUpstreams::start().await;
        for service in Service::ALL {
            upstreams.serve_slow(service, ms(500)).await;
        }
        let policy = policy(RetryConfig {
            budget: ms(5_000),
            attempt_timeout: ms(2_000),
            ..http_config()
        });

        // Act
        let started = Instant::now();
        let product = fetch_product(
            &loopback_client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;
        let elapsed = started.elapsed();

        // Assert
        assert_eq!(
            product.expect("slow is not broken: all three answer in time"),
            expected_product()
        );
        assert!(
            elapsed < ms(1_000),
            "took {elapsed:?}: three 500 ms calls made at once take about 500 ms, two after another 1 s"
        );
    })
    .await;
}

/// The first error comes back at once; the page does not wait for the slow upstreams.
#[tokio::test]
async fn the_first_error_comes_back_without_waiting_for_the_others() {
    within_time_limit(async {
        // Arrange: reviews answers 404 at once, the other two take 2 s.
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_slow(Service::Inventory, ms(2_000)).await;
        upstreams.serve_slow(Service::Pricing, ms(2_000)).await;
        upstreams.serve_status(Service::Reviews, 404).await;
        let policy = policy(RetryConfig {
            budget: ms(5_000),
            attempt_timeout: ms(3_000),
            ..http_config()
        });

        // Act
        let started = Instant::now();
        let result = fetch_product(
            &loopback_client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;
        let elapsed = started.elapsed();

        // Assert
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Reviews,
                    status: 404
                })
            ),
            "expected reviews' 404, got {result:?}"
        );
        assert!(
            elapsed < ms(1_000),
            "took {elapsed:?}: the 404 is known at once, and the page must not wait 2 s for the other two"
        );
    })
    .await;
}

/// Once the first error is back, the other upstreams' calls are cancelled: none of their retries is sent afterwards.
#[tokio::test]
async fn after_the_first_error_the_other_calls_send_no_more_retries() {
    within_time_limit(async {
        // Arrange: reviews answers 404 at once; inventory and pricing answer
        // 503 at once, every time. The policy would retry those two ten
        // times, with pauses of at most 20 ms: a quarter of a second of
        // retries, if nothing stopped them.
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_status(Service::Reviews, 404).await;
        upstreams.serve_status(Service::Inventory, 503).await;
        upstreams.serve_status(Service::Pricing, 503).await;
        let policy = policy(RetryConfig {
            max_attempts: 10,
            base_delay: ms(20),
            max_delay: ms(20),
            ..http_config()
        });

        // Act
        let result = fetch_product(
            &loopback_client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(policy.budget()),
            PRODUCT_ID,
        )
        .await;
        let mut sent_by_then = Vec::new();
        for service in [Service::Inventory, Service::Pricing] {
            sent_by_then.push((service, upstreams.received(service).await));
        }

        // Assert
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Reviews,
                    status: 404
                })
            ),
            "expected reviews' 404, got {result:?}"
        );
        // Nothing can signal that a retry will never come, so wait well past
        // the time the abandoned calls' retries would take (ten attempts
        // with pauses of at most 20 ms), then count.
        tokio::time::sleep(ms(1_000)).await;
        for (service, before) in sent_by_then {
            let after = upstreams.received(service).await;
            // One request may have been on its way when the page returned,
            // and reach the fake a moment later.
            assert!(
                after <= before + 1,
                "{service} had received {before} requests when the page returned its error, and {after} a second later: \
                 the page's other calls must be cancelled with it (dropped, not left running in tasks of their own), so no retry is sent afterwards"
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
            &loopback_client(),
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
            &loopback_client(),
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

/// Every 4xx comes back as a Status error with its code after one request, except 429, which is retried.
#[tokio::test]
async fn a_4xx_is_a_status_error_sent_once_and_only_429_is_retried() {
    within_time_limit(async {
        let upstreams = MockUpstreams::start().await;
        let client = loopback_client();
        let urls = urls_of(&upstreams);
        let policy = policy(http_config());

        for (status, requests) in [
            (400, 1),
            (401, 1),
            (403, 1),
            (410, 1),
            (422, 1),
            (451, 1),
            (429, 3),
        ] {
            // The latest behaviour wins, so each round answers `status`.
            upstreams.serve_status(Service::Pricing, status).await;
            let before = upstreams.received(Service::Pricing).await;

            let result: Result<Price, FetchError> = fetch_with_retry(
                &client,
                &urls,
                Upstream::Pricing,
                PRODUCT_ID,
                &policy,
                Deadline::after(policy.budget()),
            )
            .await;

            let sent = upstreams.received(Service::Pricing).await - before;
            assert!(
                matches!(
                    result,
                    Err(FetchError::Status {
                        upstream: Upstream::Pricing,
                        status: got
                    }) if got == status
                ),
                "a {status} should come back as a Status error for pricing with {status}, got {result:?}"
            );
            assert_eq!(
                sent, requests,
                "a {status} should be sent {requests} time(s) with 3 attempts allowed, was sent {sent}"
            );
        }
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
            &loopback_client(),
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
            &loopback_client(),
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
            elapsed < ms(400) + SLACK,
            "took {elapsed:?}: the whole request must end within its 400 ms budget"
        );
    })
    .await;
}

/// The page obeys the deadline passed in, even one mostly spent, not a fresh one made from the policy's budget.
#[tokio::test]
async fn the_page_honours_the_deadline_passed_in() {
    within_time_limit(async {
        // Arrange: pricing takes 3 s. The policy would allow attempts of 2 s
        // within 10 s, but the request arrived long ago: 400 ms are left.
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_slow(Service::Pricing, ms(3_000)).await;
        let policy = policy(RetryConfig {
            budget: ms(10_000),
            attempt_timeout: ms(2_000),
            margin: ms(20),
            min_attempt: ms(20),
            ..http_config()
        });
        let deadline = Deadline::after(ms(400));

        // Act
        let started = Instant::now();
        let result = fetch_product(
            &loopback_client(),
            &urls_of(&upstreams),
            &policy,
            deadline,
            PRODUCT_ID,
        )
        .await;
        let elapsed = started.elapsed();

        // Assert
        assert!(
            matches!(
                result,
                Err(FetchError::Timeout {
                    upstream: Upstream::Pricing
                })
            ),
            "expected a Timeout naming pricing, got {result:?}"
        );
        assert!(
            upstreams.received(Service::Pricing).await >= 1,
            "380 ms fit an attempt: pricing must have been asked"
        );
        assert!(
            elapsed < ms(400) + SLACK,
            "took {elapsed:?}: the deadline passed in was 400 ms away"
        );
    })
    .await;
}

/// The page hands its calls the deadline it was given, whole: the margin is taken off once, by each attempt, not again by the page.
#[tokio::test]
async fn the_page_passes_its_deadline_on_unshortened() {
    within_time_limit(async {
        // Arrange: healthy upstreams, a 1 s margin and a deadline 1.6 s away.
        // Each attempt gets what is left minus the margin, about 600 ms: far
        // more than a loopback call needs. A page that took the margin off
        // the deadline itself before passing it on would leave its calls
        // 600 ms, minus the margin again: no room for any attempt.
        let upstreams = MockUpstreams::healthy().await;
        let policy = policy(RetryConfig {
            budget: ms(5_000),
            attempt_timeout: ms(2_000),
            margin: ms(1_000),
            min_attempt: ms(100),
            max_attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        });

        // Act
        let result = fetch_product(
            &loopback_client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(ms(1_600)),
            PRODUCT_ID,
        )
        .await;

        // Assert
        match result {
            Ok(product) => assert_eq!(product, expected_product()),
            Err(error) => panic!(
                "the upstreams are healthy and each attempt had about 600 ms (1.6 s left, minus \
                 the 1 s margin), yet the page failed with {error:?}: was the deadline shortened \
                 before it reached the calls? Pass it on as it is; each attempt's timeout keeps \
                 the margin back"
            ),
        }
    })
    .await;
}

/// A page whose deadline has already passed sends no request at all, and says Timeout.
#[tokio::test]
async fn a_page_whose_deadline_has_passed_sends_nothing() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        let policy = policy(http_config());

        let result = fetch_product(
            &loopback_client(),
            &urls_of(&upstreams),
            &policy,
            Deadline::after(Duration::ZERO),
            PRODUCT_ID,
        )
        .await;

        assert!(
            matches!(result, Err(FetchError::Timeout { .. })),
            "a request out of time should end as a Timeout, got {result:?}"
        );
        for service in Service::ALL {
            assert_eq!(
                upstreams.received(service).await,
                0,
                "the deadline had passed: {service} must not be asked"
            );
        }
    })
    .await;
}

/// A refused connection is a Transport error naming the upstream, and it is retried.
#[tokio::test]
async fn a_refused_connection_is_retried_and_classified_as_transport() {
    within_time_limit(async {
        // A port that was just free: nothing listens there any more.
        let down = closed_port_url();
        let urls = UpstreamUrls {
            inventory: down.clone(),
            pricing: down.clone(),
            reviews: down,
        };
        let client = loopback_client();
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

/// A 200 whose body breaks off half-way (the connection closes early) is a Transport error, and it is retried.
#[tokio::test]
async fn a_body_cut_off_half_way_is_retried_and_classified_as_transport() {
    within_time_limit(async {
        // Arrange: a fake that promises 100 bytes of body, sends 14, and
        // hangs up. wiremock always sends whole bodies, so this fake speaks
        // just enough HTTP/1.1 by hand, on a raw TCP listener.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding loopback port 0 works");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let base = format!("http://{address}");
        let urls = UpstreamUrls {
            inventory: base.clone(),
            pricing: base.clone(),
            reviews: base,
        };
        let requests = Arc::new(AtomicU32::new(0));
        let server = tokio::spawn(serve_bodies_cut_off_half_way(
            listener,
            Arc::clone(&requests),
        ));
        let policy = policy(http_config());

        // Act
        let result: Result<Inventory, FetchError> = fetch_with_retry(
            &loopback_client(),
            &urls,
            Upstream::Inventory,
            PRODUCT_ID,
            &policy,
            Deadline::after(policy.budget()),
        )
        .await;
        server.abort();

        // Assert
        assert!(
            matches!(
                result,
                Err(FetchError::Transport {
                    upstream: Upstream::Inventory,
                    ..
                })
            ),
            "a body cut off half-way never arrived whole, so it is a transport failure, not bad \
             JSON: expected a Transport error for inventory, got {result:?}"
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            3,
            "the next connection may deliver the whole body: all 3 attempts should be used"
        );
    })
    .await;
}

/// Answers every request on `listener` with a 200 that promises a 100-byte
/// body, sends only its first 14 bytes, and closes the connection. Counts
/// the requests it answers in `requests`.
async fn serve_bodies_cut_off_half_way(
    listener: tokio::net::TcpListener,
    requests: Arc<AtomicU32>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HEAD_AND_PART_OF_THE_BODY: &[u8] = b"HTTP/1.1 200 OK\r\n\
        content-type: application/json\r\n\
        content-length: 100\r\n\
        \r\n\
        {\"in_stock\": 4";

    while let Ok((mut connection, _)) = listener.accept().await {
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            // Read the request's head to its blank line first: a socket
            // closed with unread data sends a reset, and the client would
            // fail before it saw our headers, not half-way through the body.
            let mut head = Vec::new();
            let mut chunk = [0_u8; 1024];
            while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                match connection.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => head.extend_from_slice(&chunk[..read]),
                }
            }
            requests.fetch_add(1, Ordering::SeqCst);
            // A write error means the client left first: nothing to do.
            let _ = connection.write_all(HEAD_AND_PART_OF_THE_BODY).await;
            // `connection` is dropped here: the body ends 86 bytes short.
        });
    }
}

// ---------------------------------------------------------------------------
// Spawned, on a multi-thread runtime, as the lab and a server run them.
// ---------------------------------------------------------------------------

/// Everything shared by the spawned calls below, cloned into each task.
struct Shared {
    client: reqwest::Client,
    urls: UpstreamUrls,
    policy: RetryPolicy,
}

/// fetch_product, fetch_with_retry and retry can be spawned: their futures are Send (a thread-bound RNG held across an .await does not compile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retrying_futures_can_be_spawned_on_a_multi_thread_runtime() {
    within_time_limit(async {
        // Arrange: pricing fails once, so the spawned calls back off and
        // retry on whichever worker thread picks them up.
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_flaky(Service::Pricing, 1, 503).await;
        let shared = Arc::new(Shared {
            client: loopback_client(),
            urls: urls_of(&upstreams),
            policy: policy(http_config()),
        });
        let deadline = Deadline::after(shared.policy.budget());

        // Act: `tokio::spawn` accepts only `Send + 'static` futures. If this
        // does not compile, the compiler names the value that is not `Send`
        // and the `.await` it is held across.
        let page = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                fetch_product(
                    &shared.client,
                    &shared.urls,
                    &shared.policy,
                    deadline,
                    PRODUCT_ID,
                )
                .await
            }
        });
        let price = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                fetch_with_retry::<Price>(
                    &shared.client,
                    &shared.urls,
                    Upstream::Pricing,
                    PRODUCT_ID,
                    &shared.policy,
                    deadline,
                )
                .await
            }
        });
        let looped = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                let mut rng = StdRng::seed_from_u64(9);
                // The operation fails once, then succeeds.
                let failures_left = AtomicU32::new(1);
                retry(
                    &shared.policy,
                    deadline,
                    Upstream::Reviews,
                    &mut rng,
                    || {
                        let failed = failures_left
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                                left.checked_sub(1)
                            })
                            .is_ok();
                        async move {
                            if failed {
                                Err(FetchError::Status {
                                    upstream: Upstream::Reviews,
                                    status: 503,
                                })
                            } else {
                                Ok(7_u32)
                            }
                        }
                    },
                )
                .await
            }
        });

        // Assert
        let page = page.await.expect("the spawned page did not panic");
        let price = price.await.expect("the spawned price call did not panic");
        let looped = looped.await.expect("the spawned retry loop did not panic");
        assert_eq!(
            page.expect("pricing recovers on a retry"),
            expected_product()
        );
        assert_eq!(
            price.expect("pricing answers 200 by now"),
            expected_product().price
        );
        assert_eq!(
            looped.expect("the operation succeeds on its second attempt"),
            7
        );
    })
    .await;
}

/// Calls that fail together back off by different amounts: each call draws its pauses from randomness of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_fail_together_retry_at_different_moments() {
    within_time_limit(async {
        // Arrange: pricing always answers 503. Each caller makes two attempts
        // with a pause drawn from 0..=1000 ms in between, so a caller's
        // duration is about its pause.
        const TASKS: usize = 24;
        const CALLERS: usize = 2 * TASKS;
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_status(Service::Pricing, 503).await;
        let shared = Arc::new(Shared {
            client: loopback_client(),
            urls: urls_of(&upstreams),
            policy: policy(RetryConfig {
                budget: ms(5_000),
                attempt_timeout: ms(2_000),
                margin: ms(10),
                min_attempt: ms(10),
                max_attempts: 2,
                base_delay: ms(1_000),
                max_delay: ms(1_000),
            }),
        });
        let deadline = Deadline::after(shared.policy.budget());

        // Act: all of them at once, two callers in each task: the two are
        // started in the same poll, on the same thread, at the same instant.
        let started = Instant::now();
        let mut callers = JoinSet::new();
        for _ in 0..TASKS {
            let shared = Arc::clone(&shared);
            callers.spawn(async move {
                let shared = &*shared;
                let call = || async move {
                    let result = fetch_with_retry::<Price>(
                        &shared.client,
                        &shared.urls,
                        Upstream::Pricing,
                        PRODUCT_ID,
                        &shared.policy,
                        deadline,
                    )
                    .await;
                    (result, started.elapsed())
                };
                tokio::join!(call(), call())
            });
        }
        let mut durations = Vec::new();
        let mut gaps_within_a_task = Vec::new();
        while let Some(joined) = callers.join_next().await {
            let (one, other) = joined.expect("a caller did not panic");
            for (result, _) in [&one, &other] {
                assert!(
                    matches!(
                        result,
                        Err(FetchError::Status {
                            upstream: Upstream::Pricing,
                            status: 503
                        })
                    ),
                    "each caller should end with pricing's 503, got {result:?}"
                );
            }
            durations.extend([one.1, other.1]);
            gaps_within_a_task.push(one.1.abs_diff(other.1));
        }

        // Assert: with 48 pauses drawn independently from 0..=1000 ms, the
        // spread between the first and last caller to finish is below 300 ms
        // with a probability of about 1 in 10^23. Pauses that are all the
        // same (a fixed seed, no jitter) finish within a few ms of each other.
        let first = durations.iter().min().expect("there are callers");
        let last = durations.iter().max().expect("there are callers");
        assert!(
            *last - *first >= ms(300),
            "all {CALLERS} callers finished between {first:?} and {last:?}: they retried in step, so each call's pauses are not its own random draws"
        );
        // Two calls started together in one task have pauses of their own
        // too (not, say, seeded from the clock they both read): two
        // independent draws from 0..=1000 ms land within 20 ms of each other
        // with a probability of about 0.04, so 10 or more such pairs out of
        // 24 happens about once in 10^8 runs. Calls that share their pauses
        // finish a few milliseconds apart at most.
        let in_step = gaps_within_a_task
            .iter()
            .filter(|gap| **gap < ms(20))
            .count();
        assert!(
            in_step < 10,
            "{in_step} of {TASKS} pairs of callers started together in one task finished within 20 ms of each other \
             (gaps {gaps_within_a_task:?}): calls started at the same instant retried in step, so their pauses are not drawn from randomness of their own"
        );
        assert_eq!(
            upstreams.received(Service::Pricing).await,
            2 * CALLERS,
            "each caller makes exactly its 2 attempts"
        );
    })
    .await;
}
