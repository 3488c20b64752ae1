//! Step 4's tests: what "done" means for shipping the fan-out as a service.
//!
//! The same file runs against your exercise (`cargo xtask verify step4`) and
//! against the reference solution (`cargo xtask verify step4 --solution`).
//!
//! Most tests drive the router in process with `tower::ServiceExt::oneshot`:
//! no socket on the service side, just a request in and a response out. The
//! upstreams are `FastUpstream` fakes on the test's own runtime, in real
//! time, and timing checks keep wide margins (never tighter than 150 ms).
//! The shutdown and disconnect tests bind a real loopback socket, because
//! connections are the point there.
//!
//! Each test installs its own span-capturing subscriber and its own metrics
//! recorder (both thread-local, and a `#[tokio::test]` runs everything on one
//! thread), so tests running side by side never see each other's spans or
//! numbers. The two multi-thread tests read only metrics, whose handles are
//! registered on the test's thread and then work from any thread.
//!
//! Problem documents are compared with insta snapshots in `tests/snapshots/`;
//! the request id and the `instance` differ on every run, so they are
//! redacted (after checking that `instance` is a `urn:uuid:` URI).

#[path = "support/capture.rs"]
mod capture;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use capture::{Captured, CapturedSpan};
use fake_upstreams::fast::{Behaviour, FastUpstream};
use metrics::LocalRecorderGuard;
use serde_json::Value;
use step4_service::fetch::Fetched;
use step4_service::telemetry::{
    BULKHEAD_PERMITS_IN_USE, BULKHEAD_PERMITS_MAX, EVENT_LOOP_LAG, HEARTBEAT_PERIOD,
    REQUEST_LATENCY, RUNTIME_ALIVE_TASKS, RUNTIME_GLOBAL_QUEUE_DEPTH, RUNTIME_WORKERS,
    UPSTREAM_CALLS, UPSTREAM_IN_FLIGHT, UPSTREAM_LATENCY, heartbeat,
};
use step4_service::{
    ApiError, AppState, FetchError, InvalidProductId, Inventory, MAX_REQUEST_ID_LEN, PROBLEM_JSON,
    Price, ProblemContext, Product, ReviewStats, ServeError, ServiceConfig, Upstream,
    UpstreamMetrics, UpstreamUrls, bind_listener, observe_upstream_call, parse_product_id,
    prometheus_builder, router, serve,
};
use tokio::time::Instant;
use tower::ServiceExt as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

/// Every test gets at most this long, so a future that never completes fails
/// with a message instead of freezing the run.
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

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The merged answer for product 42, as the fake upstreams serve it.
fn expected_product() -> Product {
    Product {
        id: 42,
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

/// A configuration for tests whose fakes are slow on purpose: a long
/// `budget`, one attempt may use all of it (minus the default margin), and
/// the backstop well behind it.
fn patient(config: &mut ServiceConfig, budget: Duration) {
    config.request_budget = budget;
    config.attempt_timeout = budget;
    config.server_timeout = budget * 2;
}

/// Three fake upstreams, the service in front of them, and what it records.
struct Harness {
    inventory: FastUpstream,
    pricing: FastUpstream,
    reviews: FastUpstream,
    state: Arc<AppState>,
    /// Every span and log line the test's requests produced.
    captured: Captured,
    _tracing: tracing::subscriber::DefaultGuard,
    _metrics: LocalRecorderGuard<'static>,
}

impl Harness {
    /// All three upstreams healthy and instant, the tests' default
    /// configuration (see [`Harness::start`]).
    async fn healthy() -> Harness {
        Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default(),
            |_| {},
        )
        .await
    }

    /// Starts the fakes with these behaviours and the service in front of
    /// them, with `configure` applied to a patient configuration: a 2 s
    /// budget that one attempt may use whole. The workbook's own defaults
    /// (200 ms, attempts of 70 ms) are right for a service but not for a
    /// test on a loaded machine, where a first loopback call can take 80 ms;
    /// the tests that are about attempts and deadlines set theirs.
    async fn start(
        inventory: Behaviour,
        pricing: Behaviour,
        reviews: Behaviour,
        configure: impl FnOnce(&mut ServiceConfig),
    ) -> Harness {
        Harness::start_logging_from(LevelFilter::TRACE, inventory, pricing, reviews, configure)
            .await
    }

    /// [`Harness::start`], capturing only the spans and lines at `level` or
    /// more severe, as a `RUST_LOG` filter would (the binary's default is
    /// `info`): what is filtered out never exists, spans included.
    async fn start_logging_from(
        level: LevelFilter,
        inventory: Behaviour,
        pricing: Behaviour,
        reviews: Behaviour,
        configure: impl FnOnce(&mut ServiceConfig),
    ) -> Harness {
        // This test's own spans and metrics, on this thread only.
        let captured = Captured::default();
        let tracing = tracing::subscriber::set_default(captured.subscriber().with(level));
        // Leaked so the guard can live in the harness: a few bytes per test.
        let recorder: &'static _ = Box::leak(Box::new(prometheus_builder().build_recorder()));
        let metrics = metrics::set_default_local_recorder(recorder);

        let inventory = FastUpstream::start(inventory).await.expect("fake starts");
        let pricing = FastUpstream::start(pricing).await.expect("fake starts");
        let reviews = FastUpstream::start(reviews).await.expect("fake starts");
        let mut config = ServiceConfig::new(UpstreamUrls {
            inventory: inventory.base_url(),
            pricing: pricing.base_url(),
            reviews: reviews.base_url(),
        });
        patient(&mut config, Duration::from_secs(2));
        configure(&mut config);
        let state = AppState::new(config, recorder.handle()).expect("the test's config is valid");
        Harness {
            inventory,
            pricing,
            reviews,
            state,
            captured,
            _tracing: tracing,
            _metrics: metrics,
        }
    }

    /// The service under test.
    fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Sends `GET path` through the router, in process.
    async fn get(&self, path: &str) -> Reply {
        send(self.router(), Method::GET, path, None).await
    }

    /// Sends `GET path` with an `x-request-id` header.
    async fn get_with_id(&self, path: &str, request_id: HeaderValue) -> Reply {
        send(self.router(), Method::GET, path, Some(request_id)).await
    }

    /// The spans named `upstream_call` that have closed so far.
    fn upstream_spans(&self) -> Vec<CapturedSpan> {
        self.captured
            .closed_spans()
            .into_iter()
            .filter(|span| span.name == "upstream_call")
            .collect()
    }

    /// The closed `upstream_call` spans of one upstream, in attempt order.
    fn spans_of(&self, upstream: &str) -> Vec<CapturedSpan> {
        let mut spans: Vec<_> = self
            .upstream_spans()
            .into_iter()
            .filter(|span| span.field("upstream") == Some(upstream))
            .collect();
        spans.sort_by_key(|span| span.field("attempt").map(str::to_owned));
        spans
    }

    /// The Prometheus text the service's own `/metrics` route serves.
    async fn scrape(&self) -> String {
        let reply = self.get("/metrics").await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "GET /metrics should answer 200"
        );
        reply.text()
    }

    /// The same text, read straight from the recorder (no request, so it
    /// can be polled from a synchronous condition).
    fn metrics_now(&self) -> String {
        self.state.metrics.render()
    }
}

/// A response, read in full.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!("the body should be JSON ({error}), got: {}", self.text())
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts a problem document with `status`, and returns its JSON.
    fn problem(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "wrong status; body: {}", self.text());
        assert_eq!(
            self.header(header::CONTENT_TYPE.as_str()),
            Some(PROBLEM_JSON),
            "an error is sent as an RFC 9457 problem document; body: {:?}",
            self.text()
        );
        self.json()
    }
}

async fn send(
    router: Router,
    method: Method,
    path: &str,
    request_id: Option<HeaderValue>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(request_id) = request_id {
        request = request.header("x-request-id", request_id);
    }
    let response = router
        .oneshot(request.body(Body::empty()).expect("a valid request"))
        .await
        .expect("axum's router never fails");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("the body arrives")
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// Checks that a problem's `instance` names an occurrence the RFC 9457 way
/// chosen here: `urn:uuid:` and a UUID.
fn assert_urn_uuid(instance: Option<&str>) {
    let instance = instance.expect("a problem document has an `instance` string");
    let uuid = instance.strip_prefix("urn:uuid:").unwrap_or_else(|| {
        panic!("`instance` should be `urn:uuid:<uuid>` naming this occurrence, got {instance:?}")
    });
    assert!(
        uuid::Uuid::parse_str(uuid).is_ok(),
        "`instance` should end in a UUID, got {instance:?}"
    );
}

/// Runs `assertions` with insta reading and writing this file's snapshots in
/// `steps/step4_service/tests/snapshots`, from the exercise and the solution
/// alike. The solution compiles this file through `../../steps/...`; without
/// a fixed path, insta would look beside the solution when it cannot ask
/// cargo for the workspace root, and write stray `.snap.new` files there.
fn with_this_files_snapshots(assertions: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../steps/step4_service/tests/snapshots"
    ));
    settings.bind(assertions);
}

/// `insta::assert_json_snapshot!` with the two values that change on every
/// run redacted; `instance` is checked to be a `urn:uuid:` first.
macro_rules! assert_problem_snapshot {
    ($name:expr, $problem:expr) => {
        with_this_files_snapshots(|| {
            insta::assert_json_snapshot!($name, $problem, {
                ".request_id" => "[request-id]",
                ".instance" => insta::dynamic_redaction(|value, _path| {
                    assert_urn_uuid(value.as_str());
                    "[instance]"
                }),
            })
        })
    };
}

/// The value of the sample `name{labels...}` in Prometheus text, whatever
/// order its labels were written in.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let has_all = rest.starts_with('{')
            && labels
                .iter()
                .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
        has_all.then(|| value.parse().ok()).flatten()
    })
}

/// The value of a sample without labels, `name value`, if rendered.
fn unlabelled(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

/// A counter or gauge for one upstream (and outcome), 0 if not rendered.
fn value_of(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or(0.0)
}

/// The sum of every sample `name{labels...}` in Prometheus text (0 if
/// none): a series summed over the labels not named, as PromQL's `sum`.
fn total_of(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            let has_all = rest.starts_with('{')
                && labels
                    .iter()
                    .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
            has_all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// How many latency observations one upstream's histogram holds, all
/// outcomes together.
fn latency_count(text: &str, upstream: &str) -> f64 {
    total_of(
        text,
        &format!("{UPSTREAM_LATENCY}_count"),
        &[("upstream", upstream)],
    )
}

/// Polls `condition` every few milliseconds until it holds (the test's time
/// limit catches "never").
async fn wait_until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        tokio::time::sleep(ms(5)).await;
    }
}

/// Polls `condition` for up to `limit`; whether it came to hold.
async fn holds_within(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + limit;
    while !condition() {
        if Instant::now() >= give_up {
            return false;
        }
        tokio::time::sleep(ms(5)).await;
    }
    true
}

/// A loopback URL nothing listens on: the port was just bound, so it was
/// free, and then let go, so a connection to it is refused at once.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    drop(listener);
    format!("http://{address}")
}

