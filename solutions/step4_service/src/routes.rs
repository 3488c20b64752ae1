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

// ANCHOR: router
/// Builds the service: routes, fallbacks, state and the layers around them.
pub fn router(state: Arc<AppState>) -> Router {
    let routes = Router::new()
        .route("/products/{id}", get(get_product))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        // Errors the router itself would answer with an empty body.
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Arc::clone(&state));

    // `ServiceBuilder` lists layers outermost first, the order a request
    // meets them: the id must be settled before the span that records it.
    routes.layer(
        ServiceBuilder::new()
            // Time every answer, from as early as the service sees the
            // request: whatever the layers below do (the backstop's 503
            // included) is in the histogram the p99 is read from.
            .layer(time_request(Arc::clone(&state)))
            // A caller's id that is not fit to log goes first (a plain
            // function on the request: tower's `map_request` adds no future)...
            .map_request(replace_unusable_request_id)
            // ...then keep the caller's `x-request-id`, or make a UUID v4.
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            // One span per request, carrying the id; a warning inside it if
            // the id was replaced; an access line for the answers worth one.
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(report_replaced_request_id)
                    .on_response(AccessLog::new(&state.config)),
            )
            // Copy the id onto the response, errors included.
            .layer(PropagateRequestIdLayer::x_request_id())
            // The backstop: nothing runs past it, whatever it awaits.
            .layer(middleware::from_fn_with_state(state, backstop)),
    )
}

/// The span every request runs in. Its `request_id` field is what puts the
/// id on every log line written while the request is handled. It is an
/// `INFO` span: under the binary's default `info` filter a `DEBUG` one
/// would not exist, and the lines inside it would lose the id.
fn request_span(request: &Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
    )
}
// ANCHOR_END: router

// ANCHOR: backstop
/// Middleware: runs the rest of the stack under `server_timeout`, and
/// answers a request that outlives it with a `503` problem document.
///
/// Dropping `next.run(request)` when the time is up cancels the handler,
/// and every upstream call in it, like any other dropped future.
async fn backstop(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let limit = state.config.server_timeout;
    // Read before `next` takes the request.
    let request_id = request_id_of(request.headers());
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => {
            problem_response(ApiError::ServerTimeout { after: limit }, &state, request_id)
        }
    }
}
// ANCHOR_END: backstop

// ANCHOR: get_product
/// `GET /products/{id}`: the product page, or a problem document.
///
/// The path arrives as a `Result`, so that a segment axum cannot even
/// decode (percent-encoded bytes that are not UTF-8) is our `400` problem
/// rather than axum's plain-text one.
async fn get_product(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    // The deadline is set once, here at the edge; everything below spends
    // from it and nothing extends it.
    let deadline = Instant::now() + state.config.request_budget;

    let product_id = path
        .map_err(|_| InvalidProductId::NotANumber)
        .and_then(|Path(raw_id)| parse_product_id(&raw_id));
    let result = match product_id {
        Ok(product_id) => fetch_product(&state, product_id, deadline)
            .await
            .map_err(ApiError::from),
        Err(invalid) => Err(ApiError::from(invalid)),
    };

    match result {
        Ok(product) => Json(product).into_response(),
        Err(error) => problem_response(error, &state, request_id_of(&headers)),
    }
}
// ANCHOR_END: get_product

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

// ANCHOR: metrics_route
/// `GET /metrics`: every metric, in Prometheus' text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.render_metrics(),
    )
        .into_response()
}
// ANCHOR_END: metrics_route
