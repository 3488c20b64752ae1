//! Part "the fan-out": the three ways to fetch a product page (blocking,
//! sequential, concurrent) and review scoring off the runtime, in
//! `src/fetch.rs`, `src/fanout.rs`, `src/blocking.rs` and `src/scoring.rs`.
//!
//! The upstreams are wiremock servers on loopback, running on their own
//! threads in real time, and, where a test must see a call being cancelled,
//! the fast fake (`FastUpstream`), which counts the requests its clients gave
//! up on; where a server must hang up without answering, a few lines of raw
//! TCP. All are real sockets, so timing checks here use real time with
//! wide margins: they tell "overlapping" (about the slowest call) from "one
//! after another" (the sum), never a few milliseconds one way or the other.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use fake_upstreams::mock::MockUpstreams;
use fake_upstreams::testing::{
    closed_port_url, loopback_client_builder, wait_until, within_time_limit,
};
use step1_baseline::{
    FetchError, Inventory, Price, Product, ReviewStats, Upstream, UpstreamUrls,
    fetch_product_blocking, fetch_product_concurrent, fetch_product_sequential, score_reviews,
    score_reviews_off_runtime,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

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

/// The `User-Agent` every client the tests build sends, so an upstream can
/// tell a request made through the test's client from one made through a
/// client the code under test built for itself.
const TEST_USER_AGENT: &str = "step1-tests";

/// A client for loopback tests that says it is the tests' own.
fn client() -> reqwest::Client {
    loopback_client_builder()
        .user_agent(TEST_USER_AGENT)
        .build()
        .expect("a reqwest client builds")
}

/// Runs `fetch` as a task of its own, the way a server runs a request, and
/// returns its output.
///
/// `tokio::spawn` only accepts a future that is `Send` (it may move between
/// worker threads), so a fan-out that holds something thread-bound across an
/// `.await` fails to compile here, just as it would in the lab's axum server.
/// A panic inside the task is re-raised with its own message.
async fn as_spawned_task<F>(fetch: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(fetch)
        .await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

/// Runs `fetch_product_blocking` on a plain OS thread, as a thread-pool server
/// would, and waits for it without blocking the test's runtime.
async fn fetch_blocking_on_a_plain_thread(urls: UpstreamUrls) -> Result<Product, FetchError> {
    // reqwest's blocking client must live and die outside the async runtime
    // (it panics when dropped inside one), so it gets a thread of its own.
    let worker = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .user_agent(TEST_USER_AGENT)
            .build()
            .expect("a blocking client builds");
        fetch_product_blocking(&client, &urls, PRODUCT_ID)
    });
    tokio::task::spawn_blocking(move || worker.join())
        .await
        .expect("the waiting task finishes")
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Makes `service` answer `status` with the body it serves when healthy, so
/// that only the status tells a success from a failure.
async fn serve_healthy_body_with_status(upstreams: &MockUpstreams, service: Service, status: u16) {
    // Mounted directly, at wiremock's default priority, this mock wins over
    // every `serve_*` behaviour already on the server.
    Mock::given(method("GET"))
        .and(path(service.path(PRODUCT_ID)))
        .respond_with(ResponseTemplate::new(status).set_body_json(service.body(PRODUCT_ID)))
        .mount(upstreams.server(service))
        .await;
}

/// Three healthy upstreams, except that reviews answers its first request
/// with a `200` whose body is not JSON: a retry would get the healthy body.
async fn upstreams_with_reviews_garbled_once() -> MockUpstreams {
    let upstreams = MockUpstreams::healthy().await;
    // Mounted directly, at wiremock's default priority, this mock wins over
    // the healthy one until it has answered once.
    Mock::given(method("GET"))
        .and(path(Service::Reviews.path(PRODUCT_ID)))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<html>not JSON</html>", "application/json"),
        )
        .up_to_n_times(1)
        .mount(upstreams.server(Service::Reviews))
        .await;
    upstreams
}

/// Makes every upstream answer healthily only requests that carry the test
/// clients' `User-Agent`, and answer `403` to any other, as a gateway that
/// knows its callers would.
async fn serve_only_the_test_clients(upstreams: &MockUpstreams) {
    for service in Service::ALL {
        upstreams.serve_status(service, 403).await;
        // Mounted directly, at wiremock's default priority, this mock wins
        // over the 403 for every request it matches.
        Mock::given(method("GET"))
            .and(path(service.path(PRODUCT_ID)))
            .and(header("user-agent", TEST_USER_AGENT))
            .respond_with(ResponseTemplate::new(200).set_body_json(service.body(PRODUCT_ID)))
            .mount(upstreams.server(service))
            .await;
    }
}

/// How many requests the three wiremock upstreams received between them.
async fn requests_to_all_three(upstreams: &MockUpstreams) -> usize {
    let mut total = 0;
    for service in Service::ALL {
        total += upstreams.received(service).await;
    }
    total
}

