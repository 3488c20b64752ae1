//! The HTTP edge: the router, its layers and its handlers.
//!
//! Three routes: `GET /products/{id}` (the fan-out), `GET /healthz` (is the
//! process up?) and `GET /metrics` (Prometheus text), and two fallbacks, so
//! an unknown path or method is a problem document too. Around them, layers
//! do what every request needs: settle its id (the caller's, if usable),
//! open a span carrying that id (so every log line inside says which
//! request it belongs to), echo the id on the response, time every answer
//! for the metrics, log the answers worth a line, and cut off anything that
//! runs far too long, with a problem document.
//!
//! Yours to write: [`router`], `backstop`, `get_product` and `metrics`. Given:
//! the request-id helpers, [`time_request`], [`AccessLog`], the two
//! fallbacks, `healthz` and [`problem_response`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{OnResponse, TraceLayer};
use tracing::Span;

use crate::config::ServiceConfig;
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

/// For tower's `ServiceBuilder::map_request`, *before* `SetRequestIdLayer`:
/// takes away a caller's `x-request-id` that is not usable, so that layer
/// makes a fresh one, and marks the request with [`ReplacedRequestId`].
///
/// A plain function, not an `async` one: it changes the request and hands
/// it on, so it needs no future of its own. tower's `map_request` runs it
/// inside the next layer's `call` and returns that layer's future as is,
/// where axum's `middleware::map_request` would box a future per request.
///
/// The caller learns it from the response's `x-request-id`, which is then
/// not the one it sent; the operator from the warning that
/// [`report_replaced_request_id`] writes.
pub fn replace_unusable_request_id(mut request: Request) -> Request {
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

/// The layer that times the rest of the stack and records the answer in the
/// request latency histogram
/// ([`REQUEST_LATENCY`](crate::telemetry::REQUEST_LATENCY)), under the
/// route the router matched (not the raw path, whose values are unbounded)
/// and the status class.
///
/// It counts from when the request reaches it to when the response's head
/// leaves it: a layer outside it, and the time the body takes to send, are
/// not in the number.
pub fn time_request(state: Arc<AppState>) -> TimeRequestLayer {
    TimeRequestLayer { state }
}

/// See [`time_request`].
///
/// Written as a tower `Layer` rather than with axum's
/// `middleware::from_fn`, because it runs on every request: `from_fn`
/// clones the service inside it, boxes that clone and boxes the future of
/// the rest of the stack, every time. Here a request costs one box (the
/// `async` block below) and a clone of the state's `Arc`.
#[derive(Debug, Clone)]
pub struct TimeRequestLayer {
    state: Arc<AppState>,
}

impl<S> Layer<S> for TimeRequestLayer {
    type Service = TimeRequest<S>;

    fn layer(&self, inner: S) -> TimeRequest<S> {
        TimeRequest {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// The service [`TimeRequestLayer`] wraps around the rest of the stack.
#[derive(Debug, Clone)]
pub struct TimeRequest<S> {
    inner: S,
    state: Arc<AppState>,
}

impl<S, ResponseBody> Service<Request> for TimeRequest<S>
where
    S: Service<Request, Response = axum::http::Response<ResponseBody>>,
    S::Future: Send + 'static,
    ResponseBody: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        // Cheap to keep: the matched route is a shared string.
        let route = request.extensions().get::<MatchedPath>().cloned();
        let state = Arc::clone(&self.state);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            state.service_metrics.record_request(
                route.as_ref().map(MatchedPath::as_str),
                response.status(),
                started.elapsed(),
            );
            Ok(response)
        })
    }
}

/// The `target` of the access log line, so a filter can name it
/// (`RUST_LOG=info,step4_service::access=off` drops it).
pub const ACCESS_LOG_TARGET: &str = "step4_service::access";

/// For `TraceLayer::on_response`, which runs inside the request's span: the
/// access log line, `answered` with the status and the latency, at `INFO`,
/// for every answer that is not a success, and for every answer at all when
/// `config.log_every_request` is set.
///
/// Why not a line for every answer by default: it is the most expensive
/// thing observability does per request (a JSON line of about 300 bytes;
/// the step 4 lab measures it), and a success is the answer nobody looks
/// up by its id. Nothing is lost for the numbers: the request histogram
/// counts every answer, by route and status class. An error, the answer an
/// operator does search for, always gets its line. Nor a line for each
/// *slow* success: a service is slow when it is overloaded, and a rule
/// that logs slow answers then spends CPU on logs exactly when CPU is
/// scarcest (in the lab, at 500 requests in flight on two busy cores, half
/// the answers took over 100 ms). Turn `log_every_request` on when every
/// answer must be on record: an audit, a debugging session.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog {
    every_request: bool,
}

impl AccessLog {
    /// The access log as `config` asks for it.
    pub fn new(config: &ServiceConfig) -> Self {
        Self {
            every_request: config.log_every_request,
        }
    }
}

impl<B> OnResponse<B> for AccessLog {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, _: &Span) {
        let status = response.status();
        if self.every_request || !status.is_success() {
            tracing::info!(
                target: ACCESS_LOG_TARGET,
                status = status.as_u16(),
                latency_ms = latency.as_secs_f64() * 1e3,
                "answered"
            );
        }
    }
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
///   handling it carries the id.
/// * Inside that span, an access line at `INFO` with the status for each
///   answer that is not a success, and for every answer when
///   `config.log_every_request` is set; a success gets none by default.
///   [`AccessLog`] is that decision.
/// * `backstop` bounds everything inside, at `server_timeout`. It runs
///   inside the request's span too: its `503` problem line and access line
///   carry the request id like any other.
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
