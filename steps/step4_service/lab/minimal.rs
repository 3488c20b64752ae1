//! The minimal fan-out: the floor the service is measured against.
//!
//! Why it exists: a lab that measures only the service can say what
//! switching observability on costs, but not what the service costs as a
//! whole, compared with the least a Rust program can do for the same page.
//! This is that least: axum, one `reqwest::Client`, three GETs overlapped
//! with `tokio::try_join!`, the same JSON page back. No layers, no request
//! ids, no deadline, no retries, no bulkhead, no problem documents, no
//! metrics, no logs. Step 4's lab runs it beside the service, on the same
//! fakes, in the same rounds, so the gap between them is always shown, and
//! the floor (the service serves at least 0.9× its throughput at
//! c=500, with at most 1.2× its p99) can be judged in one run.
//!
//! It is nobody's design to copy: a failed upstream is a bare `502`, a hung
//! one hangs the request, and nothing says what went wrong. Only the JSON
//! page is the same as the service's (the lab checks that before
//! measuring).
//!
//! It depends on nothing of step 4's own crate, so a later lab can include
//! this very file (`#[path = "../../step4_service/lab/minimal.rs"] mod
//! minimal;`) instead of copying it.
//!
//! Given: this whole file (lab code; there is nothing to write in it).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

/// Base URLs of the three upstreams, e.g. `http://127.0.0.1:8081`.
#[derive(Debug, Clone)]
pub struct MinimalUpstreams {
    /// Serves `/inventory/{id}`.
    pub inventory: String,
    /// Serves `/pricing/{id}`.
    pub pricing: String,
    /// Serves `/reviews/{id}`.
    pub reviews: String,
}

/// The inventory upstream's answer (only the fields the page uses).
#[derive(Debug, Serialize, Deserialize)]
struct Inventory {
    in_stock: u32,
    warehouse: String,
}

/// The pricing upstream's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Price {
    amount_cents: u64,
    currency: String,
}

/// The reviews upstream's answer.
#[derive(Debug, Serialize, Deserialize)]
struct ReviewStats {
    average_stars: f64,
    count: u32,
}

/// The page: the same fields, in the same order, as the service's
/// `Product`, so both answer the same JSON.
#[derive(Debug, Serialize)]
struct Page {
    id: u64,
    inventory: Inventory,
    price: Price,
    reviews: ReviewStats,
}

/// What every request shares: one client (one connection pool) and the URLs.
struct Minimal {
    client: reqwest::Client,
    upstreams: MinimalUpstreams,
}

/// The whole server: one route.
pub fn router(upstreams: MinimalUpstreams) -> Router {
    let minimal = Minimal {
        // Built once: a client is a connection pool. No proxy, like the
        // service's, since system proxies apply even to 127.0.0.1.
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a reqwest client without TLS or proxies always builds"),
        upstreams,
    };
    Router::new()
        .route("/products/{id}", get(product_page))
        .with_state(Arc::new(minimal))
}

/// Serves [`router`] on a loopback port; returns the port's address and
/// the serving task (abort it to stop).
///
/// The listener gets the same deep accept queue as the service's
/// (`bind_listener`): with the default 128, a burst of 500 connects loses
/// some SYNs, and the minimal server would look slow for the kernel's
/// reasons, not its own.
///
/// # Errors
///
/// If the loopback socket cannot be created, bound or put in listening mode.
pub fn start(upstreams: MinimalUpstreams) -> io::Result<(SocketAddr, JoinHandle<io::Result<()>>)> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    let listener = socket.listen(4096)?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, router(upstreams)).await });
    Ok((addr, server))
}

/// `GET /products/{id}`: three calls at once; the first failure ends the
/// page as a bare `502`.
async fn product_page(
    State(minimal): State<Arc<Minimal>>,
    Path(id): Path<u64>,
) -> Result<Json<Page>, StatusCode> {
    let urls = &minimal.upstreams;
    let (inventory, price, reviews) = tokio::try_join!(
        get_json::<Inventory>(&minimal.client, &urls.inventory, "inventory", id),
        get_json::<Price>(&minimal.client, &urls.pricing, "pricing", id),
        get_json::<ReviewStats>(&minimal.client, &urls.reviews, "reviews", id),
    )
    .map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(Json(Page {
        id,
        inventory,
        price,
        reviews,
    }))
}

/// `GET {base}/{name}/{id}`, a 2xx status, and the body decoded as `T`.
async fn get_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    id: u64,
) -> reqwest::Result<T> {
    client
        .get(format!("{base}/{name}/{id}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}