/// An inventory upstream that hangs up on its first connection: it reads the
/// request and closes the connection without sending a byte back, as a server
/// that crashed mid-request would. Every later connection gets inventory's
/// healthy answer, so a retry would succeed. Returns the base URL and the
/// number of connections accepted so far.
async fn inventory_hanging_up_on_the_first_connection() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding loopback port 0 works");
    let base_url = format!(
        "http://{}",
        listener
            .local_addr()
            .expect("a bound listener has an address")
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    // The task ends with the test's runtime.
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = listener.accept().await {
            let earlier = counter.fetch_add(1, Ordering::SeqCst);
            read_request_head(&mut connection).await;
            if earlier > 0 {
                answer_with_healthy_inventory(&mut connection).await;
            }
            // Dropping the connection closes it; on the first one, before any
            // status line or header was sent.
        }
    });
    (base_url, accepted)
}

/// Reads until the blank line that ends an HTTP request's head (a GET has no
/// body), or until the client stops sending. Reading it all first makes the
/// close that follows an orderly one, not a reset for unread data.
async fn read_request_head(connection: &mut TcpStream) {
    let mut head = Vec::new();
    let mut chunk = [0_u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match connection.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&chunk[..read]),
        }
    }
}

/// Writes inventory's healthy answer for the test's product, by hand.
async fn answer_with_healthy_inventory(connection: &mut TcpStream) {
    let body = Service::Inventory.body(PRODUCT_ID).to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    // A client that already gave up is not this fake's problem.
    let _ = connection.write_all(response.as_bytes()).await;
}

/// A pricing upstream that breaks off its first answer: it sends `200` and
/// headers announcing pricing's whole healthy body, then only the first half
/// of that body, and closes the connection, as a server that crashed while
/// writing would. Every later connection gets the whole answer, so a retry
/// would succeed. Returns the base URL and the number of connections
/// accepted so far.
async fn pricing_cutting_its_first_body_short() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding loopback port 0 works");
    let base_url = format!(
        "http://{}",
        listener
            .local_addr()
            .expect("a bound listener has an address")
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    // The task ends with the test's runtime.
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = listener.accept().await {
            let earlier = counter.fetch_add(1, Ordering::SeqCst);
            read_request_head(&mut connection).await;
            let body = Service::Pricing.body(PRODUCT_ID).to_string();
            let sent = if earlier == 0 {
                body.len() / 2
            } else {
                body.len()
            };
            // The headers always announce the whole body, so the client can
            // tell that the first answer ended early.
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{}",
                body.len(),
                &body[..sent]
            );
            // A client that already gave up is not this fake's problem.
            let _ = connection.write_all(response.as_bytes()).await;
            // Dropping the connection closes it, half-way through the body
            // on the first one.
        }
    });
    (base_url, accepted)
}

/// The exercise's name for the fixture's `service`.
fn upstream_of(service: Service) -> Upstream {
    match service {
        Service::Inventory => Upstream::Inventory,
        Service::Pricing => Upstream::Pricing,
        Service::Reviews => Upstream::Reviews,
    }
}

