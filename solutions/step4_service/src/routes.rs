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

// ANCHOR: router
/// Builds the service: routes, state and the layers around them.
pub fn router(state: Arc<AppState>) -> Router {
    let server_timeout = state.config.server_timeout;
    let routes = Router::new()
        .route("/products/{id}", get(get_product))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state);

    // `ServiceBuilder` lists layers outermost first, the order a request
    // meets them: the id must exist before the span that records it.
    routes.layer(
        ServiceBuilder::new()
            // Keep the caller's `x-request-id`, or make a UUID v4.
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            // One span per request, carrying the id; one log line per
            // response (status and latency) at INFO.
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            // Copy the id onto the response, errors included.
            .layer(PropagateRequestIdLayer::x_request_id())
            // The backstop: nothing runs past this, whatever it awaits.
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                server_timeout,
            )),
    )
}

/// The span every request runs in. Its `request_id` field is what puts the
/// id on every log line written while the request is handled.
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

// ANCHOR: get_product
/// `GET /products/{id}`: the product page, or a problem document.
async fn get_product(
    State(state): State<Arc<AppState>>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // The deadline is set once, here at the edge; everything below spends
    // from it and nothing extends it.
    let deadline = Instant::now() + state.config.request_budget;

    let result = match parse_product_id(&raw_id) {
        Ok(product_id) => fetch_product(&state, product_id, deadline)
            .await
            .map_err(ApiError::from),
        Err(invalid) => Err(ApiError::from(invalid)),
    };

    match result {
        Ok(product) => Json(product).into_response(),
        Err(error) => {
            let context = ProblemContext {
                instance: format!("/products/{raw_id}"),
                request_id: headers
                    .get(REQUEST_ID_HEADER)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("-")
                    .to_owned(),
                retry_after: state.config.retry_after,
            };
            error.to_problem(&context).into_response()
        }
    }
}
// ANCHOR_END: get_product

/// `GET /healthz`: the process is up and serving. It calls no upstream: a
/// health check that fails when a dependency does gets a healthy process
/// restarted for someone else's outage.
async fn healthz() -> &'static str {
    "ok"
}

// ANCHOR: metrics_route
/// `GET /metrics`: every metric, in Prometheus' text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
// ANCHOR_END: metrics_route
