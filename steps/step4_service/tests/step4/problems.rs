//! Part "problems": errors are part of the API. `parse_product_id`
//! (`src/product_id.rs`), `ApiError::to_problem` and `Problem::into_response`
//! (`src/problem.rs`), and a first `router` with `get_product`
//! (`src/routes.rs`) to reach them over HTTP.
//!
//! A bad id is a problem document with the right status, compared with an
//! insta snapshot in `tests/snapshots/` (request id and `instance`
//! redacted); the other tests call `parse_product_id`, `to_problem` and
//! `into_response` directly. Nothing here calls an upstream: a valid id goes
//! through the fan-out, and so through `observe_upstream_call`, which is the
//! next part's (its problem documents, a 502, a 504 and a shed page, are
//! tested there).

use axum::http::{StatusCode, header};
use axum::response::IntoResponse as _;
use fake_upstreams::testing::within_time_limit;
use step4_service::{
    ApiError, FetchError, InvalidProductId, ProblemContext, Upstream, parse_product_id,
};

use crate::common::{Harness, a_refused_connection, assert_problem_snapshot, ms};

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

/// A shed client's `Retry-After` is `retry_after` in whole seconds, rounded up, so never 0 and never sooner than the setting: 300 ms and 1 s are `1`, 1.5 s and 2 s are `2`, 2.001 s is `3`.
#[test]
fn retry_after_is_rounded_up_to_whole_seconds() {
    let cases = [
        (
            ms(300),
            "1",
            "less than a second is still 1 second, never 0",
        ),
        (ms(1000), "1", "a whole second is sent as it is"),
        (
            ms(1500),
            "2",
            "1.5 s is sent as 2: rounded down, the client would come back half a second early",
        ),
        (
            ms(2000),
            "2",
            "a whole number of seconds is not rounded up further",
        ),
        (ms(2001), "3", "a millisecond over 2 s is rounded up to 3"),
    ];

    for (retry_after, expected, why) in cases {
        // Arrange: a page shed with this `retry_after` setting.
        let context = ProblemContext {
            request_id: "rounding".to_owned(),
            retry_after,
        };
        let shed = ApiError::Upstream(FetchError::Overloaded {
            upstream: Upstream::Reviews,
        });

        // Act
        let response = shed.to_problem(&context).into_response();

        // Assert
        let sent = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|value| value.to_str().unwrap_or("(not text)"));
        assert_eq!(sent, Some(expected), "retry_after {retry_after:?}: {why}");
    }
}