/// Concurrent fan-out takes about as long as the slowest upstream, not the sum of all three.
#[tokio::test]
async fn concurrent_fetch_takes_about_the_slowest_upstream_not_the_sum() {
    within_time_limit(async {
        // Arrange: 400 + 450 + 500 ms would be 1,350 ms one after another.
        // The latencies are close together on purpose: even one call first
        // and then the other two together would take at least 400 + 500 =
        // 900 ms, so only all three in flight at once stays under the bound.
        const SLOWEST: Duration = Duration::from_millis(500);
        // 300 ms above the slowest call: room for a busy machine, yet below
        // the 900 ms of any fetch that waits for one call before the others.
        const UPPER_BOUND: Duration = Duration::from_millis(800);
        let upstreams = MockUpstreams::start().await;
        upstreams
            .serve_slow(Service::Inventory, Duration::from_millis(400))
            .await;
        upstreams
            .serve_slow(Service::Pricing, Duration::from_millis(450))
            .await;
        upstreams.serve_slow(Service::Reviews, SLOWEST).await;
        let client = client();

        // Act
        let started = Instant::now();
        let product = fetch_product_concurrent(&client, &urls_of(&upstreams), PRODUCT_ID).await;
        let elapsed = started.elapsed();

        // Assert: at least the slowest call, and well under any other order.
        assert_eq!(
            product.expect("all three upstreams are healthy"),
            expected_product()
        );
        assert!(
            elapsed >= SLOWEST,
            "finished in {elapsed:?}, before the slowest upstream ({SLOWEST:?}) could answer"
        );
        assert!(
            elapsed < UPPER_BOUND,
            "took {elapsed:?}: the three calls were not all in flight at once (one after another \
             they take 1,350 ms; one call, then the other two together, at least 900 ms)"
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
        let (client, urls) = (client(), urls_of(&upstreams));

        // Spawned, as the lab's memory experiment runs it: its future must be `Send`.
        let started = Instant::now();
        let product = as_spawned_task(async move {
            fetch_product_sequential(&client, &urls, PRODUCT_ID).await
        })
        .await;
        let elapsed = started.elapsed();

        assert_eq!(product.expect("all three upstreams are healthy"), expected_product());
        assert!(
            elapsed >= Duration::from_millis(450),
            "took {elapsed:?}: the sequential version must await each call before starting the next (3 × 150 ms)"
        );
    })
    .await;
}

/// The concurrent fan-out merges inventory, pricing and reviews into one product, spawned on a multi-thread runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetch_merges_the_three_answers_into_one_product() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        let (client, urls) = (client(), urls_of(&upstreams));

        // Spawned, as axum runs a handler: the future must be `Send`, and it
        // may move between the two worker threads at every `.await`.
        let product =
            as_spawned_task(
                async move { fetch_product_concurrent(&client, &urls, PRODUCT_ID).await },
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

/// Any status outside 2xx is a `FetchError::Status`, even with a body that would decode: a 404, and a 300 too.
#[tokio::test]
async fn any_status_outside_2xx_is_a_status_error() {
    within_time_limit(async {
        // A 404 is a client error, not only 5xx fails. A 300 is neither a
        // client nor a server error, and reqwest does not follow it (it
        // follows only redirects that name where to go), so it reaches the
        // code as it is: still not a success.
        for status in [404, 300] {
            // Arrange: inventory answers `status`, with the very body it
            // serves when healthy, so only the status says it failed.
            let upstreams = MockUpstreams::healthy().await;
            serve_healthy_body_with_status(&upstreams, Service::Inventory, status).await;

            // Act: the async fan-out, then the blocking one.
            let concurrent =
                fetch_product_concurrent(&client(), &urls_of(&upstreams), PRODUCT_ID).await;
            let blocking = fetch_blocking_on_a_plain_thread(urls_of(&upstreams)).await;

            // Assert
            for (version, result) in [("concurrent", concurrent), ("blocking", blocking)] {
                assert!(
                    matches!(
                        result,
                        Err(FetchError::Status {
                            upstream: Upstream::Inventory,
                            status: got
                        }) if got == status
                    ),
                    "{version} fetch: inventory answered {status}, expected a Status error for \
                     inventory with {status} (any status outside 2xx is one, not only 4xx and \
                     5xx), got {result:?}"
                );
            }
        }
    })
    .await;
}

/// Any 2xx with the expected body is a success, not only 200: a 203 and a 299 decode, async and blocking.
#[tokio::test]
async fn any_2xx_status_with_the_expected_body_is_a_success() {
    within_time_limit(async {
        // Arrange: inventory answers 203 (Non-Authoritative Information: a
        // proxy changed the answer on its way), and pricing 299, the top of
        // the 2xx range (no standard meaning, still a success class), each
        // with the body it serves when healthy.
        let upstreams = MockUpstreams::healthy().await;
        serve_healthy_body_with_status(&upstreams, Service::Inventory, 203).await;
        serve_healthy_body_with_status(&upstreams, Service::Pricing, 299).await;

        // Act
        let concurrent =
            fetch_product_concurrent(&client(), &urls_of(&upstreams), PRODUCT_ID).await;
        let blocking = fetch_blocking_on_a_plain_thread(urls_of(&upstreams)).await;

        // Assert
        for (version, result) in [("concurrent", concurrent), ("blocking", blocking)] {
            match result {
                Ok(product) => assert_eq!(
                    product,
                    expected_product(),
                    "{version} fetch: the product must be merged from the three answers"
                ),
                Err(error) => panic!(
                    "{version} fetch: inventory answered 203 and pricing 299, each with a valid \
                     body; every status from 200 to 299 is a success, yet the fetch failed: \
                     {error:?}"
                ),
            }
        }
    })
    .await;
}

/// A 200 whose body is not the expected JSON becomes one `FetchError::Decode` naming the upstream, async and blocking: sent once, not retried.
#[tokio::test]
async fn a_body_that_is_not_json_is_a_decode_error_naming_the_upstream() {
    within_time_limit(async {
        // Arrange: reviews answers its first request with a body that is not
        // JSON and every later one with its healthy body, so a retry would
        // turn the failure into a product. One set of upstreams for each
        // path, so that each counts its own requests.
        let async_upstreams = upstreams_with_reviews_garbled_once().await;
        let blocking_upstreams = upstreams_with_reviews_garbled_once().await;

        // Act
        let concurrent =
            fetch_product_concurrent(&client(), &urls_of(&async_upstreams), PRODUCT_ID).await;
        let blocking = fetch_blocking_on_a_plain_thread(urls_of(&blocking_upstreams)).await;

        // Assert
        for (version, result, upstreams) in [
            ("concurrent", concurrent, &async_upstreams),
            ("blocking", blocking, &blocking_upstreams),
        ] {
            assert!(
                matches!(
                    result,
                    Err(FetchError::Decode {
                        upstream: Upstream::Reviews,
                        ..
                    })
                ),
                "{version} fetch: expected a Decode error for reviews, got {result:?}. This \
                 reviews sends JSON from its second request on: a product here means the \
                 request was sent again"
            );
            let requests = upstreams.received(Service::Reviews).await;
            assert_eq!(
                requests, 1,
                "{version} fetch: reviews received {requests} requests: step 1 sends each \
                 request once and returns its failure, a body that does not decode too \
                 (retries come in step 2)"
            );
        }
    })
    .await;
}

/// A 200 whose body is JSON, but another service's document, is a `FetchError::Decode` naming the upstream, async and blocking: never a panic.
#[tokio::test]
async fn a_json_body_of_another_shape_is_a_decode_error_naming_the_upstream() {
    within_time_limit(async {
        // Arrange: reviews answers 200 with pricing's healthy document, as a
        // misrouted gateway would: well-formed JSON, but not a `ReviewStats`.
        let upstreams = MockUpstreams::healthy().await;
        // Mounted directly, at wiremock's default priority, this mock wins
        // over the healthy one.
        Mock::given(method("GET"))
            .and(path(Service::Reviews.path(PRODUCT_ID)))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(Service::Pricing.body(PRODUCT_ID)),
            )
            .mount(upstreams.server(Service::Reviews))
            .await;

        // Act
        let concurrent =
            fetch_product_concurrent(&client(), &urls_of(&upstreams), PRODUCT_ID).await;
        let blocking = fetch_blocking_on_a_plain_thread(urls_of(&upstreams)).await;

        // Assert
        for (version, result) in [("concurrent", concurrent), ("blocking", blocking)] {
            assert!(
                matches!(
                    result,
                    Err(FetchError::Decode {
                        upstream: Upstream::Reviews,
                        ..
                    })
                ),
                "{version} fetch: reviews answered 200 with pricing's JSON document, which is \
                 not a ReviewStats, expected a Decode error for reviews, got {result:?}"
            );
        }
    })
    .await;
}

/// A 200 whose body breaks off before its end is one `FetchError::Decode` naming the upstream, async and blocking: sent once, not retried.
#[tokio::test]
async fn a_body_cut_short_is_a_decode_error_naming_the_upstream() {
    within_time_limit(async {
        // Arrange: a pricing that sends its headers and half its body, then
        // hangs up (and answers a second connection in full), one for each
        // path so that each counts its own connections. Inventory and
        // reviews are healthy.
        let healthy = MockUpstreams::healthy().await;
        let (async_pricing, async_connections) = pricing_cutting_its_first_body_short().await;
        let (blocking_pricing, blocking_connections) = pricing_cutting_its_first_body_short().await;
        let urls_with = |pricing| UpstreamUrls {
            pricing,
            ..urls_of(&healthy)
        };

        // Act
        let concurrent =
            fetch_product_concurrent(&client(), &urls_with(async_pricing), PRODUCT_ID).await;
        let blocking = fetch_blocking_on_a_plain_thread(urls_with(blocking_pricing)).await;

        // Assert
        for (version, result, connections) in [
            ("concurrent", concurrent, async_connections),
            ("blocking", blocking, blocking_connections),
        ] {
            assert!(
                matches!(
                    result,
                    Err(FetchError::Decode {
                        upstream: Upstream::Pricing,
                        ..
                    })
                ),
                "{version} fetch: pricing answered 200 and closed the connection half-way through \
                 the body its headers announced, expected a Decode error for pricing (a response \
                 arrived; its body could not be read to its end), got {result:?}. reqwest \
                 reports this with the same error type as a body that is not JSON, so both are \
                 Decode, whatever the error's own kind says. This pricing answers in full from \
                 its second connection on: a product here means the request was sent again"
            );
            let connections = connections.load(Ordering::SeqCst);
            assert_eq!(
                connections, 1,
                "{version} fetch: pricing was called on {connections} connections: step 1 sends \
                 each request once and returns its failure (retries come in step 2)"
            );
        }
    })
    .await;
}

/// An upstream that refuses the connection becomes `FetchError::Transport`, naming it.
#[tokio::test]
async fn a_refused_connection_is_a_transport_error_naming_the_upstream() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        let urls = UpstreamUrls {
            inventory: closed_port_url(),
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

/// A connection closed before the response headers is one `Transport` error naming the upstream, async and blocking: sent once, not retried.
#[tokio::test]
async fn a_connection_closed_before_the_headers_is_one_transport_error() {
    within_time_limit(async {
        // Arrange: an inventory that reads the request and hangs up without
        // answering (and answers a second connection), one for each path so
        // that each counts its own connections. Pricing and reviews are healthy.
        let healthy = MockUpstreams::healthy().await;
        let (async_inventory, async_connections) =
            inventory_hanging_up_on_the_first_connection().await;
        let (blocking_inventory, blocking_connections) =
            inventory_hanging_up_on_the_first_connection().await;
        let urls_with = |inventory| UpstreamUrls {
            inventory,
            ..urls_of(&healthy)
        };

        // Act
        let concurrent =
            fetch_product_concurrent(&client(), &urls_with(async_inventory), PRODUCT_ID).await;
        let blocking = fetch_blocking_on_a_plain_thread(urls_with(blocking_inventory)).await;

        // Assert
        for (version, result, connections) in [
            ("concurrent", concurrent, async_connections),
            ("blocking", blocking, blocking_connections),
        ] {
            assert!(
                matches!(
                    result,
                    Err(FetchError::Transport {
                        upstream: Upstream::Inventory,
                        ..
                    })
                ),
                "{version} fetch: inventory read the request and closed the connection without \
                 sending a response, expected a Transport error for inventory (no response \
                 arrived, although the server was reached), got {result:?}. This inventory \
                 answers from its second connection on: a product here means the request was \
                 sent again"
            );
            let connections = connections.load(Ordering::SeqCst);
            assert_eq!(
                connections, 1,
                "{version} fetch: inventory was called on {connections} connections: step 1 sends \
                 each request once and returns its failure (retries come in step 2)"
            );
        }
    })
    .await;
}

/// Every call goes through the client it is given, async and blocking, so the caller's settings and connection pool apply.
#[tokio::test]
async fn every_call_goes_through_the_client_it_is_given() {
    within_time_limit(async {
        // Arrange: upstreams that answer only requests carrying the test
        // clients' `User-Agent`, a setting of the client the caller built.
        // A client built for the call (`reqwest::get` builds one each time)
        // does not send it, and gets a 403.
        let upstreams = MockUpstreams::start().await;
        serve_only_the_test_clients(&upstreams).await;
        let (client, urls) = (client(), urls_of(&upstreams));

        // Act: each fan-out with the client the test built.
        let concurrent = fetch_product_concurrent(&client, &urls, PRODUCT_ID).await;
        let sequential = fetch_product_sequential(&client, &urls, PRODUCT_ID).await;
        let blocking = fetch_blocking_on_a_plain_thread(urls.clone()).await;

        // Assert
        for (version, result) in [
            ("concurrent", concurrent),
            ("sequential", sequential),
            ("blocking", blocking),
        ] {
            match result {
                Ok(product) => assert_eq!(
                    product,
                    expected_product(),
                    "{version} fetch: the product must be merged from the three answers"
                ),
                Err(error) => panic!(
                    "{version} fetch failed with {error:?}. These upstreams answer 403 to any \
                     request that does not carry the caller's client's User-Agent \
                     ({TEST_USER_AGENT:?}): every call must go through the client it is given, \
                     with that client's settings and connection pool, not through a client built \
                     for the call (as `reqwest::get` and `reqwest::blocking::get` do)"
                ),
            }
        }
    })
    .await;
}

/// The first error ends the concurrent fan-out at once and cancels the calls still in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_error_returns_at_once_and_cancels_the_other_calls() {
    within_time_limit(async {
        // Arrange: inventory and reviews never answer. Pricing fails after
        // 1 s, long after all three calls have been sent.
        const PRICING_FAILS_AFTER: Duration = Duration::from_secs(1);
        const RETURN_WITHIN: Duration = Duration::from_secs(5);
        const CANCELLED_WITHIN: Duration = Duration::from_secs(5);
        let hanging = || FastUpstream::start(Behaviour::default().hanging());
        let inventory = hanging().await.expect("the inventory fake starts");
        let reviews = hanging().await.expect("the reviews fake starts");
        let pricing = FastUpstream::start(Behaviour::fixed(PRICING_FAILS_AFTER).failing(1.0, 503))
            .await
            .expect("the pricing fake starts");
        let urls = UpstreamUrls {
            inventory: inventory.base_url(),
            pricing: pricing.base_url(),
            reviews: reviews.base_url(),
        };

        // Act: the other two calls never end, so only failing fast returns.
        let result = tokio::time::timeout(
            RETURN_WITHIN,
            fetch_product_concurrent(&client(), &urls, PRODUCT_ID),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "still waiting {RETURN_WITHIN:?} after the call, although pricing failed after \
                 {PRICING_FAILS_AFTER:?}: the first error must end the fan-out at once, not wait \
                 for the calls that never answer (`join!`, or awaiting one call after another, waits)"
            )
        });

        // Assert: pricing's error, and nothing left running at the other two.
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                })
            ),
            "expected pricing's Status error with 503, got {result:?}"
        );
        for (name, upstream) in [("inventory", &inventory), ("reviews", &reviews)] {
            // Pricing took 1 s to fail: a call made together with it has had
            // all that time to arrive.
            let counters = upstream.counters();
            assert!(
                counters.requests >= 1,
                "{name} was never called: its call must be in flight together with pricing's, \
                 not wait for an earlier call to finish (counters: {counters:?})"
            );
            let cancelled = wait_until(CANCELLED_WITHIN, || upstream.counters().in_flight == 0)
                .await
                .is_ok();
            assert!(
                cancelled,
                "{name}'s call was still running {CANCELLED_WITHIN:?} after pricing failed \
                 (counters: {:?}): it must be cancelled when the fan-out returns its error. A \
                 dropped future cancels its request, but a spawned task runs on after its \
                 JoinHandle is dropped",
                upstream.counters()
            );
        }
    })
    .await;
}

