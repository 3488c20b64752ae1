//! The router: three routes, the layers around them, and the handlers.
//!
//! `GET /products/{id}` is the page, behind admission; `GET /healthz` and
//! `GET /metrics` are not behind it, on purpose: a health check that an
//! overloaded process fails gets it restarted while it was doing its best,
//! and the metrics are most wanted exactly when the service is overloaded.
//!
//! The layers every request meets are kept cheap, because they run on every
//! request, shed ones included: the timing is a tower `Layer` written by hand
//! rather than an axum `from_fn` middleware, the request-id check a plain
//! function, and only the answers worth a line get an access log line
//! ([`AccessLog`]).
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step6_resilience/src/edge/routes.rs`.

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
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{OnResponse, TraceLayer};
use tracing::Span;

use crate::deadline::Deadline;
use crate::edge::config::EdgeConfig;
use crate::edge::problem::EdgeError;
use crate::edge::state::EdgeState;
use crate::page::fetch_product_page;

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest caller request id kept, in bytes: a UUID (36) or a
/// `traceparent` (55) fits; a header meant to bloat every log line does not.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The longest product id, in digits: every 19-digit number fits a `u64`.
const MAX_PRODUCT_ID_LEN: usize = 19;

// ANCHOR: router
/// Builds the edge: routes, fallback, state and the layers around them.
pub fn router(state: Arc<EdgeState>) -> Router {
    let page =
        get(get_product).route_layer(middleware::from_fn_with_state(Arc::clone(&state), admit));
    let routes = Router::new()
        .route("/products/{id}", page)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(no_such_route)
        .with_state(Arc::clone(&state));

    // Outermost first, the order a request meets them.
    routes.layer(
        ServiceBuilder::new()
            // Time every answer, shed ones included: the histogram shows
            // what clients got, not only what the page did.
            .layer(TimeRequestLayer::new(Arc::clone(&state)))
            // A caller's id that is not fit to log is dropped first (a
            // plain function on the request: tower's `map_request` adds no
            // future of its own)...
            .map_request(drop_unusable_request_id)
            // ...then the caller's id is kept, or a UUID v4 made.
            .layer(SetRequestIdLayer::x_request_id(RandomUuid))
            // One span per request, carrying the id: every log line inside
            // says which request it belongs to. An access line only for the
            // answers worth one (see `AccessLog`); and no second line for a
            // 5xx: tower-http's default `on_failure` would write one at
            // `ERROR` beside the access line, saying the same status again.
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_response(AccessLog::new(&state.config))
                    .on_failure(()),
            )
            // The id goes back on every response, errors included.
            .layer(PropagateRequestIdLayer::x_request_id()),
    )
}
// ANCHOR_END: router

// ANCHOR: admit
/// Middleware on the page route: a place, or a `503` at once.
///
/// The place is held until the rest of the stack's future ends, however it
/// ends: answered, or dropped because the client went away.
async fn admit(State(state): State<Arc<EdgeState>>, request: Request, next: Next) -> Response {
    let Some(place) = state.admission.try_admit() else {
        state.metrics.record_shed();
        return problem(EdgeError::Shed, &state, request.headers());
    };
    let response = next.run(request).await;
    drop(place);
    response
}

/// `GET /products/{id}`: the page, or a problem document.
///
/// The deadline is set here, once: the page and every call under it spend
/// from it. If the client disconnects, hyper drops this future, and the
/// page with it.
async fn get_product(
    State(state): State<Arc<EdgeState>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let deadline = Deadline::after(state.config.request_budget);
    let product_id = match path.ok().and_then(|Path(raw)| parse_product_id(&raw)) {
        Some(product_id) => product_id,
        None => return problem(EdgeError::InvalidProductId, &state, &headers),
    };
    match fetch_product_page(&state.service, product_id, deadline, &state.shutdown).await {
        Ok(page) => Json(page).into_response(),
        Err(error) => problem(EdgeError::Page(error), &state, &headers),
    }
}
// ANCHOR_END: admit

/// 1 to [`MAX_PRODUCT_ID_LEN`] ASCII digits (`u64::from_str` alone would
/// also take `+42`).
fn parse_product_id(raw: &str) -> Option<u64> {
    let digits_only = !raw.is_empty() && raw.bytes().all(|byte| byte.is_ascii_digit());
    if !digits_only || raw.len() > MAX_PRODUCT_ID_LEN {
        return None;
    }
    raw.parse().ok()
}

/// `GET /healthz`: the process is up. It calls no upstream: a health check
/// that fails with a dependency gets a healthy process restarted for
/// someone else's outage.
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`: every series, in Prometheus' text format.
async fn metrics(State(state): State<Arc<EdgeState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&state.service, &state.admission),
    )
        .into_response()
}

