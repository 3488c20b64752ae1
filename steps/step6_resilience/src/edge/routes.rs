//! The router: three routes, the layers around them, and the handlers.
//!
//! `GET /products/{id}` is the page, behind admission; `GET /healthz` and
//! `GET /metrics` are not behind it, on purpose: a health check that an
//! overloaded process fails gets it restarted while it was doing its best,
//! and the metrics are most wanted exactly when the service is overloaded.
//!
//! Given: this whole file; there is nothing to write in it.

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

use crate::deadline::Deadline;
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
            .layer(middleware::from_fn_with_state(state, time_request))
            // A caller's id that is not fit to log is dropped first...
            .layer(middleware::map_request(drop_unusable_request_id))
            // ...then the caller's id is kept, or a UUID v4 made.
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            // One span per request, carrying the id: every log line inside
            // says which request it belongs to. The one `INFO` line per
            // response is the access log. It is kept to that one line (the
            // request's start is `DEBUG`) because step 4's lab measured it as
            // the largest single cost of its observability, more than its
            // spans or its metrics; `RUST_LOG=warn` turns it off.
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            // The id goes back on every response, errors included.
            .layer(PropagateRequestIdLayer::x_request_id()),
    )
}

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

/// Middleware, outermost: times the rest of the stack and records the
/// answer under the route the router matched and the status class.
async fn time_request(
    State(state): State<Arc<EdgeState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    state.metrics.record_request(
        route.as_ref().map(MatchedPath::as_str),
        response.status(),
        started.elapsed(),
    );
    response
}

/// Removes a caller's `x-request-id` that is empty, too long or not visible
/// ASCII, so that a fresh one is made instead of logging it.
async fn drop_unusable_request_id(mut request: Request) -> Request {
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