/// Dropping the concurrent fan-out while its three calls are in flight cancels all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_concurrent_fetch_cancels_all_three_calls() {
    within_time_limit(async {
        // Arrange: three upstreams that never answer.
        const SENT_WITHIN: Duration = Duration::from_secs(5);
        const CANCELLED_WITHIN: Duration = Duration::from_secs(5);
        let mut fakes = Vec::new();
        for name in ["inventory", "pricing", "reviews"] {
            let fake = FastUpstream::start(Behaviour::default().hanging())
                .await
                .unwrap_or_else(|error| panic!("the {name} fake starts: {error}"));
            fakes.push((name, fake));
        }
        let urls = UpstreamUrls {
            inventory: fakes[0].1.base_url(),
            pricing: fakes[1].1.base_url(),
            reviews: fakes[2].1.base_url(),
        };
        let client = client();
        let mut fetch = Box::pin(fetch_product_concurrent(&client, &urls, PRODUCT_ID));
        let all_three_arrived = || fakes.iter().all(|(_, fake)| fake.counters().requests >= 1);

        // Act: poll the fan-out until all three calls have reached their
        // upstreams, then drop it, as a caller's timeout or a client that
        // went away would.
        tokio::select! {
            result = &mut fetch => {
                panic!("upstreams that never answer cannot give a result, yet the fan-out returned {result:?}")
            }
            arrived = wait_until(SENT_WITHIN, all_three_arrived) => {
                let counters: Vec<_> = fakes.iter().map(|(name, fake)| (*name, fake.counters())).collect();
                assert!(
                    arrived.is_ok(),
                    "the three calls should all be in flight at once; {SENT_WITHIN:?} later the \
                     upstreams' counters were {counters:?}"
                );
            }
        }
        drop(fetch);

        // Assert: every upstream sees its request abandoned.
        for (name, fake) in &fakes {
            let cancelled = wait_until(CANCELLED_WITHIN, || fake.counters().in_flight == 0)
                .await
                .is_ok();
            assert!(
                cancelled,
                "{name}'s call was still running {CANCELLED_WITHIN:?} after the fan-out future was \
                 dropped (counters: {:?}). Dropping the future must cancel every call it made: a \
                 task spawned for a call runs on when its JoinHandle is dropped, unless something \
                 aborts it",
                fake.counters()
            );
        }
    })
    .await;
}