/// A real `reqwest::Error`, of the kind a refused connection gives.
async fn a_refused_connection() -> reqwest::Error {
    reqwest::Client::new()
        .get(closed_port_url())
        .send()
        .await
        .expect_err("nothing listens on a closed port")
}

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

/// `GET /products/42` with healthy upstreams answers 200 with the merged product as JSON.
#[tokio::test]
async fn a_healthy_request_returns_the_merged_product_as_json() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let reply = service.get("/products/42").await;

        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        assert_eq!(
            reply.header(header::CONTENT_TYPE.as_str()),
            Some("application/json"),
            "the product is sent as JSON, and says so in its content type"
        );
        let product: Product = serde_json::from_slice(&reply.body).expect("a Product as JSON");
        assert_eq!(product, expected_product());
    })
    .await;
}

/// `GET /healthz` answers 200 and calls no upstream: a dependency's outage is not this process's.
#[tokio::test]
async fn healthz_answers_ok_without_calling_any_upstream() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let reply = service.get("/healthz").await;

        assert_eq!(reply.status, StatusCode::OK);
        for fake in [&service.inventory, &service.pricing, &service.reviews] {
            assert_eq!(
                fake.counters().requests,
                0,
                "a health check must not call upstreams"
            );
        }
    })
    .await;
}

/// An unknown path is a 404 problem document and a wrong method a 405 one (with `Allow`), not an empty body.
#[tokio::test]
async fn an_unknown_path_or_method_is_a_problem_document_too() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let unknown = service.get("/no/such/thing").await;
        let wrong_method = send(service.router(), Method::POST, "/products/42", None).await;

        let problem = unknown.problem(StatusCode::NOT_FOUND);
        assert_problem_snapshot!("not_found", problem);
        let problem = wrong_method.problem(StatusCode::METHOD_NOT_ALLOWED);
        assert_problem_snapshot!("method_not_allowed", problem);
        assert!(
            wrong_method
                .header(header::ALLOW.as_str())
                .is_some_and(|allow| allow.contains("GET")),
            "a 405 says which methods the resource does allow (`Allow`)"
        );
        for reply in [&unknown, &wrong_method] {
            assert!(
                reply.header("x-request-id").is_some(),
                "every response carries x-request-id, errors from the router included"
            );
        }
        // Every known path, not only the product page: a wrong method on
        // any of them is the same 405 problem document.
        for path in ["/healthz", "/metrics"] {
            let reply = send(service.router(), Method::POST, path, None).await;
            assert_eq!(
                (reply.status, reply.header(header::CONTENT_TYPE.as_str())),
                (StatusCode::METHOD_NOT_ALLOWED, Some(PROBLEM_JSON)),
                "POST {path}: a wrong method on any known path is a 405 problem document, not axum's empty one; body: {:?}",
                reply.text()
            );
            let problem = reply.problem(StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(
                problem["type"], "https://problems.fanout.example/method-not-allowed",
                "POST {path}: {problem}"
            );
            assert!(
                reply
                    .header(header::ALLOW.as_str())
                    .is_some_and(|allow| allow.contains("GET")),
                "POST {path}: a 405 says which methods the resource does allow (`Allow`)"
            );
            assert!(
                reply.header("x-request-id").is_some(),
                "POST {path}: every response carries x-request-id"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Errors are part of the API: status codes and problem documents
// ---------------------------------------------------------------------------

/// An id that is not a number is a 400 problem document that does not echo it back, and no upstream is called.
#[tokio::test]
async fn an_id_that_is_not_a_number_is_a_400_problem_and_calls_no_upstream() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let reply = service.get("/products/abc").await;

        let problem = reply.problem(StatusCode::BAD_REQUEST);
        assert_problem_snapshot!("invalid_id_not_a_number", problem);
        // `+42` parses as a u64 in Rust; `%2042` is ` 42` once decoded, and
        // nothing is trimmed; `%FF` is not even UTF-8 once decoded.
        for (path, segment) in [
            ("/products/+42", "+42"),
            ("/products/%2042", " 42"),
            ("/products/%FF", "%FF"),
        ] {
            let reply = service.get(path).await;
            let problem = reply.problem(StatusCode::BAD_REQUEST);
            assert_eq!(
                problem["type"], "https://problems.fanout.example/invalid-product-id",
                "{path}: {problem}"
            );
            assert!(
                !reply.text().contains(segment),
                "{path}: the problem document should not echo the caller's input: {problem}"
            );
        }
        for fake in [&service.inventory, &service.pricing, &service.reviews] {
            assert_eq!(
                fake.counters().requests,
                0,
                "a bad id is rejected at the edge, before any upstream call"
            );
        }
    })
    .await;
}

/// An id longer than 19 characters is a 400 problem document, which does not echo the id back; 19 digits are still an id.
#[tokio::test]
async fn an_id_that_is_too_long_is_a_400_problem() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let reply = service.get("/products/1234567890123456789012345").await;
        let longest = service.get("/products/9999999999999999999").await;

        let problem = reply.problem(StatusCode::BAD_REQUEST);
        assert_problem_snapshot!("invalid_id_too_long", problem);
        assert!(
            !reply.text().contains("1234567890123456789012345"),
            "the problem document should not echo the rejected id: {problem}"
        );
        assert_eq!(
            longest.status,
            StatusCode::OK,
            "19 digits is the longest id, and still an id; body: {}",
            longest.text()
        );
        assert_eq!(longest.json()["id"], 9_999_999_999_999_999_999_u64);
    })
    .await;
}

/// `parse_product_id` counts characters, not bytes (leading zeros included), checks the length first, and takes 1 to 19 ASCII digits, any of them: not `""`, `+42`, ` 42` or `٤٢`, but `0` and `007`.
#[test]
fn a_product_id_is_measured_in_characters_and_checked_for_length_first() {
    // Arrange: `é` is one character but two bytes in UTF-8.
    let cases = [
        ("42".to_owned(), Ok(42), "two ASCII digits are an id"),
        (
            "0".to_owned(),
            Ok(0),
            "one ASCII digit is an id, `0` included",
        ),
        (
            "007".to_owned(),
            Ok(7),
            "a leading zero is still an ASCII digit: `007` is product 7",
        ),
        (
            "9".repeat(19),
            Ok(9_999_999_999_999_999_999),
            "19 digits is the longest id, and always fits a u64",
        ),
        (
            String::new(),
            Err(InvalidProductId::NotANumber),
            "an empty id has no digits: it is not a number (and not product 0)",
        ),
        (
            "é".repeat(10),
            Err(InvalidProductId::NotANumber),
            "10 characters (20 bytes) is not too long, just not digits: count characters, not bytes",
        ),
        (
            "é".repeat(20),
            Err(InvalidProductId::TooLong { len: 20 }),
            "20 characters is too long, and `len` counts characters, not bytes (40)",
        ),
        (
            "a".repeat(25),
            Err(InvalidProductId::TooLong { len: 25 }),
            "a 25-character id is too long before it is anything else: check the length first",
        ),
        (
            format!("{}1", "0".repeat(19)),
            Err(InvalidProductId::TooLong { len: 20 }),
            "20 characters is too long even when 19 of them are leading zeros: every character counts",
        ),
        (
            "+42".to_owned(),
            Err(InvalidProductId::NotANumber),
            "only ASCII digits: Rust's `u64` parser accepts a leading `+`, an id does not",
        ),
        (
            " 42".to_owned(),
            Err(InvalidProductId::NotANumber),
            "a space is not a digit: nothing is trimmed (the path `/products/%2042` is ` 42`)",
        ),
        (
            "42 ".to_owned(),
            Err(InvalidProductId::NotANumber),
            "a trailing space is not a digit either: nothing is trimmed",
        ),
        (
            "٤٢".to_owned(),
            Err(InvalidProductId::NotANumber),
            "Arabic-Indic digits are numeric (`char::is_numeric`) but not ASCII digits: not a number",
        ),
        (
            "４２".to_owned(),
            Err(InvalidProductId::NotANumber),
            "fullwidth digits are numeric (`char::is_numeric`) but not ASCII digits: not a number",
        ),
    ];

    for (raw, expected, why) in cases {
        // Act
        let parsed = parse_product_id(&raw);

        // Assert
        assert_eq!(parsed, expected, "parse_product_id({raw:?}): {why}");
    }
}

/// An upstream answering 500 makes the request a 502 problem document naming that upstream.
#[tokio::test]
async fn an_upstream_error_status_is_a_502_problem_naming_the_upstream() {
    within_time_limit(async {
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default().failing(1.0, 500),
            Behaviour::default(),
            |_| {},
        )
        .await;

        let reply = service.get("/products/42").await;

        let problem = reply.problem(StatusCode::BAD_GATEWAY);
        assert_problem_snapshot!("upstream_error", problem);
        assert_eq!(
            reply.header("retry-after"),
            None,
            "Retry-After is for a shed request only: here the service has no idea when pricing will recover"
        );
        // A 5xx is logged like a 4xx: the one line with the `instance` is at
        // INFO, where an operator's default filter finds it, not raised to
        // WARN or ERROR because the status is a server error.
        let instance = problem["instance"].as_str().expect("checked by the snapshot");
        let levels: Vec<_> = service
            .captured
            .events()
            .into_iter()
            .filter(|event| event.field("instance") == Some(instance))
            .map(|event| event.level)
            .collect();
        assert_eq!(
            levels,
            [tracing::Level::INFO],
            "one line carries the 502's `instance`, at INFO exactly, whatever the status"
        );
    })
    .await;
}

/// A hung upstream makes the request a 504 problem document, sent by the deadline (not the 1 s backstop).
#[tokio::test]
async fn a_hung_upstream_is_a_504_problem_by_the_deadline() {
    within_time_limit(async {
        // Arrange: reviews never answers; a 1 s budget, attempts of at most
        // 300 ms, a 3 s backstop.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| {
                config.request_budget = Duration::from_secs(1);
                config.attempt_timeout = ms(300);
                config.server_timeout = Duration::from_secs(3);
            },
        )
        .await;
        let config = service.state.config.clone();

        let started = Instant::now();
        let reply = service.get("/products/42").await;
        let elapsed = started.elapsed();

        let problem = reply.problem(StatusCode::GATEWAY_TIMEOUT);
        assert_problem_snapshot!("upstream_timeout", problem);
        assert!(
            elapsed >= config.attempt_timeout,
            "answered after {elapsed:?}, before even one {:?} attempt could time out",
            config.attempt_timeout
        );
        assert!(
            elapsed < config.request_budget + ms(300),
            "answered after {elapsed:?}: the deadline set at the edge ({:?}) should end the request, not the server's {:?} backstop",
            config.request_budget,
            config.server_timeout
        );
    })
    .await;
}

