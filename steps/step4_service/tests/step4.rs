//! Step 4's tests: what "done" means for shipping the fan-out as a service.
//!
//! The same file runs against your exercise (`cargo xtask verify step4`) and
//! against the reference solution (`cargo xtask verify step4 --solution`).
//!
//! Most tests drive the router in process with `tower::ServiceExt::oneshot`:
//! no socket on the service side, just a request in and a response out. The
//! upstreams are `FastUpstream` fakes on the test's own runtime, in real
//! time, and timing checks keep wide margins. The shutdown tests bind a real
//! loopback socket, because draining connections is the point there.
//!
//! Each test installs its own span-capturing subscriber and its own metrics
//! recorder (both thread-local, and a `#[tokio::test]` runs everything on one
//! thread), so tests running side by side never see each other's spans or
//! numbers.
//!
//! Problem documents are compared with insta snapshots in `tests/snapshots/`;
//! the generated request id is redacted, because it differs on every run.

#[path = "support/capture.rs"]
mod capture;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use capture::{Captured, CapturedSpan};
use fake_upstreams::fast::{Behaviour, FastUpstream};
use metrics::LocalRecorderGuard;
use serde_json::Value;
use step4_service::telemetry::{UPSTREAM_CALLS, UPSTREAM_IN_FLIGHT, UPSTREAM_LATENCY};
use step4_service::{
    AppState, Inventory, PROBLEM_JSON, Price, Product, ReviewStats, ServeError, ServiceConfig,
    UpstreamUrls, bind_listener, prometheus_builder, router, serve,
};
use tokio::time::Instant;
use tower::ServiceExt as _;

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

/// Three fake upstreams, the service in front of them, and what it records.
struct Harness {
    inventory: FastUpstream,
    pricing: FastUpstream,
    reviews: FastUpstream,
    state: std::sync::Arc<AppState>,
    /// Every span and log line the test's requests produced.
    captured: Captured,
    _tracing: tracing::subscriber::DefaultGuard,
    _metrics: LocalRecorderGuard<'static>,
}

impl Harness {
    /// All three upstreams healthy and instant, default configuration.
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
    /// them, with `configure` applied to the default configuration.
    async fn start(
        inventory: Behaviour,
        pricing: Behaviour,
        reviews: Behaviour,
        configure: impl FnOnce(&mut ServiceConfig),
    ) -> Harness {
        // This test's own spans and metrics, on this thread only.
        let captured = Captured::default();
        let tracing = tracing::subscriber::set_default(captured.subscriber());
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
        send(self.router(), path, None).await
    }

    /// Sends `GET path` with an `x-request-id` header.
    async fn get_with_id(&self, path: &str, request_id: &str) -> Reply {
        send(self.router(), path, Some(request_id)).await
    }

    /// The spans named `upstream_call` that have closed so far.
    fn upstream_spans(&self) -> Vec<CapturedSpan> {
        self.captured
            .closed_spans()
            .into_iter()
            .filter(|span| span.name == "upstream_call")
            .collect()
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
            "an error is sent as an RFC 9457 problem document"
        );
        self.json()
    }
}

async fn send(router: Router, path: &str, request_id: Option<&str>) -> Reply {
    let mut request = Request::get(path);
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

/// Polls `condition` every few milliseconds until it holds (the test's time
/// limit catches "never").
async fn wait_until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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

// ---------------------------------------------------------------------------
// Errors are part of the API: status codes and problem documents
// ---------------------------------------------------------------------------

/// An id that is not a number is a 400 problem document, and no upstream is called.
#[tokio::test]
async fn an_id_that_is_not_a_number_is_a_400_problem_and_calls_no_upstream() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let reply = service.get("/products/abc").await;

        let problem = reply.problem(StatusCode::BAD_REQUEST);
        insta::assert_json_snapshot!("invalid_id_not_a_number", problem, {
            ".request_id" => "[request-id]",
        });
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

/// An id longer than 19 characters is a 400 problem document.
#[tokio::test]
async fn an_id_that_is_too_long_is_a_400_problem() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let reply = service.get("/products/1234567890123456789012345").await;

        let problem = reply.problem(StatusCode::BAD_REQUEST);
        insta::assert_json_snapshot!("invalid_id_too_long", problem, {
            ".request_id" => "[request-id]",
        });
    })
    .await;
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
        insta::assert_json_snapshot!("upstream_error", problem, {
            ".request_id" => "[request-id]",
        });
    })
    .await;
}