/// Sequential async fan-out stops at the first failure: no upstream is called after it.
#[tokio::test]
async fn the_sequential_fetch_calls_no_upstream_after_a_failure() {
    within_time_limit(async {
        // Every upstream fails, so whichever one is called first fails, in
        // whatever order the three are called.
        let upstreams = MockUpstreams::start().await;
        for service in Service::ALL {
            upstreams.serve_status(service, 500).await;
        }

        let result = fetch_product_sequential(&client(), &urls_of(&upstreams), PRODUCT_ID).await;

        assert!(
            matches!(result, Err(FetchError::Status { status: 500, .. })),
            "expected a Status error with 500, got {result:?}"
        );
        let calls = requests_to_all_three(&upstreams).await;
        assert_eq!(
            calls, 1,
            "after the first call failed, the sequential fetch must return its error without \
             calling the other upstreams; they received {calls} requests between them"
        );
    })
    .await;
}

/// Dropping the sequential fan-out while a call is in flight cancels that call, and no upstream is called after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_sequential_fetch_cancels_the_call_in_flight() {
    within_time_limit(async {
        // Arrange: three upstreams that never answer, so the first call made,
        // to whichever upstream, waits for ever.
        const SENT_WITHIN: Duration = Duration::from_secs(5);
        const CANCELLED_WITHIN: Duration = Duration::from_secs(5);
        let mut fakes = Vec::new();
        for name in ["inventory", "pricing", "reviews"] {
            let fake = FastUpstream::start(Behaviour::default().hanging())
                .await
                .unwrap_or_else(|error| panic!("the {name} fake starts: {error}"));
            fakes.push((name, fake));
        }
        let urls = UpstreamUrls {
            inventory: fakes[0].1.base_url(),
            pricing: fakes[1].1.base_url(),
            reviews: fakes[2].1.base_url(),
        };
        let client = client();
        let mut fetch = Box::pin(fetch_product_sequential(&client, &urls, PRODUCT_ID));
        let requests_to_all_three = || {
            fakes
                .iter()
                .map(|(_, fake)| fake.counters().requests)
                .sum::<u64>()
        };

        // Act: poll the fan-out until its first call has reached an upstream,
        // then drop it, as a caller's timeout or a client that went away would.
        tokio::select! {
            result = &mut fetch => {
                panic!("upstreams that never answer cannot give a result, yet the fan-out returned {result:?}")
            }
            arrived = wait_until(SENT_WITHIN, || requests_to_all_three() >= 1) => {
                assert!(arrived.is_ok(), "no upstream was called within {SENT_WITHIN:?}");
            }
        }
        drop(fetch);

        // Assert: the call in flight is abandoned, and none follows it.
        for (name, fake) in &fakes {
            let cancelled = wait_until(CANCELLED_WITHIN, || fake.counters().in_flight == 0)
                .await
                .is_ok();
            assert!(
                cancelled,
                "{name}'s call was still running {CANCELLED_WITHIN:?} after the fan-out future was \
                 dropped (counters: {:?}). Dropping the future must cancel the call it is waiting \
                 on: a task spawned for a call runs on when its JoinHandle is dropped",
                fake.counters()
            );
        }
        let requests = requests_to_all_three();
        assert_eq!(
            requests, 1,
            "the upstreams received {requests} requests between them: the fan-out was dropped \
             during its first call, so no other call may be made"
        );
    })
    .await;
}

