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
//!
//! Yours to write: [`ApiError::to_problem`] and `into_response` for
//! [`Problem`]. Given: the types, [`PROBLEM_JSON`] and [`new_instance`].

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

impl ApiError {
    /// Turns the error into the problem document the client gets.
    ///
    /// This is the one place that decides which status each failure gets:
    ///
    /// | error | status | `type` (under `https://problems.fanout.example/`) | `title` |
    /// |---|---|---|---|
    /// | `InvalidProductId` | 400 | `invalid-product-id` | Invalid product id |
    /// | `NoSuchRoute` | 404 | `not-found` | No such resource |
    /// | `MethodNotAllowed` | 405 | `method-not-allowed` | Method not allowed |
    /// | `Upstream` `Status`, `Transport`, `Decode` | 502 | `upstream-failed` | An upstream service failed |
    /// | `Upstream` `Overloaded` | 503, `retry_after` from `context` | `overloaded` | The service is overloaded |
    /// | `Upstream` `Timeout` | 504 | `upstream-timeout` | An upstream service timed out |
    /// | `ServerTimeout` | 503 | `server-timeout` | The request took too long |
    ///
    /// `upstream` names the upstream of every `Upstream` error (and is
    /// `None` otherwise); `detail` is the error's own message; `instance`
    /// names this occurrence and no other ([`new_instance`]); `request_id`
    /// is the context's. Nothing the caller sent is quoted. `retry_after` is
    /// `Some` only for `Overloaded`: a shed client is told when to come
    /// back; for any other failure the service cannot know when a retry
    /// would help, so it sends no `Retry-After`.
    ///
    /// Every variant has its status, and a variant added later must not
    /// compile until someone decides what the client sees.
    pub fn to_problem(&self, context: &ProblemContext) -> Problem {
        todo!("ApiError::to_problem: one exhaustive match from error to status and problem fields")
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
        todo!(
            "Problem::into_response: log it; status, JSON body, problem+json content type, Retry-After"
        )
    }
}
