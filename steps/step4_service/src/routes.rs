//! The HTTP edge: the router, its layers and its handlers.
//!
//! Three routes: `GET /products/{id}` (the fan-out), `GET /healthz` (is the
//! process up?) and `GET /metrics` (Prometheus text), and two fallbacks, so
//! an unknown path or method is a problem document too. Around them, layers
//! do what every request needs: settle its id (the caller's, if usable),
//! open a span carrying that id (so every log line inside says which
//! request it belongs to), echo the id on the response, time every answer
//! for the metrics, and cut off anything that runs far too long, with a
//! problem document.
//!
//! Yours to write: [`router`], `backstop`, `get_product` and `metrics`. Given:
//! the request-id helpers, [`time_request`], the two fallbacks, `healthz`
//! and [`problem_response`].

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};

use crate::fanout::fetch_product;
use crate::problem::{ApiError, ProblemContext};
use crate::product_id::{InvalidProductId, parse_product_id};
use crate::state::AppState;

// GIVEN: request_ids_and_timing (given code, the same as in the reference solution)
/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest caller request id the service keeps, in bytes. Enough for a
/// UUID (36), a W3C trace id (32) or a `traceparent` (55) with room to
/// spare; short enough that an id cannot bloat every log line.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a caller's `x-request-id` can be kept: 1 to
/// [`MAX_REQUEST_ID_LEN`] bytes, each visible ASCII (no spaces, no control
/// characters, nothing outside ASCII).
pub fn is_usable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID_LEN && bytes.iter().all(u8::is_ascii_graphic)
}

/// Set on a request whose caller-sent id was not usable, so the request's
/// span can say so (see [`report_replaced_request_id`]).
#[derive(Debug, Clone, Copy)]
pub struct ReplacedRequestId {
    /// How many bytes the caller's id had.
    pub len: usize,
    /// Whether it was all ASCII.
    pub ascii: bool,
}

/// For `axum::middleware::map_request`, *before* `SetRequestIdLayer`: takes
/// away a caller's `x-request-id` that is not usable, so that layer makes a
/// fresh one, and marks the request with [`ReplacedRequestId`].
///
/// The caller learns it from the response's `x-request-id`, which is then
/// not the one it sent; the operator from the warning that
/// [`report_replaced_request_id`] writes.
pub async fn replace_unusable_request_id(mut request: Request) -> Request {
    let unusable = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .filter(|value| !is_usable_request_id(value))
        .map(|value| ReplacedRequestId {
            len: value.len(),
            ascii: value.as_bytes().is_ascii(),
        });
    if let Some(replaced) = unusable {
        request.headers_mut().remove(REQUEST_ID_HEADER);
        request.extensions_mut().insert(replaced);
    }
    request
}

/// For `TraceLayer::on_request`, which runs inside the request's span: a
/// warning, carrying the new id, when the caller's id was replaced. (The
/// caller's id itself is not logged: it is what was not fit to log.)
pub fn report_replaced_request_id(request: &Request<Body>, _span: &Span) {
    if let Some(replaced) = request.extensions().get::<ReplacedRequestId>() {
        tracing::warn!(
            caller_id_len = replaced.len,
            caller_id_ascii = replaced.ascii,
            max_len = MAX_REQUEST_ID_LEN,
            "the caller's x-request-id was not usable (visible ASCII, 1 to max_len bytes); replaced it"
        );
    }
}

/// The request's id as the layers settled it (always set by then; `-` if
/// the router was built without them).
pub fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// Middleware (for `axum::middleware::from_fn_with_state`): times the rest
/// of the stack and records the answer in the request latency histogram
/// ([`REQUEST_LATENCY`](crate::telemetry::REQUEST_LATENCY)), under the
/// route the router matched (not the raw path, whose values are unbounded)
/// and the status class.
///
/// It counts from when the request reaches it to when the response's head
/// leaves it: a layer outside it, and the time the body takes to send, are
/// not in the number.
pub async fn time_request(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // Cheap to keep: the matched route is a shared string.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    state.service_metrics.record_request(
        route.as_ref().map(MatchedPath::as_str),
        response.status(),
        started.elapsed(),
    );
    response
}
// GIVEN_END: request_ids_and_timing

