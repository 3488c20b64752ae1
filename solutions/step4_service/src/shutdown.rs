//! Serving, and stopping politely.
//!
//! Graceful shutdown is cancellation done politely: on the signal, stop
//! accepting connections, let the requests already in flight finish, then
//! return. "Let them finish" needs a bound, or one hung request keeps a
//! deploy waiting forever; past the bound, give up and say so.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpSocket};

// GIVEN: serve_error_and_listener (given code, the same as in the reference solution)
/// Why [`serve`] returned with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener failed.
    #[error("the server failed")]
    Io(#[from] io::Error),
    /// Requests were still in flight when the drain bound ran out; they were
    /// abandoned.
    #[error("requests were still in flight {bound:?} after the shutdown signal")]
    DrainTimedOut {
        /// The bound that ran out.
        bound: Duration,
    },
}

/// Binds `addr` with a deep accept queue.
///
/// `TcpListener::bind` asks for a backlog of 128; a burst of 500 connects
/// overflows it and the kernel drops the extra SYNs, which clients retry
/// about a second later. 4096 keeps a 500-way burst from looking slow.
///
/// # Errors
///
/// If the socket cannot be created, bound or put in listening mode.
pub fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(addr)?;
    socket.listen(4096)
}
// GIVEN_END: serve_error_and_listener

// ANCHOR: serve
/// Serves `app` on `listener` until `signal` completes, then drains.
///
/// Before the signal it serves for as long as it takes, however long
/// single requests run. After the signal no new connection is accepted, and
/// the requests in flight get up to `drain_bound` (counted from the signal)
/// to finish: `serve` returns `Ok` only once they have, and does not return
/// earlier.
///
/// # Errors
///
/// [`ServeError::Io`] if the listener fails (axum 0.8's `serve` retries
/// accept errors itself, so in practice this does not happen),
/// [`ServeError::DrainTimedOut`] if
/// requests were still running when `drain_bound` ran out.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    signal: impl Future<Output = ()> + Send + 'static,
    drain_bound: Duration,
) -> Result<(), ServeError> {
    // axum tells us nothing when the signal fires, so relay it: the drain
    // bound starts from the signal, not from when serving began.
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            signal.await;
            tracing::info!("shutdown signal received; draining in-flight requests");
            let _ = signalled.send(());
        })
        .into_future();
    tokio::pin!(server);

    tokio::select! {
        // Served until the listener failed (no signal yet).
        result = &mut server => return Ok(result?),
        _ = on_signal => {}
    }
    match tokio::time::timeout(drain_bound, server).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ServeError::DrainTimedOut { bound: drain_bound }),
    }
}
// ANCHOR_END: serve

// GIVEN: shutdown_signal (given code, the same as in the reference solution)
/// Completes on Ctrl-C, or on SIGTERM where there is one (what `docker
/// stop` and Kubernetes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No Ctrl-C handler: wait for SIGTERM alone, never return early.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
// GIVEN_END: shutdown_signal
