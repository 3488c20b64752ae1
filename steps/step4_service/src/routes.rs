//! The HTTP edge: the router, its layers and its handlers.
//!
//! Three routes: `GET /products/{id}` (the fan-out), `GET /healthz` (is the
//! process up?) and `GET /metrics` (Prometheus text). Around them, tower-http
//! layers do what every request needs: give it an id, open a span carrying
//! that id (so every log line inside says which request it belongs to), echo
//! the id on the response, and cut off anything that runs far too long.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};

use crate::fanout::fetch_product;
use crate::problem::{ApiError, ProblemContext};
use crate::product_id::parse_product_id;
use crate::state::AppState;

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Builds the service: routes, state and the layers around them.
pub fn router(state: Arc<AppState>) -> Router {
    // TODO: the routes: `Router::new().route("/products/{id}", get(get_product))`,
    // the same for `/healthz` (`healthz`) and `/metrics` (`metrics`), then
    // `.with_state(state)` (read `state.config.server_timeout` first).
    //
    // TODO: the layers, with `.layer(ServiceBuilder::new().layer(..)..)`
    // (outermost first, the order a request meets them):
    // 1. `SetRequestIdLayer::x_request_id(MakeRequestUuid)`: keep the caller's
    //    `x-request-id` or make one;
    // 2. `TraceLayer::new_for_http()` with `.make_span_with(|request: &Request<Body>| ..)`
    //    returning `tracing::info_span!("request", method = .., path = ..,
    //    request_id)` (read the id from the request's `REQUEST_ID_HEADER`),
    //    and `.on_response(DefaultOnResponse::new().level(Level::INFO))`;
    // 3. `PropagateRequestIdLayer::x_request_id()`: echo the id on the response;
    // 4. `TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, server_timeout)`.
    todo!("router: three routes, the state, and the request-id / trace / timeout layers")
}

/// `GET /products/{id}`: the product page, or a problem document.
async fn get_product(
    State(state): State<Arc<AppState>>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // TODO: set the deadline here, once: `Instant::now() + state.config.request_budget`.
    // Then `parse_product_id(&raw_id)` and, if it is an id,
    // `fetch_product(&state, product_id, deadline).await`; turn either error
    // into an `ApiError` (`ApiError::from`).
    // Success: `Json(product).into_response()`. Failure: build a
    // `ProblemContext` (`instance`: `/products/{raw_id}`; `request_id`: the
    // `REQUEST_ID_HEADER` from `headers`, which the request-id layer has set;
    // `retry_after`: `state.config.retry_after`), then
    // `error.to_problem(&context).into_response()`.
    todo!("get_product: deadline at the edge, parse, fan out, map errors to problems")
}

/// `GET /healthz`: the process is up and serving. It calls no upstream: a
/// health check that fails when a dependency does gets a healthy process
/// restarted for someone else's outage.
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`: every metric, in Prometheus' text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    // TODO: `state.metrics.render()` is the whole body; send it with the
    // header `(header::CONTENT_TYPE, "text/plain; version=0.0.4")`. A tuple
    // `([(name, value)], body)` becomes one with `.into_response()`.
    todo!("metrics: render the Prometheus text")
}
