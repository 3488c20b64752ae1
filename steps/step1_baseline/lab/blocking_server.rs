//! The thread-pool server: a fixed number of OS threads, one request each.
//!
//! Each worker accepts a connection, reads one HTTP request, runs the
//! *blocking* fan-out (three calls, one after another) and writes the answer,
//! then closes the connection, as WSGI-style servers do. While it waits on an
//! upstream the thread can do nothing else, so the pool can serve at most
//! `threads` requests at a time; everyone else waits in the accept queue.
//!
//! The HTTP handling is deliberately minimal (GET only, no keep-alive): the
//! point is the threading model, not the parser.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use step1_baseline::{UpstreamUrls, fetch_product_blocking};

/// Starts `threads` workers serving `GET /products/{id}` and returns where.
///
/// The workers run until the process exits.
pub fn start(threads: usize, urls: UpstreamUrls) -> anyhow::Result<SocketAddr> {
    let listener = listen_on_loopback()?;
    let addr = listener.local_addr()?;

    // reqwest's blocking client runs a small runtime of its own and panics if
    // it is created or dropped inside an async context, so build it on a
    // plain thread. One client is shared, so connections to the upstreams are
    // pooled across workers.
    let client = std::thread::spawn(|| {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("building the blocking client panicked"))??;

    for worker in 0..threads {
        let listener = listener.try_clone()?;
        let client = client.clone();
        let urls = urls.clone();
        std::thread::Builder::new()
            .name(format!("blocking-worker-{worker}"))
            .spawn(move || {
                // Every worker blocks in `accept`; the kernel hands each new
                // connection to one of them.
                for stream in listener.incoming().flatten() {
                    let _ = serve_one(stream, &client, &urls);
                }
            })?;
    }
    Ok(addr)
}

/// A std listener on 127.0.0.1 with a deep accept queue.
///
/// The standard library listens with a backlog of 128; at 500 concurrent
/// connects the kernel would drop the rest and clients would retry a second
/// later, a delay that is not the server's. tokio's `TcpSocket` lets us ask
/// for a deeper queue; then we take the plain std listener out of it.
fn listen_on_loopback() -> anyhow::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    let listener = socket.listen(4096)?.into_std()?;
    // tokio's sockets are non-blocking; these workers want to block.
    listener.set_nonblocking(false)?;
    Ok(listener)
}

/// Reads one request, answers it, closes the connection.
fn serve_one(
    stream: TcpStream,
    client: &reqwest::blocking::Client,
    urls: &UpstreamUrls,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream);

    // "GET /products/42 HTTP/1.1", then headers up to an empty line.
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }

    let product_id = request_line
        .split_whitespace()
        .nth(1)
        .and_then(|path| path.strip_prefix("/products/"))
        .and_then(|id| id.parse::<u64>().ok());
    let (status, body) = match product_id {
        None => ("404 Not Found", "not found".to_owned()),
        Some(id) => match fetch_product_blocking(client, urls, id) {
            Ok(product) => (
                "200 OK",
                serde_json::to_string(&product).unwrap_or_default(),
            ),
            Err(error) => ("502 Bad Gateway", error.to_string()),
        },
    };

    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
