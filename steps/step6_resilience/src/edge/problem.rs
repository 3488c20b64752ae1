//! Errors leave the edge as RFC 9457 problem documents
//! (`application/problem+json`): a `type` URI to branch on, a `title`, the
//! `status`, a `detail` about this occurrence, an `instance` URI naming the
//! occurrence, and two members of our own, the `upstream` at fault (if one
//! was) and the `request_id` to find the log lines with.
//!
//! The status of a failed page is not decided here: it is
//! [`FetchError::http_status`], the page's own mapping. This file only
//! names each kind of failure for the client and says which ones may be
//! retried later (`Retry-After`).
//!
//! Given: this whole file; there is nothing to write in it.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::FetchError;

/// The media type RFC 9457 registers for problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything the edge can answer with an error.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The id in the path is not 1 to 19 ASCII digits.
    #[error("the product id must be 1 to 19 ASCII digits")]
    InvalidProductId,
    /// Too many page requests in flight: shed without calling anything.
    #[error("too many requests in flight; this one was shed without calling any upstream")]
    Shed,
    /// A required section failed, so the page did.
    #[error(transparent)]
    Page(#[from] FetchError),
    /// No route has this path.
    #[error("there is no resource at this path")]
    NoSuchRoute,
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
    /// `urn:uuid:` and a fresh UUID: this occurrence and no other.
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

impl EdgeError {
    /// The document the client gets for this error, for the request
    /// `request_id`; `retry_after` is what a client that may come back later
    /// is told.
    ///
    /// Exhaustive on purpose: a new [`FetchError`] variant does not compile
    /// until someone decides how the client sees it.
    pub fn to_problem(&self, request_id: String, retry_after: Duration) -> Problem {
        let (status, problem_type, title, upstream, retry_after) = match self {
            EdgeError::InvalidProductId => (
                StatusCode::BAD_REQUEST.as_u16(),
                "https://problems.fanout.example/invalid-product-id",
                "Invalid product id",
                None,
                None,
            ),
            EdgeError::NoSuchRoute => (
                StatusCode::NOT_FOUND.as_u16(),
                "https://problems.fanout.example/not-found",
                "No such resource",
                None,
                None,
            ),
            // We refused before doing any work: the client may come back.
            EdgeError::Shed => (
                StatusCode::SERVICE_UNAVAILABLE.as_u16(),
                "https://problems.fanout.example/overloaded",
                "The service is overloaded",
                None,
                Some(retry_after),
            ),
            EdgeError::Page(error) => {
                let (problem_type, title, retry_after) = match error {
                    FetchError::Timeout { .. } => (
                        "https://problems.fanout.example/upstream-timeout",
                        "An upstream service timed out",
                        None,
                    ),
                    // Its breaker will let a probe through after the cool-down.
                    FetchError::CircuitOpen { .. } => (
                        "https://problems.fanout.example/circuit-open",
                        "An upstream service is not being called",
                        Some(retry_after),
                    ),
                    FetchError::Status { .. }
                    | FetchError::Transport { .. }
                    | FetchError::Decode { .. } => (
                        "https://problems.fanout.example/upstream-failed",
                        "An upstream service failed",
                        None,
                    ),
                    // Our own bulkhead was full: we did not call it. The
                    // client may come back when the load has passed.
                    FetchError::Overloaded { .. } => (
                        "https://problems.fanout.example/upstream-overloaded",
                        "Too many calls to an upstream service are in flight",
                        Some(retry_after),
                    ),
                    // Nobody reads it (the client left, or we are shutting
                    // down); it exists for the logs and the metrics.
                    FetchError::Cancelled { .. } => (
                        "https://problems.fanout.example/cancelled",
                        "The request was cancelled",
                        None,
                    ),
                };
                (
                    error.http_status(),
                    problem_type,
                    title,
                    Some(error.upstream().name()),
                    retry_after,
                )
            }
        };
        Problem {
            problem_type,
            title,
            status,
            detail: self.to_string(),
            instance: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            upstream,
            request_id,
            retry_after,
        }
    }
}

impl IntoResponse for Problem {
    /// The document as a response: its `status`, the JSON body, the
    /// `content-type` [`PROBLEM_JSON`], and, when `retry_after` is set, a
    /// `Retry-After` header in whole seconds, never 0.
    fn into_response(self) -> Response {
        // The line an operator searches for when a client reports an
        // `instance`; the request's span around it carries the id.
        tracing::info!(
            instance = %self.instance,
            status = self.status,
            problem_type = self.problem_type,
            "answered with a problem document"
        );
        // Any 100..=999 is a valid `StatusCode`, 499 included.
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        // `Json` said `application/json`; a problem document says what it is.
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(retry_after) = retry_after {
            // `Retry-After: 0` invites every shed client back at once.
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        response
    }
}
