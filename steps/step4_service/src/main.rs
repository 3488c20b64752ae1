//! `product-service`: the fan-out as a service you can run and `curl`.
//!
//! With no upstream URLs it starts three embedded fake upstreams (on
//! loopback, ports picked by the OS) so it works out of the box:
//!
//! ```text
//! cargo run -p step4_service --bin product-service
//! curl -i http://127.0.0.1:3000/products/42
//! curl http://127.0.0.1:3000/metrics
//! ```
//!
//! Point it at real upstreams with `--inventory-url`, `--pricing-url` and
//! `--reviews-url` (or `INVENTORY_URL`, `PRICING_URL`, `REVIEWS_URL`).
//! Logs are JSON lines on stdout; `RUST_LOG` filters them (default `info`).
//! Only an answer that is not a success gets an access line;
//! `--log-every-request` logs every answer.
//! Ctrl-C (or SIGTERM) stops it gracefully.
//!
//! This file is given: the command line, the logging set-up and the wiring.
//! The service itself is the library.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use step4_service::telemetry::{HEARTBEAT_PERIOD, heartbeat, json_logs};
use step4_service::{
    AppState, ServiceConfig, UpstreamUrls, bind_listener, prometheus_builder, router, serve,
    shutdown_signal,
};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The product service: `GET /products/{id}` fanned out to inventory, pricing and reviews.
#[derive(Debug, Parser)]
#[command(name = "product-service")]
struct Args {
    /// Address to listen on. Loopback by default: exposing a service is a decision.
    #[arg(long, env = "PRODUCT_SERVICE_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Base URL of the inventory service (all three, or none for embedded fakes).
    #[arg(long, env = "INVENTORY_URL")]
    inventory_url: Option<String>,
    /// Base URL of the pricing service.
    #[arg(long, env = "PRICING_URL")]
    pricing_url: Option<String>,
    /// Base URL of the reviews service.
    #[arg(long, env = "REVIEWS_URL")]
    reviews_url: Option<String>,
    /// The whole request's budget, in milliseconds (the deadline set at the edge).
    #[arg(long, env = "REQUEST_BUDGET_MS", default_value_t = 200)]
    budget_ms: u64,
    /// The longest one attempt at an upstream may take, in milliseconds.
    #[arg(long, env = "ATTEMPT_TIMEOUT_MS", default_value_t = 70)]
    attempt_timeout_ms: u64,
    /// Kept back at the end of the budget for writing the answer, in milliseconds.
    #[arg(long, env = "MARGIN_MS", default_value_t = 10)]
    margin_ms: u64,
    /// Attempts per upstream call, the first included (1: no retries).
    #[arg(long, env = "MAX_ATTEMPTS", default_value_t = 3)]
    max_attempts: u32,
    /// Upstream calls allowed in flight per upstream before shedding.
    #[arg(long, env = "MAX_IN_FLIGHT_PER_UPSTREAM", default_value_t = 512)]
    max_in_flight: usize,
    /// On shutdown, how long in-flight requests get to finish, in seconds.
    #[arg(long, env = "DRAIN_SECS", default_value_t = 10)]
    drain_secs: u64,
    /// Latency of the embedded fakes, in milliseconds.
    #[arg(long, default_value_t = 20)]
    fake_latency_ms: u64,
    /// Write an access log line for every answer, not only for those that are not a success.
    #[arg(long, env = "LOG_EVERY_REQUEST")]
    log_every_request: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();

    // JSON lines on stdout, one per event, each with the spans it is in
    // (the `request` span carries `request_id`, so every line has it).
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(json_logs(std::io::stdout))
        .init();

    // One global recorder for the process; the handle renders `/metrics`.
    let metrics = prometheus_builder()
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    // The exporter's histograms need periodic upkeep, or they grow without bound.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });

    // Kept alive until the end of `main`: dropping a fake stops it.
    let mut fakes = Vec::new();
    let urls = match (args.inventory_url, args.pricing_url, args.reviews_url) {
        (Some(inventory), Some(pricing), Some(reviews)) => UpstreamUrls {
            inventory,
            pricing,
            reviews,
        },
        (None, None, None) => {
            let behaviour = Behaviour::fixed(Duration::from_millis(args.fake_latency_ms));
            for _ in 0..3 {
                fakes.push(FastUpstream::start(behaviour.clone()).await?);
            }
            tracing::info!(
                latency_ms = args.fake_latency_ms,
                "no upstream URLs given: started three embedded fake upstreams"
            );
            UpstreamUrls {
                inventory: fakes[0].base_url(),
                pricing: fakes[1].base_url(),
                reviews: fakes[2].base_url(),
            }
        }
        _ => bail!(
            "give all three of --inventory-url, --pricing-url and --reviews-url, or none of them to use embedded fakes"
        ),
    };

    let mut config = ServiceConfig::new(urls);
    config.request_budget = Duration::from_millis(args.budget_ms);
    config.attempt_timeout = Duration::from_millis(args.attempt_timeout_ms);
    config.margin = Duration::from_millis(args.margin_ms);
    config.max_attempts = args.max_attempts;
    config.server_timeout = config.request_budget * 5;
    config.max_in_flight_per_upstream = args.max_in_flight;
    config.log_every_request = args.log_every_request;
    let state = AppState::new(config, metrics).context("checking the configuration")?;
    // Wakes every HEARTBEAT_PERIOD and records how late: the event-loop lag
    // in `/metrics`, which shows a runtime too busy (or blocked) to run a
    // ready task on time.
    tokio::spawn(heartbeat(
        state.service_metrics.event_loop_lag.clone(),
        HEARTBEAT_PERIOD,
    ));

    // Built before announcing anything, so an unfinished exercise stops here
    // with its TODO message rather than after claiming to be up.
    let app = router(state);
    let listener =
        bind_listener(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    eprintln!(
        "product-service is up. Try:\n  curl -i http://{addr}/products/42\n  curl http://{addr}/metrics\nCtrl-C stops it."
    );

    serve(
        listener,
        app,
        shutdown_signal(),
        Duration::from_secs(args.drain_secs),
    )
    .await
    .context("serving")?;
    tracing::info!("stopped cleanly");
    Ok(())
}