/// The blocking baseline, run on a plain OS thread, returns the same product as the async one, waiting as long as a slow upstream takes.
#[tokio::test]
async fn the_blocking_fetch_on_a_plain_thread_returns_the_same_product() {
    within_time_limit(async {
        // Arrange: reviews is healthy but slow, 1.2 s. The contract has no
        // deadline: the blocking call parks its thread until the answer is
        // in, and a late answer is still an answer, not a transport error
        // (deadlines come in step 2).
        const SLOW_ANSWER: Duration = Duration::from_millis(1_200);
        let upstreams = MockUpstreams::healthy().await;
        upstreams.serve_slow(Service::Reviews, SLOW_ANSWER).await;

        // Act
        let result = fetch_blocking_on_a_plain_thread(urls_of(&upstreams)).await;

        // Assert
        match result {
            Ok(product) => assert_eq!(product, expected_product()),
            Err(error) => panic!(
                "all three upstreams answer, reviews after {SLOW_ANSWER:?}, yet the blocking \
                 fetch failed: it must wait for the answer, with no deadline of its own: \
                 {error:?}"
            ),
        }
    })
    .await;
}

/// The blocking fetch classifies each failure as the async one does, and stops at the first.
#[tokio::test]
async fn the_blocking_fetch_classifies_failures_and_stops_at_the_first() {
    within_time_limit(async {
        // A status outside 2xx from every upstream: a Status error from the
        // first one called, and no call after it.
        let all_failing = MockUpstreams::start().await;
        for service in Service::ALL {
            all_failing.serve_status(service, 404).await;
        }
        let result = fetch_blocking_on_a_plain_thread(urls_of(&all_failing)).await;
        assert!(
            matches!(result, Err(FetchError::Status { status: 404, .. })),
            "expected a Status error with 404 (any status outside 2xx is one), got {result:?}"
        );
        let calls = requests_to_all_three(&all_failing).await;
        assert_eq!(
            calls, 1,
            "after the first call failed, the blocking fetch must return its error without \
             calling the other upstreams; they received {calls} requests between them"
        );

        // A body that is not the expected JSON: a Decode error.
        let garbled = MockUpstreams::start().await;
        garbled.serve_healthy(Service::Inventory).await;
        garbled.serve_healthy(Service::Pricing).await;
        garbled.serve_garbage(Service::Reviews).await;
        let result = fetch_blocking_on_a_plain_thread(urls_of(&garbled)).await;
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

        // Nothing listening: a Transport error.
        let healthy = MockUpstreams::healthy().await;
        let urls = UpstreamUrls {
            pricing: closed_port_url(),
            ..urls_of(&healthy)
        };
        let result = fetch_blocking_on_a_plain_thread(urls).await;
        assert!(
            matches!(
                result,
                Err(FetchError::Transport {
                    upstream: Upstream::Pricing,
                    ..
                })
            ),
            "expected a Transport error for pricing, got {result:?}"
        );
    })
    .await;
}