/// When one upstream's bulkhead is full the whole page is shed at once: 503, a problem document, `Retry-After`, and no call sent.
#[tokio::test]
async fn a_full_bulkhead_sheds_the_whole_page_with_a_503_problem_and_retry_after() {
    within_time_limit(async {
        // Arrange: one call per upstream at most; a first request holds
        // reviews' only permit for 500 ms. Inventory and pricing answer at
        // once, so their permits are free again.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::fixed(ms(500)),
            |config| {
                patient(config, Duration::from_secs(2));
                config.max_in_flight_per_upstream = 1;
                // Less than a second: still `Retry-After: 1`, never 0.
                config.retry_after = ms(300);
            },
        )
        .await;
        let first = tokio::spawn(send(service.router(), Method::GET, "/products/42", None));
        wait_until(|| service.reviews.counters().in_flight == 1).await;
        // Inventory's and pricing's calls of the first page are over, so
        // their permits are back (each is returned as its call ends).
        wait_until(|| {
            let metrics = service.metrics_now();
            ["inventory", "pricing"].iter().all(|upstream| {
                value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", upstream), ("outcome", "ok")],
                ) == 1.0
            })
        })
        .await;
        let metrics_before = service.metrics_now();

        // Act: a second request while reviews' permit is taken.
        let started = Instant::now();
        let reply = service.get("/products/43").await;
        let elapsed = started.elapsed();

        // Assert
        let problem = reply.problem(StatusCode::SERVICE_UNAVAILABLE);
        assert_problem_snapshot!("shed", problem);
        assert_eq!(
            reply.header("retry-after"),
            Some("1"),
            "a shed client is told when to come back: Retry-After in whole seconds, at least 1"
        );
        assert!(
            elapsed < ms(300),
            "shedding took {elapsed:?}: a full bulkhead should answer at once, not queue"
        );
        for fake in [&service.inventory, &service.pricing] {
            assert_eq!(
                fake.counters().requests,
                1,
                "a shed page sends nothing, not even to the upstreams that had room"
            );
        }
        let metrics = service.scrape().await;
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "shed")]
            ),
            1.0,
            "the shed page is counted once, as `shed`, against reviews; metrics were:\n{metrics}"
        );
        for upstream in ["inventory", "pricing", "reviews"] {
            assert_eq!(
                latency_count(&metrics, upstream),
                latency_count(&metrics_before, upstream),
                "a shed call was never sent, so it has no latency to record ({upstream}); metrics were:\n{metrics}"
            );
            assert_eq!(
                value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", upstream), ("outcome", "cancelled")]
                ),
                0.0,
                "nothing was started for the shed page, so nothing was cancelled ({upstream})"
            );
        }
        let first = first.await.expect("the first request's task");
        assert_eq!(
            first.status,
            StatusCode::OK,
            "the request holding the permit still succeeds"
        );
    })
    .await;
}

/// While pages are in flight `/metrics` shows each upstream's bulkhead permits in use, out of its size, read at the moment of the scrape; they are back to 0 once the pages are dropped.
#[tokio::test]
async fn the_bulkhead_gauges_show_the_permits_held_by_pages_in_flight() {
    within_time_limit(async {
        // Arrange: every upstream hangs, so each admitted page holds one
        // permit of each upstream until it is dropped; 5 permits each.
        let size = 5;
        let service = Harness::start(
            Behaviour::default().hanging(),
            Behaviour::default().hanging(),
            Behaviour::default().hanging(),
            |config| {
                // Longer than the test's wait, so the pages outlast it.
                patient(config, Duration::from_secs(12));
                config.server_timeout = Duration::from_secs(24);
                config.max_in_flight_per_upstream = size;
            },
        )
        .await;
        let upstreams = ["inventory", "pricing", "reviews"];
        let in_use = |metrics: &str, upstream: &str| {
            sample(metrics, BULKHEAD_PERMITS_IN_USE, &[("upstream", upstream)])
        };
        let three_pages = async {
            tokio::join!(
                service.get("/products/1"),
                service.get("/products/2"),
                service.get("/products/3"),
            )
        };
        // Scrapes until every bulkhead shows the three pages, or gives up.
        let watch = async {
            let give_up = Instant::now() + Duration::from_secs(5);
            loop {
                let metrics = service.scrape().await;
                let all_held = upstreams
                    .iter()
                    .all(|upstream| in_use(&metrics, upstream) == Some(3.0));
                if all_held || Instant::now() >= give_up {
                    return metrics;
                }
                tokio::time::sleep(ms(5)).await;
            }
        };

        // Act: three pages held open while `/metrics` is read; then they
        // are dropped (the `select!` ends), which returns their permits.
        let held = tokio::select! {
            _ = three_pages => panic!("the pages ended, but every upstream hangs"),
            metrics = watch => metrics,
        };
        let after = service.scrape().await;

        // Assert
        for upstream in upstreams {
            assert_eq!(
                in_use(&held, upstream),
                Some(3.0),
                "three pages in flight hold three of {upstream}'s permits, and `/metrics` reads them when it is \
                 scraped; metrics were:\n{held}"
            );
            assert_eq!(
                sample(&held, BULKHEAD_PERMITS_MAX, &[("upstream", upstream)]),
                Some(size as f64),
                "{upstream}'s bulkhead has {size} permits in all; metrics were:\n{held}"
            );
            assert_eq!(
                in_use(&after, upstream),
                Some(0.0),
                "the pages were dropped, so {upstream}'s permits are back; metrics were:\n{after}"
            );
        }
    })
    .await;
}

/// `Retry-After` is sent only when a page is shed: no 502 (whatever status the upstream answered, 429 and 503 included), no 504, and not the backstop's 503 either.
#[tokio::test]
async fn only_a_shed_page_is_told_when_to_retry() {
    within_time_limit(async {
        // Arrange: one error of every kind. A refused connection gives a
        // real `reqwest::Error` for the two variants that carry one;
        // `to_problem` only looks at the variant.
        let context = ProblemContext {
            request_id: "retry-after-check".to_owned(),
            retry_after: ms(1500),
        };
        let upstream = Upstream::Reviews;
        let cases = [
            (ApiError::InvalidProductId(InvalidProductId::NotANumber), 400, None),
            (ApiError::NoSuchRoute, 404, None),
            (ApiError::MethodNotAllowed, 405, None),
            (ApiError::Upstream(FetchError::Status { upstream, status: 500 }), 502, None),
            // Whatever status the upstream answered, it failed us: a bad
            // gateway, not its own status passed through, and no promise of
            // when to come back (an upstream's 429 or 503 included).
            (ApiError::Upstream(FetchError::Status { upstream, status: 404 }), 502, None),
            (ApiError::Upstream(FetchError::Status { upstream, status: 429 }), 502, None),
            (ApiError::Upstream(FetchError::Status { upstream, status: 503 }), 502, None),
            (ApiError::Upstream(FetchError::Status { upstream, status: 504 }), 502, None),
            (
                ApiError::Upstream(FetchError::Transport { upstream, source: a_refused_connection().await }),
                502,
                None,
            ),
            (
                ApiError::Upstream(FetchError::Decode { upstream, source: a_refused_connection().await }),
                502,
                None,
            ),
            (
                ApiError::Upstream(FetchError::Overloaded { upstream }),
                503,
                Some(context.retry_after),
            ),
            (ApiError::Upstream(FetchError::Timeout { upstream }), 504, None),
            (ApiError::ServerTimeout { after: ms(300) }, 503, None),
        ];

        for (error, status, retry_after) in cases {
            // Act
            let problem = error.to_problem(&context);

            // Assert
            assert_eq!(problem.status, status, "the status for {error:?}");
            assert_eq!(
                problem.retry_after, retry_after,
                "{error:?} (status {status}): `retry_after` is `Some` only for `Overloaded`. A shed client is told when \
                 to come back; after a failure or a timeout the service cannot know when a retry would help"
            );
        }
    })
    .await;
}

/// Every problem document names its occurrence with a fresh `urn:uuid:` instance, and one `INFO` line in the request's span quotes it, under the binary's default `info` filter.
#[tokio::test]
async fn every_problem_names_its_occurrence_and_is_logged_with_it() {
    within_time_limit(async {
        // Arrange: capture what an operator sees with the binary's default
        // filter, `info`: a span or line below INFO does not exist there.
        let service = Harness::start_logging_from(
            LevelFilter::INFO,
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default(),
            |_| {},
        )
        .await;
        let id = HeaderValue::from_static("retry-of-the-same-call");

        // Act: the same caller id twice: two occurrences all the same.
        let first = service.get_with_id("/products/abc", id.clone()).await;
        let second = service.get_with_id("/products/abc", id).await;

        // Assert

        let first = first.problem(StatusCode::BAD_REQUEST);
        let second = second.problem(StatusCode::BAD_REQUEST);
        assert_urn_uuid(first["instance"].as_str());
        assert_urn_uuid(second["instance"].as_str());
        assert_ne!(
            first["instance"], second["instance"],
            "`instance` names one occurrence: two failed requests get two instances"
        );
        let instance = first["instance"].as_str().expect("checked above");
        let logged: Vec<_> = service
            .captured
            .events()
            .into_iter()
            .filter(|event| event.field("instance") == Some(instance))
            .collect();
        assert_eq!(
            logged.len(),
            1,
            "one log line at INFO should carry the problem's `instance` (a field named `instance`), so a client's report \
             can be found with the binary's default `info` filter"
        );
        assert_eq!(
            logged[0].level,
            tracing::Level::INFO,
            "the line with the instance is logged at INFO, next to the response line (a client's bad request is not a \
             warning for the operator)"
        );
        assert_eq!(
            logged[0].field_in_scope("request_id"),
            Some("retry-of-the-same-call"),
            "under an `info` filter the line with the instance should still be inside the request's span: make the \
             `request` span an INFO span (a DEBUG span is filtered out, and the id with it)"
        );
    })
    .await;
}

/// A request that outlives its deadline (a bug) is ended by the backstop with a 503 problem document, logged in the request's span, and its calls are cancelled.
#[tokio::test]
async fn the_backstop_ends_a_request_that_outlives_its_deadline_with_a_problem() {
    within_time_limit(async {
        let mut service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| patient(config, Duration::from_secs(10)),
        )
        .await;
        // In a correct service the deadline always wins. To watch the
        // backstop work, play the bug it exists for: a 10 s deadline behind
        // a 300 ms backstop, set behind `validate`'s back.
        let backstop = ms(300);
        Arc::get_mut(&mut service.state)
            .expect("nothing else holds the state yet")
            .config
            .server_timeout = backstop;

        let started = Instant::now();
        let reply = service
            .get_with_id("/products/42", HeaderValue::from_static("stuck-1"))
            .await;
        let elapsed = started.elapsed();

        let problem = reply.problem(StatusCode::SERVICE_UNAVAILABLE);
        assert_problem_snapshot!("server_timeout", problem);
        assert_eq!(problem["request_id"], "stuck-1");
        assert_eq!(
            reply.header("x-request-id"),
            Some("stuck-1"),
            "the backstop's answer carries the request id too"
        );
        assert!(
            elapsed >= backstop && elapsed < backstop + ms(600),
            "answered after {elapsed:?}; the backstop is {backstop:?} (server_timeout)"
        );
        let events = service.captured.events();
        let instance = problem["instance"].as_str().expect("checked by the snapshot");
        let problem_line = events
            .iter()
            .find(|event| event.field("instance") == Some(instance))
            .unwrap_or_else(|| panic!("no log line carries the backstop's problem `instance`; lines were:\n{events:#?}"));
        assert_eq!(
            problem_line.field_in_scope("request_id"),
            Some("stuck-1"),
            "the backstop's problem line is outside the request's span: put the backstop inside the TraceLayer; line was {problem_line:#?}"
        );
        assert_eq!(
            problem_line.level,
            tracing::Level::INFO,
            "the line with the backstop's `instance` is at INFO like every problem's, not raised for a 503"
        );
        let response_logged = events.iter().any(|event| {
            event.level <= tracing::Level::INFO
                && event.is_inside("request")
                && event
                    .fields
                    .iter()
                    .any(|(name, value)| name.contains("status") && value == "503")
        });
        assert!(
            response_logged,
            "no INFO line with status 503 inside the `request` span: the backstop's answer is a response like any other, \
             and the TraceLayer logs it only if the backstop is inside it; lines were:\n{events:#?}"
        );
        let metrics = service.metrics_now();
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "cancelled")]
            ),
            1.0,
            "ending the request drops the handler, which cancels the call still running; metrics were:\n{metrics}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Request ids
