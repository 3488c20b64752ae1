//! Errors are part of the API: every failure leaves the service as an RFC
//! 9457 problem document (`application/problem+json`).
//!
//! A client (or the on-call engineer reading a log) gets the same shape
//! every time: a `type` URI to branch on, a human `title`, the `status`, a
//! `detail` about this occurrence and an `instance` URI naming the
//! occurrence itself, plus two extension members of our own: which
//! `upstream` failed, and the `request_id` to find the log lines with.
//!
//! Nothing the caller sent is echoed back: not the path (a rejected id
//! would come back percent-decoded, in whatever script it was written in),
//! and not a request id the service did not accept (see
//! [`crate::routes::replace_unusable_request_id`]).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::FetchError;
use crate::product_id::InvalidProductId;

// GIVEN: problem_types (given code, the same as in the reference solution)
/// The media type RFC 9457 registers for problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything the service can answer with an error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The id in the path is not a product id.
    #[error(transparent)]
    InvalidProductId(#[from] InvalidProductId),
    /// An upstream call failed, or the page was shed; the error names which
    /// upstream.
    #[error(transparent)]
    Upstream(#[from] FetchError),
    /// No route has this path.
    #[error("there is no resource at this path")]
    NoSuchRoute,
    /// The path exists, but not with this method.
    #[error("this resource does not support the request's method")]
    MethodNotAllowed,
    /// The server-side backstop ended a request that outlived its deadline.
    #[error("the request was still running after {after:?}, so the server stopped it")]
    ServerTimeout {
        /// The backstop that ran out (`ServiceConfig::server_timeout`).
        after: Duration,
    },
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
    /// A URI that names this occurrence and no other (RFC 9457 §3.1.5):
    /// `urn:uuid:` and a fresh UUID. The service logs it, with the request
    /// id, when it sends the document.
    pub instance: String,
    /// The upstream at fault, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'static str>,
    /// The request id, also sent as the `x-request-id` header.
    pub request_id: String,
    /// Sent as the `Retry-After` header (whole seconds, rounded up), not in
    /// the body.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

/// The parts of the request a problem document quotes, and what to tell a
/// shed client.
#[derive(Debug, Clone)]
pub struct ProblemContext {
    /// The request's id (the `x-request-id` the service settled on).
    pub request_id: String,
    /// How long a shed client should wait before trying again.
    pub retry_after: Duration,
}

/// A fresh `instance` URI: `urn:uuid:` and a random (version 4) UUID.
pub fn new_instance() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
}
// GIVEN_END: problem_types

// ANCHOR: to_problem
impl ApiError {
    /// Turns the error into the problem document the client gets.
    ///
    /// This is the one place that decides which status each failure gets,
    /// and the `match` is exhaustive on purpose: a new `FetchError` variant
    /// does not compile until someone decides what the client sees.
    /// `retry_after` is `Some` only for `Overloaded`: a shed client is told
    /// when to come back; for any other failure the service cannot know
    /// when a retry would help, so it sends no `Retry-After`.
    pub fn to_problem(&self, context: &ProblemContext) -> Problem {
        let (status, problem_type, title, upstream, retry_after) = match self {
            ApiError::InvalidProductId(_) => (
                StatusCode::BAD_REQUEST,
                "https://problems.fanout.example/invalid-product-id",
                "Invalid product id",
                None,
                None,
            ),
            ApiError::NoSuchRoute => (
                StatusCode::NOT_FOUND,
                "https://problems.fanout.example/not-found",
                "No such resource",
                None,
                None,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "https://problems.fanout.example/method-not-allowed",
                "Method not allowed",
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
            // The upstream's time (its share of the deadline) ran out.
            ApiError::Upstream(FetchError::Timeout { upstream }) => (
                StatusCode::GATEWAY_TIMEOUT,
                "https://problems.fanout.example/upstream-timeout",
                "An upstream service timed out",
                Some(upstream.name()),
                None,
            ),
            // The backstop fired: a bug let a request outlive its deadline.
            ApiError::ServerTimeout { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "https://problems.fanout.example/server-timeout",
                "The request took too long",
                None,
                None,
            ),
        };
        Problem {
            problem_type,
            title,
            status: status.as_u16(),
            detail: self.to_string(),
            // This occurrence, not the path: a fresh URI every time.
            instance: new_instance(),
            upstream,
            request_id: context.request_id.clone(),
            retry_after,
        }
    }
}

impl IntoResponse for Problem {
    /// The document as a response: its `status`, the JSON body, the
    /// `content-type` `application/problem+json` ([`PROBLEM_JSON`]), and,
    /// when `retry_after` is set, a `Retry-After` header: `retry_after` in
    /// whole seconds, rounded up (1.5 s is `2`), so never 0 and never sooner
    /// than the setting.
    ///
    /// It also writes one log line at `INFO`, no higher and no lower (an
    /// event with a field named `instance`, the document's `instance`), so
    /// the occurrence a client reports can be found in the logs at their
    /// usual level, next to the response line; written inside the request's
    /// span, that line carries the request id too.
    fn into_response(self) -> Response {
        // The one line an operator searches for: it ties the `instance` a
        // client reports to the request (the span around it has the id).
        tracing::info!(
            instance = %self.instance,
            status = self.status,
            problem_type = self.problem_type,
            "answered with a problem document"
        );
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        // `Json` said `application/json`; a problem document says what it is.
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(retry_after) = retry_after {
            // Whole seconds, rounded up: the client waits at least as long
            // as the setting says, and never 0, which invites a stampede.
            let part_second = u64::from(retry_after.subsec_nanos() > 0);
            let seconds = (retry_after.as_secs() + part_second).max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
// ANCHOR_END: to_problem