/// The fallback: a `404` problem document instead of an empty body.
async fn no_such_route(State(state): State<Arc<EdgeState>>, headers: HeaderMap) -> Response {
    problem(EdgeError::NoSuchRoute, &state, &headers)
}

/// `error` as the client's problem document, for the request whose
/// (settled) headers are `headers`.
fn problem(error: EdgeError, state: &EdgeState, headers: &HeaderMap) -> Response {
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    error
        .to_problem(request_id, state.config.retry_after)
        .into_response()
}

/// The outermost layer: times the rest of the stack and records the answer
/// under the route the router matched (not the raw path, whose values are
/// unbounded) and the status class.
///
/// It counts from when the request reaches it to when the response's head
/// leaves it: the time the body takes to send is not in the number.
///
/// Written as a tower `Layer` rather than with axum's `middleware::from_fn`,
/// because it runs on every request: `from_fn` clones the service inside it,
/// boxes that clone and boxes the future of the rest of the stack, every
/// time. Here a request costs one box (the `async` block in `call`) and a
/// clone of the state's `Arc`.
#[derive(Debug, Clone)]
pub struct TimeRequestLayer {
    state: Arc<EdgeState>,
}

impl TimeRequestLayer {
    /// Times into `state`'s request histogram.
    pub fn new(state: Arc<EdgeState>) -> Self {
        TimeRequestLayer { state }
    }
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
    state: Arc<EdgeState>,
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
            state.metrics.record_request(
                route.as_ref().map(MatchedPath::as_str),
                response.status(),
                started.elapsed(),
            );
            Ok(response)
        })
    }
}

/// The `target` of the access log line, so a filter can name it
/// (`RUST_LOG=info,step6_resilience::access=off` drops it).
pub const ACCESS_LOG_TARGET: &str = "step6_resilience::access";

/// For `TraceLayer::on_response`, which runs inside the request's span: the
/// access log line, `answered` with the status and the latency in
/// milliseconds, at `INFO`, for every answer that is not a success, and for
/// every answer when `log_every_request` is set.
///
/// Why not a line for every answer by default: it is the most expensive
/// thing observability does per request (a JSON line of a few hundred
/// bytes; step 4's lab measured it as the largest single part), and a
/// success is the answer nobody looks up by its id. Nothing is lost for the
/// numbers: the request histogram counts every answer, by route and status
/// class. An answer that is not a success, the one an operator does search
/// for, always gets its line. Nor a line for each *slow* success: a service
/// is slow when it is overloaded, and a rule that logs slow answers spends
/// CPU on logs exactly when CPU is scarcest. Turn `log_every_request` on
/// when every answer must be on record: an audit, a debugging session.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog {
    every_request: bool,
}

impl AccessLog {
    /// The access log as `config` asks for it.
    pub fn new(config: &EdgeConfig) -> Self {
        AccessLog {
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

/// Removes a caller's `x-request-id` that is empty, too long or not visible
/// ASCII, so that a fresh one is made instead of logging it.
///
/// A plain function, not an `async` one: it changes the request and hands it
/// on. tower's `ServiceBuilder::map_request` runs it inside the next layer's
/// `call` and returns that layer's future as it is, where axum's
/// `middleware::map_request` would box a future of its own per request.
fn drop_unusable_request_id(mut request: Request) -> Request {
    let usable = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes.iter().all(u8::is_ascii_graphic)
    };
    if let Some(value) = request.headers().get(REQUEST_ID_HEADER)
        && !usable(value)
    {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

/// Makes a request id: a UUID v4 from the thread's random generator.
///
/// Not tower-http's `MakeRequestUuid`, whose `Uuid::new_v4` asks the kernel
/// for 16 random bytes on every request (a `getrandom` system call), shed
/// requests included; the kernel's random generator showed in the lab's
/// profile of the edge's threads. `rand`'s thread-local generator is seeded
/// from the kernel, reseeds itself, and is a CSPRNG: as unguessable as the
/// ids need to be, for nanoseconds.
#[derive(Debug, Clone, Copy)]
struct RandomUuid;

impl MakeRequestId for RandomUuid {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
            .ok()
            .map(RequestId::new)
    }
}

/// The span every request runs in; its `request_id` field puts the id on
/// every log line written inside it.
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
