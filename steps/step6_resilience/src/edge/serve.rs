//! Serving, and stopping politely: stop accepting on the signal, let the
//! requests in flight finish within a bound, and past the bound cancel what
//! is left rather than wait for ever.
//!
//! Given: this whole file; there is nothing to write in it.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::task::AbortOnDropHandle;

use crate::edge::routes::router;
use crate::edge::state::EdgeState;
use crate::telemetry::{HEARTBEAT_PERIOD, heartbeat};

/// Why [`serve`] returned with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener failed.
    #[error("the server failed")]
    Io(#[from] io::Error),
    /// Pages were still running when the drain bound ran out; they were
    /// cancelled.
    #[error("requests were still in flight {bound:?} after the shutdown signal")]
    DrainTimedOut {
        /// The bound that ran out.
        bound: Duration,
    },
}

/// Binds `addr` with a deep accept queue: `TcpListener::bind` asks for a
/// backlog of 128, and a burst of 500 connects overflows it (the kernel
/// drops the extra SYNs, which clients retry about a second later).
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

/// Serves the edge of `state` on `listener` until `signal` completes, then
/// drains: no new connection is accepted, and the requests in flight get
/// `drain_bound` (from the signal) to finish. Past it, every page still
/// running is cancelled through `state.shutdown` and `serve` returns
/// [`ServeError::DrainTimedOut`].
///
/// While it serves, a heartbeat task on the same runtime measures the
/// event-loop lag: `/metrics` shows it, admission sheds on it, and the
/// breakers judge timeouts with it (`state.runtime_lag`); it ends when
/// `serve` does.
///
/// # Errors
///
/// [`ServeError::Io`] if the listener fails, [`ServeError::DrainTimedOut`]
/// if requests were still running when `drain_bound` ran out.
pub async fn serve(
    listener: TcpListener,
    state: Arc<EdgeState>,
    signal: impl Future<Output = ()> + Send + 'static,
    drain_bound: Duration,
) -> Result<(), ServeError> {
    let _heartbeat = AbortOnDropHandle::new(tokio::spawn(heartbeat(
        state.metrics.event_loop_lag(),
        state.runtime_lag.clone(),
        HEARTBEAT_PERIOD,
    )));
    // axum does not say when the signal fired: relay it, so the drain bound
    // counts from the signal, not from when serving began.
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(Arc::clone(&state)))
        .with_graceful_shutdown(async move {
            signal.await;
            tracing::info!("shutdown signal received; draining in-flight requests");
            let _ = signalled.send(());
        })
        .into_future();
    tokio::pin!(server);

    tokio::select! {
        result = &mut server => return Ok(result?),
        _ = on_signal => {}
    }
    match tokio::time::timeout(drain_bound, &mut server).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            // The pages end with `Cancelled` and drop their requests.
            state.shutdown.cancel();
            Err(ServeError::DrainTimedOut { bound: drain_bound })
        }
    }
}

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