/// The sequential and blocking fetches return a failure of any upstream, the last one too, and call nothing after it.
#[tokio::test]
async fn the_sequential_and_blocking_fetches_return_any_failure_and_call_nothing_after_it() {
    within_time_limit(async {
        for version in ["sequential", "blocking"] {
            // One run per upstream: that one answers 503, the other two are
            // healthy. Called one after another, in whatever order, the
            // failing upstream is first, second or third in line.
            let mut requests_per_run = Vec::new();
            for failing in Service::ALL {
                // Arrange
                let upstreams = MockUpstreams::healthy().await;
                upstreams.serve_status(failing, 503).await;
                let urls = urls_of(&upstreams);

                // Act
                let result = if version == "sequential" {
                    fetch_product_sequential(&client(), &urls, PRODUCT_ID).await
                } else {
                    fetch_blocking_on_a_plain_thread(urls).await
                };

                // Assert: that upstream's error, every upstream being needed.
                let expected = upstream_of(failing);
                assert!(
                    matches!(
                        result,
                        Err(FetchError::Status { upstream, status: 503 }) if upstream == expected
                    ),
                    "{version} fetch: {failing} answered 503, expected its Status error (the page \
                     needs all three answers, so any failure fails it), got {result:?}"
                );
                requests_per_run.push(requests_to_all_three(&upstreams).await);
            }

            // Assert: stopping at the failure, the runs made 1, 2 and 3
            // requests (the failing upstream called first, second, third).
            let mut sorted = requests_per_run.clone();
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                [1, 2, 3],
                "{version} fetch: with inventory, pricing, then reviews failing, the upstreams \
                 received {requests_per_run:?} requests between them. Called one after another \
                 and stopping at the first failure, the three runs make 1, 2 and 3 requests in \
                 some order: more means an upstream was called after, or together with, the one \
                 that failed"
            );
        }
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
        let scoring_started = Instant::now();
        let score = score_reviews_off_runtime(stats.clone(), SCORING_COST).await;
        let scoring_took = scoring_started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let worst_lag = heartbeat.await.expect("the heartbeat task does not panic");

        // Assert
        assert_eq!(
            score,
            score_reviews(&stats, Duration::ZERO),
            "the score must be the one score_reviews computes"
        );
        assert!(
            scoring_took >= SCORING_COST,
            "the scoring returned after {scoring_took:?}: it must really run, for the whole {SCORING_COST:?} of CPU work it is given"
        );
        assert!(
            worst_lag < Duration::from_millis(200),
            "a heartbeat tick was {worst_lag:?} late: the scoring blocked the runtime's thread instead of running on a blocking thread"
        );
    })
    .await;
}

