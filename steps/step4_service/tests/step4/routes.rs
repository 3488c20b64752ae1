//! Part "routes": the router (`router` and `get_product` in
//! `src/routes.rs`): the three routes and the two fallbacks, request ids
//! echoed, replaced and carried by every log line, the request span, and one
//! deadline per request with attempts inside it (step 2's rule, carried
//! forward).
//!
//! Every test drives the router in process with `tower::ServiceExt::oneshot`,
//! against `FastUpstream` fakes in real time, with margins of 150 ms or more.

use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use fake_upstreams::fast::Behaviour;
use fake_upstreams::testing::{wait_until, within_time_limit};
use step4_service::{MAX_REQUEST_ID_LEN, PROBLEM_JSON, Product};
use tokio::time::Instant;

use crate::capture::CapturedSpan;
use crate::common::{Harness, assert_problem_snapshot, expected_product, ms, send};

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
        let _span_closed = wait_until(Duration::from_secs(1), || !request_spans().is_empty()).await;
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
