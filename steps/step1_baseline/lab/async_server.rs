//! The async server: tokio tasks instead of threads, the concurrent fan-out inside.
//!
//! axum (through hyper) runs each connection as a tokio task, and each request
//! on it as a future within that task. While a request waits on its three
//! upstream calls it holds no thread at all, so the number of requests in
//! flight is limited by memory and sockets, not by a thread count.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use step1_baseline::{Product, UpstreamUrls, fetch_product_concurrent};

/// What every request needs: one shared client (its connection pool is the
/// point) and where the upstreams are.
struct AppState {
    client: reqwest::Client,
    urls: UpstreamUrls,
}

/// Starts the server on the current runtime and returns where it listens.
pub async fn start(urls: UpstreamUrls) -> anyhow::Result<SocketAddr> {
    let state = Arc::new(AppState {
        client: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?,
        urls,
    });
    let app = Router::new()
        .route("/products/{id}", get(product))
        .with_state(state);

    // A deep accept queue, as for the blocking server (see there).
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    let listener = socket.listen(4096)?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("async server stopped: {error}");
        }
    });
    Ok(addr)
}

/// `GET /products/{id}`: the concurrent fan-out, or 502 naming the upstream.
async fn product(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Json<Product>, (StatusCode, String)> {
    fetch_product_concurrent(&state.client, &state.urls, id)
        .await
        .map(Json)
        .map_err(|error| (StatusCode::BAD_GATEWAY, error.to_string()))
}