// ---------------------------------------------------------------------------

/// A request id the client sends in `x-request-id` (up to the longest allowed) is echoed on the response, whichever route answers.
#[tokio::test]
async fn a_given_request_id_is_echoed_on_the_response() {
    within_time_limit(async {
        let service = Harness::healthy().await;
        let longest = "b".repeat(MAX_REQUEST_ID_LEN);

        let short = service
            .get_with_id("/products/42", HeaderValue::from_static("checkout-7f3a"))
            .await;
        let long = service
            .get_with_id(
                "/products/42",
                HeaderValue::from_str(&longest).expect("ASCII"),
            )
            .await;

        assert_eq!(short.status, StatusCode::OK, "body: {}", short.text());
        assert_eq!(
            short.header("x-request-id"),
            Some("checkout-7f3a"),
            "the caller's request id comes back unchanged"
        );
        assert_eq!(
            long.header("x-request-id"),
            Some(longest.as_str()),
            "an id of exactly {MAX_REQUEST_ID_LEN} bytes is still kept"
        );
        // The other routes and the fallback sit behind the same layers.
        for path in ["/healthz", "/metrics", "/no/such/thing"] {
            let reply = service
                .get_with_id(path, HeaderValue::from_static("checkout-7f3a"))
                .await;
            assert_eq!(
                reply.header("x-request-id"),
                Some("checkout-7f3a"),
                "GET {path}: every response echoes the caller's request id"
            );
        }
    })
    .await;
}

/// Without `x-request-id` the service makes a fresh id per request, and a problem document quotes it.
#[tokio::test]
async fn a_request_without_an_id_gets_a_fresh_one_also_in_its_problem_document() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let first = service.get("/products/abc").await;
        let second = service.get("/products/abc").await;

        let first_id = first
            .header("x-request-id")
            .expect("a response always carries x-request-id")
            .to_owned();
        let second_id = second
            .header("x-request-id")
            .expect("a response always carries x-request-id")
            .to_owned();
        assert!(!first_id.is_empty(), "the generated id is empty");
        assert_ne!(first_id, second_id, "each request gets its own id");
        assert!(
            uuid::Uuid::parse_str(&first_id).is_ok(),
            "a request without an id gets a fresh UUID, got {first_id:?}"
        );
        let problem = first.problem(StatusCode::BAD_REQUEST);
        assert_eq!(
            problem["request_id"].as_str(),
            Some(first_id.as_str()),
            "the problem document quotes the same id as the header, so a client can report it"
        );
    })
    .await;
}

/// A caller's id that is not ASCII, or too long, is replaced by a fresh one, and a warning in the request's span says so.
#[tokio::test]
async fn an_unusable_request_id_is_replaced_and_the_replacement_logged() {
    within_time_limit(async {
        let service = Harness::healthy().await;
        let too_long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        let unusable = [
            ("not ASCII", HeaderValue::from_bytes("café-1".as_bytes()).expect("obs-text is allowed in a header")),
            ("too long", HeaderValue::from_str(&too_long).expect("ASCII")),
        ];

        for (why, sent) in unusable {
            let reply = service.get_with_id("/products/abc", sent.clone()).await;

            let replaced = reply
                .header("x-request-id")
                .unwrap_or_else(|| panic!("{why}: the response still carries an id"))
                .to_owned();
            assert_ne!(
                replaced.as_bytes(),
                sent.as_bytes(),
                "{why}: the caller's id is not kept"
            );
            assert!(
                !replaced.is_empty() && replaced.len() <= MAX_REQUEST_ID_LEN,
                "{why}: the replacement is a usable id, got {replaced:?}"
            );
            let problem = reply.problem(StatusCode::BAD_REQUEST);
            assert_eq!(
                problem["request_id"].as_str(),
                Some(replaced.as_str()),
                "{why}: the problem quotes the id the service settled on"
            );
            let warned = service.captured.events().into_iter().any(|event| {
                event.level == tracing::Level::WARN
                    && event.field_in_scope("request_id") == Some(replaced.as_str())
            });
            assert!(
                warned,
                "{why}: replacing a caller's id is not silent: a warning is logged inside the request's span"
            );
        }
    })
    .await;
}

/// Every log line written while a request is handled carries that request's id.
#[tokio::test]
async fn every_log_line_of_a_request_carries_its_request_id() {
    within_time_limit(async {
        // A failing upstream, so the service has something to log.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default().failing(1.0, 500),
            Behaviour::default(),
            |_| {},
        )
        .await;

        service
            .get_with_id("/products/42", HeaderValue::from_static("trace-me-42"))
            .await;

        // Only the service's own lines (and tower-http's, which it
        // configures); the HTTP client's internals log on their own tasks.
        let lines: Vec<_> = service
            .captured
            .events()
            .into_iter()
            .filter(|event| {
                event.target.starts_with("step4_service") || event.target.starts_with("tower_http")
            })
            .collect();
        assert!(
            !lines.is_empty(),
            "a failed request should write at least one log line (a warning for the failed call, or the response line)"
        );
        for line in &lines {
            assert_eq!(
                line.field_in_scope("request_id"),
                Some("trace-me-42"),
                "log line {:?} (target {}) is not inside a span carrying request_id; make the request's span in the TraceLayer",
                line.message,
                line.target
            );
        }
    })
    .await;
}

/// Each response is logged at `INFO`, with its status, inside the request's span (tower-http's default is `DEBUG`).
#[tokio::test]
async fn each_response_is_logged_at_info_with_its_status() {
    within_time_limit(async {
        // Arrange
        let service = Harness::healthy().await;

        // Act
        let reply = service.get("/healthz").await;

        // Assert: a line at INFO (or more severe) carrying the status, in
        // the span named `request`. `Level` orders TRACE as the greatest.
        assert_eq!(reply.status, StatusCode::OK);
        let events = service.captured.events();
        let logged = events.iter().any(|event| {
            event.level <= tracing::Level::INFO
                && event.is_inside("request")
                && event
                    .fields
                    .iter()
                    .any(|(name, value)| name.contains("status") && value == "200")
        });
        assert!(
            logged,
            "no INFO line with the status (a `status` field, 200) inside the `request` span: log each response at INFO \
             (tower-http's `DefaultOnResponse` logs at DEBUG unless told otherwise); lines were:\n{events:#?}"
        );
    })
    .await;
}