/// Builds the service: routes, fallbacks, state and the layers around them.
///
/// The contract, checked by the tests:
///
/// * `GET /products/{id}` is `get_product`, `GET /healthz` is `healthz`,
///   `GET /metrics` is `metrics`; any other path is `no_such_route`'s
///   `404` problem, and another method on a known path is
///   `method_not_allowed`'s `405` problem. No response of this service is
///   an empty error.
/// * Every request has an id before anything else sees it: the caller's
///   `x-request-id` if [`is_usable_request_id`], otherwise a fresh UUID
///   (and then [`report_replaced_request_id`] warns, inside the request's
///   span). The id is echoed on every response, errors included.
/// * Every request runs inside one span, named `request`, at `INFO` (so it
///   exists under the binary's default `info` filter), with a `request_id`
///   field (and the method and path), so that every log line written while
///   handling it carries the id; each response is logged at `INFO`, with
///   its status, inside that span.
/// * `backstop` bounds everything inside, at `server_timeout`. It runs
///   inside the request's span too: its `503` problem line and response
///   line carry the request id like any other.
/// * Every answer is timed by [`time_request`] into the request latency
///   histogram, under its route and status class, in seconds: every one,
///   the backstop's `503` and the fallbacks' problems included, and timed
///   from as early as the service sees the request, since that histogram
///   is where the service's p99 is read.
pub fn router(state: Arc<AppState>) -> Router {
    // TODO: as documented above. The layers meet a request in an order:
    // think about which one needs what another one did first.
    todo!("router: routes, fallbacks, state, and the request-id / span / backstop layers")
}

/// Middleware (for `axum::middleware::from_fn_with_state`): runs the rest
/// of the stack under `state.config.server_timeout`. A request still running
/// then is answered `503` with the [`ApiError::ServerTimeout`] problem
/// document, quoting the request's id; the handler is dropped, which
/// cancels every upstream call still running in it.
async fn backstop(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    todo!("backstop: the rest of the stack under server_timeout, or a 503 problem")
}

/// `GET /products/{id}`: the product page, or a problem document.
///
/// * The request's deadline is set here, once, from
///   `state.config.request_budget`, when the request arrives; the fan-out
///   spends from it and nothing extends it.
/// * The path arrives as a `Result`: a segment axum cannot decode (bytes
///   that are not UTF-8) is [`InvalidProductId::NotANumber`], like any
///   other id that [`parse_product_id`] rejects. A bad id calls no upstream.
/// * Success is the [`Product`](crate::Product) as JSON; any failure is its
///   problem document, quoting the request's id.
async fn get_product(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    todo!("get_product: deadline at the edge, parse, fan out, map errors to problems")
}

// GIVEN: fallbacks_and_health (given code, the same as in the reference solution)
/// The fallback for a path no route has: a `404` problem document.
async fn no_such_route(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    problem_response(ApiError::NoSuchRoute, &state, request_id_of(&headers))
}

/// The fallback for a known path with another method: a `405` problem
/// document (axum adds the `Allow` header).
async fn method_not_allowed(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    problem_response(ApiError::MethodNotAllowed, &state, request_id_of(&headers))
}

/// `error` as the problem document the client gets, for the request with
/// id `request_id`.
pub fn problem_response(error: ApiError, state: &AppState, request_id: String) -> Response {
    let context = ProblemContext {
        request_id,
        retry_after: state.config.retry_after,
    };
    error.to_problem(&context).into_response()
}

/// `GET /healthz`: the process is up and serving. It calls no upstream: a
/// health check that fails when a dependency does gets a healthy process
/// restarted for someone else's outage.
async fn healthz() -> &'static str {
    "ok"
}
// GIVEN_END: fallbacks_and_health

/// `GET /metrics`: every metric, in Prometheus' text format, sent as
/// `text/plain; version=0.0.4`, with the sampled gauges (bulkheads,
/// runtime) read at the moment of the request
/// ([`AppState::render_metrics`] renders it all).
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    todo!("metrics: render the Prometheus text")
}