/// A hung upstream makes the request a 504 problem document once the 200 ms deadline passes.
#[tokio::test]
async fn a_hung_upstream_is_a_504_problem_when_the_deadline_passes() {
    within_time_limit(async {
        // Arrange: reviews never answers; the budget is the default 200 ms.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |_| {},
        )
        .await;
        let budget = service.state.config.request_budget;

        let started = Instant::now();
        let reply = service.get("/products/42").await;
        let elapsed = started.elapsed();

        let problem = reply.problem(StatusCode::GATEWAY_TIMEOUT);
        insta::assert_json_snapshot!("upstream_timeout", problem, {
            ".request_id" => "[request-id]",
        });
        assert!(
            elapsed >= budget,
            "answered after {elapsed:?}, before the {budget:?} deadline could pass"
        );
        assert!(
            elapsed < budget + Duration::from_millis(600),
            "answered after {elapsed:?}: the deadline set at the edge ({budget:?}) should end the request, not the server's backstop"
        );
    })
    .await;
}

/// When an upstream's bulkhead is full the request is shed at once: 503, a problem document and `Retry-After`.
#[tokio::test]
async fn a_full_bulkhead_sheds_with_a_503_problem_and_retry_after() {
    within_time_limit(async {
        // Arrange: one call per upstream at most; a first request holds
        // inventory's only permit for 500 ms.
        let service = Harness::start(
            Behaviour::fixed(Duration::from_millis(500)),
            Behaviour::default(),
            Behaviour::default(),
            |config| {
                config.max_in_flight_per_upstream = 1;
                config.request_budget = Duration::from_secs(2);
                config.server_timeout = Duration::from_secs(5);
            },
        )
        .await;
        let first = tokio::spawn(send(service.router(), "/products/42", None));
        wait_until(|| service.inventory.counters().in_flight == 1).await;

        // Act: a second request while the permit is taken.
        let started = Instant::now();
        let reply = service.get("/products/43").await;
        let elapsed = started.elapsed();

        // Assert
        let problem = reply.problem(StatusCode::SERVICE_UNAVAILABLE);
        insta::assert_json_snapshot!("shed", problem, {
            ".request_id" => "[request-id]",
        });
        assert_eq!(
            reply.header("retry-after"),
            Some("1"),
            "a shed client is told when to come back (Retry-After, in seconds)"
        );
        assert!(
            elapsed < Duration::from_millis(300),
            "shedding took {elapsed:?}: a full bulkhead should answer at once, not queue"
        );
        let metrics = service.scrape().await;
        assert_eq!(
            sample(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "inventory"), ("outcome", "shed")]
            ),
            Some(1.0),
            "the shed call to inventory is counted as `shed`; metrics were:\n{metrics}"
        );
        let first = first.await.expect("the first request's task");
        assert_eq!(
            first.status,
            StatusCode::OK,
            "the request holding the permit still succeeds"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Request ids
// ---------------------------------------------------------------------------

/// A request id the client sends in `x-request-id` is echoed on the response.
#[tokio::test]
async fn a_given_request_id_is_echoed_on_the_response() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let reply = service.get_with_id("/products/42", "checkout-7f3a").await;

        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        assert_eq!(
            reply.header("x-request-id"),
            Some("checkout-7f3a"),
            "the caller's request id comes back unchanged"
        );
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
        let problem = first.problem(StatusCode::BAD_REQUEST);
        assert_eq!(
            problem["request_id"].as_str(),
            Some(first_id.as_str()),
            "the problem document quotes the same id as the header, so a client can report it"
        );
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

        service.get_with_id("/products/42", "trace-me-42").await;

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

// ---------------------------------------------------------------------------
// Spans
// ---------------------------------------------------------------------------

/// Each upstream call gets exactly one `upstream_call` span with upstream, attempt, outcome, status and latency.
#[tokio::test]
async fn each_upstream_call_gets_exactly_one_span_with_its_fields() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let reply = service.get("/products/42").await;

        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        let spans = service.upstream_spans();
        assert_eq!(
            spans.len(),
            3,
            "expected one upstream_call span per upstream, got {spans:#?}"
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

/// A call that gets a 500 records outcome `error` and status 500 on its span.
#[tokio::test]
async fn a_failed_call_records_outcome_error_and_its_status_on_its_span() {
    within_time_limit(async {
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default().failing(1.0, 500),
            Behaviour::default(),
            |_| {},
        )
        .await;

        service.get("/products/42").await;

        let spans = service.upstream_spans();
        let pricing: Vec<_> = spans
            .iter()
            .filter(|span| span.field("upstream") == Some("pricing"))
            .collect();
        assert_eq!(pricing.len(), 1, "one span for the one pricing call");
        assert_eq!(pricing[0].field("outcome"), Some("error"));
        assert_eq!(pricing[0].field("status"), Some("500"));
    })
    .await;
}

/// A call dropped because another call failed first is recorded as `cancelled`, on its span and in the counter.
#[tokio::test]
async fn a_call_dropped_because_a_sibling_failed_is_recorded_as_cancelled() {
    within_time_limit(async {
        // Pricing fails at once; reviews would take 2 s, so it is still in
        // flight when the fan-out gives up and drops it.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default().failing(1.0, 500),
            Behaviour::fixed(Duration::from_secs(2)),
            |config| {
                config.request_budget = Duration::from_secs(5);
                config.server_timeout = Duration::from_secs(10);
            },
        )
        .await;

        let reply = service.get("/products/42").await;

        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        let spans = service.upstream_spans();
        let reviews = spans
            .iter()
            .find(|span| span.field("upstream") == Some("reviews"))
            .expect("the reviews call has a span even though it never finished");
        assert_eq!(
            reviews.field("outcome"),
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
            sample(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "error")]
            )
            .unwrap_or(0.0),
            0.0,
            "a cancelled call is not the upstream's error"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// After one request `/metrics` shows a latency histogram, an ok counter and an in-flight gauge per upstream.
#[tokio::test]
async fn metrics_expose_the_latency_histogram_and_counters_after_a_request() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        service.get("/products/42").await;
        let metrics = service.scrape().await;

        assert!(
            metrics.contains(&format!("# TYPE {UPSTREAM_LATENCY} histogram")),
            "{UPSTREAM_LATENCY} should render as a Prometheus histogram (with buckets); metrics were:\n{metrics}"
        );
        for upstream in ["inventory", "pricing", "reviews"] {
            assert_eq!(
                sample(
                    &metrics,
                    &format!("{UPSTREAM_LATENCY}_count"),
                    &[("upstream", upstream)]
                ),
                Some(1.0),
                "one latency observation for {upstream}; metrics were:\n{metrics}"
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

/// A call that runs out of time is counted as `timeout`, not as `error`.
#[tokio::test]
async fn a_timed_out_call_is_counted_as_a_timeout_not_an_error() {
    within_time_limit(async {
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |_| {},
        )
        .await;

        service.get("/products/42").await;
        let metrics = service.scrape().await;

        assert_eq!(
            sample(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "timeout")]
            ),
            Some(1.0),
            "metrics were:\n{metrics}"
        );
        assert_eq!(
            sample(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "error")]
            )
            .unwrap_or(0.0),
            0.0,
            "a timeout has its own outcome; metrics were:\n{metrics}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Graceful shutdown (a real socket)
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

/// On the shutdown signal, a request already in flight still gets its 200, and then `serve` returns.
#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    within_time_limit(async {
        // Arrange: inventory takes 400 ms, so the request is mid-flight
        // when the signal comes.
        let service = Harness::start(
            Behaviour::fixed(Duration::from_millis(400)),
            Behaviour::default(),
            Behaviour::default(),
            |config| {
                config.request_budget = Duration::from_secs(3);
                config.server_timeout = Duration::from_secs(6);
            },
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

        // Assert
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
            |config| {
                config.request_budget = Duration::from_secs(10);
                config.server_timeout = Duration::from_secs(12);
            },
        )
        .await;
        let drain_bound = Duration::from_millis(300);
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