/// Each request runs in exactly one span named `request`, with its `request_id`, `method` and `path`.
#[tokio::test]
async fn each_request_gets_one_span_named_request_with_its_id_method_and_path() {
    within_time_limit(async {
        // Arrange
        let service = Harness::healthy().await;

        // Act
        let reply = service
            .get_with_id("/products/42", HeaderValue::from_static("span-me-42"))
            .await;

        // Assert: the span closes once the response and its body are done;
        // a second of slack for that, then say what was seen.
        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        let request_spans = || -> Vec<CapturedSpan> {
            service
                .captured
                .closed_spans()
                .into_iter()
                .filter(|span| span.name == "request")
                .collect()
        };
        holds_within(Duration::from_secs(1), || !request_spans().is_empty()).await;
        let spans = request_spans();
        assert_eq!(
            spans.len(),
            1,
            "one request should make exactly one span named `request`; closed spans were:\n{:#?}",
            service.captured.closed_spans()
        );
        let span = &spans[0];
        assert_eq!(
            span.field("request_id"),
            Some("span-me-42"),
            "the `request` span carries the request's id: {span:?}"
        );
        assert_eq!(
            span.field("method"),
            Some("GET"),
            "the `request` span carries the method: {span:?}"
        );
        assert_eq!(
            span.field("path"),
            Some("/products/42"),
            "the `request` span carries the path: {span:?}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// One deadline, attempts inside it (step 2, carried forward)
// ---------------------------------------------------------------------------

/// No attempt gets the whole deadline: each is cut at `attempt_timeout`, and a timed-out attempt is retried.
#[tokio::test]
async fn each_attempt_is_cut_at_the_attempt_timeout_and_retried() {
    within_time_limit(async {
        let attempt_timeout = ms(200);
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| {
                config.request_budget = Duration::from_secs(3);
                config.server_timeout = Duration::from_secs(6);
                config.attempt_timeout = attempt_timeout;
                config.margin = ms(50);
                config.max_attempts = 3;
                config.base_delay = ms(10);
                config.max_delay = ms(20);
            },
        )
        .await;

        let started = Instant::now();
        let reply = service.get("/products/42").await;
        let elapsed = started.elapsed();

        reply.problem(StatusCode::GATEWAY_TIMEOUT);
        let attempts = service.spans_of("reviews");
        let seen: Vec<_> = attempts.iter().map(|span| span.field("attempt")).collect();
        assert_eq!(
            seen,
            [Some("1"), Some("2"), Some("3")],
            "three attempts at the hung upstream, one span each; spans were {attempts:#?}"
        );
        for span in &attempts {
            assert_eq!(span.field("outcome"), Some("timeout"), "{span:?}");
            assert_eq!(
                span.field("status"),
                None,
                "a timed-out attempt got no HTTP answer, so its span has no `status` (not a made-up 504): {span:?}"
            );
            let took: f64 = span
                .field("latency_ms")
                .and_then(|value| value.parse().ok())
                .expect("latency_ms is recorded");
            assert!(
                (190.0..600.0).contains(&took),
                "an attempt took {took} ms: each should end at the {attempt_timeout:?} attempt timeout, not run on to the 3 s deadline"
            );
        }
        assert!(
            elapsed >= attempt_timeout * 3 && elapsed < Duration::from_millis(1500),
            "answered after {elapsed:?}: three {attempt_timeout:?} attempts and short backoffs, far inside the 3 s budget"
        );
    })
    .await;
}

/// Later attempts get only what is left, minus the margin: the answer leaves `margin` before the deadline, not at it.
#[tokio::test]
async fn later_attempts_get_what_is_left_minus_the_margin() {
    within_time_limit(async {
        // 1 s budget, 300 ms margin, attempts of up to 500 ms: the first
        // takes 0-500 ms, the second only min(500, 500 - 300) = 200 ms, and
        // then nothing fits: the 504 leaves at about 700 ms.
        let budget = Duration::from_secs(1);
        let margin = ms(300);
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| {
                config.request_budget = budget;
                config.server_timeout = budget * 3;
                config.attempt_timeout = ms(500);
                config.margin = margin;
                config.min_attempt = ms(50);
                config.max_attempts = 3;
                config.base_delay = ms(1);
                config.max_delay = ms(1);
            },
        )
        .await;

        let started = Instant::now();
        let reply = service.get("/products/42").await;
        let elapsed = started.elapsed();

        reply.problem(StatusCode::GATEWAY_TIMEOUT);
        assert!(
            elapsed >= budget - margin - ms(10),
            "answered after {elapsed:?}: the second attempt should have had until {:?} (deadline minus margin)",
            budget - margin
        );
        assert!(
            elapsed < budget - ms(50),
            "answered after {elapsed:?}: with a {margin:?} margin the last attempt ends {:?} after the start, so the answer leaves well before the {budget:?} deadline",
            budget - margin
        );
        let attempts = service.spans_of("reviews");
        assert_eq!(
            attempts.len(),
            2,
            "two attempts fit (a third would get nothing); spans were {attempts:#?}"
        );
    })
    .await;
}

/// An answer that sending again cannot change (a 404, a body that is not the expected JSON) is asked for once, then a 502.
#[tokio::test]
async fn errors_not_worth_retrying_are_tried_once() {
    within_time_limit(async {
        let cases = [
            ("a 404", Behaviour::default().failing(1.0, 404)),
            ("a body that is not JSON", Behaviour::default().garbage()),
        ];
        for (what, behaviour) in cases {
            // Only pricing misbehaves, so nothing else ends the page early.
            let service = Harness::start(
                Behaviour::default(),
                behaviour,
                Behaviour::default(),
                |config| {
                    config.request_budget = Duration::from_secs(3);
                    config.server_timeout = Duration::from_secs(6);
                },
            )
            .await;

            let reply = service.get("/products/42").await;

            reply.problem(StatusCode::BAD_GATEWAY);
            let attempts = service.spans_of("pricing");
            assert_eq!(
                attempts.len(),
                1,
                "pricing answered {what}: sending the same request again cannot change that, so it is not retried; spans were {attempts:#?}"
            );
            assert_eq!(service.pricing.counters().requests, 1, "{what}");
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Spans
// ---------------------------------------------------------------------------

/// Each upstream call gets exactly one `upstream_call` span with upstream, attempt, outcome, status and latency, under the binary's default `info` filter.
#[tokio::test]
async fn each_upstream_call_gets_exactly_one_span_with_its_fields() {
    within_time_limit(async {
        // Captured from INFO, as the binary's default filter keeps them: a
        // span a tracing backend is to draw must exist at that level.
        let service = Harness::start_logging_from(
            LevelFilter::INFO,
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default(),
            |_| {},
        )
        .await;

        let reply = service.get("/products/42").await;

        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        let spans = service.upstream_spans();
        assert_eq!(
            spans.len(),
            3,
            "expected one upstream_call span per upstream, captured from INFO (the binary's default filter, under which a \
             DEBUG span does not exist), got {spans:#?}"
        );
        for upstream in ["inventory", "pricing", "reviews"] {
            let span = spans
                .iter()
                .find(|span| span.field("upstream") == Some(upstream))
                .unwrap_or_else(|| panic!("no upstream_call span with upstream = {upstream:?}"));
            assert_eq!(span.field("attempt"), Some("1"), "{upstream}: attempt");
            assert_eq!(span.field("outcome"), Some("ok"), "{upstream}: outcome");
            assert_eq!(span.field("status"), Some("200"), "{upstream}: HTTP status");
            let latency: f64 = span
                .field("latency_ms")
                .unwrap_or_else(|| panic!("{upstream}: latency_ms is recorded when the call ends"))
                .parse()
                .expect("latency_ms is a number");
            assert!(latency >= 0.0, "{upstream}: latency_ms = {latency}");
        }
    })
    .await;
}

/// Every attempt that gets a 500 records outcome `error` and status 500 on its own span, and is counted.
#[tokio::test]
async fn a_failed_call_records_outcome_error_and_its_status_on_its_span() {
    within_time_limit(async {
        // A 500 is worth retrying: the default three attempts all fail.
        // (A long budget, so that a busy machine cannot squeeze out the
        // third attempt.)
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default().failing(1.0, 500),
            Behaviour::default(),
            |config| {
                config.request_budget = Duration::from_secs(3);
                config.server_timeout = Duration::from_secs(6);
            },
        )
        .await;

        service.get("/products/42").await;

        let pricing = service.spans_of("pricing");
        assert_eq!(
            pricing.len(),
            3,
            "one span per attempt at pricing; spans were {pricing:#?}"
        );
        for span in &pricing {
            assert_eq!(span.field("outcome"), Some("error"), "{span:?}");
            assert_eq!(span.field("status"), Some("500"), "{span:?}");
        }
        let metrics = service.scrape().await;
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "pricing"), ("outcome", "error")]
            ),
            3.0,
            "each attempt is counted once, as `error`; metrics were:\n{metrics}"
        );
    })
    .await;
}

/// An upstream that refuses the connection, or answers 2xx with a body that is not JSON, makes a 502 naming it, and each attempt is counted as `error`.
#[tokio::test]
async fn an_upstream_that_cannot_be_reached_or_read_is_a_502_counted_as_error() {
    within_time_limit(async {
        let refused = closed_port_url();
        let cases: [(&str, Behaviour, Option<&str>, &str); 2] = [
            (
                "refuses the connection",
                Behaviour::default(),
                Some(&refused),
                "could not reach pricing",
            ),
            (
                "answers 200 with a body that is not JSON",
                Behaviour::default().garbage(),
                None,
                "pricing sent a body we could not decode",
            ),
        ];
        for (what, behaviour, pricing_url, detail) in cases {
            // Arrange: only pricing misbehaves.
            let service = Harness::start(
                Behaviour::default(),
                behaviour,
                Behaviour::default(),
                |config| {
                    patient(config, Duration::from_secs(3));
                    if let Some(url) = pricing_url {
                        config.urls.pricing = url.to_owned();
                    }
                },
            )
            .await;

            // Act
            let reply = service.get("/products/42").await;

            // Assert: a bad gateway, blaming pricing, with no retry hint.
            let problem = reply.problem(StatusCode::BAD_GATEWAY);
            assert_eq!(
                problem["type"], "https://problems.fanout.example/upstream-failed",
                "pricing {what}: that is an upstream failure, not an overload or a timeout; problem: {problem}"
            );
            assert_eq!(problem["upstream"], "pricing", "pricing {what}: {problem}");
            assert_eq!(
                problem["title"], "An upstream service failed",
                "pricing {what}: one kind of problem, one `type`, one `title`; problem: {problem}"
            );
            assert_eq!(
                problem["detail"], detail,
                "pricing {what}: `detail` is the error's own message, not its source chain (which names the upstream's \
                 internal address); problem: {problem}"
            );
            assert_eq!(
                reply.header("retry-after"),
                None,
                "pricing {what}: no `Retry-After`, the service cannot know when pricing will recover"
            );
            let attempts = service.spans_of("pricing");
            assert!(!attempts.is_empty(), "pricing {what}: no upstream_call span for pricing");
            for span in &attempts {
                assert_eq!(
                    span.field("outcome"),
                    Some("error"),
                    "pricing {what}: the attempt's outcome is `error` (not `timeout`: nothing ran out of time; \
                     not `ok`: a 2xx that cannot be read is no answer); span: {span:?}"
                );
                if pricing_url.is_some() {
                    assert_eq!(
                        span.field("status"),
                        None,
                        "pricing {what}: no HTTP answer came, so the span has no `status`; span: {span:?}"
                    );
                }
            }
            let metrics = service.scrape().await;
            let counted = |outcome: &str| {
                value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", "pricing"), ("outcome", outcome)],
                )
            };
            assert_eq!(
                counted("error"),
                attempts.len() as f64,
                "pricing {what}: each attempt is counted once, as `error`; metrics were:\n{metrics}"
            );
            for wrong in ["ok", "timeout"] {
                assert_eq!(
                    counted(wrong),
                    0.0,
                    "pricing {what}: counted as `{wrong}`, but it is an `error`; metrics were:\n{metrics}"
                );
            }
            assert_eq!(
                latency_count(&metrics, "pricing"),
                attempts.len() as f64,
                "pricing {what}: every attempt was made and ended, so each has its latency (only shed and cancelled \
                 calls stay out of the histogram); metrics were:\n{metrics}"
            );
        }
    })
    .await;
}

/// A call dropped because another call failed first is recorded as `cancelled` (span and counter), with no latency.
#[tokio::test]
async fn a_call_dropped_because_a_sibling_failed_is_recorded_as_cancelled() {
    within_time_limit(async {
        // Pricing fails at once; reviews would take 2 s, so it is still in
        // flight when the fan-out gives up and drops it.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default().failing(1.0, 500),
            Behaviour::fixed(Duration::from_secs(2)),
            |config| patient(config, Duration::from_secs(5)),
        )
        .await;

        let reply = service.get("/products/42").await;

        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        let reviews = service.spans_of("reviews");
        assert_eq!(
            reviews.len(),
            1,
            "the reviews call has a span even though it never finished; spans were {reviews:#?}"
        );
        assert_eq!(
            reviews[0].field("outcome"),
            Some("cancelled"),
            "a dropped call is cancelled, not an error: record it in a drop guard"
        );
        let metrics = service.scrape().await;
        assert_eq!(
            sample(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "cancelled")]
            ),
            Some(1.0),
            "the cancelled reviews call is counted under outcome=\"cancelled\"; metrics were:\n{metrics}"
        );
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "error")]
            ),
            0.0,
            "a cancelled call is not the upstream's error"
        );
        assert_eq!(
            latency_count(&metrics, "reviews"),
            0.0,
            "a cancelled call never ended, so it has no latency to record; metrics were:\n{metrics}"
        );
        assert_eq!(
            value_of(&metrics, UPSTREAM_IN_FLIGHT, &[("upstream", "reviews")]),
            0.0,
            "the in-flight gauge comes back down when a call is dropped"
        );
    })
    .await;
}

