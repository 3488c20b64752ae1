//! `product-page`: step 6's page served over HTTP, with every guard on:
//! breakers, retries and hedges within one budget, bulkheads.
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
//! happened in (the `request` span carries `request_id`; the spans of
//! upstream calls are left to traces, see `json_logs`); `RUST_LOG` filters
//! them (default `info`: an access-log line per answer that is not a
//! success, and a line per failed upstream call; `--log-every-request`
//! gives every answer its access line). Ctrl-C (or SIGTERM) stops it
//! gracefully.
//!
//! Built with the cargo feature `otlp`, it also sends every span to an
//! OpenTelemetry collector: `--otlp-endpoint http://127.0.0.1:4318` (or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`), the base URL of the collector's OTLP/HTTP
//! receiver. Without an endpoint nothing is exported; a build without the
//! feature refuses an endpoint and says how to rebuild.
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
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_RUNTIME_LAG, DEFAULT_MIN_IN_FLIGHT, EdgeConfig, EdgeState,
    bind_listener, breaker_timer_tolerance, serve, shutdown_signal,
};
use step6_resilience::telemetry::{OtlpExport, json_logs};
use step6_resilience::{
    BreakerConfig, BudgetConfig, BulkheadConfig, FairTimeout, HedgeConfig, HedgeDelay,
    ProductService, Resilience, RetryConfig, UpstreamUrls,
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
    /// The most page requests handled at once, ever (the hard cap); one more is shed with a 503.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// Learn the in-flight limit from the pages' latency: cut it while more than 5 % of
    /// recent pages take longer than this, in milliseconds, and grow it back slowly while
    /// they do not (AIMD). Default: 2/5 of --budget-ms (the attempt timeout). 0 turns it
    /// off (the hard cap only).
    #[arg(long, env = "LATENCY_TARGET_MS")]
    latency_target_ms: Option<u64>,
    /// The fewest page requests the learnt limit allows at once.
    #[arg(long, env = "MIN_IN_FLIGHT", default_value_t = DEFAULT_MIN_IN_FLIGHT)]
    min_in_flight: usize,
    /// Shed page requests while the runtime runs more than this far behind
    /// its schedule, in milliseconds (a growing share, all at twice it).
    #[arg(long, env = "MAX_RUNTIME_LAG_MS", default_value_t = DEFAULT_MAX_RUNTIME_LAG.as_millis() as u64)]
    max_runtime_lag_ms: u64,
    /// What a shed client is told to wait (Retry-After), in seconds.
    #[arg(long, env = "RETRY_AFTER_SECS", default_value_t = 1)]
    retry_after_secs: u64,
    /// On shutdown, how long in-flight requests get to finish, in seconds.
    #[arg(long, env = "DRAIN_SECS", default_value_t = 10)]
    drain_secs: u64,
    /// Latency of the embedded fakes, in milliseconds.
    #[arg(long, default_value_t = 20)]
    fake_latency_ms: u64,
    /// Also send every span to an OpenTelemetry collector: the base URL of its
    /// OTLP/HTTP receiver (spans go to `<URL>/v1/traces`), e.g.
    /// http://127.0.0.1:4318. Needs a build with the cargo feature `otlp`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Write an access log line for every answer, not only for those that are not a success.
    #[arg(long, env = "LOG_EVERY_REQUEST")]
    log_every_request: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Spans to a collector too, if asked for (and built with the feature).
    let otlp = args
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| OtlpExport::start(endpoint, "product-page"))
        .transpose()
        .context("starting the OTLP exporter")?;
    // JSON lines on stdout, as step 4's service writes them.
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(json_logs(std::io::stdout))
        .with(otlp.as_ref().map(OtlpExport::layer))
        .init();
    if let Some(endpoint) = &args.otlp_endpoint {
        tracing::info!(%endpoint, "sending spans to an OTLP collector");
    }

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
    let max_runtime_lag = Duration::from_millis(args.max_runtime_lag_ms);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let service = ProductService::new(
        client,
        urls,
        resilience(budget, args.max_in_flight, max_runtime_lag),
    )
    .context("checking the resilience settings")?;
    let config = EdgeConfig {
        request_budget: budget,
        max_in_flight: args.max_in_flight,
        latency_target: latency_target(args.latency_target_ms, budget),
        min_in_flight: args.min_in_flight,
        retry_after: Duration::from_secs(args.retry_after_secs),
        log_every_request: args.log_every_request,
        max_runtime_lag,
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

    let served = serve(
        listener,
        state,
        shutdown_signal(),
        Duration::from_secs(args.drain_secs),
    )
    .await;
    // Whatever ended the serving, the spans still queued go out first.
    if let Some(otlp) = otlp
        && let Err(error) = otlp.shutdown().await
    {
        let error = format!("{:#}", anyhow::Error::from(error));
        tracing::warn!(%error, "spans still queued were lost at shutdown");
    }
    served.context("serving")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The learnt limit's latency target: as given (0: no learnt limit), or
/// 2/5 of the budget, the attempt timeout `resilience` sets, as
/// `DEFAULT_LATENCY_TARGET` is of the default budget (why: see there).
fn latency_target(given_ms: Option<u64>, budget: Duration) -> Option<Duration> {
    match given_ms {
        Some(0) => None,
        Some(millis) => Some(Duration::from_millis(millis)),
        None => Some(budget * 2 / 5),
    }
}

/// Everything on, as in the lab's "on" runs, scaled to the page's budget.
///
/// * The breaker's fair-timeout rule: a timeout counts against an upstream
///   only if its call had at least half the budget (a page admitted late has
///   spent its own time, not the upstream's), was seen on time, and our
///   runtime never ran far behind while it was in flight (a runtime that
///   late is measuring itself): "on time" and "far" are half the lag at
///   which admission sheds, 10 ms by default ([`breaker_timer_tolerance`]).
/// * Hedges at the recent p95 and retries after an error that may pass,
///   together at most 10 % extra requests per upstream (plus a burst of 10).
/// * Each attempt gets at most 2/5 of the budget (80 ms of 200: a stalled
///   first attempt is cut early enough for a second to fit), never runs into
///   the last 1/20 (10 ms kept for the page to answer), and is not started
///   with less than 1/10 (20 ms, about a healthy upstream's latency).
/// * A bulkhead per upstream as large as the edge's own limit: one request
///   per admitted page fits, so it only binds when retries and hedges would
///   push an upstream past what the edge admits; a request waits at most
///   1/20 of the budget for a permit.
fn resilience(budget: Duration, max_in_flight: usize, max_runtime_lag: Duration) -> Resilience {
    Resilience {
        breaker: Some(BreakerConfig {
            failure_threshold: 10,
            cool_down: Duration::from_secs(1),
            half_open_probes: 1,
            fair_timeout: FairTimeout {
                min_own_time: budget / 2,
                timer_tolerance: breaker_timer_tolerance(max_runtime_lag),
            },
        }),
        hedge: Some(HedgeConfig {
            // At the recent p95, never sooner than 5 ms, once 50 answers
            // have been seen in a window.
            delay: HedgeDelay::Quantile {
                quantile: 0.95,
                floor: Duration::from_millis(5),
                min_samples: 50,
            },
            latency_window: Duration::from_secs(2),
        }),
        retry: Some(RetryConfig {
            max_attempts: 3,
            attempt_timeout: budget * 2 / 5,
            margin: budget / 20,
            min_attempt: budget / 10,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        }),
        budget: Some(BudgetConfig {
            ratio: 0.1,
            burst: 10.0,
        }),
        bulkhead: Some(BulkheadConfig {
            max_in_flight,
            max_wait: budget / 20,
        }),
    }
}
