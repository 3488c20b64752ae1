//! Ready-made HTTP requests for the driver, and a client configured for load.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::{Client, Response, Url};

use crate::measure::{ErrorKind, RequestOutcome};

/// The future [`http_get`] returns for each request.
///
/// Boxed because stable Rust cannot yet name the type of an `async` block in a return
/// position like `impl Fn() -> impl Future`. The box is one small allocation per request,
/// next to the dozens a real HTTP request makes.
pub type RequestFuture = Pin<Box<dyn Future<Output = RequestOutcome> + Send + 'static>>;

/// A ready-made request for [`run`](crate::run): `GET url` with the given client.
///
/// The response body is read to its end (and thrown away chunk by chunk, never collected):
/// a response whose body is left unread cannot give its connection back to the pool, and a
/// load test that reconnects for every request measures the kernel's `accept`, not the server.
///
/// Failures map to these [`ErrorKind`]s:
///
/// | kind           | meaning                                                      |
/// |----------------|--------------------------------------------------------------|
/// | `"timeout"`    | the client's timeout ran out (see [`load_client`])           |
/// | `"connect"`    | no connection: refused, reset while connecting, unreachable  |
/// | `"status NNN"` | the server answered with a non-2xx status, e.g. `status 503` |
/// | `"body"`       | the body broke off while being read                          |
/// | `"other"`      | anything else reqwest reports                                |
///
/// # Panics
///
/// If `url` is not a valid URL: a lab's own mistake, better reported once, at once, than as
/// thousands of `"other"` errors.
pub fn http_get(client: Client, url: String) -> impl Fn() -> RequestFuture + Send + Sync + 'static {
    // Parsed once here rather than on every request.
    let url: Url = url
        .parse()
        .unwrap_or_else(|error| panic!("http_get: {url:?} is not a valid URL: {error}"));
    move || {
        // A `Client` is a handle to a shared pool: cloning it is one atomic increment.
        let request = client.get(url.clone());
        Box::pin(async move {
            let response = request.send().await.map_err(|error| kind_of(&error))?;
            let status = response.status();
            // Read the body even for an error status, so the connection can be reused.
            let body = read_to_end(response).await;
            if !status.is_success() {
                return Err(ErrorKind(format!("status {}", status.as_u16())));
            }
            body.map_err(|error| {
                if error.is_timeout() {
                    ErrorKind::new("timeout")
                } else {
                    ErrorKind::new("body")
                }
            })
        })
    }
}

/// A client for load: no proxy, an unlimited connection pool, a request timeout, HTTP/1.
///
/// - **No proxy**: reqwest honours `HTTP_PROXY` and friends by default, even for
///   `127.0.0.1`, and a lab that measures a corporate proxy measures the wrong thing.
/// - **Pool**: idle connections per host are not capped, so a closed loop at concurrency 500
///   keeps its 500 connections between requests instead of reconnecting.
/// - **Timeout**: `request_timeout` bounds each whole request (connect, send, body); a request
///   that runs out is counted as `"timeout"`.
/// - **HTTP/1**: one request per connection at a time, like most clients of a REST service.
///
/// Build it once per lab, not per request: building a client is expensive.
///
/// # Panics
///
/// If reqwest cannot build the client, which with these settings means the system is badly
/// broken (no TLS backend is involved).
pub fn load_client(request_timeout: Duration) -> Client {
    Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(usize::MAX)
        .timeout(request_timeout)
        .tcp_nodelay(true)
        .build()
        .expect("a plain-HTTP client with no proxy always builds")
}

/// Reads a body to its end, keeping nothing.
async fn read_to_end(mut response: Response) -> reqwest::Result<()> {
    while response.chunk().await?.is_some() {}
    Ok(())
}

/// Maps a failure to send a request (before any status arrived) to its kind.
fn kind_of(error: &reqwest::Error) -> ErrorKind {
    let label = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "other"
    };
    ErrorKind::new(label)
}