/// A call's span covers the call only: while the call waits, a line logged by other work on the same thread is not inside it.
#[tokio::test]
async fn a_calls_span_is_not_entered_while_the_call_waits() {
    within_time_limit(async {
        let service = Harness::start(
            Behaviour::fixed(ms(300)),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(3)),
        )
        .await;
        let request = tokio::spawn(send(service.router(), Method::GET, "/products/42", None));
        wait_until(|| service.inventory.counters().in_flight == 1).await;

        // Other work on this thread (a `#[tokio::test]` has only one)
        // while the inventory call is suspended.
        tracing::info!("unrelated work");

        let reply = request.await.expect("the request's task");
        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        let unrelated = service
            .captured
            .events()
            .into_iter()
            .find(|event| event.message == "unrelated work")
            .expect("the unrelated line was captured");
        assert_eq!(
            unrelated.scope.get("upstream"),
            None,
            "a line written outside the call landed inside an upstream_call span: a span entered with `span.enter()` stays entered across `.await`; use `.instrument(span)`"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// Every answer is timed in seconds into the request histogram, under its route as the router names it and its status class, the backstop's `503` included: the service's p99 can be read from `/metrics`.
#[tokio::test]
async fn each_answer_is_timed_in_seconds_under_its_route_and_status_class() {
    within_time_limit(async {
        let page_route = ("route", "/products/{id}");
        let count = format!("{REQUEST_LATENCY}_count");
        let sum = format!("{REQUEST_LATENCY}_sum");
        let bucket = format!("{REQUEST_LATENCY}_bucket");

        // A request the backstop ends: reviews hangs behind a 10 s
        // deadline, and a 300 ms backstop (set behind `validate`'s back).
        {
            let mut stuck = Harness::start(
                Behaviour::default(),
                Behaviour::default(),
                Behaviour::default().hanging(),
                |config| patient(config, Duration::from_secs(10)),
            )
            .await;
            let backstop = ms(300);
            Arc::get_mut(&mut stuck.state)
                .expect("nothing else holds the state yet")
                .config
                .server_timeout = backstop;

            let reply = stuck.get("/products/42").await;

            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "body: {}", reply.text());
            let metrics = stuck.scrape().await;
            let series = [page_route, ("status_class", "5xx")];
            assert_eq!(
                sample(&metrics, &count, &series),
                Some(1.0),
                "the backstop's 503 is an answer like any other: time it from outside the backstop, or the \
                 slowest requests vanish from the p99; metrics were:\n{metrics}"
            );
            assert!(
                value_of(&metrics, &sum, &series) >= backstop.as_secs_f64(),
                "the 503 came after the {backstop:?} backstop, so its time is at least that; metrics were:\n{metrics}"
            );
        }

        // Arrange: inventory takes 150 ms, so the page takes at least that.
        let budget = Duration::from_secs(3);
        let service = Harness::start(
            Behaviour::fixed(ms(150)),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, budget),
        )
        .await;

        // Act: a page, an id that is not a number, a path with no route.
        let page = service.get("/products/42").await;
        let bad_id = service.get("/products/forty-two").await;
        let unknown = service.get("/no/such/thing").await;
        let metrics = service.scrape().await;

        // Assert
        assert_eq!(page.status, StatusCode::OK, "body: {}", page.text());
        assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(
            metrics.contains(&format!("# TYPE {REQUEST_LATENCY} histogram")),
            "{REQUEST_LATENCY} should render as a Prometheus histogram (with buckets); metrics were:\n{metrics}"
        );
        let ok_page = [page_route, ("status_class", "2xx")];
        assert_eq!(
            sample(&metrics, &count, &ok_page),
            Some(1.0),
            "the page is one answer under route=\"/products/{{id}}\", status_class=\"2xx\"; metrics were:\n{metrics}"
        );
        let seconds = value_of(&metrics, &sum, &ok_page);
        assert!(
            seconds >= 0.15 && seconds < budget.as_secs_f64(),
            "the page took at least 150 ms and answered within its {budget:?} budget, so the histogram holds \
             0.15 to 3 (seconds, not milliseconds), got {seconds}; metrics were:\n{metrics}"
        );
        assert_eq!(
            sample(&metrics, &bucket, &[page_route, ("status_class", "2xx"), ("le", "0.1")]),
            Some(0.0),
            "buckets count the answers at or under their bound: none of a 150 ms page is under 0.1 s; \
             metrics were:\n{metrics}"
        );
        assert_eq!(
            sample(&metrics, &count, &[page_route, ("status_class", "4xx")]),
            Some(1.0),
            "the bad id is a 4xx answer of the same route; metrics were:\n{metrics}"
        );
        assert_eq!(
            sample(&metrics, &count, &[("route", "unmatched"), ("status_class", "4xx")]),
            Some(1.0),
            "a path with no route is counted as route=\"unmatched\"; metrics were:\n{metrics}"
        );
        assert!(
            !metrics.contains("/products/42") && !metrics.contains("/no/such/thing"),
            "a raw path is never a label value (one series per id would grow without bound); metrics were:\n{metrics}"
        );
    })
    .await;
}

/// After one request `/metrics` shows a latency histogram, an ok counter and an in-flight gauge per upstream.
#[tokio::test]
async fn metrics_expose_the_latency_histogram_and_counters_after_a_request() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        service.get("/products/42").await;
        let reply = service.get("/metrics").await;
        let metrics = reply.text();

        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply
                .header(header::CONTENT_TYPE.as_str())
                .is_some_and(|value| value.starts_with("text/plain")
                    && value.contains("version=0.0.4")),
            "Prometheus scrapes its text format, sent as `text/plain; version=0.0.4` (the version says which format); got {:?}",
            reply.header(header::CONTENT_TYPE.as_str())
        );
        assert!(
            metrics.contains(&format!("# TYPE {UPSTREAM_LATENCY} histogram")),
            "{UPSTREAM_LATENCY} should render as a Prometheus histogram (with buckets); metrics were:\n{metrics}"
        );
        for upstream in ["inventory", "pricing", "reviews"] {
            assert_eq!(
                sample(
                    &metrics,
                    &format!("{UPSTREAM_LATENCY}_count"),
                    &[("upstream", upstream), ("outcome", "ok")]
                ),
                Some(1.0),
                "one latency observation for {upstream}, under outcome=\"ok\"; metrics were:\n{metrics}"
            );
            assert_eq!(
                sample(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", upstream), ("outcome", "ok")]
                ),
                Some(1.0),
                "one ok call to {upstream}; metrics were:\n{metrics}"
            );
            assert_eq!(
                sample(&metrics, UPSTREAM_IN_FLIGHT, &[("upstream", upstream)]),
                Some(0.0),
                "the in-flight gauge for {upstream} is back to 0 after the call; metrics were:\n{metrics}"
            );
        }
    })
    .await;
}

/// The latency recorded is the call's own, in seconds in the histogram and in milliseconds on the span.
#[tokio::test]
async fn latency_is_recorded_in_seconds_and_on_the_span_in_milliseconds() {
    within_time_limit(async {
        // Inventory takes 150 ms; the others answer at once.
        let service = Harness::start(
            Behaviour::fixed(ms(150)),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(3)),
        )
        .await;

        let reply = service.get("/products/42").await;

        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        let metrics = service.scrape().await;
        let seconds = sample(
            &metrics,
            &format!("{UPSTREAM_LATENCY}_sum"),
            &[("upstream", "inventory"), ("outcome", "ok")],
        )
        .expect("the inventory latency histogram of ok calls has a _sum");
        assert!(
            (0.15..0.65).contains(&seconds),
            "inventory took about 150 ms, so its histogram should hold about 0.15 (seconds), got {seconds}; metrics were:\n{metrics}"
        );
        let span = service.spans_of("inventory");
        let millis: f64 = span
            .first()
            .and_then(|span| span.field("latency_ms"))
            .and_then(|value| value.parse().ok())
            .expect("the inventory span has a numeric latency_ms");
        assert!(
            (150.0..650.0).contains(&millis),
            "inventory took about 150 ms, so latency_ms should be about 150, got {millis}"
        );
    })
    .await;
}

/// A call that runs out of time is counted as `timeout`, not as `error`, and the time it took goes in the latency histogram.
#[tokio::test]
async fn a_timed_out_call_is_counted_as_a_timeout_not_an_error() {
    within_time_limit(async {
        // Arrange: a hung reviews, and a budget long enough that every
        // attempt runs its whole 150 ms before it times out.
        let attempt_timeout = ms(150);
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| {
                config.request_budget = Duration::from_secs(3);
                config.server_timeout = Duration::from_secs(6);
                config.attempt_timeout = attempt_timeout;
            },
        )
        .await;

        // Act
        service.get("/products/42").await;
        let metrics = service.scrape().await;

        // Assert

        let attempts = service
            .spans_of("reviews")
            .iter()
            .filter(|span| span.field("outcome") == Some("timeout"))
            .count() as f64;
        assert!(attempts >= 1.0, "at least one attempt at reviews timed out");
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "timeout")]
            ),
            attempts,
            "every attempt at the hung upstream is counted as a timeout; metrics were:\n{metrics}"
        );
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "error")]
            ),
            0.0,
            "a timeout has its own outcome; metrics were:\n{metrics}"
        );
        assert_eq!(
            latency_count(&metrics, "reviews"),
            attempts,
            "a timed-out attempt was sent and waited on, so its time goes in the latency histogram (only shed and \
             cancelled calls stay out); metrics were:\n{metrics}"
        );
        let seconds = total_of(
            &metrics,
            &format!("{UPSTREAM_LATENCY}_sum"),
            &[("upstream", "reviews")],
        );
        // Each attempt waited its whole timeout; a millisecond of slack per
        // attempt for the clock's rounding.
        let least = attempts * (attempt_timeout.as_secs_f64() - 0.001);
        assert!(
            seconds >= least,
            "{attempts} attempts each waited {attempt_timeout:?}, so reviews' latency sum should be at least {least} s, \
             got {seconds}; metrics were:\n{metrics}"
        );
    })
    .await;
}

/// Upstream latency is kept apart per outcome: an answer, an error and a timeout each land in their own histogram, so a timeout's wait never blurs the answers' latency.
#[tokio::test]
async fn upstream_latency_is_kept_apart_per_outcome() {
    within_time_limit(async {
        // Arrange
        let recorder = prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let metrics = metrics::with_local_recorder(&recorder, || {
            UpstreamMetrics::register(Upstream::Pricing)
        });
        let waited = ms(100);

        // Act: an answer, an error status, and a timeout after `waited`.
        let answered = observe_upstream_call(&metrics, Upstream::Pricing, 1, async {
            Ok(Fetched {
                body: (),
                status: 200,
            })
        })
        .await;
        let failed = observe_upstream_call(&metrics, Upstream::Pricing, 2, async {
            Err::<Fetched<()>, _>(FetchError::Status {
                upstream: Upstream::Pricing,
                status: 500,
            })
        })
        .await;
        let timed_out = observe_upstream_call(&metrics, Upstream::Pricing, 3, async {
            tokio::time::sleep(waited).await;
            Err::<Fetched<()>, _>(FetchError::Timeout {
                upstream: Upstream::Pricing,
            })
        })
        .await;

        // Assert
        assert!(answered.is_ok() && failed.is_err() && timed_out.is_err());
        let text = handle.render();
        let count = format!("{UPSTREAM_LATENCY}_count");
        for outcome in ["ok", "error", "timeout"] {
            assert_eq!(
                sample(&text, &count, &[("upstream", "pricing"), ("outcome", outcome)]),
                Some(1.0),
                "one call ended `{outcome}`, so the latency histogram labelled outcome=\"{outcome}\" holds one \
                 observation; metrics were:\n{text}"
            );
        }
        let timeout_seconds = value_of(
            &text,
            &format!("{UPSTREAM_LATENCY}_sum"),
            &[("upstream", "pricing"), ("outcome", "timeout")],
        );
        assert!(
            timeout_seconds >= waited.as_secs_f64() - 0.001,
            "the timed-out call waited {waited:?} before it failed, and that wait is the timeout's latency (in \
             seconds), got {timeout_seconds}; metrics were:\n{text}"
        );
        for never in ["shed", "cancelled"] {
            assert_eq!(
                sample(&text, &count, &[("upstream", "pricing"), ("outcome", never)]),
                None,
                "a {never} call has no latency, so there is no latency series for it; metrics were:\n{text}"
            );
        }
    })
    .await;
}

