//! The servers under test, and the fakes they call, on tokio runtimes of
//! their own.
//!
//! The lab runs three runtimes in one process, each with as many worker
//! threads as the machine has cores (what `#[tokio::main]` gives a binary):
//!
//! * the lab's own `#[tokio::main]` runtime: the load generator and the
//!   scraper;
//! * the **edge's** (`edge-worker` threads): the edge, or the minimal
//!   fan-out it is judged against, as the `product-page` binary would run
//!   it. So the tokio gauges and the heartbeat in its `/metrics` describe
//!   the edge's runtime, not the generator's;
//! * the **fakes'** (`fake-worker` threads): the three fake upstreams, as
//!   separate services would run. A generator that falls behind then makes
//!   the edge's *clients* late, not its *upstreams* slow: on one runtime
//!   with the generator, the fakes' answers waited behind the generator's
//!   queue, and the edge saw slow upstreams, real timeouts and breakers
//!   opening on healthy upstreams that were only starved of CPU.
//!
//! Separate runtimes are separate queues, not separate CPUs: all of it still
//! shares the machine's cores, and under load the operating system gives
//! each busy thread its fair share. On 2 cores, past the knee, the generator,
//! the fakes and the edge compete for CPU, which is the point: the knee is
//! where that competition is lost. The lab measures each runtime's lag (a
//! heartbeat's lateness, `lag.rs` and the edge's `/metrics`) so a reader can
//! see which of them fell behind.
//!
//! Given: this whole file (lab code; there is nothing to write in it).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use step6_resilience::edge::{EdgeState, bind_listener, serve};
use tokio::sync::oneshot;

use crate::minimal::{self, MinimalUpstreams};

/// How long a stopped edge gets to finish the requests it still holds.
const DRAIN_BOUND: Duration = Duration::from_secs(5);

/// A multi-thread runtime that serves (the edge, or the fakes), started
/// from (and shut down outside of) the lab's own runtime.
pub struct ServerRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

/// One server on the [`ServerRuntime`]: its address, and the means to stop it.
pub struct Running {
    /// Where it listens (loopback, a port the OS picked).
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
}

impl ServerRuntime {
    /// A runtime with one worker per core (as `#[tokio::main]` gives a
    /// binary), its threads named `thread_name` so a profiler (and `top -H`)
    /// tells them apart.
    pub fn start(thread_name: &str) -> anyhow::Result<ServerRuntime> {
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(thread_name)
            .enable_all()
            .build()
            .with_context(|| format!("building the {thread_name} runtime"))?;
        Ok(ServerRuntime {
            runtime: Some(runtime),
        })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives until the ServerRuntime is dropped")
    }

    /// Spawns `future` on this runtime, where it runs until it ends or the
    /// runtime shuts down.
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.runtime().spawn(future));
    }

    /// Runs `future` on this runtime and waits for its output. Whatever it
    /// spawns (a fake's server task, a heartbeat) runs on this runtime too.
    pub async fn run<F>(&self, future: F) -> anyhow::Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime()
            .spawn(future)
            .await
            .context("a task spawned on a server runtime panicked")
    }

    /// Serves `state`'s edge on a fresh loopback port, as the binary does
    /// (`bind_listener`, then `serve`, which also runs the heartbeat).
    pub async fn start_edge(&self, state: Arc<EdgeState>) -> anyhow::Result<Running> {
        self.start_server(move |signal| async move {
            let listener = bind_listener(([127, 0, 0, 1], 0).into())?;
            let addr = listener.local_addr()?;
            let serving = async move {
                // A drain that runs out only means a cell's last pages were
                // cut off after the generator stopped counting them.
                let _ = serve(listener, state, signal, DRAIN_BOUND).await;
            };
            Ok((addr, serving))
        })
        .await
    }

    /// Serves step 4's minimal fan-out (axum, reqwest, `try_join!`) in front
    /// of `upstreams`.
    pub async fn start_minimal(&self, upstreams: MinimalUpstreams) -> anyhow::Result<Running> {
        self.start_server(move |signal| async move {
            let (addr, server) = minimal::start(upstreams)?;
            let serving = async move {
                signal.await;
                server.abort();
            };
            Ok((addr, serving))
        })
        .await
    }

    /// Runs `bind` on this runtime; it binds a listener and returns
    /// its address and the future that serves until the signal it is given.
    async fn start_server<B, BindFut, Serving>(&self, bind: B) -> anyhow::Result<Running>
    where
        B: FnOnce(Signal) -> BindFut + Send + 'static,
        BindFut: Future<Output = std::io::Result<(SocketAddr, Serving)>> + Send + 'static,
        Serving: Future<Output = ()> + Send + 'static,
    {
        let (stop, stop_signal) = oneshot::channel::<()>();
        let (bound, on_bound) = oneshot::channel();
        let (done, stopped) = oneshot::channel::<()>();
        let signal: Signal = Box::pin(async move {
            let _ = stop_signal.await;
        });
        self.runtime().spawn(async move {
            match bind(signal).await {
                Ok((addr, serving)) => {
                    let _ = bound.send(Ok(addr));
                    serving.await;
                }
                Err(error) => {
                    let _ = bound.send(Err(error));
                }
            }
            let _ = done.send(());
        });
        let addr = on_bound
            .await
            .context("the server runtime dropped a server before it bound")?
            .context("binding a loopback listener for a server under test")?;
        Ok(Running {
            addr,
            stop: Some(stop),
            stopped: Some(stopped),
        })
    }
}

/// The stop signal a server is given.
type Signal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl Running {
    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops accepting, lets the server drain (bounded), and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
    }
}

impl Drop for ServerRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which is not
        // allowed inside the lab's own runtime; this does not wait.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
