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

// ANCHOR: to_problem
impl ApiError {
    /// Turns the error into the problem document the client gets.
    ///
    /// This is the one place that decides which status each failure gets,
    /// and the `match` is exhaustive on purpose: a new `FetchError` variant
    /// does not compile until someone decides what the client sees.
    pub fn to_problem(&self, context: &ProblemContext) -> Problem {
        let (status, problem_type, title, upstream, retry_after) = match self {
            ApiError::InvalidProductId(_) => (
                StatusCode::BAD_REQUEST,
                "https://problems.fanout.example/invalid-product-id",
                "Invalid product id",
                None,
                None,
            ),
            // The upstream answered badly or not at all: a bad gateway.
            ApiError::Upstream(
                FetchError::Status { upstream, .. }
                | FetchError::Transport { upstream, .. }
                | FetchError::Decode { upstream, .. },
            ) => (
                StatusCode::BAD_GATEWAY,
                "https://problems.fanout.example/upstream-failed",
                "An upstream service failed",
                Some(upstream.name()),
                None,
            ),
            // We refused to call: the client may retry later, and is told when.
            ApiError::Upstream(FetchError::Overloaded { upstream }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "https://problems.fanout.example/overloaded",
                "The service is overloaded",
                Some(upstream.name()),
                Some(context.retry_after),
            ),
            // The deadline set at the edge ran out.
            ApiError::Upstream(FetchError::Timeout { upstream }) => (
                StatusCode::GATEWAY_TIMEOUT,
                "https://problems.fanout.example/upstream-timeout",
                "An upstream service timed out",
                Some(upstream.name()),
                None,
            ),
        };
        Problem {
            problem_type,
            title,
            status: status.as_u16(),
            detail: self.to_string(),
            instance: context.instance.clone(),
            upstream,
            request_id: context.request_id.clone(),
            retry_after,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        // `Json` said `application/json`; a problem document says what it is.
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(retry_after) = retry_after {
            // Whole seconds, at least 1: `Retry-After: 0` invites a stampede.
            let seconds = retry_after.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
// ANCHOR_END: to_problem