/// `/metrics` shows the runtime's health: its workers, its alive tasks, its global queue, and the event-loop lag the heartbeat measures, in seconds.
#[tokio::test]
async fn the_runtime_gauges_and_the_event_loop_lag_are_in_metrics() {
    within_time_limit(async {
        // Arrange: the heartbeat the binary runs, and ten tasks that stay
        // alive while `/metrics` is read.
        let service = Harness::healthy().await;
        let beats = tokio::spawn(heartbeat(
            service.state.service_metrics.event_loop_lag.clone(),
            HEARTBEAT_PERIOD,
        ));
        let parked: Vec<_> = (0..10)
            .map(|_| tokio::spawn(std::future::pending::<()>()))
            .collect();
        let lag_count = format!("{EVENT_LOOP_LAG}_count");
        let beats_so_far = || unlabelled(&service.metrics_now(), &lag_count).unwrap_or(0.0);
        wait_until(|| beats_so_far() >= 1.0).await;
        let before = beats_so_far();

        // Act: block this runtime's only thread for 300 ms on purpose, as a
        // blocking call in a handler would: the heartbeat cannot run on
        // time, and must say so once it can.
        let blocked = ms(300);
        std::thread::sleep(blocked);
        wait_until(|| beats_so_far() > before).await;
        let metrics = service.scrape().await;
        beats.abort();
        parked.iter().for_each(tokio::task::JoinHandle::abort);

        // Assert
        assert_eq!(
            unlabelled(&metrics, RUNTIME_WORKERS),
            Some(1.0),
            "a `#[tokio::test]` runs on a current-thread runtime: one worker; metrics were:\n{metrics}"
        );
        let alive = unlabelled(&metrics, RUNTIME_ALIVE_TASKS).unwrap_or(0.0);
        assert!(
            alive >= 11.0,
            "ten parked tasks and the heartbeat are alive, so at least 11 tasks, got {alive}; metrics were:\n{metrics}"
        );
        assert!(
            unlabelled(&metrics, RUNTIME_GLOBAL_QUEUE_DEPTH).is_some_and(|depth| depth >= 0.0),
            "the runtime's global queue depth is in `/metrics`; metrics were:\n{metrics}"
        );
        let lag = unlabelled(&metrics, &format!("{EVENT_LOOP_LAG}_sum")).unwrap_or(0.0);
        assert!(
            (0.2..100.0).contains(&lag),
            "the runtime was blocked {blocked:?}, so a beat due in the next 100 ms ran at least 200 ms late: the lag \
             histogram holds 0.2 s or more (in seconds, not milliseconds), got {lag}; metrics were:\n{metrics}"
        );
        let beats_within_100ms = sample(&metrics, &format!("{EVENT_LOOP_LAG}_bucket"), &[("le", "0.1")]);
        assert!(
            beats_within_100ms.is_some_and(|within| within < unlabelled(&metrics, &lag_count).unwrap_or(0.0)),
            "at least one beat was more than 0.1 s late; metrics were:\n{metrics}"
        );
    })
    .await;
}

/// A shed call handed to `observe_upstream_call` is counted as `shed`, with no latency (it was never sent).
#[tokio::test]
async fn observing_a_shed_call_counts_it_without_a_latency() {
    within_time_limit(async {
        let captured = Captured::default();
        let _tracing = tracing::subscriber::set_default(captured.subscriber());
        let recorder = prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let metrics = metrics::with_local_recorder(&recorder, || {
            UpstreamMetrics::register(Upstream::Pricing)
        });

        let result = observe_upstream_call(&metrics, Upstream::Pricing, 1, async {
            Err::<Fetched<u32>, _>(FetchError::Overloaded {
                upstream: Upstream::Pricing,
            })
        })
        .await;

        assert!(matches!(result, Err(FetchError::Overloaded { .. })));
        let text = handle.render();
        assert_eq!(
            value_of(
                &text,
                UPSTREAM_CALLS,
                &[("upstream", "pricing"), ("outcome", "shed")]
            ),
            1.0,
            "metrics were:\n{text}"
        );
        assert_eq!(
            latency_count(&text, "pricing"),
            0.0,
            "a shed call has no latency; metrics were:\n{text}"
        );
        assert_eq!(
            value_of(&text, UPSTREAM_IN_FLIGHT, &[("upstream", "pricing")]),
            0.0,
            "the in-flight gauge goes back down however the call ends; metrics were:\n{text}"
        );
        for other in ["ok", "timeout", "error", "cancelled"] {
            assert_eq!(
                value_of(&text, UPSTREAM_CALLS, &[("upstream", "pricing"), ("outcome", other)]),
                0.0,
                "a shed call is counted once, under `shed` only, not also as `{other}` (a shed call ends: it is \
                 not cancelled); metrics were:\n{text}"
            );
        }
        let spans: Vec<_> = captured
            .closed_spans()
            .into_iter()
            .filter(|span| span.name == "upstream_call")
            .collect();
        assert_eq!(spans.len(), 1, "one span for the call; spans were {spans:#?}");
        assert_eq!(
            spans[0].field("outcome"),
            Some("shed"),
            "the span says how the call ended, like the counter: {:?}",
            spans[0]
        );
    })
    .await;
}

/// A call that ends in an error status, whichever status, is counted once as `error`, with its latency, and the in-flight gauge comes back to 0.
#[tokio::test]
async fn observing_a_failed_call_counts_an_error_and_brings_the_gauge_back() {
    within_time_limit(async {
        // A 500, and statuses that could be mistaken for another outcome:
        // the upstream answered each one, so each is its `error`, not a
        // `timeout` (a 504 is an answer, not a deadline that passed) and
        // not `shed` (shedding is this service's bulkhead refusing to call).
        for status in [500, 404, 429, 504] {
            // Arrange: fresh handles, so each status is counted on its own.
            let recorder = prometheus_builder().build_recorder();
            let handle = recorder.handle();
            let metrics = metrics::with_local_recorder(&recorder, || {
                UpstreamMetrics::register(Upstream::Inventory)
            });

            // Act: the call was sent and answered `status`.
            let result = observe_upstream_call(&metrics, Upstream::Inventory, 1, async {
                Err::<Fetched<u32>, _>(FetchError::Status {
                    upstream: Upstream::Inventory,
                    status,
                })
            })
            .await;

            // Assert
            assert!(
                matches!(result, Err(FetchError::Status { status: got, .. }) if got == status),
                "the call's error comes back unchanged: {result:?}"
            );
            let text = handle.render();
            assert_eq!(
                value_of(
                    &text,
                    UPSTREAM_CALLS,
                    &[("upstream", "inventory"), ("outcome", "error")]
                ),
                1.0,
                "a call that got HTTP {status} is counted once, as `error`; metrics were:\n{text}"
            );
            assert_eq!(
                latency_count(&text, "inventory"),
                1.0,
                "a call that got HTTP {status} was sent and ended, so its latency is recorded; metrics were:\n{text}"
            );
            assert_eq!(
                value_of(&text, UPSTREAM_IN_FLIGHT, &[("upstream", "inventory")]),
                0.0,
                "the in-flight gauge goes back down however the call ends, an error included; metrics were:\n{text}"
            );
            for other in ["ok", "timeout", "cancelled", "shed"] {
                assert_eq!(
                    value_of(&text, UPSTREAM_CALLS, &[("upstream", "inventory"), ("outcome", other)]),
                    0.0,
                    "a call that got HTTP {status} is counted once, under `error` only, not also as `{other}`; \
                     metrics were:\n{text}"
                );
            }
        }
    })
    .await;
}

/// The in-flight gauge counts the calls running at once: three calls held open read 3 (up by one per call, not set to 1), then 0 when they end.
#[tokio::test]
async fn the_in_flight_gauge_counts_every_call_running_at_once() {
    within_time_limit(async {
        // Arrange: three calls that wait at a gate the test opens.
        let recorder = prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let metrics = metrics::with_local_recorder(&recorder, || {
            UpstreamMetrics::register(Upstream::Pricing)
        });
        let gate = tokio::sync::Semaphore::new(0);
        let held_call = |n: u32| {
            let gate = &gate;
            observe_upstream_call(&metrics, Upstream::Pricing, 1, async move {
                let _pass = gate.acquire().await.expect("the gate is never closed");
                Ok(Fetched {
                    body: n,
                    status: 200,
                })
            })
        };
        let in_flight = || value_of(&handle.render(), UPSTREAM_IN_FLIGHT, &[("upstream", "pricing")]);
        let watch_then_open = async {
            let all_three = holds_within(Duration::from_secs(5), || in_flight() == 3.0).await;
            let seen = in_flight();
            gate.add_permits(3);
            (all_three, seen)
        };

        // Act: the three calls and the watcher, side by side on this task.
        let (first, second, third, (all_three, seen)) =
            tokio::join!(held_call(1), held_call(2), held_call(3), watch_then_open);

        // Assert
        assert!(
            all_three,
            "three calls were in flight at once, but the gauge read {seen}: it goes up by one per call running"
        );
        assert_eq!(
            (first.ok(), second.ok(), third.ok()),
            (Some(1), Some(2), Some(3)),
            "each call's body comes back unchanged"
        );
        assert_eq!(
            in_flight(),
            0.0,
            "every call ended, so nothing is in flight; metrics were:\n{}",
            handle.render()
        );
    })
    .await;
}

/// The call runs inside its span: a line the call logs carries the span's `upstream` and `attempt`.
#[tokio::test]
async fn what_a_call_logs_is_inside_its_span() {
    within_time_limit(async {
        let captured = Captured::default();
        let _tracing = tracing::subscriber::set_default(captured.subscriber());
        let recorder = prometheus_builder().build_recorder();
        let metrics =
            metrics::with_local_recorder(&recorder, || UpstreamMetrics::register(Upstream::Reviews));

        let result = observe_upstream_call(&metrics, Upstream::Reviews, 2, async {
            tokio::task::yield_now().await;
            tracing::info!("inside the call");
            Ok(Fetched {
                body: (),
                status: 200,
            })
        })
        .await;

        assert!(result.is_ok(), "the call's result comes back: {result:?}");
        let line = captured
            .events()
            .into_iter()
            .find(|event| event.message == "inside the call")
            .expect("the call's line was captured");
        assert_eq!(
            line.field_in_scope("upstream"),
            Some("reviews"),
            "a line logged by the call should be inside its upstream_call span (`.instrument(span)`)"
        );
        assert_eq!(line.field_in_scope("attempt"), Some("2"));
    })
    .await;
}