/// Two scorings awaited together run side by side, on a single-threaded and on a multi-thread runtime: about 400 ms, not 800 ms.
#[test]
fn two_scorings_awaited_together_run_side_by_side_off_the_runtime() {
    // Each runtime is built here rather than by `#[tokio::test]`, so that one
    // test can check both kinds.
    for runtime_kind in ["single-threaded", "multi-thread"] {
        let runtime = if runtime_kind == "single-threaded" {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        }
        .expect("a tokio runtime builds");
        runtime.block_on(within_time_limit(two_scorings_awaited_together_on(
            runtime_kind,
        )));
    }
}

/// Awaits two scorings together, in one task, on the current runtime, and
/// checks that they overlapped.
async fn two_scorings_awaited_together_on(runtime_kind: &str) {
    // `score_reviews` spins until the wall clock says its cost has passed, so
    // a scoring takes 400 ms even when it gets only part of a core on a busy
    // machine.
    const SCORING_COST: Duration = Duration::from_millis(400);
    // 300 ms above one scoring: room for a busy machine, yet below the 800 ms
    // of the two scorings done one after the other.
    const UPPER_BOUND: Duration = Duration::from_millis(700);
    let stats = expected_product().reviews;
    let expected = score_reviews(&stats, Duration::ZERO);

    // Act: both in the same task, as one request would score two products.
    let started = Instant::now();
    let (first, second) = tokio::join!(
        score_reviews_off_runtime(stats.clone(), SCORING_COST),
        score_reviews_off_runtime(stats.clone(), SCORING_COST),
    );
    let elapsed = started.elapsed();

    // Assert
    for score in [first, second] {
        assert_eq!(
            score, expected,
            "{runtime_kind} runtime: each score must be the one score_reviews computes"
        );
    }
    assert!(
        elapsed >= SCORING_COST,
        "{runtime_kind} runtime: two scorings returned after {elapsed:?}: each must really \
         run, for the whole {SCORING_COST:?} of CPU work it is given"
    );
    assert!(
        elapsed < UPPER_BOUND,
        "{runtime_kind} runtime: two scorings of {SCORING_COST:?}, awaited together, took \
         {elapsed:?}: they did not run side by side. Work done on the task's own thread runs \
         one scoring after the other (800 ms in all): on the only thread of a single-threaded \
         runtime, even in slices with yields between them, and on any runtime when the call \
         blocks its worker in place (`block_in_place` returns only when the work is done, so \
         the other branch of the `join!` waits). On the blocking pool each scoring gets a \
         thread of its own, and awaiting it gives the thread back"
    );
}

/// A scoring that must wait for a free blocking thread still returns its own score, however late it starts.
#[test]
fn a_scoring_that_waits_for_a_blocking_thread_still_returns_its_score() {
    // Arrange: a runtime whose blocking pool has a single thread, kept busy
    // for 300 ms by other blocking work, so a 50 ms scoring sent there waits
    // its turn and is done only after about 350 ms.
    const POOL_BUSY_FOR: Duration = Duration::from_millis(300);
    const SCORING_COST: Duration = Duration::from_millis(50);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    let stats = expected_product().reviews;
    let expected = score_reviews(&stats, Duration::ZERO);

    runtime.block_on(within_time_limit(async {
        let other_work = tokio::task::spawn_blocking(|| std::thread::sleep(POOL_BUSY_FOR));

        // Act
        let score = score_reviews_off_runtime(stats, SCORING_COST).await;

        // Assert
        other_work.await.expect("the other blocking work finishes");
        assert_eq!(
            score, expected,
            "the scoring had to wait for a blocking thread, yet it must return the score \
             score_reviews computes: the contract sets no deadline on it, and a late score \
             is still the score"
        );
    }));
}
