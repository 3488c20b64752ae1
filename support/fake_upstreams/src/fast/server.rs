//! [`FastUpstream`]: binding, serving, and stopping when dropped.
//!
//! Two details here are lessons of their own:
//!
//! - **The listen backlog.** `tokio::net::TcpListener::bind` asks the kernel
//!   for a queue of 128 connections waiting to be accepted. A lab opening 500
//!   connections at once overflows it; the kernel drops the extra SYNs, and
//!   the clients retry about a second later. The lab then reports a ~1 s tail
//!   latency that is the kernel's, not the code's. Binding through
//!   [`TcpSocket`] lets us ask for a backlog of [`LISTEN_BACKLOG`].
//! - **Stopping on drop.** The handle owns the sending half of a oneshot
//!   channel; axum's graceful shutdown waits on the receiving half. Dropping
//!   the handle drops the sender, which completes the receiver: the server
//!   stops accepting, closes idle keep-alive connections, and lets requests
//!   already being answered finish. (A hanging request stays until its client
//!   gives up: it has nothing to finish.)

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpSocket;
use tokio::sync::oneshot;

use super::behaviour::Behaviour;
use super::counters::CounterSnapshot;
use super::routes::{UpstreamState, router};

/// How many not-yet-accepted connections the kernel may queue. Far above the
/// labs' 500 concurrent clients, so a burst of connects never overflows it.
/// (The kernel may cap it lower, e.g. Linux's `net.core.somaxconn`, 4096 by
/// default.)
pub const LISTEN_BACKLOG: u32 = 4096;

/// A running fast fake upstream, serving `GET /inventory/{id}`,
/// `/pricing/{id}` and `/reviews/{id}` on loopback.
///
/// It serves from a task on the tokio runtime that started it, and stops
/// serving when dropped.
#[derive(Debug)]
pub struct FastUpstream {
    addr: SocketAddr,
    state: Arc<UpstreamState>,
    /// Never sent on: dropping it is the shutdown signal (see the module docs).
    _shutdown: oneshot::Sender<()>,
}

impl FastUpstream {
    /// Starts serving on `127.0.0.1`, on a port the OS picks.
    ///
    /// The server runs on the *current* tokio runtime, so a test that uses it
    /// may pause time: the fake's latency is then virtual too.
    ///
    /// # Errors
    ///
    /// If the socket cannot be created, bound or put in listening mode.
    pub async fn start(behaviour: Behaviour) -> io::Result<FastUpstream> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), behaviour).await
    }

    /// Starts serving on `addr` (port 0 lets the OS pick), like
    /// [`start`](Self::start).
    ///
    /// # Errors
    ///
    /// If the socket cannot be created, bound (for example, the port is in
    /// use) or put in listening mode.
    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> io::Result<FastUpstream> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // On Unix, let a restarted `fake-upstream --port N` rebind while the
        // previous run's connections sit in TIME_WAIT, as tokio's own `bind`
        // does. On Windows the same option would let two servers share a
        // port, so it stays off there.
        #[cfg(not(windows))]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(LISTEN_BACKLOG)?;
        let addr = listener.local_addr()?;

        // Small responses should leave at once, not wait for Nagle's
        // algorithm to batch them; a failure here only costs latency.
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });

        let state = Arc::new(UpstreamState::new(behaviour));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let serving =
            axum::serve(listener, router(Arc::clone(&state))).with_graceful_shutdown(async move {
                // Completes when the handle drops the sender.
                let _ = stopped.await;
            });
        // The task ends by itself once shutdown completes; nothing needs to
        // await it. `axum::serve` only returns after the listener is gone, and
        // its only error is impossible with a TCP listener.
        tokio::spawn(async move {
            let _ = serving.await;
        });

        Ok(FastUpstream {
            addr,
            state,
            _shutdown: shutdown,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `"http://127.0.0.1:40123"`, without a trailing
    /// slash: append [`Service::path`](crate::Service::path) to it.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters as they are now.
    pub fn counters(&self) -> CounterSnapshot {
        self.state.counters.snapshot()
    }

    /// Zeroes the counters, e.g. between a lab's warm-up and its measurement.
    /// Requests still in flight stay counted as in flight, and the peak
    /// restarts from them. Call it while the server is idle to keep
    /// `requests == completed + failed + cancelled + in_flight`.
    pub fn reset_counters(&self) {
        self.state.counters.reset();
    }

    /// Replaces the behaviour. Requests that arrive from now on use the new
    /// one; requests already in progress finish with the behaviour they
    /// started with.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state.set_behaviour(behaviour);
    }
}