/// `observe_upstream_call`'s future is `Send` (axum and `tokio::spawn` need it) and records from any worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observed_call_can_run_on_any_worker_thread() {
    within_time_limit(async {
        let recorder = prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let metrics: &'static UpstreamMetrics =
            Box::leak(Box::new(metrics::with_local_recorder(&recorder, || {
                UpstreamMetrics::register(Upstream::Inventory)
            })));

        // `tokio::spawn` refuses a future that is not `Send`; so does axum.
        let tasks: Vec<_> = (0..8)
            .map(|n| {
                tokio::spawn(observe_upstream_call(
                    metrics,
                    Upstream::Inventory,
                    1,
                    async move {
                        tokio::time::sleep(ms(20)).await;
                        Ok(Fetched {
                            body: n,
                            status: 200,
                        })
                    },
                ))
            })
            .collect();
        for (n, task) in tasks.into_iter().enumerate() {
            let body = task.await.expect("the task").expect("the call succeeds");
            assert_eq!(body, n, "the call's body comes back unchanged");
        }

        let text = handle.render();
        assert_eq!(
            value_of(
                &text,
                UPSTREAM_CALLS,
                &[("upstream", "inventory"), ("outcome", "ok")]
            ),
            8.0,
            "metrics were:\n{text}"
        );
        assert_eq!(
            latency_count(&text, "inventory"),
            8.0,
            "metrics were:\n{text}"
        );
        assert_eq!(
            value_of(&text, UPSTREAM_IN_FLIGHT, &[("upstream", "inventory")]),
            0.0
        );
    })
    .await;
}

/// A burst far over the cap on a multi-thread runtime: every request answers 200 or 503, the cap holds, and every permit comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_over_the_cap_is_answered_and_returns_every_permit() {
    within_time_limit(async {
        let cap = 2;
        let service = Harness::start(
            Behaviour::fixed(ms(300)),
            Behaviour::default(),
            Behaviour::default(),
            |config| {
                patient(config, Duration::from_secs(5));
                config.max_in_flight_per_upstream = cap;
            },
        )
        .await;

        let requests: Vec<_> = (0..30)
            .map(|_| tokio::spawn(send(service.router(), Method::GET, "/products/42", None)))
            .collect();
        let mut statuses = Vec::new();
        for request in requests {
            statuses.push(request.await.expect("the request's task").status);
        }

        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let shed = statuses
            .iter()
            .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        assert_eq!(
            ok + shed,
            statuses.len(),
            "every request is either served or shed, got {statuses:?}"
        );
        assert!(ok >= 1 && shed >= 1, "some served, some shed: {statuses:?}");
        assert!(
            service.inventory.counters().peak_in_flight <= cap as u64,
            "inventory saw {} calls at once; the cap is {cap}",
            service.inventory.counters().peak_in_flight
        );
        let metrics = service.metrics_now();
        let shed_counted: f64 = ["inventory", "pricing", "reviews"]
            .iter()
            .map(|upstream| {
                value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", upstream), ("outcome", "shed")],
                )
            })
            .sum();
        assert_eq!(
            shed_counted, shed as f64,
            "each shed page is counted once; metrics were:\n{metrics}"
        );
        for upstream in ["inventory", "pricing", "reviews"] {
            assert_eq!(
                value_of(&metrics, UPSTREAM_IN_FLIGHT, &[("upstream", upstream)]),
                0.0,
                "{upstream}: nothing in flight after the burst; metrics were:\n{metrics}"
            );
        }
        let after = send(service.router(), Method::GET, "/products/42", None).await;
        assert_eq!(
            after.status,
            StatusCode::OK,
            "every permit came back: a request after the burst is served; body: {}",
            after.text()
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Real sockets: disconnects and graceful shutdown
// ---------------------------------------------------------------------------

/// Starts `serve` on a loopback port; returns the address, a trigger for the
/// shutdown signal, and the serving task.
fn start_server(
    service: &Harness,
    drain_bound: Duration,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), ServeError>>,
) {
    let listener = bind_listener(([127, 0, 0, 1], 0).into()).expect("binds loopback");
    let addr = listener.local_addr().expect("a bound address");
    let (trigger, signal) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        service.router(),
        async move {
            let _ = signal.await;
        },
        drain_bound,
    ));
    (addr, trigger, server)
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client builds")
}

/// A client that hangs up mid-request cancels the service's calls: counted as `cancelled`, no latency, gauge back to 0.
#[tokio::test]
async fn a_client_that_hangs_up_leaves_the_in_flight_gauge_at_zero() {
    within_time_limit(async {
        let service = Harness::start(
            Behaviour::default().hanging(),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(10)),
        )
        .await;
        let (addr, _trigger, _server) = start_server(&service, Duration::from_secs(1));
        let client = tokio::spawn(
            http_client()
                .get(format!("http://{addr}/products/42"))
                .send(),
        );
        wait_until(|| service.inventory.counters().in_flight == 1).await;
        assert_eq!(
            value_of(
                &service.metrics_now(),
                UPSTREAM_IN_FLIGHT,
                &[("upstream", "inventory")]
            ),
            1.0,
            "while the call runs, the in-flight gauge says so"
        );

        // Act: the client gives up, closing its connection.
        client.abort();

        let settled = holds_within(Duration::from_secs(5), || {
            let metrics = service.metrics_now();
            value_of(&metrics, UPSTREAM_IN_FLIGHT, &[("upstream", "inventory")]) == 0.0
                && value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", "inventory"), ("outcome", "cancelled")],
                ) == 1.0
        })
        .await;
        let metrics = service.metrics_now();
        assert!(
            settled,
            "after the client hung up, inventory's call should be counted as cancelled and its in-flight gauge be back at 0; metrics were:\n{metrics}"
        );
        assert_eq!(
            latency_count(&metrics, "inventory"),
            0.0,
            "a cancelled call never ended: no latency; metrics were:\n{metrics}"
        );
    })
    .await;
}

/// On the shutdown signal, a request already in flight still gets its 200, and `serve` returns only after it.
#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    within_time_limit(async {
        // Arrange: inventory takes 400 ms, so the request is mid-flight
        // when the signal comes.
        let service = Harness::start(
            Behaviour::fixed(ms(400)),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(3)),
        )
        .await;
        let (addr, trigger, server) = start_server(&service, Duration::from_secs(5));
        let request = tokio::spawn(
            http_client()
                .get(format!("http://{addr}/products/42"))
                .send(),
        );
        wait_until(|| service.inventory.counters().in_flight == 1).await;

        // Act
        trigger
            .send(())
            .expect("the server is listening for the signal");

        // Assert: while the upstream still holds the request, `serve` has
        // not returned. (Everything here runs on this one thread, so no
        // other task moves between the two checks.)
        while service.inventory.counters().in_flight == 1 {
            assert!(
                !server.is_finished(),
                "serve returned while a request was still in flight: it must wait for the drain"
            );
            tokio::time::sleep(ms(5)).await;
        }
        let response = request
            .await
            .expect("the request task")
            .expect("the in-flight request gets a response, not a reset connection");
        assert_eq!(response.status(), StatusCode::OK);
        let product: Product = response.json().await.expect("a Product as JSON");
        assert_eq!(product, expected_product());
        let served = server.await.expect("the server task");
        assert!(
            served.is_ok(),
            "serve returns Ok once the in-flight request is done, got {served:?}"
        );
    })
    .await;
}

/// After the shutdown signal `serve` accepts no new connection, even while it is still draining a request in flight.
#[tokio::test]
async fn after_the_shutdown_signal_no_new_connection_is_accepted() {
    within_time_limit(async {
        // Arrange: reviews hangs and the drain bound is long, so `serve` is
        // still draining the first request for the whole test.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| patient(config, Duration::from_secs(10)),
        )
        .await;
        let (addr, trigger, _server) = start_server(&service, Duration::from_secs(10));
        let _request = tokio::spawn(
            http_client()
                .get(format!("http://{addr}/products/42"))
                .send(),
        );
        wait_until(|| service.reviews.counters().in_flight == 1).await;

        // Act
        trigger
            .send(())
            .expect("the server is listening for the signal");

        // Assert: soon after the signal, connecting fails (the listener is
        // closed) rather than being accepted and left to wait.
        let refused = async {
            loop {
                match tokio::net::TcpStream::connect(addr).await {
                    Err(_) => break,
                    Ok(accepted) => {
                        drop(accepted);
                        tokio::time::sleep(ms(5)).await;
                    }
                }
            }
        };
        assert!(
            tokio::time::timeout(Duration::from_secs(3), refused)
                .await
                .is_ok(),
            "3 s after the shutdown signal the server still accepted new connections: on the signal it stops \
             accepting, and only the requests already in flight are drained"
        );
    })
    .await;
}

/// Before any signal, `serve` keeps serving however long that takes: the drain bound starts at the signal.
#[tokio::test]
async fn the_drain_bound_starts_at_the_signal_not_before() {
    within_time_limit(async {
        // A drain bound of 200 ms and a request that takes 500 ms, with no
        // signal yet: the bound has nothing to do with it.
        let service = Harness::start(
            Behaviour::fixed(ms(500)),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(3)),
        )
        .await;
        let (addr, trigger, server) = start_server(&service, ms(200));

        let response = http_client()
            .get(format!("http://{addr}/products/42"))
            .send()
            .await
            .expect("a request before any signal is served, however long it takes");

        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            !server.is_finished(),
            "serve stopped with no shutdown signal"
        );
        trigger
            .send(())
            .expect("the server is listening for the signal");
        let served = server.await.expect("the server task");
        assert!(
            served.is_ok(),
            "nothing in flight at the signal: serve returns Ok, got {served:?}"
        );
    })
    .await;
}

/// A request still running when the drain bound runs out does not hold shutdown hostage: `serve` returns `DrainTimedOut`.
#[tokio::test]
async fn shutdown_gives_up_on_requests_that_outlive_the_drain_bound() {
    within_time_limit(async {
        // Arrange: reviews hangs and the budget is long, so only the drain
        // bound can end the wait.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| patient(config, Duration::from_secs(10)),
        )
        .await;
        let drain_bound = ms(300);
        let (addr, trigger, server) = start_server(&service, drain_bound);
        let _request = tokio::spawn(
            http_client()
                .get(format!("http://{addr}/products/42"))
                .send(),
        );
        wait_until(|| service.reviews.counters().in_flight == 1).await;

        // Act
        let signalled = Instant::now();
        trigger
            .send(())
            .expect("the server is listening for the signal");
        let served = server.await.expect("the server task");
        let elapsed = signalled.elapsed();

        // Assert
        assert!(
            matches!(served, Err(ServeError::DrainTimedOut { bound }) if bound == drain_bound),
            "expected DrainTimedOut after {drain_bound:?}, got {served:?}"
        );
        assert!(
            elapsed >= drain_bound,
            "serve gave up after {elapsed:?}, before the {drain_bound:?} drain bound"
        );
        assert!(
            elapsed < drain_bound + Duration::from_secs(1),
            "serve took {elapsed:?} after the signal; the drain bound is {drain_bound:?}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Part "send": the Send snippets in `send/`, built and run with trybuild
// ---------------------------------------------------------------------------

#[path = "step4/send.rs"]
mod send;
