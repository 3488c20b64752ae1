//! Part "routes": the rest of `router` (`src/routes.rs`): the two
//! fallbacks, request ids echoed, replaced and carried by every log line,
//! the request span, the backstop (`backstop`) and every answer timed from
//! outside it; and the deadline `get_product` sets, with attempts inside it
//! (step 2's rule, carried forward).
//!
//! Every test drives the router in process with `tower::ServiceExt::oneshot`,
//! against `FastUpstream` fakes in real time, with margins of 150 ms or more.
//! Some turn green as soon as the earlier parts are done (a first `router`
//! already serves the three routes); the rest need the fallbacks and the
//! layers.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use fake_upstreams::fast::Behaviour;
use fake_upstreams::testing::{wait_until, within_time_limit};
use step4_service::telemetry::{REQUEST_LATENCY, UPSTREAM_CALLS};
use step4_service::{MAX_REQUEST_ID_LEN, PROBLEM_JSON, Product};
use tokio::time::Instant;
use tracing_subscriber::filter::LevelFilter;

use crate::capture::{CapturedEvent, CapturedSpan};
use crate::common::{
    Harness, assert_problem_snapshot, assert_urn_uuid, expected_product, ms, patient, sample, send,
    value_of,
};

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

/// An answer that is not a success gets an access line at `INFO` with its status, inside the request's span; a success gets one only when `log_every_request` is set.
#[tokio::test]
async fn failures_get_an_access_line_and_successes_only_when_asked() {
    within_time_limit(async {
        // A line at INFO (or more severe) in the span named `request` with
        // this status. `Level` orders TRACE as the greatest. The problem
        // document's own line (the one with an `instance`) does not count:
        // it is not the access line.
        let access_line = |events: &[CapturedEvent], status: &str| {
            events.iter().any(|event| {
                event.level <= tracing::Level::INFO
                    && event.is_inside("request")
                    && event.field("instance").is_none()
                    && event
                        .fields
                        .iter()
                        .any(|(name, value)| name.contains("status") && value == status)
            })
        };

        // As shipped: a success writes no line, a 404 does.
        {
            let service = Harness::healthy().await;

            let ok = service.get("/healthz").await;
            let missing = service.get("/no/such/route").await;

            assert_eq!(ok.status, StatusCode::OK);
            assert_eq!(missing.status, StatusCode::NOT_FOUND);
            let events = service.captured.events();
            assert!(
                access_line(&events, "404"),
                "no INFO line with the status (a `status` field, 404) inside the `request` span, besides the problem's own \
                 line: an answer that is not a success gets its access line (`AccessLog` in the TraceLayer); lines were:\n{events:#?}"
            );
            assert!(
                !access_line(&events, "200"),
                "a success was logged by default: only answers that are not a success get an access line unless \
                 `log_every_request` is set (`AccessLog`, not tower-http's `DefaultOnResponse`); lines were:\n{events:#?}"
            );
        }

        // Asked to log every answer: the success gets its line too.
        {
            let service = Harness::start(
                Behaviour::default(),
                Behaviour::default(),
                Behaviour::default(),
                |config| config.log_every_request = true,
            )
            .await;

            let ok = service.get("/healthz").await;

            assert_eq!(ok.status, StatusCode::OK);
            let events = service.captured.events();
            assert!(
                access_line(&events, "200"),
                "with `log_every_request` set, no INFO line with the status (a `status` field, 200) inside the `request` \
                 span: build the TraceLayer's `on_response` from the configuration; lines were:\n{events:#?}"
            );
        }
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

// ---------------------------------------------------------------------------
// Inside the layers: problem lines in the request's span, the backstop,
// and every answer timed from outside it
// ---------------------------------------------------------------------------

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
