//! Part "problems": errors are part of the API. `parse_product_id`
//! (`src/product_id.rs`), `ApiError::to_problem` and `Problem::into_response`
//! (`src/problem.rs`), and the backstop that ends a request outliving its
//! deadline (`src/routes.rs`).
//!
//! Each failure a client can meet (a bad id, an upstream's error status, a
//! hung upstream, a full bulkhead, the backstop) is a problem document with
//! the right status, compared with an insta snapshot in `tests/snapshots/`
//! (request id and `instance` redacted). Most tests go through the router, so
//! they stay red until `router` serves `/products/{id}`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode};
use fake_upstreams::fast::Behaviour;
use fake_upstreams::testing::{PATIENCE, wait_until, within_time_limit};
use step4_service::telemetry::{BULKHEAD_PERMITS_IN_USE, BULKHEAD_PERMITS_MAX, UPSTREAM_CALLS};
use step4_service::{
    ApiError, FetchError, InvalidProductId, ProblemContext, Upstream, parse_product_id,
};
use tokio::time::Instant;
use tracing_subscriber::filter::LevelFilter;

use crate::common::{
    Harness, a_refused_connection, assert_problem_snapshot, assert_urn_uuid, latency_count, ms,
    patient, sample, send, value_of,
};

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
        wait_until(PATIENCE, || service.reviews.counters().in_flight == 1)
            .await
            .expect("the first page's reviews call is in flight");
        // Inventory's and pricing's calls of the first page are over, so
        // their permits are back (each is returned as its call ends).
        wait_until(PATIENCE, || {
            let metrics = service.metrics_now();
            ["inventory", "pricing"].iter().all(|upstream| {
                value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", upstream), ("outcome", "ok")],
                ) == 1.0
            })
        })
        .await
        .expect("the first page's inventory and pricing calls have ended");
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
