//! `product-page`: step 6's page served over HTTP, with its breakers and
//! hedges on.
//!
//! With no upstream URLs it starts three embedded fake upstreams (on
//! loopback, ports picked by the OS), so it runs on its own:
//!
//! ```text
//! cargo run -p step6_resilience --bin product-page
//! curl -i http://127.0.0.1:3006/products/42
//! curl http://127.0.0.1:3006/metrics
//! ```
//!
//! Point it at real upstreams with `--inventory-url`, `--pricing-url` and
//! `--reviews-url` (or `INVENTORY_URL`, `PRICING_URL`, `REVIEWS_URL`).
//! Logs go to stdout as JSON lines, one per event, each with the spans it
//! happened in (the `request` span carries `request_id`); `RUST_LOG`
//! filters them (default `info`: one access-log line per request, and a
//! line per failed upstream call). Ctrl-C (or SIGTERM) stops it gracefully.
//!
//! Given: this whole file (the command line and the wiring); there is
//! nothing to write in it. The page it serves is yours (`src/page.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use step6_resilience::edge::{
    DEFAULT_MAX_IN_FLIGHT, EdgeConfig, EdgeState, bind_listener, serve, shutdown_signal,
};
use step6_resilience::telemetry::json_logs;
use step6_resilience::{
    BreakerConfig, FairTimeout, HedgeConfig, HedgeDelay, ProductService, Resilience, UpstreamUrls,
};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Step 6's product page over HTTP: `GET /products/{id}`, `/healthz`, `/metrics`.
#[derive(Debug, Parser)]
#[command(name = "product-page")]
struct Args {
    /// Address to listen on. Loopback by default: exposing a service is a decision.
    #[arg(long, env = "PRODUCT_PAGE_LISTEN", default_value = "127.0.0.1:3006")]
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
    /// Page requests handled at once; one more is shed with a 503.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// What a shed client is told to wait (Retry-After), in seconds.
    #[arg(long, env = "RETRY_AFTER_SECS", default_value_t = 1)]
    retry_after_secs: u64,
    /// On shutdown, how long in-flight requests get to finish, in seconds.
    #[arg(long, env = "DRAIN_SECS", default_value_t = 10)]
    drain_secs: u64,
    /// Latency of the embedded fakes, in milliseconds.
    #[arg(long, default_value_t = 20)]
    fake_latency_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // JSON lines on stdout, as step 4's service writes them.
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(json_logs(std::io::stdout))
        .init();

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

    let budget = Duration::from_millis(args.budget_ms);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let service = ProductService::new(client, urls, resilience(budget))
        .context("checking the breaker and hedge settings")?;
    let config = EdgeConfig {
        request_budget: budget,
        max_in_flight: args.max_in_flight,
        retry_after: Duration::from_secs(args.retry_after_secs),
    };
    let state = Arc::new(EdgeState::new(service, config).context("checking the edge settings")?);

    // The exporter's histograms need upkeep when nobody scrapes for a while.
    let upkeep = Arc::clone(&state);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.metrics.run_upkeep();
        }
    });

    let listener =
        bind_listener(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, max_in_flight = args.max_in_flight, budget_ms = args.budget_ms, "listening");
    eprintln!(
        "product-page is up. Try:\n  curl -i http://{addr}/products/42\n  curl http://{addr}/healthz\n  curl http://{addr}/metrics\nCtrl-C stops it."
    );

    serve(
        listener,
        state,
        shutdown_signal(),
        Duration::from_secs(args.drain_secs),
    )
    .await
    .context("serving")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Breakers and hedges on, as in the lab's "on" runs, with the breaker's
/// fair-timeout rule scaled to the budget: a timeout counts against an
/// upstream only if its call had at least half the budget (a page admitted
/// late has spent its own time, not the upstream's) and was seen within
/// 50 ms of its deadline (a runtime that late is measuring itself).
fn resilience(budget: Duration) -> Resilience {
    Resilience {
        breaker: Some(BreakerConfig {
            failure_threshold: 10,
            cool_down: Duration::from_secs(1),
            half_open_probes: 1,
            fair_timeout: FairTimeout {
                min_own_time: budget / 2,
                timer_tolerance: Duration::from_millis(50),
            },
        }),
        hedge: Some(HedgeConfig {
            // At the recent p95, never sooner than 5 ms, once 50 answers
            // have been seen in a window; at most 10 % extra requests.
            delay: HedgeDelay::Quantile {
                quantile: 0.95,
                floor: Duration::from_millis(5),
                min_samples: 50,
            },
            budget_ratio: 0.1,
            budget_burst: 10.0,
            latency_window: Duration::from_secs(2),
        }),
    }
}
