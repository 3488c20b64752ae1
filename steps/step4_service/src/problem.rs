//! Errors are part of the API: every failure leaves the service as an RFC
//! 9457 problem document (`application/problem+json`).
//!
//! A client (or the on-call engineer reading a log) gets the same shape
//! every time: a `type` URI to branch on, a human `title`, the `status`, a
//! `detail` about this occurrence and the `instance` it happened on, plus
//! two extension members of our own: which `upstream` failed, and the
//! `request_id` to find the log lines with.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::FetchError;
use crate::product_id::InvalidProductId;

/// The media type RFC 9457 registers for problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything `GET /products/{id}` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The id in the path is not a product id.
    #[error(transparent)]
    InvalidProductId(#[from] InvalidProductId),
    /// An upstream call failed; the error names which.
    #[error(transparent)]
    Upstream(#[from] FetchError),
}

/// An RFC 9457 problem document, ready to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem; clients branch on it.
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    /// A short, human summary of the kind of problem.
    pub title: &'static str,
    /// The HTTP status, repeated in the body for logs and proxies.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// The path of the request that failed.
    pub instance: String,
    /// The upstream at fault, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'static str>,
    /// The request id, also sent as the `x-request-id` header.
    pub request_id: String,
    /// Sent as the `Retry-After` header (whole seconds), not in the body.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

/// Where a problem happened: the parts of the request a problem document
/// quotes, and what to tell a shed client.
#[derive(Debug, Clone)]
pub struct ProblemContext {
    /// The request's path, e.g. `/products/42`.
    pub instance: String,
    /// The request's id.
    pub request_id: String,
    /// How long a shed client should wait before trying again.
    pub retry_after: Duration,
}

impl ApiError {
    /// Turns the error into the problem document the client gets.
    ///
    /// This is the one place that decides which status each failure gets,
    /// and the `match` is exhaustive on purpose: a new `FetchError` variant
    /// does not compile until someone decides what the client sees.
    pub fn to_problem(&self, context: &ProblemContext) -> Problem {
        // TODO: one exhaustive `match self` deciding, for each failure, the
        // status, a `type` URI, a `title`, the `upstream` (if any) and the
        // `retry_after` (only when shedding):
        // - `ApiError::InvalidProductId(_)`: 400 Bad Request;
        // - `ApiError::Upstream(FetchError::Status { upstream, .. } | Transport | Decode)`:
        //   502 Bad Gateway (an or-pattern binds `upstream` in each);
        // - `FetchError::Overloaded { upstream }`: 503 Service Unavailable,
        //   with `Some(context.retry_after)`;
        // - `FetchError::Timeout { upstream }`: 504 Gateway Timeout.
        // Type URIs the tests expect, under https://problems.fanout.example/:
        // `invalid-product-id`, `upstream-failed`, `overloaded`,
        // `upstream-timeout`; titles: "Invalid product id", "An upstream
        // service failed", "The service is overloaded", "An upstream service
        // timed out". `detail` is `self.to_string()`; `instance` and
        // `request_id` come from `context`. No `_ =>` arm: a new variant
        // should not compile until someone decides what the client sees.
        todo!("ApiError::to_problem: one exhaustive match from error to status and problem fields")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // TODO: `(status, axum::Json(self)).into_response()` (the status
        // from `StatusCode::from_u16(self.status)`; read `self.retry_after`
        // first, `Json` takes `self`), then on `response.headers_mut()`
        // replace `header::CONTENT_TYPE` with `PROBLEM_JSON` and, when
        // `retry_after` is set, insert `header::RETRY_AFTER` in whole
        // seconds, at least 1 (`HeaderValue::from(seconds)`).
        todo!("Problem::into_response: status, JSON body, problem+json content type, Retry-After")
    }
}
